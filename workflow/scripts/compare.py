"""Snakemake adapter: the sweep comparison page (rules/compare.smk)."""

from pathlib import Path

from tdw.io.variant import read_metadata_json
from tdw.pages.compare import write_compare
from tdw.progress import job_log

with job_log(snakemake.log[0], f"compare {snakemake.wildcards.report}"):  # noqa: F821
    files = dict(snakemake.input.items())  # noqa: F821
    variants = {}
    for name in snakemake.params.variants:  # noqa: F821
        variants[name] = {key: files.get(f"{name}.{key}") for key in ("history", "embedding", "transitions")}
        variants[name]["metadata"] = read_metadata_json(files[f"{name}.metadata"])
    spec = snakemake.params.spec  # noqa: F821
    title = spec["title"].replace("{variant}", "all variants").replace("{family}", " + ".join(snakemake.params.families))  # noqa: F821
    write_compare(Path(snakemake.output.page), title=f"Comparison: {title}", description=spec["description"], variants=variants)  # noqa: F821
