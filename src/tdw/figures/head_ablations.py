"""Head ablation on token sequences over training: the loss change when each head (layer.head)
is ablated (``mode`` zero or mean), on the repeated predictions (left; an induction head and
the previous-token head that feeds it cost the copying) and on the first-seen ones (right;
nothing to copy), one line per head (first layer dotted, second solid), from the ``ablations`` artifact of a sequence family."""

from __future__ import annotations

from typing import Literal

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tdw.figures import size_params
from tdw.figures.dimensionality import text
from tdw.figures.epochs import add_epoch_indicator, epoch_range
from tdw.figures.induction import PALETTE
from tdw.params import Param

PARAMS = (
    Param("mode", Literal["zero", "mean"], "mean", "which ablation is drawn"),
    *size_params(1000, 450),
)

PANELS = (("repeated", "repeated tokens"), ("first_seen", "first-seen tokens"))


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the sequence ``ablations`` artifact (epoch, loss_change [epoch, layer, head, mode,
    subset], mode, subset); checkpoints the analyzer skipped (NaN) are left out."""
    art = data["artifact"]
    change = art["loss_change"][:, :, :, text(art["mode"]).index(params["mode"])]  # [epoch, layer, head, subset]
    done = ~np.isnan(change).all((1, 2, 3))
    epochs, change = art["epoch"][done], change[done]
    layers, heads = change.shape[1:3]
    subsets = text(art["subset"])
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.06,
        subplot_titles=[f"{params['mode']}-ablation: loss change on {label}" for _, label in PANELS],
    )
    mode = "lines+markers" if len(epochs) < 30 else "lines"
    for col, (subset, _) in enumerate(PANELS, start=1):
        s = subsets.index(subset)
        for layer in range(layers):
            for h in range(heads):
                name = f"L{layer}H{h}"
                fig.add_trace(
                    go.Scatter(
                        x=epochs,
                        y=change[:, layer, h, s],
                        name=name,
                        legendgroup=name,
                        showlegend=col == 1,
                        mode=mode,
                        marker={"size": 3},
                        line={"color": PALETTE[(layer * heads + h) % len(PALETTE)], "dash": "solid" if layer else "dot"},
                        hovertemplate=f"{name} {subset}<br>epoch %{{x}}<br>loss change %{{y:.3f}}<extra></extra>",
                    ),
                    row=1,
                    col=col,
                )
        axis = "" if col == 1 else str(col)
        add_epoch_indicator(fig, int(art["epoch"][-1]), xref=f"x{axis}", yref=f"y{axis} domain")
        fig.update_xaxes(title_text="epoch (step)", range=epoch_range(art["epoch"]), row=1, col=col)
    fig.update_yaxes(title_text="loss change", row=1, col=1)
    fig.update_layout(title=title, width=params["width"], height=params["height"], legend={"font": {"size": 9}})
    return fig
