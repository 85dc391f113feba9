"""The figures of finished variants as the workflow's jobs make them, in two job layouts side by
side: one job per figure writing its HTML, PNG and SVG (a browser session each), against one
job per figure writing its HTML and one job per variant writing every figure's PNG and SVG in
one browser session (the ``render`` and ``static_<family>`` rules). Each job is its own Python
process, as Snakemake starts it; ``--jobs`` run at a time. Prints one JSON line per layout.

    .venv/bin/python bench/bench_render_jobs.py --workdir /tmp/wf --config /tmp/wf/config.yaml [--jobs 2] [--repeats 1]

The work directory holds the finished run (its results/ with every artifact); the outputs are
written under bench/out/render_jobs/, never over the run's own figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from results_io import add_json_arg, record_rows, write_result  # noqa: E402

from tdw.config import resolve_runs  # noqa: E402
from tdw.layout import FamilyLayout  # noqa: E402
from tdw.pages.report_spec import view_inputs  # noqa: E402

JOB = """
import json, sys
from pathlib import Path
from tdw.figures.render import render_figure, render_static
spec = json.loads(sys.argv[1])
path = lambda d: {k: Path(v) for k, v in d.items()}
if spec["kind"] == "figure":
    render_figure(spec["name"], spec["source"], path(spec["inputs"]), spec["params"], spec["name"], path(spec["outputs"]))
else:
    render_static([(j["name"], j["source"], path(j["inputs"]), j["params"], j["name"], path(j["outputs"])) for j in spec["jobs"]])
"""


def figure_jobs(workdir: Path, config: Path, out: Path) -> list[tuple[str, dict]]:
    """(variant, figure spec) for every figure of every variant of the config's runs."""
    runs = resolve_runs(yaml.safe_load(config.read_text()), str(config))
    jobs = []
    for wb in runs:
        layout = FamilyLayout(workdir / wb.results, wb.family.name)
        for v in wb.variants:
            variant = layout.variant(v.name).dir
            for name, fig in wb.figures.items():
                inputs = {k: str(p) for k, p in view_inputs(variant, fig["source"], wb.probe).items()}
                outputs = {e: str(out / v.name / f"{name}.{e}") for e in ("html", "png", "svg")}
                jobs.append(
                    (
                        v.name,
                        {"name": name, "source": fig["source"], "params": fig["params"], "inputs": inputs, "outputs": outputs},
                    )
                )
    return jobs


def run_jobs(specs: list[dict], workers: int) -> tuple[float, float]:
    """Wall and CPU seconds (the children's) of the job processes, ``workers`` at a time."""

    def one(spec: dict) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", JOB, json.dumps(spec)], check=True, cwd=ROOT)
        return time.perf_counter() - t0

    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, specs))
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1, help="alternating runs of each layout; the fastest of each is kept")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "render_jobs")
    add_json_arg(ap, "render_jobs")
    args = ap.parse_args()
    jobs = figure_jobs(args.workdir, args.config, args.out)
    per_figure = [{"kind": "figure"} | spec for _, spec in jobs]
    pages = [{"kind": "figure"} | spec | {"outputs": {"html": spec["outputs"]["html"]}} for _, spec in jobs]
    static = {}
    for variant, spec in jobs:
        static.setdefault(variant, []).append(spec | {"outputs": {e: spec["outputs"][e] for e in ("png", "svg")}})
    layouts = {
        "one job per figure (HTML, PNG, SVG)": [per_figure],
        "HTML job per figure, then one static job per variant": [pages, [{"kind": "static", "jobs": j} for j in static.values()]],
    }
    best = {name: (float("inf"), 0.0) for name in layouts}
    for _ in range(args.repeats):
        for name, stages in layouts.items():
            shutil.rmtree(args.out, ignore_errors=True)
            for variant in static:
                (args.out / variant).mkdir(parents=True)
            wall = cpu = 0.0
            for stage in stages:  # the static jobs wait for nothing but run after the pages here
                w, c = run_jobs(stage, args.jobs)
                wall, cpu = wall + w, cpu + c
            best[name] = min(best[name], (wall, cpu))
    n_jobs = {name: sum(len(s) for s in stages) for name, stages in layouts.items()}
    records = [
        {"layout": name, "jobs": n_jobs[name], "figures": len(jobs), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}
        for name, (wall, cpu) in best.items()
    ]
    for record in records:
        print(json.dumps(record))
    if args.json:
        notes = f"Both layouts as job processes, {args.jobs} at a time, the fastest of {args.repeats} alternating runs."
        write_result(args.json, "Figure jobs: a variant's static images in one browser session", *record_rows(records), notes)


if __name__ == "__main__":
    main()
