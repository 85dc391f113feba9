"""Snakemake adapter: the PNG and SVG of every figure of one variant through one browser
session (rules/render.smk)."""

from collections import defaultdict
from pathlib import Path

from tdw.figures.render import render_static
from tdw.progress import job_log

wc = snakemake.wildcards  # noqa: F821
with job_log(snakemake.log[0], f"static {wc.variant}"):  # noqa: F821
    figures = snakemake.params.figures  # noqa: F821
    inputs = defaultdict(dict)
    for key, path in snakemake.input.items():  # noqa: F821
        figure, name = key.split(".", 1)
        inputs[figure][name] = Path(path)
    outputs = defaultdict(dict)
    for path in [*snakemake.output.png, *snakemake.output.svg]:  # noqa: F821
        path = Path(path)
        outputs[path.stem][path.suffix[1:]] = path
    family = snakemake.params.family  # noqa: F821
    jobs = [
        (
            name,
            fig["source"],
            inputs[name],
            dict(fig["params"]),
            f"{name.replace('_', ' ')}: {family} / {wc.variant}",
            outputs[name],
        )
        for name, fig in figures.items()
    ]
    seconds = render_static(jobs)
    print(f"exported {2 * len(jobs)} images of {len(jobs)} figures in {seconds:.2f} s")
