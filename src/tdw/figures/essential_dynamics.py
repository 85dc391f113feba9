"""Essential dynamics (the ``essential_dynamics`` artifact): the checkpoints' trajectory in
two principal components of the outputs (points coloured by epoch, the grokking phase
boundaries marked where the trajectory passes them, the selected checkpoint ringed and moved
by the slider) beside the explained variance ratio of each component."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tdw.figures import size_params
from tdw.figures.dimensionality import text
from tdw.figures.epochs import Frames, frame_indices
from tdw.figures.transitions import PHASE_COLORS
from tdw.params import Param

PARAMS = (
    Param("x_component", int, 1, "principal component on the horizontal axis (1-based)"),
    Param("y_component", int, 2, "principal component on the vertical axis (1-based)"),
    Param("colorscale", str, "Viridis", "colour scale of the epochs"),
    Param("max_frames", int, 200, "checkpoints the slider can select (evenly spaced)"),
    *size_params(1000, 480),
)

SELECTED = 1  # trace index of the ringed selected checkpoint


def _axes(art: dict, params: dict) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The x and y coordinates [epoch] and their 0-based components (a missing component: zeros)."""
    coords = art["coordinates"]
    i, j = int(params["x_component"]) - 1, int(params["y_component"]) - 1

    def column(c: int) -> np.ndarray:
        return coords[:, c] if 0 <= c < coords.shape[1] else np.zeros(len(coords))

    return column(i), column(j), i, j


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``essential_dynamics`` artifact (epoch, coordinates [epoch, component],
    explained_variance_ratio [component], boundary*, boundary_coordinates [boundary, component])."""
    art = data["artifact"]
    epochs, ratio = art["epoch"], art["explained_variance_ratio"]
    x, y, i, j = _axes(art, params)

    def share(c: int) -> str:
        return f"PC{c + 1} ({100 * ratio[c]:.1f} %)" if c < len(ratio) and np.isfinite(ratio[c]) else f"PC{c + 1}"

    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.68, 0.32],
        horizontal_spacing=0.2,
        subplot_titles=("trajectory of the checkpoints", "explained variance ratio"),
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=y,
            mode="lines+markers",
            name="checkpoints",
            line={"color": "#bbb", "width": 1},
            marker={
                "size": 7,
                "color": epochs,
                "colorscale": params["colorscale"],
                "showscale": True,
                "colorbar": {"title": {"text": "epoch"}, "x": 0.56, "len": 0.9, "thickness": 12},
            },
            customdata=epochs,
            hovertemplate="epoch %{customdata}<br>(%{x:.3g}, %{y:.3g})<extra></extra>",
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=x[-1:],
            y=y[-1:],
            mode="markers",
            name="selected checkpoint",
            marker={"size": 16, "color": "rgba(0,0,0,0)", "line": {"color": "#d62728", "width": 2}},
            hoverinfo="skip",
        ),
        row=1,
        col=1,
    )
    at = art["boundary_coordinates"]
    for b, (name, epoch) in enumerate(zip(text(art["boundary"]), art["boundary_epoch"], strict=True)):
        if not np.isfinite(epoch):
            continue
        bx = at[b, i] if i < at.shape[1] else 0.0
        by = at[b, j] if j < at.shape[1] else 0.0
        fig.add_trace(
            go.Scatter(
                x=[bx],
                y=[by],
                mode="markers+text",
                name=f"{name.replace('_', ' ')} (epoch {epoch:.0f})",
                text=[name.replace("_", " ")],
                textposition="top center",
                cliponaxis=False,
                textfont={"size": 10, "color": PHASE_COLORS[b % len(PHASE_COLORS)]},
                marker={"symbol": "x", "size": 11, "color": PHASE_COLORS[b % len(PHASE_COLORS)]},
                hovertemplate=f"{name} at epoch {epoch:.0f}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    fig.add_trace(
        go.Bar(
            x=[f"PC{c}" for c in art["component"]],
            y=ratio,
            marker={"color": "#1f77b4"},
            showlegend=False,
            hovertemplate="%{x}: %{y:.3f}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.update_xaxes(title_text=share(i), row=1, col=1)
    fig.update_yaxes(title_text=share(j), row=1, col=1)
    fig.update_xaxes(title_text="component", row=1, col=2)
    fig.update_yaxes(title_text="share of the variance", range=[0, 1], row=1, col=2)
    fig.update_layout(
        title=title,
        width=params["width"],
        height=params["height"],
        legend={"orientation": "h", "yanchor": "top", "y": -0.15, "xanchor": "left", "x": 0.0, "font": {"size": 10}},
        margin={"b": 90},
    )
    return fig


def frames(data: dict, params: dict) -> Frames:
    """The ringed marker at each checkpoint's point."""
    art = data["artifact"]
    x, y, _, _ = _axes(art, params)
    idx = frame_indices(len(art["epoch"]), int(params["max_frames"]))
    updates = [{"x": [[float(x[e])]], "y": [[float(y[e])]]} for e in idx]
    return Frames(epochs=[int(art["epoch"][e]) for e in idx], traces=[SELECTED], updates=updates)
