"""Ablation effects: the loss change when each frequency cluster, top neuron or head is
ablated (``mode`` zero or mean, on the ``subset`` all/train/test rows), as bars at the
selected checkpoint through frames (only the checkpoints the analyzer ablated), and the
number of dead neurons over training."""

from __future__ import annotations

from typing import Literal

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tdw.figures import size_params
from tdw.figures.dimensionality import text
from tdw.figures.epochs import Frames, add_epoch_indicator, epoch_range, rounded
from tdw.params import Param

PARAMS = (
    Param("mode", Literal["zero", "mean"], "mean", "which ablation is drawn"),
    Param("subset", Literal["all", "train", "test"], "test", "rows the loss change is measured on"),
    *size_params(950, 450),
)

KIND_COLORS = {"cluster": "#1f77b4", "neuron": "#ff7f0e", "head": "#2ca02c"}


def changes(art: dict, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """(ablated epochs, loss change [ablated epoch, group]) for the chosen mode and subset."""
    m = text(art["mode"]).index(params["mode"])
    s = text(art["subset"]).index(params["subset"])
    change = art["loss_change"][:, :, m, s]
    done = ~np.isnan(change).all(1)
    return art["epoch"][done], change[done]


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``ablations`` artifact (epoch, group, mode, subset, loss_change [epoch,
    group, mode, subset], n_dead [epoch])."""
    art = data["artifact"]
    groups = [g.replace("_", " ") for g in text(art["group"])]
    _, change = changes(art, params)
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.62, 0.38],
        horizontal_spacing=0.14,
        subplot_titles=(f"{params['mode']}-ablation, {params['subset']} rows", "dead neurons"),
    )
    fig.add_trace(
        go.Bar(
            x=groups,
            y=change[-1],
            marker={"color": [KIND_COLORS.get(g.split()[0], "#555") for g in groups]},
            hovertemplate="%{x}<br>loss change %{y:.3f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(x=art["epoch"], y=art["n_dead"], mode="lines+markers", marker={"size": 4}, line={"color": "#555"}),
        row=1,
        col=2,
    )
    add_epoch_indicator(fig, int(art["epoch"][-1]), xref="x2", yref="y2 domain")
    finite = change[np.isfinite(change)]
    lo, hi = (min(float(finite.min()), 0.0), max(float(finite.max()), 0.0)) if finite.size else (0.0, 1.0)
    pad = 0.05 * (hi - lo or 1.0)
    fig.update_yaxes(title_text="loss change", range=[lo - pad, hi + pad], row=1, col=1)  # fixed: frames keep one scale
    fig.update_xaxes(tickangle=-45, row=1, col=1)
    fig.update_xaxes(title_text="epoch", range=epoch_range(art["epoch"]), row=1, col=2)
    fig.update_yaxes(title_text="neurons", rangemode="tozero", row=1, col=2)
    fig.update_layout(title=title, width=params["width"], height=params["height"], showlegend=False)
    return fig


def frames(data: dict, params: dict) -> Frames:
    """The bars (trace 0) at each ablated checkpoint."""
    epochs, change = changes(data["artifact"], params)
    return Frames(epochs=[int(e) for e in epochs], traces=[0], updates=[{"y": [rounded(c)]} for c in change])
