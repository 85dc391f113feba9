"""The local learning coefficient over training: the mean over the chains that did not
diverge with a ± one std band, every chain's estimate as a dot, diverged chains as red
crosses (never in the mean), and each chain's MALA acceptance estimate beside it."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tdw.figures import size_params
from tdw.figures.epochs import epoch_columns
from tdw.params import Param

PARAMS = (
    Param("color", str, "#1f77b4", "colour of the mean, its band and the chains"),
    Param("diverged_color", str, "#d62728", "colour of diverged chains"),
    Param("log_y", bool, False, "log-scale LLC axis"),
    *size_params(950, 420),
)


def _chain_points(epochs: np.ndarray, values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x, y of the [epoch, chain] entries where ``mask`` holds (NaN estimates left out)."""
    grid = np.broadcast_to(epochs[:, None], values.shape)
    keep = mask & np.isfinite(values)
    return grid[keep], values[keep]


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``llc`` artifact (epoch, llc_mean, llc_std [epoch], llc, diverged, mala_acceptance [epoch, chain])."""
    art = data["artifact"]
    epochs, mean, std = art["epoch"], art["llc_mean"], art["llc_std"]
    diverged = np.asarray(art["diverged"], dtype=bool)
    color = params["color"]
    fig = make_subplots(
        rows=1, cols=2, column_widths=[0.68, 0.32], horizontal_spacing=0.1, subplot_titles=("LLC", "MALA acceptance")
    )
    band = np.nan_to_num(std)
    fig.add_trace(
        go.Scatter(
            x=np.concatenate([epochs, epochs[::-1]]),
            y=np.concatenate([mean + band, (mean - band)[::-1]]),
            fill="toself",
            fillcolor=color,
            opacity=0.2,
            line={"width": 0},
            name="± std",
            hoverinfo="skip",
        ),
        row=1,
        col=1,
    )
    x, y = _chain_points(epochs, art["llc"], ~diverged)
    fig.add_trace(
        go.Scatter(x=x, y=y, mode="markers", name="chain", marker={"color": color, "size": 4, "opacity": 0.5}), row=1, col=1
    )
    x, y = _chain_points(epochs, art["llc"], diverged)
    fig.add_trace(
        go.Scatter(
            x=x,
            y=y,
            mode="markers",
            name=f"diverged ({int(diverged.sum())})",
            marker={"color": params["diverged_color"], "symbol": "x", "size": 7},
            hovertemplate="diverged chain<br>epoch %{x}<br>LLC %{y:.3g}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=epochs,
            y=mean,
            mode="lines+markers" if len(epochs) < 30 else "lines",
            name="mean",
            line={"color": color, "width": 2},
            customdata=np.stack([band, art["n_diverged"]], -1),
            hovertemplate="epoch %{x}<br>LLC %{y:.3g} ± %{customdata[0]:.2g}<br>%{customdata[1]} diverged<extra></extra>",
        ),
        row=1,
        col=1,
    )
    x, y = _chain_points(epochs, art["mala_acceptance"], np.ones_like(diverged))
    fig.add_trace(
        go.Scatter(x=x, y=y, mode="markers", name="acceptance", marker={"color": "#555", "size": 4}, showlegend=False),
        row=1,
        col=2,
    )
    epoch_columns(fig, epochs)
    fig.update_yaxes(title_text="λ̂", type="log" if params["log_y"] else "linear", row=1, col=1)
    fig.update_yaxes(title_text="acceptance", range=[0, 1.02], row=1, col=2)
    fig.update_layout(
        title=title,
        width=params["width"],
        height=params["height"],
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.06, "xanchor": "right", "x": 1.0, "font": {"size": 11}},
        margin={"t": 80},
    )
    return fig
