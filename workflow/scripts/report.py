"""Snakemake adapter: one report of one variant (rules/report.smk)."""

import json
from pathlib import Path

from tdw.joblog import job_log
from tdw.report import load_report_config, write_report

wc = snakemake.wildcards  # noqa: F821
with job_log(snakemake.log[0], f"report {wc.variant} {wc.report}"):  # noqa: F821
    views_params = snakemake.params.views  # noqa: F821
    spec = load_report_config(Path(snakemake.input.spec), list(views_params))  # noqa: F821
    views = {}
    for name in spec["views"]:
        prefix = f"{name}."
        inputs = {k[len(prefix) :]: Path(v) for k, v in snakemake.input.items() if k.startswith(prefix)}  # noqa: F821
        views[name] = {"source": views_params[name]["source"], "params": dict(views_params[name]["params"]), "inputs": inputs}
    write_report(
        Path(snakemake.output.report),  # noqa: F821
        spec=spec,
        variant=wc.variant,
        family=snakemake.params.family,  # noqa: F821
        views=views,
        metadata=json.loads(Path(snakemake.input.metadata).read_text()),  # noqa: F821
    )
