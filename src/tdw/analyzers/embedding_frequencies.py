"""Dominant embedding frequencies: the token embedding in the Fourier basis, to see which frequencies emerge.

Per checkpoint: component norms n_j = ||(F W_E)_j|| over the basis rows (const, cos 1,
sin 1, ...) and per-frequency norms N_k = sqrt(n_{2k-1}^2 + n_{2k}^2). A frequency is
dominant at a checkpoint when N_k >= dominant_fraction * max_k N_k (the rule is recorded
in the artifact); key frequencies are the dominant ones at the final checkpoint. Also the singular values of
W_E without the `=` row, [p, d_model], descending (the ARENA chapter's embedding SVD: a
low-rank embedding holds few frequencies).
"""

from __future__ import annotations

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView, Param
from tdw.analyzers.fourier import basis_names, embedding_component_norms, frequency_norms


class EmbeddingFrequencies(Analyzer):
    name = "embedding_frequencies"
    on_group = True
    models = ("transformer", "mlp")
    description = "Fourier component norms of the token embedding (the `=` row excluded)"
    params = (Param("dominant_fraction", float, 0.3, "dominant: a frequency norm at least this share of the largest"),)
    dims = {
        "component_norm": "fourier_component",
        "frequency_norm": "frequency",
        "dominant": "frequency",
        "singular_value": "singular_index",
    }

    def step(self, view: CheckpointView, params: dict, state: dict) -> dict[str, np.ndarray]:
        norms = embedding_component_norms(view.weights["embed.W_E"], view.p)  # [fourier_component]
        freq = frequency_norms(norms)  # [frequency]: entry k-1 is frequency k
        return {
            "component_norm": norms,
            "frequency_norm": freq,
            "dominant": freq >= params["dominant_fraction"] * freq.max(),
            "singular_value": np.linalg.svd(view.weights["embed.W_E"][: view.p].astype(np.float64), compute_uv=False),
        }

    def finalize(self, epochs, steps, params, state):
        out = super().finalize(epochs, steps, params, state)
        p = len(steps[0]["component_norm"])
        out["frequency"] = (np.arange(1, p // 2 + 1), "frequency")
        out["component_name"] = (np.array(basis_names(p), dtype="S"), "fourier_component")
        out["key_frequencies"] = (np.flatnonzero(steps[-1]["dominant"]) + 1, "key_frequency")
        return out


ANALYZER = EmbeddingFrequencies()
