"""Clock or pizza over training: gradient symmetricity and distance irrelevance (left), and
the share of the logits' variance in the clock and the pizza templates of the key
frequencies (right). A pizza sits near (1, 0) on the left, a clock lower and to the right."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tdw.figures import size_params
from tdw.figures.epochs import epoch_columns
from tdw.params import Param

PARAMS = (
    Param("symmetricity_color", str, "#d62728", "gradient symmetricity line colour"),
    Param("irrelevance_color", str, "#1f77b4", "distance irrelevance line colour"),
    Param("clock_color", str, "#2ca02c", "clock template fraction line colour"),
    Param("pizza_color", str, "#ff7f0e", "pizza template fraction line colour"),
    *size_params(950, 420),
)

LINES = (
    ("gradient_symmetricity", "gradient symmetricity", "symmetricity_color", 1),
    ("distance_irrelevance", "distance irrelevance", "irrelevance_color", 1),
    ("clock_fraction_keys", "clock templates", "clock_color", 2),
    ("pizza_fraction_keys", "pizza templates", "pizza_color", 2),
)


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``clock_pizza`` artifact (epoch; gradient_symmetricity, distance_irrelevance,
    clock_fraction_keys, pizza_fraction_keys [epoch]; key_frequency)."""
    art = data["artifact"]
    epochs = art["epoch"]
    keys = ", ".join(str(int(k)) for k in art["key_frequency"])
    mode = "lines+markers" if len(epochs) < 30 else "lines"
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.1,
        subplot_titles=("clock vs pizza measures", f"logit variance in templates (k = {keys})"),
    )
    for key, label, color, col in LINES:
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=art[key],
                name=label,
                mode=mode,
                marker={"size": 4},
                line={"color": params[color], "width": 1.8},
                hovertemplate=f"{label}<br>epoch %{{x}}<br>%{{y:.3f}}<extra></extra>",
            ),
            row=1,
            col=col,
        )
    epoch_columns(fig, epochs)
    fig.update_yaxes(title_text="value", range=[-0.05, 1.05], row=1, col=1)
    fig.update_yaxes(title_text="fraction of variance", range=[-0.05, 1.05], row=1, col=2)
    fig.update_layout(title=title, width=params["width"], height=params["height"], legend={"orientation": "h", "y": -0.2})
    return fig
