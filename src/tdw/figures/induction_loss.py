"""In-context learning over training: the loss on repeated tokens (copyable from earlier in
the row), on first-seen tokens and overall, the in-context-learning score (late minus early
loss), and the loss per position at the final checkpoint."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tdw.figures import size_params
from tdw.figures.epochs import epoch_columns

PARAMS = (*size_params(1000, 420),)

SERIES = (("loss_repeated", "repeated", "#2ca02c"), ("loss_first_seen", "first seen", "#d62728"), ("loss", "all", "#333"))


def build(data: dict, params: dict, title: str) -> go.Figure:
    """data: the ``induction_loss`` artifact (epoch, loss_repeated, loss_first_seen, loss,
    icl_score [epoch], loss_by_position [epoch, position])."""
    art = data["artifact"]
    epochs = art["epoch"]
    fig = make_subplots(
        rows=1,
        cols=3,
        horizontal_spacing=0.08,
        subplot_titles=("loss by kind of token", "ICL score (late - early)", "loss per position, final checkpoint"),
    )
    mode = "lines+markers" if len(epochs) < 30 else "lines"
    for key, name, color in SERIES:
        fig.add_trace(go.Scatter(x=epochs, y=art[key], name=name, mode=mode, line={"color": color}), row=1, col=1)
    fig.add_trace(go.Scatter(x=epochs, y=art["icl_score"], name="ICL score", mode=mode, line={"color": "#9467bd"}), row=1, col=2)
    position = art["position"]
    fig.add_trace(
        go.Scatter(
            x=position, y=art["loss_by_position"][-1], name="per position", mode="lines+markers", line={"color": "#1f77b4"}
        ),
        row=1,
        col=3,
    )
    epoch_columns(fig, epochs, title="epoch (step)")
    fig.update_xaxes(title_text="position", row=1, col=3)
    fig.update_yaxes(title_text="cross-entropy", row=1, col=1)
    fig.update_layout(title=title, width=params["width"], height=params["height"])
    return fig
