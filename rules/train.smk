# Checkpoints of every variant: trained here (one job per variant, resumable; one rule per
# checkpoint schedule), trained with the other seeds of its prime (batch_seeds), or imported
# from a legacy file. All write the same files (tdw.io.variant). Rule names: tdw.workflow.plan.
# metadata.json comes first: the jobs reading the checkpoints name it (tdw.workflow.inputs), and
# Snakemake tries a rule's outputs in order when it looks for a file's producer. config.json
# comes last: Snakemake touches a job's outputs in order when it ends, so a checkpoint newer
# than config.json changed after its job (``changed_files``).


for _class in TRAIN_CLASSES:

    rule:
        name:
            plan.train_rule(_class)
        output:
            metadata=V.metadata,
            history=V.history,
            checkpoints=checkpoint_outputs(_class),
            config=V.config,
        log:
            log_file("train", "{variant}"),
        benchmark:
            log_file("train", "{variant}", "bench.tsv")
        wildcard_constraints:
            variant=plan.alternatives(n for n in TRAIN_NAMES if n in _class.variants),
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


for _batch in SEED_BATCHES:

    rule:
        name:
            _batch.name
        output:
            metadata=batch_outputs(_batch, "metadata"),
            history=batch_outputs(_batch, "history"),
            checkpoints=batch_outputs(_batch, "checkpoints"),
            config=batch_outputs(_batch, "config"),
        log:
            log_file("train", _batch.name, family=run_of(_batch.variants[0].name).family.name),
        benchmark:
            log_file("train", _batch.name, "bench.tsv", run_of(_batch.variants[0].name).family.name)
        conda:
            ENV
        threads: 2
        resources:
            mem_mb=tdw_config.TRAIN_MEM_MB,
        params:
            runs=[train_params(v) for v in _batch.variants],
            code=get_code("train_batch.py"),
        script:
            "../workflow/scripts/train_batch.py"


for _class in EPOCH_CLASSES:
    if not _class.legacy:
        continue

    rule:
        name:
            f"import_{_class.name}"
        input:
            get_legacy_path,
        output:
            metadata=V.metadata,
            history=V.history,
            checkpoints=checkpoint_outputs(_class),
            config=V.config,
        log:
            log_file("import_legacy", "{variant}"),
        wildcard_constraints:
            variant=plan.alternatives(_class.variants),
        conda:
            ENV
        params:
            run=get_train_params,
            legacy=get_legacy_path,
            code=get_code("import_legacy.py"),
        script:
            "../workflow/scripts/import_legacy.py"
