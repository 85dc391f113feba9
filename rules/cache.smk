# The shared forward pass: one job per (variant, probe) writes one HDF5 cache per
# checkpoint (one process, so start-up is paid once per variant, not per checkpoint).
# One rule per checkpoint schedule: forward_cache_trained, forward_cache_legacy_<variant>.
# The job reads the checkpoints metadata.json lists (written after them): one input, not one
# per checkpoint, keeps the DAG build linear in the checkpoints (tdw.workflow.inputs).


for _class in EPOCH_CLASSES:
    if caches_in_folder(_class):
        continue

    rule:
        name:
            f"forward_cache_{_class.name}"
        input:
            manifest=V.metadata,
        output:
            # last epoch first: the jobs reading the caches name that one (cache_of), and
            # Snakemake tries a rule's outputs in order when it looks for a file's producer;
            # it touches them in order as the job ends, the first epoch's last (changed_files)
            caches=epoch_files(V.cache_dir("{probe}"), cache_name, reversed(_class.epochs)),
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
            changed=get_changed_checkpoints,
            code=get_code("cache.py"),
        script:
            "../workflow/scripts/cache.py"


# Early stopping (the checkpoints reached are those metadata.json lists) or temporary caches:
# the rule writes the cache folder, one file per checkpoint metadata.json lists.
for _class in EPOCH_CLASSES:
    if not caches_in_folder(_class):
        continue

    rule:
        name:
            f"forward_cache_{_class.name}"
        input:
            **({"checkpoints": V.folder("checkpoints")} if _class.early_stop else {}),
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
            changed=get_changed_checkpoints,
            code=get_code("cache.py"),
        script:
            "../workflow/scripts/cache.py"
