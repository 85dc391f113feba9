"""Embedding norm per Fourier frequency: a heat map over training (with the epoch
indicator) and the profile at the selected checkpoint (final checkpoint by default)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tdw.figures import size_params
from tdw.figures.epochs import Frames, add_epoch_indicator, rounded
from tdw.params import Param

PARAMS = (
    Param("colorscale", str, "Viridis", "Plotly colour scale of the heat map"),
    Param("line_color", str, "#2c3e50", "colour of the frequency bars"),
    *size_params(900, 650),
    Param("highlight_threshold", float, 0.3, "bars at least this share of the largest are highlighted"),
)

HIGHLIGHT = "#e67e22"


def _colors(norms: np.ndarray, params: dict) -> list[str]:
    """Bars at or above ``highlight_threshold`` x the largest norm are highlighted."""
    strong = norms >= params["highlight_threshold"] * norms.max()
    return [HIGHLIGHT if s else params["line_color"] for s in strong]


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``embedding_frequencies`` artifact (epoch, frequency, frequency_norm)."""
    art = data["artifact"]
    epochs, freqs, norms = art["epoch"], art["frequency"], art["frequency_norm"]  # norms: [epoch, frequency]
    fig = make_subplots(
        rows=2,
        cols=1,
        row_heights=[0.55, 0.45],
        vertical_spacing=0.22,
        subplot_titles=("norm per frequency over training", "at the selected checkpoint"),
    )
    fig.add_trace(
        go.Heatmap(
            x=epochs,
            y=freqs,
            z=norms.T,
            colorscale=params["colorscale"],
            colorbar={"title": "norm", "len": 0.5, "y": 0.78, "thickness": 12},
            hovertemplate="epoch %{x}<br>frequency %{y}<br>norm %{z:.3f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            x=freqs,
            y=norms[-1],
            marker={"color": _colors(norms[-1], params)},
            hovertemplate="k = %{x}<br>norm %{y:.3f}<extra></extra>",
        ),
        row=2,
        col=1,
    )
    add_epoch_indicator(fig, int(epochs[-1]), color="#fff", xref="x", yref="y domain")
    fig.update_layout(title=title, width=params["width"], height=params["height"], showlegend=False)
    # A fixed epoch range lets Plotly move the indicator without recomputing autorange.
    pad = 0.5 * (epochs[-1] - epochs[0]) / max(len(epochs) - 1, 1)
    fig.update_xaxes(title_text="epoch", row=1, col=1, range=[float(epochs[0] - pad), float(epochs[-1] + pad)])
    fig.update_yaxes(title_text="frequency k", row=1, col=1)
    fig.update_xaxes(title_text="frequency k", row=2, col=1)
    fig.update_yaxes(title_text="norm", row=2, col=1, range=[0, float(np.max(norms)) * 1.05])
    return fig


def frames(data: dict, params: dict) -> Frames:
    """The bar profile (trace 1) and its highlight colours at each checkpoint."""
    art = data["artifact"]
    norms = art["frequency_norm"]
    updates = [{"y": [rounded(row)], "marker.color": [_colors(row, params)]} for row in norms]
    return Frames(epochs=[int(e) for e in art["epoch"]], traces=[1], updates=updates)
