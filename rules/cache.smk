# The shared forward pass: one job per (variant, probe) writes one HDF5 cache per
# checkpoint (one process, so start-up is paid once per variant, not per checkpoint).
# One rule per checkpoint schedule: forward_cache_trained, forward_cache_legacy_<variant>.


for _class in EPOCH_CLASSES:
    if _class.early_stop:
        continue

    rule:
        name:
            f"forward_cache_{_class.name}"
        input:
            checkpoints=checkpoints_of(_class),
        output:
            caches=cache_outputs([V.cache("{probe}", e) for e in _class.epochs]),
        log:
            log_file("forward_cache", "{variant}_{probe}"),
        benchmark:
            log_file("forward_cache", "{variant}_{probe}", "bench.tsv")
        wildcard_constraints:
            variant=plan.alternatives(_class.variants),
        conda:
            ENV
        threads: 1
        params:
            run=get_cache_params,
            probe_spec=get_probe_spec,
            code=get_code("cache.py"),
        script:
            "../workflow/scripts/cache.py"


# Early stopping: the checkpoints reached are those metadata.json lists, so the rule reads the
# checkpoint folder and writes the cache folder, one file per checkpoint reached.
for _class in EPOCH_CLASSES:
    if not _class.early_stop:
        continue

    rule:
        name:
            f"forward_cache_{_class.name}"
        input:
            checkpoints=checkpoints_of(_class),
            manifest=V.metadata,
        output:
            caches=cache_outputs(directory(V.cache_dir("{probe}"))),
        log:
            log_file("forward_cache", "{variant}_{probe}"),
        benchmark:
            log_file("forward_cache", "{variant}_{probe}", "bench.tsv")
        wildcard_constraints:
            variant=plan.alternatives(_class.variants),
        conda:
            ENV
        threads: 1
        params:
            run=get_cache_params,
            probe_spec=get_probe_spec,
            code=get_code("cache.py"),
        script:
            "../workflow/scripts/cache.py"
