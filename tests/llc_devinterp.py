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


def restriction_masks(cfg: ModelConfig, weights: dict, restriction: str | list[str]) -> dict:
    """devinterp 2.0.1's own ``create_param_masks`` (e.g. ``"l0h1"``, ``"l0 mlp"``) on the
    hooked model, named as ``_PairModel``'s parameters."""
    from devinterp.slt.weight_restrictions import create_param_masks

    model = _PairModel(cfg, weights)
    return {f"net.{k}": m for k, m in create_param_masks(model.net, restriction).items()}


def pair_data(cfg: ModelConfig, rows: np.ndarray, operation: str):
    """Rows as devinterp's dataset: ``input_ids = [pair index, label]``."""
    from datasets import Dataset

    labels = modular.labels(cfg.p, rows, operation)
    return Dataset.from_dict({"input_ids": np.stack([rows, labels], 1).tolist()}).with_format("torch")


def _sampler_args(s, n: int) -> dict:
    """devinterp's sampler arguments for the workbench's SGLD settings ``s`` on n training rows."""
    batch = s.batch_size or n
    return {
        "lr": s.epsilon,
        "n_beta": s.nbeta,
        "localization": s.gamma,
        "num_chains": s.chains,
        "num_draws": s.draws,
        "num_burnin_steps": s.burn_in,
        "num_steps_bw_draws": s.steps_between_draws,
        "batch_size": batch,
        "num_init_loss_batches": max(1, n // batch),
        "init_seed": s.seed,
        "loss_fn": _loss,
        "device": "cpu",
    }


def devinterp_llc(cfg: ModelConfig, weights: dict, train: np.ndarray, operation: str, s, param_masks=None) -> dict:
    """devinterp 2.0.1's ``llc`` with the workbench's settings ``s`` (``SGLDSettings``; a
    batch of 0 is the full split), restricted by ``param_masks`` (``restriction_masks``)
    where given. Returns llc_per_chain [chain] and init_loss."""
    from devinterp.slt.llc import llc

    data = pair_data(cfg, train, operation)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = llc(
            _PairModel(cfg, weights),
            data,
            {},
            param_masks=param_masks,
            **_sampler_args(s, len(train)),
            output_path=str(Path(tmp) / "samples.zarr"),
        )
        return {"llc": np.asarray(out["llc_per_chain"].values), "init_loss": float(out["init_loss"])}


def devinterp_samples(
    cfg: ModelConfig, weights: dict, train: np.ndarray, probe: np.ndarray, operation: str, s, restrictions: dict
):
    """devinterp 2.0.1's ``sample`` once per weight restriction ({name: ``restriction_masks``
    or None for the full model}), observing the whole training split ("train", the sampling
    task: batch_size x len(train) // batch_size rows) and as many probe rows as whole batches
    hold ("probe"); with the workbench's settings ``s``. Returns {name: DataTree}, as
    devinterp's ``compute_susceptibilities`` takes them."""
    from devinterp.slt.sampling import sample

    batch = s.batch_size or len(train)
    model = _PairModel(cfg, weights)
    observables = {
        "train": (pair_data(cfg, train, operation), len(train) // batch),
        "probe": (pair_data(cfg, probe, operation), len(probe) // batch),
    }
    out = {}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, masks in restrictions.items():
            tree = sample(
                model,
                pair_data(cfg, train, operation),
                observables,
                param_masks=masks,
                **_sampler_args(s, len(train)),
                output_path=str(Path(tmp) / f"samples_{name}.zarr"),
            )
            out[name] = tree.load()  # in memory before the folder goes
    return out
