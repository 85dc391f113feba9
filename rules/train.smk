# Checkpoints of every variant: trained here (one job per variant, resumable) or imported
# from a legacy file. Both write the same files.

TRAIN_NAMES = [v.name for v in TRAINED]
TRAIN_EPOCHS = TRAINED[0].epochs if TRAINED else ()


def get_train_params(wildcards):
    v = WB.variant(wildcards.variant)
    return {
        "family": FAMILY.name,
        "operation": FAMILY.operation,
        "model": FAMILY.model_config(v.p).to_dict(),
        "train": WB.train.to_dict(),
        "variant": {"name": v.name, "p": v.p, "seed": v.seed, "train_frac": v.train_frac, "epochs": list(v.epochs)},
    }


def get_legacy_path(wildcards):
    return WB.variant(wildcards.variant).legacy_path


rule train:
    output:
        checkpoints=expand(
            f"{WB.results}/{FAMILY.name}/{{{{variant}}}}/checkpoints/checkpoint_epoch_{{epoch:05d}}.safetensors",
            epoch=TRAIN_EPOCHS,
        ),
        history=f"{VDIR}/history.h5",
        metadata=f"{VDIR}/metadata.json",
        config=f"{VDIR}/config.json",
    wildcard_constraints:
        variant=_alternatives(TRAIN_NAMES),
    params:
        run=get_train_params,
        code=get_code("train.py"),
    threads: 2
    resources:
        mem_mb=2000,
    log:
        f"{LOGS}/train/{{variant}}.log",
    benchmark:
        f"{LOGS}/train/{{variant}}.bench.tsv"
    conda:
        ENV
    script:
        "../workflow/scripts/train.py"


for _i, _legacy, _epochs, _names in epoch_classes():
    if not _legacy:
        continue

    rule:
        name:
            f"import_legacy_{_i}"
        input:
            get_legacy_path,
        output:
            checkpoints=expand(
                f"{WB.results}/{FAMILY.name}/{{{{variant}}}}/checkpoints/checkpoint_epoch_{{epoch:05d}}.safetensors",
                epoch=_epochs,
            ),
            history=f"{VDIR}/history.h5",
            metadata=f"{VDIR}/metadata.json",
            config=f"{VDIR}/config.json",
        wildcard_constraints:
            variant=_alternatives(_names),
        params:
            run=get_train_params,
            legacy=get_legacy_path,
            code=get_code("import_legacy.py"),
        log:
            f"{LOGS}/import_legacy/{{variant}}.log",
        conda:
            ENV
        script:
            "../workflow/scripts/import_legacy.py"
