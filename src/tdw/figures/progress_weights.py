"""Progress measures of the weights (Nanda et al. 2023, fig. 7): the Gini coefficient of
the Fourier component norms of W_E and of W_L = W_out W_U, and the total sum of squared
weights, over training."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tdw.figures import size_params
from tdw.figures.epochs import epoch_columns
from tdw.params import Param

PARAMS = (
    Param("embed_color", str, "#1f77b4", "colour of the W_E Gini curve"),
    Param("unembed_color", str, "#ff7f0e", "colour of the W_L Gini curve"),
    Param("norm_color", str, "#333333", "colour of the weight-norm curve"),
    *size_params(900, 400),
)


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``progress_measures`` artifact (epoch, gini_embed, gini_unembed,
    total_sum_sq_weights)."""
    art = data["artifact"]
    epochs = art["epoch"]
    mode = "lines+markers" if len(epochs) < 30 else "lines"
    fig = make_subplots(
        rows=1, cols=2, horizontal_spacing=0.14, subplot_titles=("Gini of Fourier norms", "sum of squared weights")
    )
    for key, name, color in (("gini_embed", "W_E", params["embed_color"]), ("gini_unembed", "W_L", params["unembed_color"])):
        fig.add_trace(
            go.Scatter(x=epochs, y=art[key], name=name, mode=mode, marker={"size": 4}, line={"color": color}), row=1, col=1
        )
    fig.add_trace(
        go.Scatter(
            x=epochs,
            y=art["total_sum_sq_weights"],
            name="total",
            mode=mode,
            marker={"size": 4},
            line={"color": params["norm_color"]},
            showlegend=False,
        ),
        row=1,
        col=2,
    )
    epoch_columns(fig, epochs)
    fig.update_yaxes(title_text="Gini coefficient", range=[0, 1], row=1, col=1)
    fig.update_yaxes(title_text="sum of squares", row=1, col=2)
    fig.update_layout(
        title=title,
        width=params["width"],
        height=params["height"],
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.08, "xanchor": "left", "x": 0.0, "font": {"size": 11}},
        margin={"t": 90},
    )
    return fig
