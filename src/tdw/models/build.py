"""The one place that picks a family's model class from its architecture (``ModelConfig.model``):
the forward cache, the trainer's general path and the tests build models here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from tdw.models.architecture import ModelConfig

if TYPE_CHECKING:  # transformer_lens costs ~1.7 s to import: only where a model is built
    from transformer_lens.HookedRootModule import HookedRootModule

MODELS = ("transformer", "mlp")


def build_model(cfg: ModelConfig, params: dict[str, torch.Tensor] | None = None) -> HookedRootModule:
    """The hooked model of ``cfg`` (``HookedModAdd`` or ``HookedMLP``), with ``params`` loaded
    when given (every parameter of the architecture required)."""
    if cfg.model not in MODELS:
        raise ValueError(f"unknown model {cfg.model!r}; known: {list(MODELS)}")
    if cfg.is_mlp:
        from tdw.models.mlp import HookedMLP

        return HookedMLP(cfg) if params is None else HookedMLP.from_params(cfg, params)
    from tdw.models.hooked import HookedModAdd

    return HookedModAdd(cfg) if params is None else HookedModAdd.from_params(cfg, params)
