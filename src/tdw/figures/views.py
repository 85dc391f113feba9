"""A view: one figure of one variant, drawn from its artifact, plus what changes per
checkpoint. Reports, the comparison page and the dashboard all assemble views here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from tdw.figures import builder, frames_builder
from tdw.figures.epochs import INDICATOR, Frames, nearest_index


def figure_data(source: str, inputs: dict[str, Path]) -> dict:
    """Load what a figure draws: ``history`` plus checkpoint epochs, or an analyzer artifact."""
    from tdw.io.h5 import load_artifact
    from tdw.io.history import read_history

    if source == "history":
        return {"history": read_history(inputs["history"]), "checkpoint_epochs": checkpoint_epochs(inputs["metadata"])}
    return {"artifact": load_artifact(inputs["artifact"])}


def checkpoint_epochs(metadata: Path | dict) -> list[int]:
    if not isinstance(metadata, dict):
        from tdw.io.variant import read_metadata_json

        metadata = read_metadata_json(metadata)
    meta = metadata
    return [int(c["epoch"]) for c in meta["checkpoints"]]


@dataclass
class View:
    name: str  # the figure's registry name
    title: str
    figure: go.Figure
    frames: Frames | None

    def payload(self, epochs: list[int]) -> dict:
        """JSON for the report page: the figure, its frames, which frame each global
        checkpoint shows, and which shapes are epoch indicators."""
        out = {"figure": json.loads(self.figure.to_json()), "frames": None, "frame_of": None}
        out["indicators"] = [i for i, s in enumerate(self.figure.layout.shapes or ()) if s.name == INDICATOR]
        if self.frames is not None:
            out["frames"] = self.frames.to_json()
            out["frame_of"] = nearest_index(np.asarray(self.frames.epochs), np.asarray(epochs)).tolist()
        return out


def build_view(name: str, data: dict, params: dict, title: str) -> View:
    hook = frames_builder(name)
    return View(name, title, builder(name)(data, params, title), hook(data, params) if hook else None)


def load_view(name: str, source: str, inputs: dict[str, Path], params: dict, title: str) -> View:
    return build_view(name, figure_data(source, inputs), params, title)


def safe_json(obj: object) -> str:
    """JSON that can sit inside a <script> element: no '<' survives unescaped, so text
    such as '</script>' in a title cannot end the element."""
    return json.dumps(obj, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
