"""Induction heads over training: each head's induction score and previous-token score
(one line per layer.head), and the mean attention pattern of every head at the final
checkpoint (a previous-token head is the sub-diagonal, an induction head a stripe offset by
the repeated segment's length)."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tdw.figures import size_params
from tdw.figures.epochs import add_epoch_indicator, epoch_range
from tdw.params import Param

PARAMS = (
    Param("colorscale", str, "Blues", "Plotly colour scale of the attention patterns"),
    *size_params(1000, 700),
)

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``induction`` artifact (epoch, induction_score and previous_token_score
    [epoch, layer, head], mean_pattern [epoch, layer, head, query_pos, key_pos])."""
    art = data["artifact"]
    epochs, pattern = art["epoch"], art["mean_pattern"]
    layers, heads = art["induction_score"].shape[1:]
    cols = max(heads, 2)
    fig = make_subplots(
        rows=2,
        cols=cols,
        specs=[[{"colspan": cols}] + [None] * (cols - 1), [{}] * cols],
        row_heights=[0.45, 0.55],
        vertical_spacing=0.12,
        subplot_titles=(
            "induction score (solid) and previous-token score (dotted)",
            *(f"last layer, head {h}" for h in range(heads)),
        ),
    )
    mode = "lines+markers" if len(epochs) < 30 else "lines"
    for layer in range(layers):
        for h in range(heads):
            color = PALETTE[(layer * heads + h) % len(PALETTE)]
            for key, dash in (("induction_score", "solid"), ("previous_token_score", "dot")):
                fig.add_trace(
                    go.Scatter(
                        x=epochs,
                        y=art[key][:, layer, h],
                        name=f"L{layer}H{h} {key.split('_')[0]}",
                        mode=mode,
                        marker={"size": 3},
                        line={"color": color, "dash": dash},
                        hovertemplate=f"L{layer}H{h} {key}<br>epoch %{{x}}<br>%{{y:.3f}}<extra></extra>",
                    ),
                    row=1,
                    col=1,
                )
    for h in range(heads):
        fig.add_trace(
            go.Heatmap(z=pattern[-1, -1, h], zmin=0, zmax=1, colorscale=params["colorscale"], showscale=h == 0),
            row=2,
            col=h + 1,
        )
        fig.update_yaxes(autorange="reversed", row=2, col=h + 1)
    add_epoch_indicator(fig, int(epochs[-1]))
    fig.update_xaxes(title_text="epoch (step)", range=epoch_range(epochs), row=1, col=1)
    fig.update_yaxes(title_text="score", range=[0, 1.05], row=1, col=1)
    fig.update_layout(title=title, width=params["width"], height=params["height"], legend={"font": {"size": 9}})
    return fig
