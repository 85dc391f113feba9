"""Weight matching (Ainsworth, Hayase and Srinivasa 2023, "Git Re-Basin"): the permutation
of one model's hidden units that brings its weights closest to another's, and its application.

The units permuted are the ones the forward pass is symmetric under without touching the
residual stream: each block's MLP neurons (columns of ``W_in`` and ``b_in``, rows of
``W_out``) and each block's attention heads (whole heads: ``W_Q``, ``W_K``, ``W_V``, their
biases where a model has them, and ``W_O``), and the MLP model's hidden neurons (columns of
``mlp.W_in`` and ``mlp.b_in``, rows of ``unembed.W_U``). For each unit group the matching
maximises sum_i <w_A(i), w_B(pi(i))>, the inner product of all weights touching unit i of A and
unit pi(i) of B, by ``scipy.optimize.linear_sum_assignment``. With the residual stream
(embedding, positions, LayerNorm, unembedding) left in place, every group's objective involves
only that group's permutation: one assignment per group is the exact optimum, at any depth.
Permuting the residual stream's coordinates too (``residual``) couples every group to it, and
the groups are then solved coordinate-wise, in turn, until none changes.

numpy only; weights are ``{name: array}`` in TransformerLens orientation (``tdw.models.weights``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from tdw.models.architecture import ModelConfig
from tdw.models.hooks import block

Weights = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class UnitGroup:
    """Units permuted together: ``axes`` maps each weight touching them to its unit axis."""

    name: str  # "blocks.0.mlp", "blocks.0.attn", "mlp"
    axes: Mapping[str, int]

    def size(self, weights: Weights) -> int:
        name, axis = next(iter(self.axes.items()))
        return int(weights[name].shape[axis])


def residual_group(cfg: ModelConfig, names: frozenset[str] | set[str]) -> UnitGroup:
    """The residual stream's coordinates as one unit group: every weight that reads or writes
    it, on its d_model axis (LayerNorm is equivariant under a permutation of the coordinates,
    so this too leaves the function unchanged)."""
    axes = {"embed.W_E": 1, "pos_embed.W_pos": 1, "unembed.W_U": 0, "ln_final.w": 0, "ln_final.b": 0}
    for i in range(cfg.n_layers):
        b = block(i) + "."
        axes |= {f"{b}attn.{w}": 1 for w in ("W_Q", "W_K", "W_V")} | {f"{b}attn.W_O": 2, f"{b}attn.b_O": 0}
        axes |= {f"{b}mlp.W_in": 0, f"{b}mlp.W_out": 1, f"{b}mlp.b_out": 0}
        axes |= {f"{b}{ln}.{w}": 0 for ln in ("ln1", "ln2") for w in ("w", "b")}
    return UnitGroup("resid", {k: v for k, v in axes.items() if k in names})


def unit_groups(cfg: ModelConfig, names: frozenset[str] | set[str] | None = None) -> tuple[UnitGroup, ...]:
    """The permutable unit groups of a model, in block order. ``names``: the weights present
    (attention biases ``b_Q``, ``b_K``, ``b_V`` join their heads' group where present)."""
    if cfg.is_mlp:
        return (UnitGroup("mlp", {"mlp.W_in": 1, "mlp.b_in": 0, "unembed.W_U": 0}),)
    groups = []
    for i in range(cfg.n_layers):
        b = block(i) + "."
        heads = {f"{b}attn.{w}": 0 for w in ("W_Q", "W_K", "W_V", "W_O")}
        heads |= {f"{b}attn.{w}": 0 for w in ("b_Q", "b_K", "b_V") if names is not None and f"{b}attn.{w}" in names}
        groups.append(UnitGroup(f"{b}attn", heads))
        if not cfg.attn_only:
            groups.append(UnitGroup(f"{b}mlp", {f"{b}mlp.W_in": 1, f"{b}mlp.b_in": 0, f"{b}mlp.W_out": 0}))
    return tuple(groups)


def unit_vectors(weights: Weights, group: UnitGroup) -> np.ndarray:
    """Every weight touching each unit of ``group``, flattened side by side: [units, features] (float64)."""
    parts = [np.moveaxis(np.asarray(weights[name], dtype=np.float64), axis, 0) for name, axis in group.axes.items()]
    return np.concatenate([p.reshape(p.shape[0], -1) for p in parts], axis=1)


def similarity(a: Weights, b: Weights, group: UnitGroup) -> np.ndarray:
    """[units_A, units_B]: the inner product of unit i of A's weights with unit j of B's."""
    return unit_vectors(a, group) @ unit_vectors(b, group).T


def match_weights(
    a: Weights, b: Weights, cfg: ModelConfig, residual: bool = False, max_rounds: int = 50
) -> dict[str, np.ndarray]:
    """For each unit group, the permutation ``perm`` [units] (int64) that maximises
    sum_i <A(i), B(perm[i])>: unit i of the matched B is B's unit ``perm[i]`` (``permute``).

    ``residual``: also permute the residual stream's coordinates (``residual_group``, key
    ``"resid"``; not for the MLP model, whose hidden layer reads the embeddings directly). Its
    objective shares weights with every other group's, so the groups are then solved in turn,
    each against B with the others' current permutations applied, until a round changes none
    (at most ``max_rounds``; each step cannot lower the total objective)."""
    groups = unit_groups(cfg, set(a))
    if residual and not cfg.is_mlp:
        groups = (residual_group(cfg, set(a)), *groups)
    perms = {g.name: np.arange(g.size(b)) for g in groups}
    for _ in range(max_rounds if residual else 1):
        changed = False
        for group in groups:
            current = permute(b, perms, cfg) if residual else b
            rows, cols = linear_sum_assignment(similarity(a, current, group), maximize=True)
            step = np.empty(len(rows), dtype=np.int64)
            step[rows] = cols
            if not np.array_equal(step, np.arange(len(step))):
                changed = True
                perms[group.name] = perms[group.name][step]
        if not changed:
            break
    return perms


def permute(weights: Weights, perms: Mapping[str, np.ndarray], cfg: ModelConfig) -> dict[str, np.ndarray]:
    """The weights with each group's units reordered: unit i becomes unit ``perms[group][i]``
    (a group missing from ``perms`` stays as it is). The function computed is unchanged."""
    out = dict(weights)
    groups = unit_groups(cfg, set(weights))
    if "resid" in perms:
        groups = (residual_group(cfg, set(weights)), *groups)
    for group in groups:
        if group.name not in perms:
            continue
        perm = np.asarray(perms[group.name])
        if sorted(perm.tolist()) != list(range(group.size(weights))):
            raise ValueError(f"{group.name}: {perm.tolist()} is not a permutation of {group.size(weights)} units")
        for name, axis in group.axes.items():
            out[name] = np.take(out[name], perm, axis=axis)
    return out


def matching_objective(a: Weights, b: Weights, cfg: ModelConfig) -> float:
    """sum over groups and units of <A(i), B(i)>: what ``match_weights`` maximises, for each
    group separately, over B's orders (without ``residual``)."""
    return float(sum(np.einsum("uf,uf->", unit_vectors(a, g), unit_vectors(b, g)) for g in unit_groups(cfg, set(a))))
