"""Susceptibilities over training: a component x epoch heat map of each component's
susceptibility to the probe rows' mean loss (a diverging scale centred on 0), and beside it
the per-row susceptibilities of the checkpoint shown, one row of the map per component."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tdw.figures import size_params
from tdw.figures.epochs import Frames, add_epoch_indicator, rounded
from tdw.params import Param

PARAMS = (
    Param("colorscale", str, "RdBu_r", "diverging Plotly colour scale (0 at its centre)"),
    Param("max_frames", int, 40, "checkpoints with their own per-row frame (evenly spaced)"),
    *size_params(1100, 480),
)


def _names(art: dict) -> list[str]:
    return [c.decode() if isinstance(c, bytes) else str(c) for c in art["component"]]


def _limit(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``susceptibilities`` artifact (epoch, component, probe_row; susceptibility
    [epoch, component], susceptibility_row [epoch, component, probe_row])."""
    art = data["artifact"]
    epochs, names = np.asarray(art["epoch"]), _names(art)
    z = np.asarray(art["susceptibility"], dtype=float).T  # [component, epoch]
    rows = np.asarray(art["susceptibility_row"], dtype=float)
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.55, 0.45],
        horizontal_spacing=0.12,
        subplot_titles=("χ of the probe's mean loss", "χ per probe row (this checkpoint)"),
    )
    lim = _limit(z)
    fig.add_trace(
        go.Heatmap(
            x=epochs,
            y=names,
            z=z,
            zmin=-lim,
            zmax=lim,
            colorscale=params["colorscale"],
            colorbar={"x": 0.47, "len": 0.9, "title": "χ"},
            hovertemplate="%{y}<br>epoch %{x}<br>χ %{z:.3g}<extra></extra>",
            name="susceptibility",
        ),
        row=1,
        col=1,
    )
    row_lim = _limit(rows)
    fig.add_trace(
        go.Heatmap(
            x=np.asarray(art["probe_row"]).astype(str),
            y=names,
            z=rows[-1],
            zmin=-row_lim,
            zmax=row_lim,
            colorscale=params["colorscale"],
            colorbar={"x": 1.02, "len": 0.9, "title": "χ(x)"},
            hovertemplate="%{y}<br>pair %{x}<br>χ %{z:.3g}<extra></extra>",
            name="per row",
        ),
        row=1,
        col=2,
    )
    add_epoch_indicator(fig, int(epochs[-1]), xref="x", yref="y domain")
    fig.update_xaxes(title_text="epoch", row=1, col=1)
    fig.update_xaxes(title_text="probe row (pair index a·p + b)", showticklabels=False, row=1, col=2)
    fig.update_layout(title=title, width=params["width"], height=params["height"])
    return fig


def frames(data: dict, params: dict) -> Frames:
    """Per checkpoint: the per-row map of that checkpoint (trace 1)."""
    art = data["artifact"]
    epochs = np.asarray(art["epoch"])
    pick = np.unique(np.linspace(0, len(epochs) - 1, min(params["max_frames"], len(epochs))).round().astype(int))
    rows = np.asarray(art["susceptibility_row"], dtype=float)
    return Frames(epochs=[int(epochs[i]) for i in pick], traces=[1], updates=[{"z": [rounded(rows[i])]} for i in pick])
