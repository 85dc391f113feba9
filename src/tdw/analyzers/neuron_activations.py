"""Neuron activations over the (a, b) input grid: heat-map data for chosen neurons.

Per checkpoint: the p x p activation grid (``blocks.{last}.mlp.hook_post`` at the `=` position,
y axis a, x axis b) of the selected neurons and its 2D Fourier transform F M F^T, plus the
mean 2D Fourier energy over all neurons. Selection (``neurons`` in params, else derived
from the final checkpoint): the ``per_cluster`` highest-FVE neurons of each frequency
cluster (see ``neuron_clusters``) and the first ``first_k`` neurons. Grids are stored for
at most ``max_grid_epochs`` checkpoints, evenly spaced, first and last included (grids of
every neuron at every checkpoint would be gigabytes); the mean energy for all.
"""

from __future__ import annotations

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView, Param
from tdw.analyzers.fourier import fourier_2d_fast, fourier_basis
from tdw.analyzers.neuron_clusters import POST, assign_clusters, neuron_fve


def select_neurons(fve: np.ndarray, threshold: float, per_cluster: int, first_k: int) -> np.ndarray:
    """fve [neuron, freq] -> sorted neuron indices: the best ``per_cluster`` of each
    cluster plus the first ``first_k``."""
    _, cluster = assign_clusters(fve, threshold)
    chosen = set(range(min(first_k, len(fve))))
    for k in np.unique(cluster[cluster > 0]):
        members = np.flatnonzero(cluster == k)
        chosen |= set(members[np.argsort(-fve[members, k - 1])][:per_cluster].tolist())
    return np.array(sorted(chosen), dtype=np.int64)


def spaced_epochs(epochs: np.ndarray, count: int) -> np.ndarray:
    """At most ``count`` epochs, evenly spaced over the list, first and last included."""
    if len(epochs) <= count:
        return np.asarray(epochs)
    return np.asarray(epochs)[np.unique(np.linspace(0, len(epochs) - 1, count).round().astype(int))]


class NeuronActivations(Analyzer):
    name = "neuron_activations"
    on_group = True
    models = ("transformer", "mlp")
    reads = (POST,)
    needs_full_grid = True
    description = "activation grids of selected neurons, their 2D Fourier transforms, mean Fourier energy"
    params = (
        Param("neurons", list[int] | None, None, "neurons to store grids of; null: selected from the final checkpoint"),
        Param("per_cluster", int, 2, "selection: the highest-FVE neurons of each frequency cluster"),
        Param("first_k", int, 4, "selection: also the first neurons by index"),
        Param("threshold", float, 0.85, "selection: the FVE threshold of the clusters (see neuron_clusters)"),
        Param("max_grid_epochs", int, 100, "grids are stored for at most this many checkpoints, evenly spaced"),
    )
    dims = {"mean_fourier_energy": "fourier_row fourier_col"}

    def prepare(self, final: CheckpointView, epochs: np.ndarray, params: dict) -> dict:
        if params["neurons"] is not None:
            neurons = np.asarray(params["neurons"], dtype=np.int64)
        else:
            fve = neuron_fve(final.activation(POST), final.p)
            neurons = select_neurons(fve, params["threshold"], params["per_cluster"], params["first_k"])
        return {"neurons": neurons, "grid_epochs": spaced_epochs(epochs, params["max_grid_epochs"])}

    def step(self, view: CheckpointView, params: dict, state: dict) -> dict[str, np.ndarray]:
        p = view.p
        grid = view.activation(POST).reshape(p, p, -1).astype(np.float32)  # [a, b, neuron]
        hat = fourier_2d_fast(grid, fourier_basis(p))  # [fourier_row, fourier_col, neuron]
        out = {"mean_fourier_energy": (hat.astype(np.float64) ** 2).mean(-1)}
        if view.epoch in state["grid_epochs"]:
            sel = state["neurons"]
            out["grid"] = np.moveaxis(grid[:, :, sel], -1, 0).astype(np.float16)  # [neuron, a, b]
            out["fourier"] = np.moveaxis(hat[:, :, sel], -1, 0).astype(np.float16)
        return out

    def finalize(self, epochs, steps, params, state):
        out = super().finalize(epochs, steps, params, state)
        out["neuron"] = (state["neurons"], "selected_neuron")
        out["grid_epoch"] = (np.asarray(state["grid_epochs"]), "grid_epoch")
        out["grid"] = (np.stack([s["grid"] for s in steps if "grid" in s]), "grid_epoch selected_neuron a b")
        out["fourier"] = (
            np.stack([s["fourier"] for s in steps if "fourier" in s]),
            "grid_epoch selected_neuron fourier_row fourier_col",
        )
        return out


ANALYZER = NeuronActivations()
