"""Detected transitions over the transitions artifact's own curves (log10 of the total sum
of squared weights and the Gini coefficient of the embedding's Fourier norms, per
checkpoint): grokking phase boundaries as shaded, labelled intervals bounded by the
surrounding checkpoints, detected jumps in any curve as grey bands, and the estimated
boundary epochs as dotted lines; where the run tracked measures during training, a third
panel with the gradient norm and the relative update at their own, finer epochs. (The loss history is not in this artifact; the
``loss_curves`` figure shows it.)"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tdw.figures import size_params
from tdw.figures.dimensionality import text
from tdw.figures.epochs import add_epoch_indicator, epoch_range
from tdw.params import Param

PARAMS = (
    Param("line_color", str, "#2c3e50", "colour of the curves"),
    *size_params(900, 550),
)

PHASE_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c")


def intervals(art: dict) -> list[tuple[str, float, float, float]]:
    """(boundary, lo, hi, estimate) for each detected phase boundary."""
    rows = zip(text(art["boundary"]), art["boundary_lo"], art["boundary_hi"], art["boundary_epoch"], strict=True)
    return [(b, float(lo), float(hi), float(e)) for b, lo, hi, e in rows if lo >= 0 and np.isfinite(e)]


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``transitions`` artifact (epoch, total_sum_sq_weights, gini_embed,
    boundary*, jump*)."""
    art = data["artifact"]
    epochs = art["epoch"]
    tracked = "tracked_epoch" in art and np.isfinite(art["tracked_grad_norm"]).any()
    rows = 3 if tracked else 2
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    series: tuple[tuple[str, str, Callable[[np.ndarray], np.ndarray]], ...] = (
        ("total_sum_sq_weights", "log10 sum sq. weights", np.log10),
        ("gini_embed", "Gini of W_E", np.asarray),
    )
    for row, (key, name, fn) in enumerate(series, start=1):
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=fn(art[key]),
                name=name,
                mode="lines+markers" if len(epochs) < 30 else "lines",
                marker={"size": 4},
                line={"color": params["line_color"]},
                showlegend=False,
                hovertemplate=f"epoch %{{x}}<br>{name} %{{y:.3f}}<extra></extra>",
            ),
            row=row,
            col=1,
        )
        fig.update_yaxes(title_text=name, row=row, col=1)
    if tracked:  # measured during training, every few epochs: finer than the checkpoints
        for key, name, dash in (
            ("tracked_grad_norm", "gradient norm", "solid"),
            ("tracked_update_ratio", "relative update", "dot"),
        ):
            fig.add_trace(
                go.Scatter(
                    x=art["tracked_epoch"],
                    y=np.log10(np.where(art[key] > 0, art[key], np.nan)),
                    name=name,
                    mode="lines",
                    line={"color": params["line_color"], "dash": dash},
                    hovertemplate=f"epoch %{{x}}<br>log10 {name} %{{y:.3f}}<extra></extra>",
                ),
                row=3,
                col=1,
            )
        fig.update_yaxes(title_text="log10 (tracked)", row=3, col=1)
    for lo, hi, series_name in zip(art["jump_lo"], art["jump_hi"], text(art["jump_series"]), strict=True):
        fig.add_vrect(x0=lo, x1=hi, fillcolor="#888", opacity=0.15, line_width=0, row="all", col=1, name=f"jump:{series_name}")
    for i, (name, lo, hi, est) in enumerate(intervals(art)):
        color = PHASE_COLORS[i % len(PHASE_COLORS)]
        fig.add_vrect(x0=lo, x1=hi, fillcolor=color, opacity=0.2, line_width=0, row="all", col=1, name=name)
        fig.add_vline(x=est, line={"color": color, "dash": "dot", "width": 1}, row="all", col=1)
        # Staggered labels above the plot: boundaries close in epoch do not overprint.
        label = {"text": name.replace("_", " "), "showarrow": False, "font": {"size": 10, "color": color}}
        fig.add_annotation(x=est, y=1.0, xref="x", yref="paper", yanchor="bottom", yshift=14 * i, **label)
    for row in range(1, rows + 1):
        axis = "" if row == 1 else str(row)
        add_epoch_indicator(fig, int(epochs[-1]), xref=f"x{axis}", yref=f"y{axis} domain")
    fig.update_xaxes(range=epoch_range(epochs))
    fig.update_xaxes(title_text="epoch", row=rows, col=1)
    fig.update_layout(title=title, width=params["width"], height=params["height"], margin={"t": 90})
    return fig
