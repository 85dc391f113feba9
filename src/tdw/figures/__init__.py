"""Figure builders: artifact data + visual parameters -> a Plotly figure. Nothing here
reads checkpoints or caches; changing a parameter re-renders without recomputation."""

from __future__ import annotations

import importlib

REGISTRY: dict[str, str] = {
    "loss_curves": "tdw.figures.loss_curves",
    "embedding_frequencies": "tdw.figures.embedding_frequencies",
}


def builder(name: str):
    if name not in REGISTRY:
        raise KeyError(f"unknown figure {name!r}; registered: {sorted(REGISTRY)}")
    return importlib.import_module(REGISTRY[name]).build
