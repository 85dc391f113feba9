"""Train and test loss over epochs (log scale), checkpoints marked, and a vertical line at
the selected checkpoint's epoch. Tooltips give the epoch <-> checkpoint-index mapping."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from tdw.figures import size_params
from tdw.figures.epochs import add_epoch_indicator, loss_layout, nearest_index
from tdw.params import Param

PARAMS = (
    Param("train_color", str, "#1f77b4", "colour of the train loss"),
    Param("test_color", str, "#d62728", "colour of the test loss"),
    *size_params(900, 450),
    Param("log_y", bool, True, "log-scale loss axis"),
)

HOVER = (
    "epoch %{x}<br>%{fullData.name} loss %{y:.3e}<br>nearest checkpoint #%{customdata[0]} (epoch %{customdata[1]})<extra></extra>"
)


# SVG lines rather than WebGL: hover labels work everywhere (also without WebGL). The report
# moves its own line over the figure for the epoch indicator, so the curves are not redrawn.
def _curve(epochs: np.ndarray, loss: np.ndarray, ckpt: np.ndarray, name: str, color: str) -> go.Scatter:
    nearest = nearest_index(ckpt, epochs)  # [epoch]
    return go.Scatter(
        x=epochs,
        y=loss,
        name=name,
        mode="lines",
        line={"color": color},
        customdata=np.stack([nearest, ckpt[nearest]], axis=1),
        hovertemplate=HOVER,
    )


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: ``history`` (train_loss, train_epoch, test_loss, test_epoch) and
    ``checkpoint_epochs``."""
    h = data["history"]
    ckpt = np.asarray(data["checkpoint_epochs"], dtype=np.int64)
    fig = go.Figure()
    fig.add_trace(_curve(h["train_epoch"], h["train_loss"], ckpt, "train", params["train_color"]))
    fig.add_trace(_curve(h["test_epoch"], h["test_loss"], ckpt, "test", params["test_color"]))
    # Checkpoint markers sit on the train curve, at the loss of the nearest recorded epoch.
    on_train = nearest_index(h["train_epoch"], ckpt)
    fig.add_trace(
        go.Scatter(
            x=ckpt,
            y=h["train_loss"][on_train],
            customdata=np.arange(len(ckpt)),
            mode="markers",
            name="checkpoints",
            marker={"size": 4, "color": params["train_color"], "symbol": "line-ns-open"},
            hovertemplate="checkpoint #%{customdata}<br>epoch %{x}<br>train loss %{y:.3e}<extra></extra>",
        )
    )
    add_epoch_indicator(fig, int(ckpt[-1]))
    last = max(int(h["train_epoch"][-1]), int(h["test_epoch"][-1]), int(ckpt[-1]))
    return loss_layout(fig, title, params, [-0.01 * last, 1.01 * last])
