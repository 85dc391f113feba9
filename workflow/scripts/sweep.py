"""Snakemake adapter: the sweep page (rules/sweep.smk)."""

from pathlib import Path

from tdw.io.variant import read_metadata_json, read_variant_config
from tdw.pages.sweep import write_sweep
from tdw.pages.sweep_spec import needed_artifacts
from tdw.progress import job_log

with job_log(snakemake.log[0], f"sweep page {snakemake.wildcards.sweep}"):  # noqa: F821
    files = dict(snakemake.input.items())  # noqa: F821
    spec = snakemake.params.spec  # noqa: F821
    variants = {
        name: {
            "config": read_variant_config(files[f"{name}.config"]),
            "history": files[f"{name}.history"],
            "metadata": read_metadata_json(files[f"{name}.metadata"]),
            "artifacts": {a: files[f"{name}.artifact.{a}"] for a in needed_artifacts(spec)},
        }
        for name in snakemake.params.variants  # noqa: F821
    }
    family = snakemake.wildcards.family  # noqa: F821
    write_sweep(Path(snakemake.output.page), spec=spec, family=family, name=snakemake.wildcards.sweep, variants=variants)  # noqa: F821
