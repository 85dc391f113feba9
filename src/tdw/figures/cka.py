"""Representation similarity across checkpoints (the ``cka`` artifact): per hook, a
checkpoint x checkpoint heat map of linear CKA (or its debiased form), and below it CKA
against the final checkpoint and against the selected one (which the checkpoint slider
moves), with the epoch indicator on both."""

from __future__ import annotations

from typing import Literal

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tdw.figures import size_params
from tdw.figures.dimensionality import text
from tdw.figures.epochs import Frames, add_epoch_indicator, epoch_range, frame_indices, rounded
from tdw.params import Param

PARAMS = (
    Param("measure", Literal["cka", "cka_debiased"], "cka", "the heat maps' measure: linear CKA or debiased CKA"),
    Param("colorscale", str, "Viridis", "colour scale of the heat maps"),
    Param("max_frames", int, 100, "checkpoints the slider can select (evenly spaced)"),
    *size_params(1000, 720),
)


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``cka`` artifact (epoch, epoch_b, hook, cka and cka_debiased [epoch, epoch_b, hook])."""
    art = data["artifact"]
    epochs, hooks, measure = art["epoch"], text(art["hook"]), params["measure"]
    label = "CKA" if measure == "cka" else "debiased CKA"
    fig = make_subplots(
        rows=2,
        cols=len(hooks),
        row_heights=[0.62, 0.38],
        vertical_spacing=0.12,
        horizontal_spacing=0.08,
        subplot_titles=[*hooks, *(f"{label} against a checkpoint" for _ in hooks)],
    )
    mode = "lines+markers" if len(epochs) < 30 else "lines"
    for h, hook in enumerate(hooks, start=1):
        z = art[measure][:, :, h - 1]
        fig.add_trace(
            go.Heatmap(
                x=epochs,
                y=epochs,
                z=rounded(z, 4),  # 4 digits: a 400 x 400 map stays near 1 MB of JSON
                zmin=min(0.0, float(np.nanmin(z))) if np.isfinite(z).any() else 0.0,
                zmax=1.0,
                colorscale=params["colorscale"],
                showscale=h == 1,
                colorbar={"title": {"text": label}, "len": 0.6, "y": 0.69},
                hovertemplate=f"{hook}<br>epoch %{{y}} vs %{{x}}<br>{label} %{{z:.3f}}<extra></extra>",
            ),
            row=1,
            col=h,
        )
        for name, y, color in (("final checkpoint", z[:, -1], "#333"), ("selected checkpoint", z[-1], "#d62728")):
            fig.add_trace(
                go.Scatter(
                    x=epochs,
                    y=y,
                    name=f"against the {name}",
                    legendgroup=name,
                    showlegend=h == 1,
                    mode=mode,
                    marker={"size": 4},
                    line={"color": color, "dash": "solid" if name.startswith("final") else "dot"},
                    hovertemplate=f"{hook}<br>epoch %{{x}}<br>{label} %{{y:.3f}}<extra>{name}</extra>",
                ),
                row=2,
                col=h,
            )
        for row in (1, 2):
            k = (row - 1) * len(hooks) + h  # the subplot's axis number, row by row
            axis = "" if k == 1 else str(k)
            add_epoch_indicator(fig, int(epochs[-1]), xref=f"x{axis}", yref=f"y{axis} domain")
        fig.update_xaxes(title_text="epoch", range=epoch_range(epochs), row=2, col=h)
        fig.update_xaxes(range=epoch_range(epochs), row=1, col=h)
        fig.update_yaxes(title_text="epoch" if h == 1 else None, row=1, col=h)
        fig.update_yaxes(
            title_text=label if h == 1 else None, range=[min(0.0, float(np.nanmin(z, initial=0.0))), 1.05], row=2, col=h
        )
    fig.update_layout(
        title=title,
        width=params["width"],
        height=params["height"],
        legend={"orientation": "h", "yanchor": "top", "y": -0.08, "xanchor": "left", "x": 0.0, "font": {"size": 10}},
        margin={"b": 90},
    )
    return fig


def frames(data: dict, params: dict) -> Frames:
    """The 'selected checkpoint' curve of each hook: that checkpoint's row of the measure."""
    art = data["artifact"]
    n_hooks = len(art["hook"])
    idx = frame_indices(len(art["epoch"]), int(params["max_frames"]))
    # traces per hook: heat map, against final, against selected
    traces = [3 * h + 2 for h in range(n_hooks)]
    values = art[params["measure"]]
    updates = [{"y": [_json(values[e, :, h]) for h in range(n_hooks)]} for e in idx]
    return Frames(epochs=[int(art["epoch"][e]) for e in idx], traces=traces, updates=updates)


def _json(values: np.ndarray) -> list:
    """Rounded values, None where not finite (a constant activation has no CKA)."""
    return [v if np.isfinite(v) else None for v in rounded(values, 4)]
