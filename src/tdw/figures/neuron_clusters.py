"""Neuron frequency clusters, with a small legend beside the plot, off the data: the fraction of each neuron's variance explained by
each frequency (heat map, neurons sorted by their cluster at the final checkpoint) per
checkpoint through frames, and cluster sizes over training (each final cluster, the other
clusters together, and the unclustered neurons; they sum to d_mlp).

Size: a neuron x frequency map per frame; frames are limited to ``max_frames`` evenly
spaced checkpoints (first and last kept): 512 x 56 x 10 frames is about 2 MB.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tdw.figures import size_params
from tdw.figures.epochs import Frames, add_epoch_indicator, epoch_range, frame_indices, rounded
from tdw.params import Param

PARAMS = (
    Param("colorscale", str, "Viridis", "Plotly colour scale of the FVE heat map"),
    Param("max_frames", int, 10, "at most this many checkpoints in the slider"),
    *size_params(900, 700),
)

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def neuron_order(art: dict) -> np.ndarray:
    """Neurons grouped by final cluster (unclustered last), strongest FVE first in a group."""
    cluster = art["cluster"][-1].astype(np.int64)
    best = art["fve"][-1].max(-1)
    key = np.where(cluster == 0, np.iinfo(np.int64).max, cluster)
    return np.lexsort((-best, key))


def size_series(art: dict) -> list[tuple[str, np.ndarray]]:
    """(name, size over epochs) for each final cluster, the rest and the unclustered."""
    sizes = art["cluster_size"]  # [epoch, cluster]; column 0 unclustered
    final = [int(k) for k in art["final_clusters"]]
    rest = np.setdiff1d(np.arange(1, sizes.shape[1]), final)
    series = [(f"k = {k}", sizes[:, k]) for k in final]
    return series + [("other k", sizes[:, rest].sum(1)), ("none", sizes[:, 0])]


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``neuron_clusters`` artifact (epoch, frequency, fve, cluster, cluster_size)."""
    art = data["artifact"]
    epochs, order = art["epoch"], neuron_order(art)
    fig = make_subplots(
        rows=2,
        cols=1,
        row_heights=[0.55, 0.45],
        vertical_spacing=0.22,
        subplot_titles=("variance explained by frequency (selected checkpoint)", "cluster sizes over training"),
    )
    fig.add_trace(
        go.Heatmap(
            z=art["fve"][-1][order].T,
            y=art["frequency"],
            zmin=0,
            zmax=1,
            colorscale=params["colorscale"],
            colorbar={"title": "FVE", "len": 0.5, "y": 0.78, "thickness": 12},
            hovertemplate="neuron #%{x} (sorted)<br>frequency %{y}<br>FVE %{z:.3f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    for i, (name, size) in enumerate(size_series(art)):
        color = "#999" if name == "none" else "#555" if name == "other k" else PALETTE[i % len(PALETTE)]
        fig.add_trace(
            go.Scatter(x=epochs, y=size, name=name, mode="lines", line={"color": color, "width": 1.5}),
            row=2,
            col=1,
        )
    add_epoch_indicator(fig, int(epochs[-1]), xref="x2", yref="y2 domain")
    fig.update_layout(
        title=title,
        width=params["width"],
        height=params["height"],
        # Legend to the right of the lower panel, beside (not over) the curves.
        legend={"x": 1.02, "xanchor": "left", "y": 0.0, "yanchor": "bottom", "font": {"size": 10}},
    )
    fig.update_xaxes(title_text="neuron (sorted by final cluster)", row=1, col=1)
    fig.update_yaxes(title_text="frequency k", row=1, col=1)
    fig.update_xaxes(title_text="epoch", row=2, col=1, range=epoch_range(epochs))
    fig.update_yaxes(title_text="neurons", row=2, col=1)
    return fig


def frames(data: dict, params: dict) -> Frames:
    """The FVE heat map (trace 0) at up to ``max_frames`` checkpoints."""
    art = data["artifact"]
    order = neuron_order(art)
    idx = frame_indices(len(art["epoch"]), int(params["max_frames"]))
    updates = [{"z": [rounded(art["fve"][i][order].T, 3)]} for i in idx]
    return Frames(epochs=[int(art["epoch"][i]) for i in idx], traces=[0], updates=updates)
