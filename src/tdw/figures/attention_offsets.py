"""Attention by relative offset, every head of every layer: for offset d = query - key, the
mean over query positions q >= d of the ``induction`` artifact's mean pattern at (q, q - d),
one row per head (layer.head), at the selected checkpoint (frames). A previous-token head is
a bright column at offset 1; an induction head spreads over the offsets of the repeated
segment's length plus one (its key follows the earlier copy); offset 0 is attention to itself.
Drawn from the stored mean pattern: no second copy of the measure."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from tdw.figures import size_params
from tdw.figures.epochs import Frames, rounded
from tdw.params import Param

PARAMS = (
    Param("colorscale", str, "Blues", "Plotly colour scale"),
    Param("max_offset", int | None, None, "offsets drawn, 0..max_offset; null: every offset (n_ctx - 1)"),
    *size_params(900, 420),
)


def offset_profile(pattern: np.ndarray) -> np.ndarray:
    """pattern [..., query_pos, key_pos] -> mean attention by offset q - k [..., offset]."""
    n = pattern.shape[-1]
    return np.stack([np.diagonal(pattern, -d, axis1=-2, axis2=-1).mean(-1) for d in range(n)], -1)


def profiles(art: dict, params: dict) -> np.ndarray:
    """[epoch, layer * head, offset] for the drawn offsets."""
    pattern = art["mean_pattern"]  # [epoch, layer, head, query_pos, key_pos]
    out = offset_profile(pattern.astype(np.float64)).reshape(len(pattern), -1, pattern.shape[-1])
    last = pattern.shape[-1] - 1 if params["max_offset"] is None else min(params["max_offset"], pattern.shape[-1] - 1)
    return out[:, :, : last + 1]


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``induction`` artifact (epoch, mean_pattern [epoch, layer, head, query_pos, key_pos])."""
    art = data["artifact"]
    layers, heads = art["mean_pattern"].shape[1:3]
    z = profiles(art, params)
    names = [f"L{layer}H{h}" for layer in range(layers) for h in range(heads)]
    fig = go.Figure(
        go.Heatmap(
            z=z[-1],
            x=np.arange(z.shape[-1]),
            y=names,
            zmin=0,
            zmax=max(float(z.max()), 1e-6),  # the largest over training: frames keep one scale
            colorscale=params["colorscale"],
            colorbar={"title": "attention"},
            hovertemplate="%{y}, offset %{x}<br>mean attention %{z:.3f}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="offset (query - key position)")
    fig.update_yaxes(title_text="head", autorange="reversed")
    fig.update_layout(title=title, width=params["width"], height=params["height"])
    return fig


def frames(data: dict, params: dict) -> Frames:
    """The heatmap (trace 0) at each checkpoint."""
    z = profiles(data["artifact"], params)
    return Frames(epochs=[int(e) for e in data["artifact"]["epoch"]], traces=[0], updates=[{"z": [rounded(p)]} for p in z])
