"""Snakemake adapter: one analyzer over all checkpoints of a variant (rules/analyze.smk)."""

from pathlib import Path

from tdw.analyzers.runner import run_analyzer
from tdw.progress import job_log
from tdw.train.early_stop import reached_files

wc = snakemake.wildcards  # noqa: F821
with job_log(snakemake.log[0], f"analyze {wc.variant} {wc.probe} {wc.analyzer}"):  # noqa: F821
    caches = snakemake.input.get("caches")  # noqa: F821
    history = snakemake.input.get("history")  # noqa: F821
    # early stopping: the inputs are folders, the epochs reached those metadata.json lists
    if "manifest" in snakemake.input.keys():  # noqa: F821
        checkpoints, reached = reached_files(snakemake.input.manifest, wc.probe)  # noqa: F821
        caches = reached if caches else None
    else:
        checkpoints = [Path(p) for p in snakemake.input.checkpoints]  # noqa: F821
        caches = [Path(p) for p in caches] if caches else None
    seconds = run_analyzer(
        wc.analyzer,
        dict(snakemake.params.analyzer_params),  # noqa: F821
        checkpoints,
        caches,
        Path(snakemake.output.artifact),  # noqa: F821
        {"family": wc.family, "variant": wc.variant, "probe": wc.probe},  # noqa: F821
        history=Path(history) if history else None,
    )
    print(f"{wc.analyzer}: {seconds:.2f} s")
