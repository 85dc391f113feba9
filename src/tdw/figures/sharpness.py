"""Sharpness over training: the top Hessian eigenvalues (one line each, the largest first), the
Hutchinson trace with a band of ± two standard errors, and the ratio of the top eigenvalue to
the optimizer's edge-of-stability threshold where it is defined (for AdamW runs it is not:
the panel says why)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tdw.figures import size_params
from tdw.figures.epochs import epoch_columns
from tdw.params import Param

PARAMS = (
    Param("color", str, "#1f77b4", "colour of the top eigenvalue and the trace"),
    Param("log_y", bool, True, "log-scale eigenvalue and trace axes (non-positive values are not drawn)"),
    *size_params(1150, 420),
)

UNDEFINED = (
    "undefined: AdamW's threshold bounds the<br>preconditioned Hessian, whose optimizer<br>state the checkpoints do not store"
)


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``sharpness`` artifact (epoch, eigenvalues [epoch, eigen], trace, trace_stderr,
    eos_ratio, eos_threshold [epoch])."""
    art = data["artifact"]
    epochs, values = art["epoch"], np.asarray(art["eigenvalues"], dtype=np.float64)
    mode = "lines+markers" if len(epochs) < 30 else "lines"
    fig = make_subplots(
        rows=1,
        cols=3,
        horizontal_spacing=0.08,
        subplot_titles=("top Hessian eigenvalues", "Hessian trace", "λ_max / EoS threshold"),
    )
    for i in range(values.shape[1]):
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=values[:, i],
                mode=mode,
                name=f"λ{i + 1}",
                line={"color": params["color"] if i == 0 else None, "width": 2 if i == 0 else 1},
                hovertemplate=f"λ{i + 1}<br>epoch %{{x}}<br>%{{y:.4g}}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    trace, band = art["trace"], 2 * np.nan_to_num(art["trace_stderr"])
    fig.add_trace(
        go.Scatter(
            x=np.concatenate([epochs, epochs[::-1]]),
            y=np.concatenate([trace + band, (trace - band)[::-1]]),
            fill="toself",
            fillcolor=params["color"],
            opacity=0.2,
            line={"width": 0},
            name="± 2 s.e.",
            hoverinfo="skip",
        ),
        row=1,
        col=2,
    )
    fig.add_trace(go.Scatter(x=epochs, y=trace, mode=mode, name="trace", line={"color": params["color"]}), row=1, col=2)
    ratio = np.asarray(art["eos_ratio"], dtype=np.float64)
    fig.add_trace(go.Scatter(x=epochs, y=ratio, mode=mode, name="λ_max / threshold", line={"color": "#333"}), row=1, col=3)
    if np.isfinite(ratio).any():
        fig.add_hline(y=1.0, line={"dash": "dot", "color": "#d62728"}, row=1, col=3)
    else:
        fig.add_annotation(text=UNDEFINED, x=0.5, y=0.5, xref="x3 domain", yref="y3 domain", showarrow=False, font={"size": 11})
    epoch_columns(fig, epochs, cols=3)
    scale = "log" if params["log_y"] else "linear"
    fig.update_yaxes(title_text="eigenvalue", type=scale, row=1, col=1)
    fig.update_yaxes(title_text="tr H", type=scale, row=1, col=2)
    fig.update_yaxes(title_text="ratio", row=1, col=3)
    fig.update_layout(
        title=title,
        width=params["width"],
        height=params["height"],
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.08, "xanchor": "right", "x": 1.0, "font": {"size": 11}},
        margin={"t": 90},
    )
    return fig
