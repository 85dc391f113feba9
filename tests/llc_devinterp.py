"""devinterp's LLC estimator on a workbench model (the reference for tests/test_llc.py and
bench/bench_llc.py): the hooked model (transformer or MLP) wrapped as a plain module, each training row as
``input_ids = [pair index, label]`` and its cross-entropy as the one "token" loss."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tdw.models.architecture import ModelConfig
from tdw.models.build import build_model
from tdw.tasks import modular


class _PairModel(nn.Module):
    """Pair index -> last-position logits (no ``cfg`` attribute: devinterp moves a module
    with one as a TransformerLens model)."""

    def __init__(self, cfg: ModelConfig, weights: dict[str, np.ndarray]):
        super().__init__()
        self.net = build_model(cfg, {k: torch.as_tensor(np.asarray(v, dtype=np.float32)) for k, v in weights.items()})
        self.p = cfg.p

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        a, b = index // self.p, index % self.p
        return self.net(torch.stack([a, b, torch.full_like(a, self.p)], -1))[:, -1]


def _loss(model: _PairModel, input_ids: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids[:, 0]).double()
    return -logits.log_softmax(-1).gather(-1, input_ids[:, 1:2]).float()  # [batch, 1]


def devinterp_llc(cfg: ModelConfig, weights: dict, train: np.ndarray, operation: str, s) -> dict:
    """devinterp 2.0.1's ``llc`` with the workbench's settings ``s`` (``SGLDSettings``; a
    batch of 0 is the full split). Returns llc_per_chain [chain] and init_loss."""
    from datasets import Dataset
    from devinterp.slt.llc import llc

    labels = modular.labels(cfg.p, train, operation)
    data = Dataset.from_dict({"input_ids": np.stack([train, labels], 1).tolist()}).with_format("torch")
    batch = s.batch_size or len(train)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = llc(
            _PairModel(cfg, weights),
            data,
            {},
            lr=s.epsilon,
            n_beta=s.nbeta,
            localization=s.gamma,
            num_chains=s.chains,
            num_draws=s.draws,
            num_burnin_steps=s.burn_in,
            num_steps_bw_draws=s.steps_between_draws,
            batch_size=batch,
            num_init_loss_batches=max(1, len(train) // batch),
            init_seed=s.seed,
            loss_fn=_loss,
            device="cpu",
            output_path=str(Path(tmp) / "samples.zarr"),
        )
        return {"llc": np.asarray(out["llc_per_chain"].values), "init_loss": float(out["init_loss"])}
