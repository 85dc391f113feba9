"""Dimensionality of activations over training: one panel per measure in ``metrics``
(stable rank, participation ratio, effective rank, 90 %-energy rank, nuclear-norm ratio),
one line per hook. Transitions are drawn by the ``transitions`` figure (a figure reads one
artifact)."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tdw.figures import size_params
from tdw.figures.epochs import add_epoch_indicator, epoch_range
from tdw.params import Param

PARAMS = (
    Param("metrics", list[str], ("participation_ratio", "effective_rank"), "measures drawn, one panel each"),
    *size_params(900, 420),
)

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def text(values) -> list[str]:
    """HDF5 byte strings -> str."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``dimensionality`` artifact (epoch, hook, one [epoch, hook] dataset per measure)."""
    art = data["artifact"]
    epochs, hooks, metrics = art["epoch"], text(art["hook"]), list(params["metrics"])
    fig = make_subplots(
        rows=1,
        cols=len(metrics),
        horizontal_spacing=0.1,
        subplot_titles=[m.replace("_", " ") for m in metrics],
    )
    for col, metric in enumerate(metrics, start=1):
        for h, hook in enumerate(hooks):
            fig.add_trace(
                go.Scatter(
                    x=epochs,
                    y=art[metric][:, h],
                    name=hook,
                    legendgroup=hook,
                    showlegend=col == 1,
                    mode="lines+markers" if len(epochs) < 30 else "lines",
                    marker={"size": 4},
                    line={"color": PALETTE[h % len(PALETTE)]},
                    hovertemplate=f"{hook}<br>epoch %{{x}}<br>{metric} %{{y:.2f}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
        axis = "" if col == 1 else str(col)
        add_epoch_indicator(fig, int(epochs[-1]), xref=f"x{axis}", yref=f"y{axis} domain")
        fig.update_xaxes(title_text="epoch", range=epoch_range(epochs), row=1, col=col)
    fig.update_yaxes(title_text="dimensions", row=1, col=1)
    fig.update_layout(
        title=title,
        width=params["width"],
        height=params["height"],
        # Hook names below the panels: long labels stay out of the plot areas.
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "xanchor": "left", "x": 0.0, "font": {"size": 10}},
        margin={"b": 110},
    )
    return fig
