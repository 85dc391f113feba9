# The shared forward pass: one job per (variant, probe) writes one HDF5 cache per
# checkpoint (one process, so start-up is paid once per variant, not per checkpoint).


for _i, _legacy, _epochs, _names in epoch_classes():

    rule:
        name:
            f"forward_cache_{_i}"
        input:
            checkpoints=get_checkpoints,
        output:
            caches=cache_outputs([cache_file("{variant}", "{probe}", e) for e in _epochs]),
        log:
            f"{LOGS}/forward_cache/{{variant}}_{{probe}}.log",
        benchmark:
            f"{LOGS}/forward_cache/{{variant}}_{{probe}}.bench.tsv"
        wildcard_constraints:
            variant=_alternatives(_names),
        conda:
            ENV
        threads: 1
        params:
            run=get_cache_params,
            probe_spec=get_probe_spec,
            code=get_code("cache.py"),
        script:
            "../workflow/scripts/cache.py"
