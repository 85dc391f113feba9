"""Snakemake adapter: one report of one variant (rules/report.smk)."""

from pathlib import Path

from tdw.pages.report import load_metadata, write_report
from tdw.progress import job_log

wc = snakemake.wildcards  # noqa: F821
with job_log(snakemake.log[0], f"report {wc.variant} {wc.report}"):  # noqa: F821
    spec = snakemake.params.spec  # noqa: F821
    views = []
    for view in spec["views"]:
        prefix = f"{view['figure']}."
        inputs = {k[len(prefix) :]: v for k, v in snakemake.input.items() if k.startswith(prefix)}  # noqa: F821
        views.append(dict(view) | {"inputs": inputs})
    write_report(
        Path(snakemake.output.report),  # noqa: F821
        spec=spec,
        variant=wc.variant,
        family=snakemake.params.family,  # noqa: F821
        views=views,
        metadata=load_metadata(snakemake.input.metadata),  # noqa: F821
    )
