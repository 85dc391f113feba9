"""Dimensionality of activations per checkpoint, from the singular values s_i of an
activation matrix [batch, features] (centred over the batch when ``centred``, the default):

stable rank sum s^2 / s_1^2; participation ratio (sum s^2)^2 / sum s^4; effective rank
exp(-sum q log q) with q = s / sum s; the smallest rank holding ``energy`` (90 %) of
sum s^2; nuclear-norm ratio sum s / s_1. Singular values come from the eigenvalues of the
[features, features] Gram matrix, so a p = 113 grid costs one [12769, 512] product.

On token sequences (the induction task) the rows are every (sequence, position) pair the
probe holds (padding left out) at the positions the cache keeps; trailing axes (a head's
``hook_z``) are flattened into features.
"""

from __future__ import annotations

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView, Param, resolve_hook
from tdw.analyzers.induction import LENGTH, read_rows, valid_positions
from tdw.io.h5 import open_h5
from tdw.models import hooks
from tdw.models.architecture import ModelConfig
from tdw.tasks.sequence import OPERATION as SEQUENCE

DEFAULT_HOOKS = tuple(hooks.hook(hooks.LAST, h) for h in (hooks.RESID_MID, hooks.RESID_POST, hooks.MLP_POST))
METRICS = ("stable_rank", "participation_ratio", "effective_rank", "energy_rank", "nuclear_ratio")


def singular_values(x: np.ndarray, centred: bool) -> np.ndarray:
    """x [batch, features] -> singular values, descending [min(batch, features)]."""
    x = x.astype(np.float64)
    if centred:
        x = x - x.mean(0)
    gram = x.T @ x if x.shape[0] >= x.shape[1] else x @ x.T
    return np.sqrt(np.clip(np.linalg.eigvalsh(gram)[::-1], 0, None))


def dimension_metrics(s: np.ndarray, energy: float = 0.9) -> dict[str, float]:
    """The five measures from singular values s (descending); all 0 for a zero matrix."""
    if s[0] <= 0:
        return dict.fromkeys(METRICS, 0.0)
    sq = s**2
    q = s / s.sum()
    q = q[q > 0]
    return {
        "stable_rank": float(sq.sum() / sq[0]),
        "participation_ratio": float(sq.sum() ** 2 / np.sum(sq**2)),
        "effective_rank": float(np.exp(-np.sum(q * np.log(q)))),
        "energy_rank": float(np.searchsorted(np.cumsum(sq) / sq.sum(), energy - 1e-12) + 1),
        "nuclear_ratio": float(s.sum() / s[0]),
    }


def activation_matrix(view: CheckpointView, hook: str) -> np.ndarray:
    """The rows measured [rows, features]: the cached rows of a grid task; every valid
    (sequence, position) pair of a sequence cache kept at all positions."""
    if view.operation != SEQUENCE:
        return view.activation(hook)
    rows = read_rows(view, [LENGTH, hook])
    act = rows[hook]
    if view.cache is None:
        raise ValueError(f"no cache given for epoch {view.epoch}")
    with open_h5(view.cache) as fh:
        per_position = fh[hook].attrs["dims"].split()[1] == "pos"  # kept at every position (tdw.cache.forward)
    if not per_position:  # one position per sequence: the rows are the sequences
        return act.reshape(len(act), -1)
    return act[valid_positions(rows[LENGTH], act.shape[1])].reshape(-1, int(np.prod(act.shape[2:])))


class Dimensionality(Analyzer):
    name = "dimensionality"
    operations = None
    models = ("transformer", "mlp")
    reads = DEFAULT_HOOKS
    description = "stable rank, participation ratio, effective rank, 90%-energy rank, nuclear-norm ratio of activations"
    params = (
        Param("hooks", list[str], DEFAULT_HOOKS, "activations measured (blocks.{last}. is the last block)"),
        Param("centred", bool, True, "centre each activation matrix over the batch first"),
        Param("energy", float, 0.9, "energy_rank: the smallest rank holding this share of sum s^2"),
        Param("n_singular_values", int, 16, "leading singular values stored per hook"),
    )
    dims = dict.fromkeys(METRICS, "hook") | {"top_singular_values": "hook rank"}

    def reads_for(self, model: ModelConfig, params: dict) -> tuple[str, ...]:
        return tuple(params.get("hooks", DEFAULT_HOOKS))

    def prepare(self, final: CheckpointView, epochs: np.ndarray, params: dict) -> dict:
        return {"hooks": [resolve_hook(h, final.model) for h in params["hooks"]]}

    def step(self, view: CheckpointView, params: dict, state: dict) -> dict[str, np.ndarray]:
        hooks = state["hooks"]
        out: dict[str, list] = {m: [] for m in METRICS}
        top = []
        n_top = params["n_singular_values"]
        for hook in hooks:
            s = singular_values(activation_matrix(view, hook), params["centred"])
            for m, v in dimension_metrics(s, params["energy"]).items():
                out[m].append(v)
            top.append(np.pad(s[:n_top], (0, max(0, n_top - len(s)))))
        return {m: np.array(v) for m, v in out.items()} | {"top_singular_values": np.array(top)}

    def finalize(self, epochs, steps, params, state):
        out = super().finalize(epochs, steps, params, state)
        out["hook"] = (np.array(state["hooks"], dtype="S"), "hook")
        out["centred"] = (np.array(params["centred"]), "")
        return out


ANALYZER = Dimensionality()
