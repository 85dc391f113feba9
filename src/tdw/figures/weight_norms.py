"""Weight norms over training: the Frobenius norm of every parameter (log scale, one line
each, legend beside the plot) and the total sum of squared weights."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tdw.figures import size_params
from tdw.figures.dimensionality import text
from tdw.figures.epochs import epoch_columns
from tdw.params import Param

PARAMS = (
    Param("log_y", bool, True, "log-scale norm axis"),
    *size_params(950, 420),
)

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``weight_norms`` artifact (epoch, parameter, norm [epoch, parameter], total_sum_sq [epoch])."""
    art = data["artifact"]
    epochs, names = art["epoch"], text(art["parameter"])
    mode = "lines+markers" if len(epochs) < 30 else "lines"
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.6, 0.4],
        horizontal_spacing=0.12,
        subplot_titles=("norm per parameter", "total sum of squared weights"),
    )
    for i, name in enumerate(names):
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=art["norm"][:, i],
                name=name,
                mode=mode,
                marker={"size": 3},
                line={"color": PALETTE[i % len(PALETTE)], "width": 1.5},
                hovertemplate=f"{name}<br>epoch %{{x}}<br>norm %{{y:.3f}}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    fig.add_trace(
        go.Scatter(x=epochs, y=art["total_sum_sq"], name="total", mode=mode, line={"color": "#333"}, showlegend=False),
        row=1,
        col=2,
    )
    epoch_columns(fig, epochs)
    fig.update_yaxes(title_text="Frobenius norm", type="log" if params["log_y"] else "linear", row=1, col=1)
    fig.update_yaxes(title_text="sum of squares", row=1, col=2)
    fig.update_layout(
        title=title,
        width=params["width"],
        height=params["height"],
        legend={"x": 1.02, "xanchor": "left", "y": 1.0, "font": {"size": 9}},
    )
    return fig
