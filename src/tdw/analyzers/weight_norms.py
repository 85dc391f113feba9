"""Weight norms per parameter (the smallest analyzer: weights only, no cache): Frobenius
norm of every parameter tensor and their total sum of squares, per checkpoint."""

from __future__ import annotations

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView, StepValues
from tdw.analyzers.weightmath import total_sum_sq


class WeightNorms(Analyzer):
    name = "weight_norms"
    operations = None
    models = ("transformer", "mlp")
    description = "Frobenius norm of every parameter and the total sum of squared weights"
    dims = {"norm": "parameter", "total_sum_sq": ""}

    def prepare(self, final: CheckpointView, epochs: np.ndarray, params: dict) -> dict:
        return {"names": sorted(final.weights)}

    def step(self, view: CheckpointView, params: dict, state: dict) -> StepValues:
        norms = np.array([np.linalg.norm(view.weights[n].astype(np.float64)) for n in state["names"]])
        return {"norm": norms, "total_sum_sq": total_sum_sq(view.weights)}

    def finalize(self, epochs, steps, params, state):
        return super().finalize(epochs, steps, params, state) | {"parameter": (np.array(state["names"], dtype="S"), "parameter")}


ANALYZER = WeightNorms()
