"""Figure builders: artifact data + visual parameters -> a Plotly figure. Nothing here
reads checkpoints or caches; changing a parameter re-renders without recomputation.

A figure module defines

- ``build(data, params, title) -> go.Figure``: the figure at the final checkpoint; an
  x axis in epochs carries an epoch indicator (``tdw.figures.epochs.add_epoch_indicator``)
  that reports and the dashboard move to the selected checkpoint;
- ``PARAMS``: its visual parameters (``tdw.params.Param``: name, type, default, meaning),
  which ``build`` and ``frames`` receive complete and checked; a family's or config's
  ``figures.<name>`` gives overrides only;
- optionally ``frames(data, params) -> Frames``: what changes per checkpoint, as Plotly
  restyle updates, so one global checkpoint slider can drive every view.

Adding a figure is one module, one line in ``REGISTRY`` and an entry in the family's
``figures`` section (its artifact source).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from tdw.params import Param

REGISTRY: dict[str, str] = {
    "loss_curves": "tdw.figures.loss_curves",
    "embedding_frequencies": "tdw.figures.embedding_frequencies",
    "neuron_activations": "tdw.figures.neuron_activations",
    "neuron_clusters": "tdw.figures.neuron_clusters",
    "progress_losses": "tdw.figures.progress_losses",
    "progress_weights": "tdw.figures.progress_weights",
    "attention": "tdw.figures.attention",
    "dimensionality": "tdw.figures.dimensionality",
    "transitions": "tdw.figures.transitions",
    "geometry": "tdw.figures.geometry",
    "ablations": "tdw.figures.ablations",
    "head_ablations": "tdw.figures.head_ablations",
    "weight_norms": "tdw.figures.weight_norms",
    "induction": "tdw.figures.induction",
    "induction_loss": "tdw.figures.induction_loss",
    "attention_offsets": "tdw.figures.attention_offsets",
    "clock_pizza": "tdw.figures.clock_pizza",
    "llc": "tdw.figures.llc",
    "llc_calibration": "tdw.figures.llc_calibration",
    "lmc": "tdw.figures.lmc",
    "cka": "tdw.figures.cka",
    "essential_dynamics": "tdw.figures.essential_dynamics",
    "sharpness": "tdw.figures.sharpness",
    "interventions": "tdw.figures.interventions",
    "llc_restricted": "tdw.figures.llc_restricted",
    "susceptibilities": "tdw.figures.susceptibilities",
}


def module(name: str) -> ModuleType:
    if name not in REGISTRY:
        raise KeyError(f"unknown figure {name!r}; registered: {sorted(REGISTRY)}")
    return importlib.import_module(REGISTRY[name])


def builder(name: str):
    return module(name).build


def frames_builder(name: str):
    """The figure's per-checkpoint hook, or None for a figure that does not change."""
    return getattr(module(name), "frames", None)


def params(name: str) -> tuple[Param, ...]:
    """The visual parameters figure ``name`` declares."""
    return module(name).PARAMS


def size_params(width: int, height: int) -> tuple[Param, Param]:
    """The figure size every figure declares, with its own defaults."""
    return Param("width", int, width, "figure width in pixels"), Param("height", int, height, "figure height in pixels")
