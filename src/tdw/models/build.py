"""The one place that picks a family's model class from its architecture (``ModelConfig.model``):
the forward cache, the trainer's general path and the tests build models here."""

from __future__ import annotations

import torch

from tdw.models.architecture import ModelConfig

MODELS = ("transformer", "mlp")


def build_model(cfg: ModelConfig, params: dict[str, torch.Tensor] | None = None) -> torch.nn.Module:
    """The hooked model of ``cfg`` (``HookedModAdd`` or ``HookedMLP``), with ``params`` loaded
    when given (every parameter of the architecture required)."""
    if cfg.model not in MODELS:
        raise ValueError(f"unknown model {cfg.model!r}; known: {list(MODELS)}")
    if cfg.is_mlp:
        from tdw.models.mlp import HookedMLP as cls
    else:
        from tdw.models.hooked import HookedModAdd as cls
    return cls(cfg) if params is None else cls.from_params(cfg, params)
