"""Progress measures (Nanda et al. 2023, section 5): restricted and excluded loss, Gini of
Fourier norms, weight norms, key-frequency shares of logits and neurons, logit periodicity.

The key-frequency shares are the ARENA chapter's fractions of variance explained by the key
frequencies' terms: ``logit_key_fraction`` for the logits (their projection on the c_k, s_k),
``neuron_key_fraction`` for ``mlp.hook_post`` and ``pre_key_fraction`` for ``mlp.hook_pre``
(per key k, the share of the neurons' centred grid energy in the 3x3 blocks {0, 2k-1, 2k}^2:
const, cos/sin(w_k a), cos/sin(w_k b) and their products; they add up over the keys).

Key frequencies come from the final checkpoint (``tdw.analyzers.keyfreq``) and are reused for every
checkpoint. With D the unit directions c_k, s_k of the key frequencies over the grid, along
cos/sin(w_k t) of the target residue t (a + b, or a - b for subtraction, where the logits of
class c go as cos(w_k (a - b - c)) and lie in the same span):
restricted logits = D D^T L + mean_rows(L); excluded logits = L - D_k D_k^T L (per key k,
and for all keys at once). Losses are cross-entropies with the `=` class dropped; train and
test rows come from the run's seeded split.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView, StepValues
from tdw.analyzers.fourier import centred_grid, embedding_component_norms, fourier_2d_fast, fourier_basis, gini, sum_directions
from tdw.analyzers.keyfreq import KEY_FREQUENCY_PARAMS, key_frequencies
from tdw.analyzers.losses import cross_entropy, periodicity
from tdw.analyzers.weightmath import neuron_logit_map, sum_sq
from tdw.models import hooks

LOGITS, POST, PRE = hooks.LOGITS, hooks.hook(0, hooks.MLP_POST), hooks.hook(0, hooks.MLP_PRE)


def key_block_share(post: np.ndarray, p: int, keys: np.ndarray) -> np.ndarray:
    """Share of each neuron-grid's centred energy in the blocks {0, 2k-1, 2k}^2 of the key
    frequencies, summed over neurons: [key] per key, computed on the 1 + 2K basis rows only."""
    rows = np.concatenate([[0], np.ravel([[2 * k - 1, 2 * k] for k in keys])])
    grid = centred_grid(post, p)  # [a, b, neuron]
    basis = fourier_basis(p)
    if p % 2 == 0:  # the frequency p / 2 has no sin row: a zero one
        basis = np.vstack([basis, np.zeros(p)])
    sub = fourier_2d_fast(grid, basis[rows]).astype(np.float64) ** 2  # [r, r, neuron]
    total = float((grid.astype(np.float64) ** 2).sum())
    share = []
    for i in range(len(keys)):
        idx = [0, 1 + 2 * i, 2 + 2 * i]
        share.append(sub[np.ix_(idx, idx)].sum() / total if total > 0 else 0.0)
    return np.array(share)


def weight_measures(weights: dict[str, np.ndarray], p: int, names: list[str]) -> dict[str, np.ndarray]:
    """Gini of the Fourier component norms of W_E and of W_L = W_out W_U, and sums of
    squared weights."""
    w_l = neuron_logit_map(weights, 0)[:, :p]  # [d_mlp, p]
    sq = sum_sq(weights, names)
    return {
        "gini_embed": np.float64(gini(embedding_component_norms(weights["embed.W_E"], p))),
        "gini_unembed": np.float64(gini(np.linalg.norm(w_l @ fourier_basis(p).T, axis=0))),
        "sum_sq_weights": sq,
        "total_sum_sq_weights": sq.sum(),
    }


class ProgressMeasures(Analyzer):
    name = "progress_measures"
    on_group = True
    reads = (LOGITS, POST, PRE)
    needs_full_grid = True
    description = "restricted/excluded loss, Gini of Fourier norms, weight norms, key-frequency shares, periodicity"
    params = (*KEY_FREQUENCY_PARAMS,)
    dims = {
        "train_loss": "",
        "test_loss": "",
        "restricted_loss": "",
        "restricted_loss_train": "",
        "excluded_loss": "key_frequency",
        "excluded_loss_all": "",
        "test_restricted_ratio": "",
        "n_train": "",
        "n_test": "",
        "gini_embed": "",
        "gini_unembed": "",
        "sum_sq_weights": "parameter",
        "total_sum_sq_weights": "",
        "logit_key_fraction": "",
        "neuron_key_fraction": "key_frequency",
        "pre_key_fraction": "key_frequency",
        "logit_periodicity": "frequency",
    }

    def prepare(self, final: CheckpointView, epochs: np.ndarray, params: dict) -> dict:
        return {
            "keys": key_frequencies(final.weights, final.p, params["key_frequencies"], params["key_fraction"]),
            "parameters": sorted(final.weights),
        }

    def step(self, view: CheckpointView, params: dict, state: dict) -> StepValues:
        p, keys = view.p, state["keys"]
        logits = view.activation(LOGITS)[:, :p].astype(np.float64)  # [p*p, p]
        labels = view.labels()
        train, test = view.split()
        d = sum_directions(p, view.pair_index, keys, view.operation)  # [p*p, 2K]
        coef = d.T @ logits  # [2K, p]
        restricted = d @ coef + logits.mean(0)
        excluded = [
            cross_entropy(logits[train] - d[train, 2 * i : 2 * i + 2] @ coef[2 * i : 2 * i + 2], labels[train])
            for i in range(len(keys))
        ]
        centred = logits - logits.mean(0)
        out: dict[str, Any] = {
            "train_loss": np.float64(cross_entropy(logits[train], labels[train])),
            "test_loss": np.float64(cross_entropy(logits[test], labels[test])),
            "restricted_loss": np.float64(cross_entropy(restricted, labels)),
            "restricted_loss_train": np.float64(cross_entropy(restricted[train], labels[train])),
            "excluded_loss": np.array(excluded),
            "excluded_loss_all": np.float64(cross_entropy(logits[train] - d[train] @ coef, labels[train])),
            "logit_key_fraction": np.float64(np.sum(coef**2) / max(np.sum(centred**2), 1e-300)),
            "neuron_key_fraction": key_block_share(view.activation(POST), p, keys),
            "pre_key_fraction": key_block_share(view.activation(PRE), p, keys),
            "logit_periodicity": periodicity(logits, labels, p),
        }
        out["test_restricted_ratio"] = out["test_loss"] / out["restricted_loss"]
        out["n_train"], out["n_test"] = np.int64(len(train)), np.int64(len(test))
        return out | weight_measures(view.weights, p, state["parameters"])

    def finalize(self, epochs, steps, params, state):
        out = super().finalize(epochs, steps, params, state)
        out["key_frequency"] = (state["keys"], "key_frequency")
        out["frequency"] = (np.arange(1, len(steps[0]["logit_periodicity"]) + 1), "frequency")
        out["parameter"] = (np.array(state["parameters"], dtype="S"), "parameter")
        return out


ANALYZER = ProgressMeasures()
