"""The weight-restricted LLC over training: one line per component (the mean over the chains
that did not diverge, a ± one std band), every chain's estimate as a dot in the component's
colour, diverged chains as crosses; each component's size (weights it moves) in its legend
entry."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from tdw.figures import size_params
from tdw.figures.epochs import add_epoch_indicator, epoch_range
from tdw.params import Param

PARAMS = (
    Param("show_chains", bool, True, "draw every chain's estimate as a dot"),
    Param("log_y", bool, False, "log-scale LLC axis"),
    *size_params(950, 460),
)

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def _names(art: dict) -> list[str]:
    return [c.decode() if isinstance(c, bytes) else str(c) for c in art["component"]]


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``llc_restricted`` artifact (epoch; component, component_size; llc_mean,
    llc_std [epoch, component]; llc, diverged [epoch, component, chain])."""
    art = data["artifact"]
    epochs = np.asarray(art["epoch"])
    diverged = np.asarray(art["diverged"], dtype=bool)
    sizes = art.get("component_size")
    fig = go.Figure()
    for i, name in enumerate(_names(art)):
        color = COLORS[i % len(COLORS)]
        mean, band = art["llc_mean"][:, i], np.nan_to_num(art["llc_std"][:, i])
        label = name if sizes is None else f"{name} ({int(sizes[i]):,} weights)"
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([epochs, epochs[::-1]]),
                y=np.concatenate([mean + band, (mean - band)[::-1]]),
                fill="toself",
                fillcolor=color,
                opacity=0.15,
                line={"width": 0},
                legendgroup=name,
                showlegend=False,
                hoverinfo="skip",
            )
        )
        chains = art["llc"][:, i]
        grid = np.broadcast_to(epochs[:, None], chains.shape)
        if params["show_chains"]:
            keep = ~diverged[:, i] & np.isfinite(chains)
            fig.add_trace(
                go.Scatter(
                    x=grid[keep],
                    y=chains[keep],
                    mode="markers",
                    marker={"color": color, "size": 4, "opacity": 0.45},
                    legendgroup=name,
                    showlegend=False,
                    name=f"{name} chain",
                )
            )
        bad = diverged[:, i] & np.isfinite(chains)
        if bad.any():
            fig.add_trace(
                go.Scatter(
                    x=grid[bad],
                    y=chains[bad],
                    mode="markers",
                    marker={"color": color, "symbol": "x", "size": 7},
                    legendgroup=name,
                    name=f"{name} diverged ({int(diverged[:, i].sum())})",
                )
            )
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=mean,
                mode="lines+markers" if len(epochs) < 30 else "lines",
                line={"color": color, "width": 2},
                legendgroup=name,
                name=label,
                customdata=band,
                hovertemplate=f"{name}<br>epoch %{{x}}<br>LLC %{{y:.3g}} ± %{{customdata:.2g}}<extra></extra>",
            )
        )
    add_epoch_indicator(fig, int(epochs[-1]))
    fig.update_xaxes(title_text="epoch", range=epoch_range(epochs))
    fig.update_yaxes(title_text="restricted λ̂", type="log" if params["log_y"] else "linear")
    fig.update_layout(title=title, width=params["width"], height=params["height"], legend={"font": {"size": 11}})
    return fig
