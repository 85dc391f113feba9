"""Rendering figures from artifacts: HTML (Plotly), and PNG and SVG through one kaleido
browser session per job (a job may export the images of many figures)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import plotly.graph_objects as go

from tdw.figures import params as declared_params
from tdw.figures.epochs import with_slider
from tdw.figures.views import checkpoint_epochs, load_view
from tdw.io.atomic import atomic_path
from tdw.io.provenance import provenance
from tdw.params import resolve_params


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
        # write_images falls back to 700 x 500 unless given a size: pass each layout's own.
        pio.write_images(
            fig=figs,
            file=[str(t) for t in tmps],
            format=[p.suffix[1:] for p in paths],
            width=[f.layout.width for f in figs],
            height=[f.layout.height for f in figs],
        )
        for tmp, path in zip(tmps, paths, strict=True):
            os.replace(tmp, path)
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


def write_html(fig: go.Figure, path: Path, provenance: dict | None = None) -> None:
    """A self-contained figure page; provenance goes into a <meta> element."""
    import html
    import json

    text = fig.to_html(include_plotlyjs=True, full_html=True)
    if provenance is not None:
        meta = f'<meta name="tdw-provenance" content="{html.escape(json.dumps(provenance))}">'
        text = text.replace("<head>", "<head>" + meta, 1)
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def build_figure(name: str, source: str, inputs: dict[str, Path], params: dict, title: str):
    """The resolved visual parameters and the view of figure ``name`` from its inputs."""
    params = resolve_params(declared_params(name), params, f"figure {name!r}")
    return params, load_view(name, source, inputs, params, title)


def render_figure(name: str, source: str, inputs: dict[str, Path], params: dict, title: str, outputs: dict[str, Path]) -> float:
    """Build figure ``name`` and write the outputs given (keys: html, png, svg).
    ``params``: overrides of the figure's declared visual parameters (checked; the page's
    provenance records all of them)."""
    t0 = time.perf_counter()
    params, view = build_figure(name, source, inputs, params, title)
    fig = view.figure
    if "html" in outputs:
        # The standalone page gets its own checkpoint slider over the same frames.
        epochs = checkpoint_epochs(inputs["metadata"]) if "metadata" in inputs else (view.frames.epochs if view.frames else [])
        page = with_slider(fig, view.frames, epochs) if epochs else fig
        write_html(
            page,
            Path(outputs["html"]),
            provenance() | {"figure": name, "params": params, "inputs": {k: str(v) for k, v in inputs.items()}},
        )
    static = [Path(outputs[k]) for k in ("png", "svg") if k in outputs]
    if static:
        export_static([fig] * len(static), static)
    return time.perf_counter() - t0


def render_static(jobs: list[tuple[str, str, dict[str, Path], dict, str, dict[str, Path]]]) -> float:
    """PNG and SVG of many figures through one browser session: ``jobs`` are (name, source,
    inputs, params, title, outputs {png, svg}), as ``render_figure`` takes them."""
    t0 = time.perf_counter()
    figs, paths = [], []
    for name, source, inputs, params, title, outputs in jobs:
        fig = build_figure(name, source, inputs, params, title)[1].figure
        for key in ("png", "svg"):
            if key in outputs:
                figs.append(fig)
                paths.append(Path(outputs[key]))
    if figs:
        export_static(figs, paths)
    return time.perf_counter() - t0
