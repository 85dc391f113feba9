"""The LLC's ε × nβ calibration on one checkpoint: per (ε, nβ) cell, every chain's loss trace
(top row) and distance trace ||w - w*|| (middle row), diverged chains in red, L_n(w*) dotted;
below, the grid of λ̂ (mean over the chains that did not diverge) as a heatmap, each cell
labelled with λ̂ ± std and the mean MALA acceptance, and a cell with a diverged chain marked
with a cross and its count."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tdw.figures import size_params
from tdw.params import Param

PARAMS = (
    Param("color", str, "#1f77b4", "colour of the chains that did not diverge"),
    Param("diverged_color", str, "#d62728", "colour of diverged chains and of the marks on their cells"),
    Param("colorscale", str, "Viridis", "colour scale of the λ̂ grid"),
    Param("log_loss", bool, True, "log-scale loss axes"),
    *size_params(1100, 820),
)


def labels(art: dict) -> list[str]:
    """The nβ coordinate as text ('n', 'batch' or a number)."""
    return [n.decode() if isinstance(n, bytes) else str(n) for n in art["nbeta"]]


def _cell_title(art: dict, i: int, j: int) -> str:
    return f"ε {art['epsilon'][i]:.2g}, nβ {labels(art)[j]}"


def _traces(fig: go.Figure, art: dict, params: dict, cells: list[tuple[int, int]]) -> None:
    for col, (i, j) in enumerate(cells, start=1):
        for c in range(art["loss_trace"].shape[2]):
            diverged = bool(art["diverged"][i, j, c])
            color = params["diverged_color"] if diverged else params["color"]
            for row, key in ((1, "loss_trace"), (2, "distance_trace")):
                fig.add_trace(
                    go.Scatter(
                        x=art["draw"],
                        y=art[key][i, j, c],
                        mode="lines",
                        line={"color": color, "width": 1},
                        name=f"{_cell_title(art, i, j)}, chain {c}{' (diverged)' if diverged else ''}",
                        showlegend=False,
                    ),
                    row=row,
                    col=col,
                )
        fig.add_hline(y=float(art["init_loss"]), line={"dash": "dot", "color": "#555"}, row=1, col=col)


def _grid(fig: go.Figure, art: dict, params: dict) -> None:
    eps, nb = [f"{e:.2g}" for e in art["epsilon"]], labels(art)
    n_div = np.asarray(art["diverged"], dtype=bool).sum(-1)  # [epsilon, nbeta]
    acc = np.nanmean(art["mala_acceptance"], axis=-1)
    text = [
        [
            f"λ̂ {art['llc_mean'][i, j]:.3g} ± {art['llc_std'][i, j]:.2g}<br>acc {acc[i, j]:.2f}"
            + (f"<br>{n_div[i, j]} diverged" if n_div[i, j] else "")
            for j in range(len(nb))
        ]
        for i in range(len(eps))
    ]
    fig.add_trace(
        go.Heatmap(
            x=nb,
            y=eps,
            z=art["llc_mean"],
            text=text,
            texttemplate="%{text}",
            colorscale=params["colorscale"],
            colorbar={"title": "λ̂", "len": 0.3, "y": 0.15},
            hovertemplate="ε %{y}, nβ %{x}<br>%{text}<extra></extra>",
            name="λ̂",
        ),
        row=3,
        col=1,
    )
    bad = np.argwhere(n_div > 0)
    fig.add_trace(
        go.Scatter(
            x=[nb[j] for _, j in bad],
            y=[eps[i] for i, _ in bad],
            mode="markers",
            marker={"symbol": "x", "size": 18, "color": params["diverged_color"], "line": {"width": 2}},
            name="a chain diverged",
            hoverinfo="skip",
        ),
        row=3,
        col=1,
    )


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``llc_calibration`` artifact (epsilon, nbeta, draw, init_loss, checkpoint_epoch;
    llc_mean, llc_std [epsilon, nbeta]; llc, mala_acceptance, diverged [.., chain];
    loss_trace, distance_trace [.., chain, draw])."""
    art = data["artifact"]
    cells = [(i, j) for i in range(len(art["epsilon"])) for j in range(len(art["nbeta"]))]
    n = len(cells)
    specs = [[{}] * n, [{}] * n, [{"colspan": n}] + [None] * (n - 1)]
    titles = [_cell_title(art, i, j) for i, j in cells] + [""] * n + ["λ̂ over the grid (x: a chain diverged)"]
    fig = make_subplots(rows=3, cols=n, specs=specs, subplot_titles=titles, vertical_spacing=0.1, row_heights=[0.3, 0.3, 0.4])
    _traces(fig, art, params, cells)
    _grid(fig, art, params)
    fig.update_yaxes(title_text="batch loss", type="log" if params["log_loss"] else "linear", row=1, col=1)
    fig.update_yaxes(title_text="||w - w*||", row=2, col=1)
    fig.update_xaxes(title_text="step", row=2)
    fig.update_xaxes(title_text="nβ", type="category", row=3, col=1)
    fig.update_yaxes(title_text="ε", type="category", row=3, col=1)
    fig.update_annotations(font_size=10)
    epoch = int(np.asarray(art["checkpoint_epoch"]).reshape(()))
    fig.update_layout(
        title=f"{title} (checkpoint of epoch {epoch})",
        width=params["width"],
        height=params["height"],
        showlegend=False,
    )
    return fig
