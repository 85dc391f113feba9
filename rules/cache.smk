# The shared forward pass: one job per (variant, probe) writes one HDF5 cache per
# checkpoint (one process, so start-up is paid once per variant, not per checkpoint).


def get_cache_params(wildcards):
    v = WB.variant(wildcards.variant)
    return {"variant": v.name, "p": v.p, "seed": v.seed, "train_frac": v.train_frac, "cache": FAMILY.spec["cache"]}


def get_probe_spec(wildcards):
    if wildcards.probe not in FAMILY.spec["probes"]:
        raise ValueError(f"unknown probe {wildcards.probe!r}; family {FAMILY.name} offers {sorted(FAMILY.spec['probes'])}")
    return FAMILY.spec["probes"][wildcards.probe]


for _i, _legacy, _epochs, _names in epoch_classes():

    rule:
        name:
            f"forward_cache_{_i}"
        input:
            checkpoints=get_checkpoints,
        output:
            caches=cache_outputs(
                expand(
                    f"{WB.results}/{FAMILY.name}/{{{{variant}}}}/cache/{{{{probe}}}}/epoch_{{epoch:05d}}.h5",
                    epoch=_epochs,
                )
            ),
        wildcard_constraints:
            variant=_alternatives(_names),
        params:
            run=get_cache_params,
            probe_spec=get_probe_spec,
            code=get_code("cache.py"),
        threads: 1
        log:
            f"{LOGS}/forward_cache/{{variant}}_{{probe}}.log",
        benchmark:
            f"{LOGS}/forward_cache/{{variant}}_{{probe}}.bench.tsv"
        conda:
            ENV
        script:
            "../workflow/scripts/cache.py"
