"""Train and test loss over epochs (log scale), with checkpoint epochs marked."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: ``history`` (train_loss, train_epoch, test_loss, test_epoch) and
    ``checkpoint_epochs``."""
    h = data["history"]
    fig = go.Figure()
    fig.add_trace(
        go.Scattergl(x=h["train_epoch"], y=h["train_loss"], name="train", mode="lines", line={"color": params["train_color"]})
    )
    fig.add_trace(
        go.Scattergl(x=h["test_epoch"], y=h["test_loss"], name="test", mode="lines", line={"color": params["test_color"]})
    )
    ckpt = np.asarray(data["checkpoint_epochs"])
    index = {int(e): i for i, e in enumerate(h["train_epoch"])}
    on_curve = [e for e in ckpt if int(e) in index]
    fig.add_trace(
        go.Scatter(
            x=on_curve,
            y=[h["train_loss"][index[int(e)]] for e in on_curve],
            customdata=[list(ckpt).index(e) for e in on_curve],
            mode="markers",
            name="checkpoints",
            marker={"size": 4, "color": params["train_color"]},
            hovertemplate="epoch %{x}<br>checkpoint %{customdata}<br>train %{y:.3e}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        width=params["width"],
        height=params["height"],
        xaxis_title="epoch",
        yaxis_title="cross-entropy loss",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0},
        margin={"t": 70},
    )
    fig.update_yaxes(type="log" if params["log_y"] else "linear", exponentformat="power")
    return fig
