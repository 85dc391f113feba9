"""Tiny float64-checkable runs for the curvature tests: checkpoints of a 1-layer modadd
transformer and of the MLP model at p = 5 (built by the workbench's own ``init_params``,
trained a little with Adam), and their training loss written independently of the
analyzers, through the fast path ``last_logits`` on a flat parameter vector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from handmade import adam_trained

from tdw.io.checkpoint import save_checkpoint
from tdw.models.architecture import ModelConfig
from tdw.models.fastpath import last_logits
from tdw.tasks import modular

P, FRAC, SEED, LR = 5, 0.6, 0, 1e-3
ARCHS = {
    "transformer": {
        "n_layers": 1,
        "d_model": 6,
        "n_heads": 2,
        "d_mlp": 10,
        "act": "relu",
        "layernorm": False,
        "unembed_equals": True,
    },
    "mlp": {
        "model": "mlp",
        "embed_combine": "concat",
        "n_layers": 1,
        "d_model": 6,
        "n_heads": 1,
        "d_mlp": 16,
        "act": "relu",
        "layernorm": False,
        "unembed_equals": False,
    },
}


def model_config(kind: str) -> ModelConfig:
    return ModelConfig(p=P, **ARCHS[kind])


def _trained(cfg: ModelConfig, steps: int) -> dict[str, np.ndarray]:
    return adam_trained(cfg, steps, FRAC, SEED)


def write_checkpoints(root: Path, kind: str, epochs: tuple[int, ...] = (0, 60)) -> list[Path]:
    """One checkpoint per epoch: the model after that many Adam steps on its training split."""
    cfg = model_config(kind)
    config = {
        "task": {"operation": "add", "p": P},
        "seed": SEED,
        "architecture": ARCHS[kind] | {"p": P},
        "train": {"train_frac": FRAC, "lr": LR, "betas": [0.9, 0.98]},
    }
    paths = []
    for epoch in epochs:
        paths.append(root / f"checkpoint_epoch_{epoch:05d}.safetensors")
        save_checkpoint(paths[-1], _trained(cfg, epoch), {"epoch": epoch, "config": config})
    return paths


def flatten(weights: dict[str, np.ndarray]) -> torch.Tensor:
    """The parameters in sorted name order as one float64 vector [D]."""
    return torch.cat([torch.as_tensor(np.asarray(weights[k], dtype=np.float64)).reshape(-1) for k in sorted(weights)])


def reference_loss(weights: dict[str, np.ndarray], kind: str, rows: np.ndarray | None = None):
    """w [D] -> mean cross-entropy on ``rows`` (default: the training split), by ``last_logits``."""
    cfg = model_config(kind)
    if rows is None:
        rows, _ = modular.split(P, FRAC, SEED)
    x, y = torch.as_tensor(modular.tokens(P, rows)), torch.as_tensor(modular.labels(P, rows))
    names = sorted(weights)
    shapes = [np.shape(weights[k]) for k in names]

    def loss(w: torch.Tensor) -> torch.Tensor:
        pieces = w.split([int(np.prod(s)) for s in shapes])
        params = {k: t.reshape(s) for k, t, s in zip(names, pieces, shapes, strict=True)}
        return torch.nn.functional.cross_entropy(last_logits(params, cfg, x), y)

    return loss


def full_hessian(weights: dict[str, np.ndarray], kind: str) -> np.ndarray:
    """The exact Hessian [D, D] of ``reference_loss`` at the weights, by ``torch.autograd.functional.hessian``."""
    h = torch.autograd.functional.hessian(reference_loss(weights, kind), flatten(weights), vectorize=True)
    return h.numpy()
