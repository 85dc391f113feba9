"""Interventions over training: the pruning curve as a heat map (fraction of weights pruned x
epoch) of one split's loss or accuracy, and the training-loss increase under weight noise, one
line per noise scale with a band of ± two standard errors."""

from __future__ import annotations

from typing import Literal

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tdw.figures import size_params
from tdw.figures.dimensionality import text
from tdw.figures.epochs import epoch_columns
from tdw.params import Param

PARAMS = (
    Param("split", Literal["train", "test"], "test", "the split of the pruning heat map"),
    Param("metric", Literal["accuracy", "loss"], "accuracy", "what the pruning heat map shows"),
    Param("log_y", bool, True, "log-scale noise axis (non-positive increases are not drawn)"),
    *size_params(1100, 440),
)

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``interventions`` artifact (epoch, split, fraction, sigma, prune_loss and
    prune_accuracy [epoch, split, fraction], noise_increase and noise_stderr [epoch, sigma])."""
    art = data["artifact"]
    epochs, fractions, sigmas = art["epoch"], art["fraction"], art["sigma"]
    split = text(art["split"]).index(params["split"])
    z = np.asarray(art[f"prune_{params['metric']}"], dtype=np.float64)[:, split].T  # [fraction, epoch]
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.14,
        subplot_titles=(f"{params['split']} {params['metric']} after magnitude pruning", "training-loss increase under noise"),
    )
    fig.add_trace(
        go.Heatmap(
            x=epochs,
            y=fractions,
            z=z,
            colorscale="Viridis",
            colorbar={"title": params["metric"], "x": 0.43, "len": 0.9},
            hovertemplate=f"epoch %{{x}}<br>pruned %{{y}}<br>{params['metric']} %{{z:.4g}}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    mode = "lines+markers" if len(epochs) < 30 else "lines"
    for i, sigma in enumerate(sigmas):
        color = PALETTE[i % len(PALETTE)]
        mean = np.asarray(art["noise_increase"][:, i], dtype=np.float64)
        band = 2 * np.asarray(art["noise_stderr"][:, i], dtype=np.float64)
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([epochs, epochs[::-1]]),
                y=np.concatenate([mean + band, (mean - band)[::-1]]),
                fill="toself",
                fillcolor=color,
                opacity=0.15,
                line={"width": 0},
                showlegend=False,
                hoverinfo="skip",
            ),
            row=1,
            col=2,
        )
        fig.add_trace(go.Scatter(x=epochs, y=mean, mode=mode, name=f"σ = {sigma:g}", line={"color": color}), row=1, col=2)
    epoch_columns(fig, epochs)
    fig.update_yaxes(title_text="fraction pruned", row=1, col=1)
    fig.update_yaxes(title_text="mean ΔL", type="log" if params["log_y"] else "linear", row=1, col=2)
    fig.update_layout(
        title=title,
        width=params["width"],
        height=params["height"],
        legend={"x": 1.02, "xanchor": "left", "y": 1.0, "font": {"size": 10}},
    )
    return fig
