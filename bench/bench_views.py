"""Views benchmark: a p = 113 variant with 400 checkpoints (synthetic history and
embeddings, the real embedding_frequencies analyzer). Measures re-rendering every figure
(HTML + PNG + SVG) and the report after a visual change, the report's size, the slider
step in headless Chromium, and (with --dashboard) the dashboard's time to show the views.

    python bench/bench_views.py [--out bench/out/views] [--dashboard]

With ``--artifacts DIR`` it measures the family's default report over real artifacts instead:
DIR is the output of bench/bench_analyzers.py (400 p = 113 checkpoints and every analyzer's
artifact), laid out as a variant under DIR/views; the report is built as the dashboard and the
report job build it, then timed in the browser with each view's share of a step.

    python bench/bench_analyzers.py --out /tmp/tdw_bench
    python bench/bench_views.py --artifacts /tmp/tdw_bench
    python bench/bench_views.py --artifacts /tmp/tdw_bench --against OTHER.html  # side by side

OTHER.html is the report file the same command printed at another commit.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import CHROMIUM_ARGS  # noqa: E402
from results_io import add_json_arg, figure_rows, write_result  # noqa: E402

from tdw.config import load_family  # noqa: E402
from tdw.figures.render import render_figure, render_static  # noqa: E402
from tdw.pages.report import write_report  # noqa: E402
from tdw.pages.report_spec import available_figures, view_inputs  # noqa: E402
from tdw.train.synthetic import make_variant  # noqa: E402


def rerender(variant: Path, figures: dict) -> float:
    """Every figure (its HTML page, then the PNG and SVG of all in one browser session) and
    the default report, as the render, static and report jobs do."""
    t0 = time.perf_counter()
    jobs = []
    for name, fig in figures.items():
        inputs = view_inputs(variant, fig["source"], "full")
        render_figure(name, fig["source"], inputs, fig["params"], name, {"html": variant / "figures" / f"{name}.html"})
        jobs.append(
            (name, fig["source"], inputs, fig["params"], name, {e: variant / "figures" / f"{name}.{e}" for e in ("png", "svg")})
        )
    render_static(jobs)
    views = [
        {
            "figure": n,
            "title": n,
            "source": f["source"],
            "params": f["params"],
            "inputs": view_inputs(variant, f["source"], "full"),
        }
        for n, f in figures.items()
    ]
    meta = json.loads((variant / "metadata.json").read_text())
    write_report(
        variant / "reports/default.html",
        spec={"title": "{variant}"},
        variant=variant.name,
        family="modadd",
        views=views,
        metadata=meta,
    )
    return time.perf_counter() - t0


STEPS_JS = """async (n) => { const t = [], N = window.tdwReport.epochs.length;
    for (let k = 0; k < n; k++) { const i = Math.floor((k * 7919) % N);
      const t0 = performance.now(); await window.tdwReport.show(i);
      await new Promise(r => requestAnimationFrame(r)); t.push(performance.now() - t0); }
    return t; }"""

# Each view alone: the script time of its update over the same steps (the paint of a step is
# shared by all views and small: the rest of a full step's time).
PER_VIEW_JS = """async (n) => { const r = window.tdwReport, N = r.epochs.length, out = {};
    for (const v of r.views) { const t = [];
      for (let k = 0; k < n; k++) { const i = Math.floor((k * 7919) % N);
        const t0 = performance.now(); await r.update(v, i); t.push(performance.now() - t0); }
      t.sort((a, b) => a - b); out[v.figure] = t[Math.floor(n / 2)]; }
    return out; }"""


def slider_steps(report: Path, n: int = 40, per_view: bool = False) -> list[float] | tuple[list[float], dict]:
    """Step times (ms) of ``n`` slider moves to spread checkpoints, each until every view is
    updated and painted; with ``per_view`` also each view's median step time alone."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(report.as_uri())
        page.evaluate("() => window.tdwReport.ready")
        ms = page.evaluate(STEPS_JS, n)
        views = page.evaluate(PER_VIEW_JS, n) if per_view else None
        browser.close()
    return (ms, views) if per_view else ms


def real_variant(artifacts: Path) -> tuple[Path, Path]:
    """bench_analyzers' output as a results tree: (workdir, variant directory)."""
    from tdw.io.checkpoint import read_metadata

    workdir = artifacts / "views"
    vdir = workdir / "results/modadd/p113_bench"
    (vdir / "artifacts").mkdir(parents=True, exist_ok=True)
    for link, target in ((vdir / "history.h5", artifacts / "history.h5"), (vdir / "artifacts/full", artifacts / "artifacts")):
        if not link.is_symlink():
            link.symlink_to(target.resolve())
    ckpts = sorted((artifacts / "checkpoints").glob("*.safetensors"))
    epochs = [read_metadata(c)["epoch"] for c in ckpts]
    legacy = json.loads((artifacts / "legacy/metadata.json").read_text())
    meta = legacy | {
        "variant": vdir.name,
        "checkpoints": [
            {"index": i, "epoch": e, "file": f"checkpoints/{c.name}"} for i, (e, c) in enumerate(zip(epochs, ckpts, strict=True))
        ],
    }
    (vdir / "metadata.json").write_text(json.dumps(meta))
    return workdir, vdir


def main_real(artifacts: Path, against: Path | None, rounds: int) -> dict:
    from tdw.pages.dashboard import jobs

    workdir, vdir = real_variant(artifacts)
    key = f"modadd/{vdir.name}"
    # Named by the report code too, so a report built by another commit stays beside this one.
    jobs.render_variant_report(workdir, key, "default", {}).unlink()
    t0 = time.perf_counter()
    report = jobs.render_variant_report(workdir, key, "default", {})
    print(
        f"default report over real artifacts ({len(json.loads((vdir / 'metadata.json').read_text())['checkpoints'])} checkpoints)"
    )
    print(f"report build: {time.perf_counter() - t0:.1f} s, size {report.stat().st_size / 1e6:.1f} MB: {report}")
    ms, views = slider_steps(report, per_view=True)
    q = statistics.quantiles(ms, n=10)
    print(f"slider step: median {statistics.median(ms):.0f} ms, p90 {q[-1]:.0f} ms, max {max(ms):.0f} ms over {len(ms)} steps")
    measured = {"report build (s)": round(time.perf_counter() - t0, 1), "report size (MB)": round(report.stat().st_size / 1e6, 1)}
    measured |= {"slider step, median (ms)": round(statistics.median(ms)), "slider step, p90 (ms)": round(q[-1])}
    measured |= {f"script time per step, {name} (ms)": round(t, 1) for name, t in views.items()}
    for name, t in sorted(views.items(), key=lambda kv: -kv[1]):
        print(f"  {name:28s} {t:6.1f} ms (median script time of its update)")
    if against:
        # Side by side on a noisy machine: alternate the two reports, same steps, same browser build.
        steps = {against: [], report: []}
        for _ in range(rounds):
            for path in steps:
                steps[path] += slider_steps(path)
        for path, t in steps.items():
            q = statistics.quantiles(t, n=10)
            print(f"{path.name}: median {statistics.median(t):.0f} ms, p90 {q[-1]:.0f} ms, max {max(t):.0f} ms ({len(t)} steps)")
        ratio = statistics.median(steps[report]) / statistics.median(steps[against])
        print(f"median step, this report / {against.name}: {ratio:.2f}")
        measured[f"median step, this report / {against.name}"] = round(ratio, 2)
    return measured


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "bench/out/views"))
    ap.add_argument("--dashboard", action="store_true")
    ap.add_argument("--artifacts", type=Path, help="bench_analyzers.py's output: time the default report over real artifacts")
    ap.add_argument("--against", type=Path, help="with --artifacts: a report built by another commit, timed alternately")
    ap.add_argument("--rounds", type=int, default=3, help="with --against: alternations of the two reports")
    add_json_arg(ap, "views_synthetic")
    args = ap.parse_args()
    if args.artifacts:
        measured = main_real(args.artifacts, args.against, args.rounds)
        if args.json:
            notes = "The default report of modadd built from bench_analyzers.py's artifacts, timed in headless Chromium."
            write_result(args.json, "The full view set on real artifacts", *figure_rows(measured), notes)
        return
    out = Path(args.out)
    t0 = time.perf_counter()
    variant = make_variant(out / "results/modadd", p=113, n_checkpoints=400, n_epochs=20000, key=(4, 14, 35, 41, 42, 52))
    print(f"synthetic variant (p=113, 400 checkpoints, 20000 epochs): {time.perf_counter() - t0:.1f} s")
    # The synthetic variant has the history and the embedding_frequencies artifact: its two views.
    figures = available_figures(variant, load_family("modadd", str(ROOT / "families")).spec, "full")
    figures["embedding_frequencies"]["params"]["colorscale"] = "Magma"  # the visual change
    seconds = rerender(variant, figures)
    report = variant / "reports/default.html"
    print(f"re-render every figure (html+png+svg) and the report: {seconds:.1f} s")
    print(f"report size: {report.stat().st_size / 1e6:.2f} MB")
    ms = slider_steps(report)
    print(f"slider step: median {statistics.median(ms):.0f} ms, max {max(ms):.0f} ms over {len(ms)} steps")
    measured = {
        "re-render every figure and the report (s)": round(seconds, 1),
        "report size (MB)": round(report.stat().st_size / 1e6, 2),
    }
    measured |= {"slider step, median (ms)": round(statistics.median(ms)), "slider step, max (ms)": round(max(ms))}
    if args.dashboard:
        from dashboard_timing import time_to_views

        measured["dashboard: show to every view drawn (s)"] = round(time_to_views(out / "results"), 2)
        print(
            f"dashboard shows the views: {measured['dashboard: show to every view drawn (s)']:.2f} s (click 'show' to every view drawn)"
        )
    if args.json:
        notes = "A synthetic p = 113 variant with 400 checkpoints and 20,000 epochs of loss history: its two views."
        write_result(args.json, "Views on a 400-checkpoint variant (two figures)", *figure_rows(measured), notes)


if __name__ == "__main__":
    main()
