# Checkpoints of every variant: trained here (one job per variant, resumable) or imported
# from a legacy file. Both write the same files.


rule train:
    output:
        checkpoints=expand(
            f"{WB.results}/{FAMILY.name}/{{{{variant}}}}/checkpoints/checkpoint_epoch_{{epoch:05d}}.safetensors",
            epoch=TRAIN_EPOCHS,
        ),
        history=f"{VDIR}/history.h5",
        metadata=f"{VDIR}/metadata.json",
        config=f"{VDIR}/config.json",
    log:
        f"{LOGS}/train/{{variant}}.log",
    benchmark:
        f"{LOGS}/train/{{variant}}.bench.tsv"
    wildcard_constraints:
        variant=_alternatives(TRAIN_NAMES),
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=2000,
    params:
        run=get_train_params,
        code=get_code("train.py"),
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
        log:
            f"{LOGS}/import_legacy/{{variant}}.log",
        wildcard_constraints:
            variant=_alternatives(_names),
        conda:
            ENV
        params:
            run=get_train_params,
            legacy=get_legacy_path,
            code=get_code("import_legacy.py"),
        script:
            "../workflow/scripts/import_legacy.py"
