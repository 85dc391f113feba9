"""Attention from the `=` query: the mean pattern per head and source position at the
selected checkpoint (through frames), and attention to position 0 minus position 1 per
head over training (a head that attends to one input only sits at +-1)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tdw.figures import size_params
from tdw.figures.epochs import Frames, add_epoch_indicator, epoch_range, rounded
from tdw.params import Param

PARAMS = (
    Param("colorscale", str, "Blues", "Plotly colour scale of the mean pattern"),
    *size_params(900, 400),
)

POSITIONS = ("a", "b", "=")
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``attention`` artifact (epoch, mean_pattern [epoch, head, key_pos],
    pos0_minus_pos1 [epoch, head], dominant_frequency [epoch, head])."""
    art = data["artifact"]
    epochs, pattern = art["epoch"], art["mean_pattern"]
    heads = [f"head {h}" for h in range(pattern.shape[1])]
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.35, 0.65],
        horizontal_spacing=0.24,
        subplot_titles=("mean pattern from `=`", "pos 0 - pos 1 over training"),
    )
    fig.add_trace(
        go.Heatmap(
            z=pattern[-1],
            x=list(POSITIONS[: pattern.shape[2]]),
            y=heads,
            zmin=0,
            zmax=1,
            colorscale=params["colorscale"],
            colorbar={"title": "attn", "x": 0.29, "thickness": 10, "len": 0.8},
            hovertemplate="%{y} -> %{x}<br>attention %{z:.3f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    for h, name in enumerate(heads):
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=art["pos0_minus_pos1"][:, h],
                name=name,
                mode="lines+markers" if len(epochs) < 30 else "lines",
                marker={"size": 4},
                line={"color": PALETTE[h % len(PALETTE)]},
                hovertemplate=f"{name}<br>epoch %{{x}}<br>pos0 - pos1 %{{y:.3f}}<extra></extra>",
            ),
            row=1,
            col=2,
        )
    add_epoch_indicator(fig, int(epochs[-1]), xref="x2", yref="y2 domain")
    fig.update_layout(
        title=title,
        width=params["width"],
        height=params["height"],
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.1, "xanchor": "right", "x": 1.0, "font": {"size": 10}},
        margin={"t": 90},
    )
    fig.update_xaxes(title_text="source position", row=1, col=1)
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    fig.update_xaxes(title_text="epoch", range=epoch_range(epochs), row=1, col=2)
    fig.update_yaxes(title_text="attention to a - to b", range=[-1.05, 1.05], row=1, col=2)
    return fig


def frames(data: dict, params: dict) -> Frames:
    """The mean pattern (trace 0) at every checkpoint (heads x 3 values each)."""
    art = data["artifact"]
    updates = [{"z": [rounded(np.asarray(m), 4)]} for m in art["mean_pattern"]]
    return Frames(epochs=[int(e) for e in art["epoch"]], traces=[0], updates=updates)
