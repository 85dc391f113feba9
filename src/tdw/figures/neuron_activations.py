"""One selected neuron's activation over the (a, b) input grid (x axis b, y axis a, a
diverging scale centred at 0) beside the magnitude of its 2D Fourier transform, per
checkpoint through frames.

For a task relabelled by discrete logarithm (mul, div: the artifact's ``group`` attribute)
the grid's axes are the exponents i = log_g a and j = log_g b of the group Z_{p-1}, not the
tokens: the axis titles say so, and hovering a cell shows its tokens a = g^i and b = g^j.

Size: a p x p grid pair per frame; frames are limited to ``max_frames`` checkpoints of the
artifact's stored grid epochs (evenly spaced, first and last kept) and to the one neuron
``neuron`` (a position in the artifact's selected-neuron list; null: the one whose final
grid varies most), so p = 113 with
``max_frames`` 20 stays near 4 MB in a report.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tdw.figures import size_params
from tdw.figures.epochs import Frames, frame_indices, rounded
from tdw.params import Param

PARAMS = (
    Param("neuron", int | None, None, "position in the selected neurons shown; null: the most varied"),
    Param("colorscale", str, "RdBu", "Plotly colour scale of the activation grid"),
    Param("fourier_colorscale", str, "Viridis", "Plotly colour scale of the Fourier grid"),
    Param("max_frames", int, 20, "at most this many checkpoints in the slider"),
    *size_params(1000, 480),
)


def _grids(art: dict, params: dict) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """(neuron id, shown grid epochs, activation grids [frame, a, b], |Fourier| [frame, row, col])."""
    if params["neuron"] is None:  # the selected neuron whose final grid varies most
        pos = int(np.argmax(art["grid"][-1].astype(np.float64).reshape(len(art["neuron"]), -1).std(1)))
    else:
        pos = min(int(params["neuron"]), len(art["neuron"]) - 1)
    idx = frame_indices(len(art["grid_epoch"]), int(params["max_frames"]))
    grid = art["grid"][idx, pos].astype(np.float64)
    fourier = np.abs(art["fourier"][idx, pos].astype(np.float64))
    return int(art["neuron"][pos]), art["grid_epoch"][idx], grid, fourier


def _axes(art: dict) -> dict:
    """Axis titles, hover template and hover data of the activation grid: tokens a and b, or
    for a relabelled task the exponents of the primitive root g, with the tokens on hover."""
    group = art.get("attrs", {}).get("group")
    if not group or not group.get("relabel"):
        return {"a": "a", "b": "b", "hover": "a %{y}, b %{x}<br>activation %{z:.3f}<extra></extra>", "customdata": None}
    tokens = np.asarray(group["tokens"], dtype=np.int64)  # group element i is token g^i
    g = int(tokens[1]) if len(tokens) > 1 else 1
    a_tok, b_tok = np.meshgrid(tokens, tokens, indexing="ij")  # [i, j]: the cell's tokens a, b
    return {
        "a": f"i = log_{g} a (a = {g}^i)",
        "b": f"j = log_{g} b (b = {g}^j)",
        "hover": f"i %{{y}}, j %{{x}}: a = {g}^i = %{{customdata[0]}}, b = {g}^j = %{{customdata[1]}}"
        "<br>activation %{z:.3f}<extra></extra>",
        "customdata": np.stack([a_tok, b_tok], -1),
        "component": f" of log_{g}",
    }


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``neuron_activations`` artifact (grid_epoch, neuron, grid, fourier)."""
    neuron, epochs, grid, fourier = _grids(data["artifact"], params)
    axes = _axes(data["artifact"])
    p = grid.shape[-1]
    bound = float(np.abs(grid).max()) or 1.0  # one symmetric range for every frame
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.22,
        subplot_titles=(f"neuron {neuron}: activation", "|2D Fourier transform|"),
    )
    fig.add_trace(
        go.Heatmap(
            z=grid[-1],
            x=np.arange(p),
            y=np.arange(p),
            zmin=-bound,
            zmax=bound,
            zmid=0,
            colorscale=params["colorscale"],
            colorbar={"title": "act", "x": 0.40, "thickness": 12},
            customdata=axes["customdata"],
            hovertemplate=axes["hover"],
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Heatmap(
            z=fourier[-1],
            x=np.arange(p),
            y=np.arange(p),
            zmin=0,
            zmax=float(fourier.max()) or 1.0,
            colorscale=params["fourier_colorscale"],
            colorbar={"title": "|F|", "x": 1.0, "thickness": 12},
            hovertemplate="row %{y}, col %{x}<br>|F| %{z:.3f}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.update_layout(title=title, width=params["width"], height=params["height"], showlegend=False)
    fig.update_xaxes(title_text=axes["b"], row=1, col=1, constrain="domain")
    fig.update_yaxes(title_text=axes["a"], row=1, col=1, scaleanchor="x", constrain="domain", autorange="reversed")
    # Fourier components in the basis order: 0 constant, 2k-1 cos k, 2k sin k.
    of = axes.get("component", " of")
    fig.update_xaxes(title_text=f"component{of} b (2k-1 cos k, 2k sin k)", row=1, col=2, constrain="domain")
    fig.update_yaxes(title_text=f"component{of} a", row=1, col=2, scaleanchor="x2", constrain="domain", autorange="reversed")
    return fig


def frames(data: dict, params: dict) -> Frames:
    """Both heat maps (traces 0, 1) at each shown grid epoch."""
    _, epochs, grid, fourier = _grids(data["artifact"], params)
    updates = [{"z": [rounded(g, 4), rounded(f, 4)]} for g, f in zip(grid, fourier, strict=True)]
    return Frames(epochs=[int(e) for e in epochs], traces=[0, 1], updates=updates)
