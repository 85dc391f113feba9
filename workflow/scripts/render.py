"""Snakemake adapter: one figure of one variant as its HTML page (rules/render.smk)."""

from pathlib import Path

from tdw.figures.render import render_figure
from tdw.progress import job_log

wc = snakemake.wildcards  # noqa: F821
with job_log(snakemake.log[0], f"render {wc.variant} {wc.figure}"):  # noqa: F821
    fig = snakemake.params.figure  # noqa: F821
    outputs = {Path(p).suffix[1:]: Path(p) for p in snakemake.output}  # noqa: F821
    inputs = {k: Path(v) for k, v in snakemake.input.items()}  # noqa: F821
    title = f"{wc.figure.replace('_', ' ')}: {wc.family} / {wc.variant}"  # noqa: F821
    seconds = render_figure(wc.figure, fig["source"], inputs, dict(fig["params"]), title, outputs)
    print(f"rendered {wc.figure} in {seconds:.2f} s")
