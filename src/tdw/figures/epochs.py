"""The checkpoint axis shared by every view: per-checkpoint frames, the epoch indicator
line, and the epoch <-> checkpoint-index mapping."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

INDICATOR = "epoch-indicator"  # shape name the report's script looks for


@dataclass
class Frames:
    """Per-checkpoint restyle updates: ``updates[i]`` maps a trace attribute to one value
    per trace in ``traces`` (Plotly.restyle's format) for the checkpoint at ``epochs[i]``."""

    epochs: list[int]
    traces: list[int]
    updates: list[dict]

    def to_json(self) -> dict:
        return {"epochs": [int(e) for e in self.epochs], "traces": self.traces, "updates": self.updates}


def rounded(values: np.ndarray, digits: int = 5) -> list:
    """Floats to ``digits`` significant digits as a JSON-ready list (keeps payloads small)."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(values == 0, 1.0, 10.0 ** (digits - 1 - np.floor(np.log10(np.abs(values)))))
    return (np.round(values * scale) / scale).tolist()


def nearest_index(epochs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For each target epoch, the index of the nearest epoch in sorted ``epochs`` (ties go
    to the earlier checkpoint)."""
    epochs = np.asarray(epochs)
    targets = np.asarray(targets)
    right = np.clip(np.searchsorted(epochs, targets), 1, len(epochs) - 1) if len(epochs) > 1 else np.zeros(len(targets), int)
    if len(epochs) == 1:
        return right
    left = right - 1
    return np.where(np.abs(targets - epochs[left]) <= np.abs(epochs[right] - targets), left, right)


def add_epoch_indicator(fig: go.Figure, epoch: float, color: str = "#555", xref: str = "x", yref: str = "y domain") -> None:
    """A vertical dashed line at ``epoch``, named so the report can move it."""
    fig.add_shape(
        type="line",
        name=INDICATOR,
        x0=epoch,
        x1=epoch,
        y0=0,
        y1=1,
        xref=xref,
        yref=yref,
        line={"color": color, "width": 1.5, "dash": "dash"},
    )


def with_slider(fig: go.Figure, frames: Frames | None, epochs: list[int]) -> go.Figure:
    """A standalone copy of a figure with its own checkpoint slider (figure HTML files):
    each step applies the frame and moves the epoch indicators."""
    shapes = [i for i, s in enumerate(fig.layout.shapes or ()) if s.name == INDICATOR]
    frame_of = nearest_index(np.asarray(frames.epochs), np.asarray(epochs)) if frames else None
    steps = []
    for i, epoch in enumerate(epochs):
        layout = {f"shapes[{k}].{end}": epoch for k in shapes for end in ("x0", "x1")}
        data = frames.updates[frame_of[i]] if frames and frame_of is not None else {}
        steps.append({"label": str(epoch), "method": "update", "args": [data, layout, frames.traces if frames else None]})
    fig = go.Figure(fig)
    fig.update_layout(
        sliders=[{"active": len(epochs) - 1, "steps": steps, "currentvalue": {"prefix": "epoch "}, "pad": {"t": 50}}]
    )
    return fig


def epoch_columns(fig: go.Figure, epochs: np.ndarray, cols: int = 2, title: str = "epoch") -> None:
    """Columns 1..cols of a one-row subplot figure on the epoch axis: the axis title, the
    checkpoints' range and the epoch indicator at the last checkpoint."""
    for col in range(1, cols + 1):
        axis = "" if col == 1 else str(col)
        add_epoch_indicator(fig, int(epochs[-1]), xref=f"x{axis}", yref=f"y{axis} domain")
        fig.update_xaxes(title_text=title, range=epoch_range(epochs), row=1, col=col)


def epoch_range(epochs: np.ndarray) -> list[float]:
    """A fixed x range over the epochs (half a checkpoint step of padding), so Plotly moves
    the epoch indicator without recomputing autorange."""
    epochs = np.asarray(epochs)
    pad = 0.5 * (epochs[-1] - epochs[0]) / max(len(epochs) - 1, 1) if len(epochs) > 1 else 0.5
    return [float(epochs[0] - pad), float(epochs[-1] + pad)]


def frame_indices(n: int, max_frames: int) -> np.ndarray:
    """At most ``max_frames`` indices into ``n`` checkpoints, evenly spaced, first and last
    included: per-checkpoint frames of large arrays are subsampled to keep reports small."""
    if n <= max_frames:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max(max_frames, 2)).round().astype(int))


def loss_layout(fig: go.Figure, title: str, params: dict, x_range: list[float]) -> go.Figure:
    """Layout shared by loss-over-epochs views: a one-line legend above the plot, out of the
    data's way; log or linear loss axis; a fixed epoch range, so that moving the indicator
    does not recompute the autorange."""
    fig.update_layout(
        title=title,
        width=params["width"],
        height=params["height"],
        xaxis_title="epoch",
        yaxis_title="cross-entropy loss",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0, "font": {"size": 11}},
        margin={"t": 70},
        hovermode="closest",
    )
    fig.update_yaxes(type="log" if params["log_y"] else "linear", exponentformat="power")
    fig.update_xaxes(range=x_range)
    return fig


def overlaid_loss_layout(fig: go.Figure, title: str, **layout) -> go.Figure:
    """The layout of many variants' loss curves in one plot (comparison and sweep pages):
    epoch axis, log loss axis, legend groups that toggle a variant's train and test lines."""
    fig.update_layout(
        title=title,
        xaxis_title="epoch",
        yaxis_title="cross-entropy loss",
        height=480,
        legend={"font": {"size": 10}, "groupclick": "togglegroup"},
        **layout,
    )
    fig.update_yaxes(type="log", exponentformat="power")
    return fig
