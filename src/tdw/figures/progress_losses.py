"""Progress measures as losses (Nanda et al. 2023, fig. 7): train and test loss with the
restricted loss (only the key frequencies' directions kept, all grid rows) and the excluded
loss (the key directions removed, train rows) per checkpoint, log scale."""

from __future__ import annotations

import plotly.graph_objects as go

from tdw.figures import size_params
from tdw.figures.epochs import add_epoch_indicator, epoch_range, loss_layout
from tdw.params import Param

PARAMS = (
    Param("train_color", str, "#1f77b4", "colour of the train loss"),
    Param("test_color", str, "#d62728", "colour of the test loss"),
    Param("restricted_color", str, "#2ca02c", "colour of the restricted loss"),
    Param("excluded_color", str, "#9467bd", "colour of the excluded loss"),
    *size_params(900, 450),
    Param("log_y", bool, True, "log-scale loss axis"),
)

CURVES = (
    ("train_loss", "train", "train_color", "solid"),
    ("test_loss", "test", "test_color", "solid"),
    ("restricted_loss", "restricted", "restricted_color", "dash"),
    ("excluded_loss_all", "excluded", "excluded_color", "dot"),
)


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``progress_measures`` artifact (epoch, train_loss, test_loss,
    restricted_loss, excluded_loss_all)."""
    art = data["artifact"]
    epochs = art["epoch"]
    fig = go.Figure()
    for key, name, color, dash in CURVES:
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=art[key],
                name=name,
                mode="lines+markers" if len(epochs) < 30 else "lines",
                marker={"size": 4},
                line={"color": params[color], "dash": dash},
                hovertemplate=f"epoch %{{x}}<br>{name} loss %{{y:.3e}}<extra></extra>",
            )
        )
    add_epoch_indicator(fig, int(epochs[-1]))
    return loss_layout(fig, title, params, epoch_range(epochs))
