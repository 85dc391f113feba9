"""Views benchmark (issue 4): a p = 113 variant with 400 checkpoints (synthetic history and
embeddings, the real embedding_frequencies analyzer). Measures re-rendering every figure
(HTML + PNG + SVG) and the report after a visual change, the report's size, the slider
step in headless Chromium, and (with --dashboard) the dashboard's time to show the views.

    python bench/bench_views.py [--out bench/out/views] [--dashboard]
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

from tdw.config import load_family  # noqa: E402
from tdw.render import render_figure  # noqa: E402
from tdw.report import write_report  # noqa: E402
from tdw.synthetic import make_variant  # noqa: E402


def inputs(variant: Path, source: str) -> dict:
    if source == "history":
        return {"history": variant / "history.h5", "metadata": variant / "metadata.json"}
    return {"artifact": variant / "artifacts/full" / f"{source}.h5"}


def rerender(variant: Path, figures: dict) -> float:
    """Every figure (HTML, PNG, SVG) and the default report, as the render/report jobs do."""
    t0 = time.perf_counter()
    for name, fig in figures.items():
        outs = {ext: variant / "figures" / f"{name}.{ext}" for ext in ("html", "png", "svg")}
        render_figure(name, fig["source"], inputs(variant, fig["source"]), fig["params"], name, outs)
    views = [
        {"figure": n, "title": n, "source": f["source"], "params": f["params"], "inputs": inputs(variant, f["source"])}
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


def slider_steps(report: Path, n: int = 40) -> list[float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(report.as_uri())
        page.evaluate("() => window.tdwReport.ready")
        ms = page.evaluate(
            """async (n) => { const t = [], N = window.tdwReport.epochs.length;
            for (let k = 0; k < n; k++) { const i = Math.floor((k * 7919) % N);
              const t0 = performance.now(); await window.tdwReport.show(i);
              await new Promise(r => requestAnimationFrame(r)); t.push(performance.now() - t0); }
            return t; }""",
            n,
        )
        browser.close()
    return ms


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "bench/out/views"))
    ap.add_argument("--dashboard", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    t0 = time.perf_counter()
    variant = make_variant(out / "results/modadd", p=113, n_checkpoints=400, n_epochs=20000, key=(4, 14, 35, 41, 42, 52))
    print(f"synthetic variant (p=113, 400 checkpoints, 20000 epochs): {time.perf_counter() - t0:.1f} s")
    figures = {
        n: {"source": f["source"], "params": dict(f["params"])}
        for n, f in load_family("modadd", str(ROOT / "families")).spec["figures"].items()
    }
    figures["embedding_frequencies"]["params"]["colorscale"] = "Magma"  # the visual change
    seconds = rerender(variant, figures)
    report = variant / "reports/default.html"
    print(f"re-render every figure (html+png+svg) and the report: {seconds:.1f} s")
    print(f"report size: {report.stat().st_size / 1e6:.2f} MB")
    ms = slider_steps(report)
    print(f"slider step: median {statistics.median(ms):.0f} ms, max {max(ms):.0f} ms over {len(ms)} steps")
    if args.dashboard:
        from dashboard_timing import time_to_views

        print(
            f"dashboard shows the views: {time_to_views(out / 'results'):.2f} s (click 'show' to every view drawn, report rendered fresh)"
        )


if __name__ == "__main__":
    main()
