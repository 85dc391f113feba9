"""Embedding norm per Fourier frequency: a heat map over training, and the profile at any
checkpoint through a slider (it starts at the final checkpoint)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots


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
            colorbar={"title": "norm", "len": 0.5, "y": 0.78},
            hovertemplate="epoch %{x}<br>frequency %{y}<br>norm %{z:.3f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    last = len(epochs) - 1
    colors = lambda i: [  # noqa: E731
        params["line_color"] if n < params["highlight_threshold"] * norms[i].max() else "#e67e22" for n in norms[i]
    ]
    fig.add_trace(
        go.Bar(x=freqs, y=norms[last], marker={"color": colors(last)}, hovertemplate="k = %{x}<br>norm %{y:.3f}<extra></extra>"),
        row=2,
        col=1,
    )
    steps = [
        {
            "label": str(int(e)),
            "method": "restyle",
            "args": [{"y": [norms.T, norms[i]], "marker.color": [None, colors(i)]}, [0, 1]],
        }
        for i, e in enumerate(epochs)
    ]
    fig.update_layout(
        title=title,
        width=params["width"],
        height=params["height"],
        showlegend=False,
        sliders=[{"active": last, "steps": steps, "currentvalue": {"prefix": "epoch "}, "pad": {"t": 40}}],
    )
    fig.update_xaxes(title_text="epoch", row=1, col=1)
    fig.update_yaxes(title_text="frequency k", row=1, col=1)
    fig.update_xaxes(title_text="frequency k", row=2, col=1)
    fig.update_yaxes(title_text="norm", row=2, col=1, range=[0, float(np.max(norms)) * 1.05])
    return fig
