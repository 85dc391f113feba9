"""Linear mode connectivity: the loss barrier over training between each checkpoint and its
predecessor (and a partner variant's checkpoint at the same epoch, dashed), naive and after
weight matching, and beside it the loss along the line w(alpha) for the selected checkpoint
(per-checkpoint frames)."""

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
    Param("split", Literal["train", "test"], "train", "the split whose loss is drawn: 'train' or 'test'"),
    Param("naive_color", str, "#d62728", "colour of the naive line (B as it is)"),
    Param("matched_color", str, "#1f77b4", "colour of the weight-matched line"),
    Param("log_y", bool, False, "log-scale barrier axis"),
    *size_params(950, 420),
)

PAIR_LABEL = {"previous": "vs previous checkpoint", "partner": "vs partner variant"}
DASH = {"previous": "solid", "partner": "dash"}


def _finite(values: np.ndarray) -> list:
    """Rounded values as a JSON-ready list, NaN as None (a gap in the line)."""
    return [None if v is None or not np.isfinite(v) else v for v in rounded(values)]


def _lines(art: dict, params: dict) -> list[tuple[str, str, int, int]]:
    """(pair, line, pair index, line index) of every curve, in trace order."""
    pairs, lines = text(art["pair"]), text(art["line"])
    return [(pair, line, i, j) for i, pair in enumerate(pairs) for j, line in enumerate(lines)]


def _split(art: dict, params: dict) -> int:
    return text(art["split"]).index(params["split"])


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``lmc`` artifact (epoch, alpha, barrier [epoch, pair, line, split],
    loss [epoch, pair, line, split, alpha])."""
    art = data["artifact"]
    epochs, alphas, s = art["epoch"], art["alpha"], _split(art, params)
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.6, 0.4],
        horizontal_spacing=0.1,
        subplot_titles=(f"{params['split']} loss barrier", "loss along the line (selected checkpoint)"),
    )
    mode = "lines+markers" if len(epochs) < 30 else "lines"
    curves = _lines(art, params)
    for pair, line, i, j in curves:
        style = {"color": params[f"{line}_color"], "dash": DASH[pair], "width": 2}
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=_finite(art["barrier"][:, i, j, s]),
                mode=mode,
                name=f"{line}, {PAIR_LABEL[pair]}",
                legendgroup=f"{pair}-{line}",
                line=style,
                marker={"size": 4},
                hovertemplate=f"{line} {PAIR_LABEL[pair]}<br>epoch %{{x}}<br>barrier %{{y:.4g}}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    for pair, line, i, j in curves:
        fig.add_trace(
            go.Scatter(
                x=alphas,
                y=_finite(art["loss"][-1, i, j, s]),
                mode="lines+markers",
                name=f"{line}, {PAIR_LABEL[pair]}",
                legendgroup=f"{pair}-{line}",
                showlegend=False,
                line={"color": params[f"{line}_color"], "dash": DASH[pair], "width": 2},
                marker={"size": 4},
                hovertemplate=f"{line} {PAIR_LABEL[pair]}<br>α %{{x:.3g}}<br>loss %{{y:.4g}}<extra></extra>",
            ),
            row=1,
            col=2,
        )
    add_epoch_indicator(fig, int(epochs[-1]))
    fig.update_xaxes(title_text="epoch", range=epoch_range(epochs), row=1, col=1)
    fig.update_xaxes(title_text="α (0: A, 1: B)", range=[-0.02, 1.02], row=1, col=2)
    fig.update_yaxes(title_text="barrier (cross-entropy)", type="log" if params["log_y"] else "linear", row=1, col=1)
    fig.update_yaxes(title_text="cross-entropy", row=1, col=2)
    fig.update_layout(
        title=title,
        width=params["width"],
        height=params["height"],
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.08, "xanchor": "right", "x": 1.0, "font": {"size": 11}},
        margin={"t": 90},
    )
    return fig


def frames(data: dict, params: dict) -> Frames:
    """The loss along each line (the traces of the right panel) at every checkpoint."""
    art = data["artifact"]
    s, curves = _split(art, params), _lines(art, params)
    traces = list(range(len(curves), 2 * len(curves)))
    updates = [{"y": [_finite(art["loss"][e, i, j, s]) for _, _, i, j in curves]} for e in range(len(art["epoch"]))]
    return Frames(epochs=[int(e) for e in art["epoch"]], traces=traces, updates=updates)
