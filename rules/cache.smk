# The shared forward pass: one job per (variant, probe) writes one HDF5 cache per
# checkpoint (one process, so start-up is paid once per variant, not per checkpoint).
# One rule per checkpoint schedule: forward_cache_trained, forward_cache_legacy_<variant>.


for _class in EPOCH_CLASSES:

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
