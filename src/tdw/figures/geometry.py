"""Circles of the key frequencies (Nanda et al. 2023): for each key frequency k, the
embedding of every token x projected on its (cos w_k x, sin w_k x) plane (top row) and the
MLP activations averaged per target residue on the same kind of plane (bottom row), per
checkpoint through frames; markers coloured by token / residue on a cyclic scale, panel
titles carry the circularity score at the final checkpoint.

Size: 2 x p points per key and frame; frames are limited to ``max_frames`` evenly spaced
checkpoints and panels to ``max_keys`` key frequencies.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tdw.figures import size_params
from tdw.figures.epochs import Frames, frame_indices, rounded
from tdw.params import Param

PARAMS = (
    Param("colorscale", str, "HSV", "Plotly colour scale of the points (cyclic: angle order)"),
    Param("marker_size", int, 5, "point size in pixels"),
    Param("max_keys", int, 4, "at most this many key frequencies drawn"),
    Param("max_frames", int, 100, "at most this many checkpoints in the slider"),
    *size_params(1000, 560),
)

ROWS = (("embed_circle", "embed_circularity", "token x"), ("neuron_circle", "neuron_circularity", "residue (a + b or a - b)"))


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``geometry`` artifact (epoch, key_frequency, embed_circle [epoch, key,
    token, 2], neuron_circle [epoch, key, residue, 2] and their circularity [epoch, key])."""
    art = data["artifact"]
    keys = [int(k) for k in art["key_frequency"]][: int(params["max_keys"])]
    titles = [f"{label.split()[0]} k={k} (circ. {art[score][-1, i]:.2f})" for _, score, label in ROWS for i, k in enumerate(keys)]
    fig = make_subplots(rows=2, cols=max(len(keys), 1), subplot_titles=titles, vertical_spacing=0.2, horizontal_spacing=0.06)
    for row, (key, _, label) in enumerate(ROWS, start=1):
        for i in range(len(keys)):
            pts = art[key][-1, i]  # [token, 2]
            fig.add_trace(
                go.Scatter(
                    x=pts[:, 0],
                    y=pts[:, 1],
                    mode="markers",
                    marker={"size": params["marker_size"], "color": np.arange(len(pts)), "colorscale": params["colorscale"]},
                    showlegend=False,
                    hovertemplate=f"{label} %{{marker.color}}<br>(%{{x:.3f}}, %{{y:.3f}})<extra></extra>",
                ),
                row=row,
                col=i + 1,
            )
            n = (row - 1) * len(keys) + i + 1
            fig.update_xaxes(showticklabels=False, row=row, col=i + 1)
            fig.update_yaxes(showticklabels=False, scaleanchor=f"x{'' if n == 1 else n}", row=row, col=i + 1)
        fig.update_xaxes(title_text="cos plane axis", row=row, col=1)
        fig.update_yaxes(title_text="sin plane axis", row=row, col=1)
    fig.update_annotations(font_size=11)  # panel titles fit narrow panels
    fig.update_layout(title=title, width=params["width"], height=params["height"])
    return fig


def frames(data: dict, params: dict) -> Frames:
    """Every circle's points (one trace per panel, row by row) at up to ``max_frames`` checkpoints."""
    art = data["artifact"]
    n_keys = min(len(art["key_frequency"]), int(params["max_keys"]))
    idx = frame_indices(len(art["epoch"]), int(params["max_frames"]))
    updates = []
    for e in idx:
        pts = [art[key][e, i] for key, _, _ in ROWS for i in range(n_keys)]
        updates.append({"x": [rounded(q[:, 0], 4) for q in pts], "y": [rounded(q[:, 1], 4) for q in pts]})
    return Frames(epochs=[int(art["epoch"][e]) for e in idx], traces=list(range(2 * n_keys)), updates=updates)
