"""Rendering figures from artifacts: HTML (Plotly) plus PNG and SVG through one kaleido
browser session per job."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import plotly.graph_objects as go

from tdw.atomic import atomic_path
from tdw.figures import builder


def figure_data(source: str, inputs: dict[str, Path]) -> dict:
    """Load what a figure draws: ``history`` plus checkpoint epochs, or an analyzer artifact."""
    import json

    from tdw.analysis import load_artifact
    from tdw.history import read_history

    if source == "history":
        meta = json.loads(Path(inputs["metadata"]).read_text())
        return {"history": read_history(inputs["history"]), "checkpoint_epochs": [c["epoch"] for c in meta["checkpoints"]]}
    return {"artifact": load_artifact(inputs["artifact"])}


def find_chromium() -> str | None:
    """Debian's chromium for kaleido (kaleido never downloads a browser here)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def export_static(figs: list[go.Figure], paths: list[Path]) -> None:
    """PNG/SVG for many figures through one browser session, each written atomically."""
    import plotly.io as pio

    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError("static export needs Chromium: apt-get install chromium (see README)")
    os.environ.setdefault("BROWSER_PATH", chromium)
    tmps = [p.with_name(f".tmp-{p.name}") for p in paths]
    try:
        pio.write_images(fig=figs, file=[str(t) for t in tmps], format=[p.suffix[1:] for p in paths])
        for tmp, path in zip(tmps, paths, strict=True):
            os.replace(tmp, path)
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


def write_html(fig: go.Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.write_html(str(tmp), include_plotlyjs=True, full_html=True)


def render_figure(name: str, source: str, inputs: dict[str, Path], params: dict, title: str, outputs: dict[str, Path]) -> float:
    """Build figure ``name`` and write the outputs given (keys: html, png, svg)."""
    t0 = time.perf_counter()
    fig = builder(name)(figure_data(source, inputs), params, title)
    if "html" in outputs:
        write_html(fig, Path(outputs["html"]))
    static = [Path(outputs[k]) for k in ("png", "svg") if k in outputs]
    if static:
        export_static([fig] * len(static), static)
    return time.perf_counter() - t0
