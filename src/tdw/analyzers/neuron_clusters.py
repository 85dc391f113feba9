"""Neuron frequency clusters: which MLP neurons specialise in which frequency.

Per neuron n and frequency k = 1..p//2 (p//2 included): centre the neuron's activation over
all p^2 inputs, take the 2D Fourier transform of its p x p grid, and
FVE_n(k) = energy in the 3x3 block {0, 2k-1, 2k}^2 / total energy. The neuron's frequency
is argmax_k FVE_n(k); its cluster is that k when the FVE exceeds ``threshold`` (default
0.85, the paper's), else 0 (unclustered). ``quadratic_fve``: the share of the same energy in
the products cos/sin(w_k a) cos/sin(w_k b) of the neuron's frequency alone (the 2x2 block
{2k-1, 2k}^2), the ARENA chapter's check that neurons compute quadratic terms.
"""

from __future__ import annotations

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView, Param
from tdw.analyzers.fourier import block_fve, centred_fourier_2d, quadratic_fve
from tdw.models import hooks

POST = hooks.hook(hooks.LAST, hooks.MLP_POST)


def neuron_energy(post: np.ndarray, p: int) -> np.ndarray:
    """post [p*p, d_mlp] (rows in row-major (a, b) order) -> squared 2D Fourier coefficients of
    each neuron's centred grid, [p, p, d_mlp] float64."""
    return centred_fourier_2d(post, p).astype(np.float64) ** 2


def neuron_fve(post: np.ndarray, p: int) -> np.ndarray:
    """post [p*p, d_mlp] (rows in row-major (a, b) order) -> FVE [d_mlp, p//2]."""
    return block_fve(neuron_energy(post, p)).T


def assign_clusters(fve: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """fve [..., neuron, freq] -> (best frequency, cluster) [..., neuron]; cluster 0 is
    unclustered."""
    best = fve.argmax(-1) + 1
    return best, np.where(fve.max(-1) > threshold, best, 0)


class NeuronClusters(Analyzer):
    name = "neuron_clusters"
    on_group = True
    models = ("transformer", "mlp")
    reads = (POST,)
    needs_full_grid = True
    description = "per-neuron FVE by each frequency, best frequency, clusters at an FVE threshold"
    params = (Param("threshold", float, 0.85, "a neuron is in its best frequency's cluster when that FVE exceeds this"),)
    dims = {
        "fve": "neuron frequency",
        "best_frequency": "neuron",
        "cluster": "neuron",
        "cluster_size": "cluster_label",
        "quadratic_fve": "neuron",
    }

    def step(self, view: CheckpointView, params: dict, state: dict) -> dict[str, np.ndarray]:
        energy = neuron_energy(view.activation(POST), view.p)  # one transform for both shares
        fve = block_fve(energy).T  # [neuron, frequency]
        best, cluster = assign_clusters(fve, params["threshold"])
        quad = quadratic_fve(energy).T[np.arange(len(best)), best - 1]  # [neuron]: at each neuron's frequency
        return {
            "fve": fve.astype(np.float32),
            "quadratic_fve": quad.astype(np.float32),
            "best_frequency": best,
            "cluster": cluster,
            "cluster_size": np.bincount(cluster, minlength=view.p // 2 + 1),
        }

    def finalize(self, epochs, steps, params, state):
        out = super().finalize(epochs, steps, params, state)
        k = steps[0]["fve"].shape[1]
        out["frequency"] = (np.arange(1, k + 1), "frequency")
        out["cluster_label"] = (np.arange(k + 1), "cluster_label")  # 0: unclustered
        final = steps[-1]["cluster_size"]
        out["final_clusters"] = (np.flatnonzero(final[1:]) + 1, "final_cluster")
        return out


ANALYZER = NeuronClusters()
