"""Quantities of the weights that several analyzers share (numpy, float64): sums of squared
weights and W_L = W_out W_U, the map from a block's MLP neurons to the logits."""

from __future__ import annotations

import numpy as np

from tdw.models.hooks import block


def sum_sq(weights: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    """Sum of squared entries of each named parameter, in float64: [len(names)]."""
    return np.array([float(np.sum(weights[n].astype(np.float64) ** 2)) for n in names])


def total_sum_sq(weights: dict[str, np.ndarray]) -> np.float64:
    """Sum of squared entries over every parameter (in name order), in float64."""
    return np.float64(sum_sq(weights, sorted(weights)).sum())


def neuron_logit_map(weights: dict[str, np.ndarray], layer: int) -> np.ndarray:
    """W_L = W_out W_U [d_mlp, d_vocab_out] in float64, for block ``layer``'s MLP: the logits'
    change per unit of each neuron's activation when nothing but the unembedding follows
    (the last block, without a final LayerNorm)."""
    return weights[f"{block(layer)}.mlp.W_out"].astype(np.float64) @ weights["unembed.W_U"]
