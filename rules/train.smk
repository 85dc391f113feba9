# Checkpoints of every variant: trained here (one job per variant, resumable) or imported
# from a legacy file. Both write the same files.


rule train:
    output:
        checkpoints=[checkpoint_file("{variant}", e) for e in TRAIN_EPOCHS],
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
        mem_mb=tdw_config.TRAIN_MEM_MB,
    params:
        run=get_train_params,
        code=get_code("train.py"),
    script:
        "../workflow/scripts/train.py"


for _group in seed_batches():

    rule:
        name:
            f"train_batch_p{_group[0].p}"
        output:
            checkpoints=batch_outputs(_group, "checkpoints"),
            history=batch_outputs(_group, "history.h5"),
            metadata=batch_outputs(_group, "metadata.json"),
            config=batch_outputs(_group, "config.json"),
        log:
            f"{LOGS}/train/batch_p{_group[0].p}.log",
        benchmark:
            f"{LOGS}/train/batch_p{_group[0].p}.bench.tsv"
        conda:
            ENV
        threads: 2
        resources:
            mem_mb=tdw_config.TRAIN_MEM_MB,
        params:
            runs=[train_params(v) for v in _group],
            code=get_code("train_batch.py"),
        script:
            "../workflow/scripts/train_batch.py"


for _i, _legacy, _epochs, _names in epoch_classes():
    if not _legacy:
        continue

    rule:
        name:
            f"import_legacy_{_i}"
        input:
            get_legacy_path,
        output:
            checkpoints=[checkpoint_file("{variant}", e) for e in _epochs],
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
