"""Sharpness of each checkpoint: the top-k eigenvalues of the Hessian of the run's training loss
on its training split (the training objective, ``tdw.analyzers.llc.training_loss``) by Lanczos,
and the Hessian trace by Hutchinson with its standard error (``tdw.analyzers.curvature``). By
default the weights are cast to float64 and every Hessian-vector product is a double backward
in float64 (``dtype``: float32 is about three times faster on the CPU at p = 113).

The edge-of-stability comparison: the workbench trains with full-batch AdamW, whose stability
threshold (2 + 2 beta1) / ((1 - beta1) lr) bounds the sharpness of the Hessian preconditioned
by Adam's second moments (Cohen et al. 2022), not that of H itself. Checkpoints store weights
only, not the optimizer's moments, so ``eos_ratio`` is NaN for these runs (the threshold is
still recorded); for full-batch gradient descent it would be lambda_max / (2 / lr).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView, Param, StepValues
from tdw.analyzers.curvature import eos_threshold, flat_training_loss, hessian_vector_product, hutchinson_trace, top_eigenvalues
from tdw.params import in_range
from tdw.tasks.modular import OPERATIONS
from tdw.workbench import FAMILY_TRAIN

PARAMS = (
    Param("k", int, 3, "top Hessian eigenvalues found by Lanczos (1..64)", in_range(1, 64)),
    Param("probes", int, 10, "Rademacher probes of the Hutchinson trace (2..10^5)", in_range(2, 10**5)),
    Param("tol", float, 1e-4, "Lanczos (ARPACK) relative tolerance of each eigenvalue; 0: machine precision", in_range(0.0, 1.0)),
    Param("seed", int, 0, "seed of the Lanczos start vector and the probes (the same at every checkpoint)", in_range(0, 2**62)),
    Param("dtype", Literal["float64", "float32"], "float64", "precision of the weights and every Hessian-vector product"),
)

# The optimizer every run of the workbench trains with (tdw.train.state.TrainState) and whether
# its checkpoints hold what the optimizer's stability threshold is about.
OPTIMIZER = "adamw"
PRECONDITIONER_STORED = False


def eos_ratio(top: float, optimizer: str, threshold: float, preconditioned: bool) -> float:
    """lambda_max / threshold where lambda_max is the quantity the threshold bounds: the
    Hessian's for gradient descent, the preconditioned Hessian's for Adam(W) (NaN where only
    the plain Hessian is known)."""
    if optimizer == "sgd" or preconditioned:
        return top / threshold
    return float("nan")


class Sharpness(Analyzer):
    name = "sharpness"
    operations = tuple(OPERATIONS)
    models = ("transformer", "mlp")
    description = "top Hessian eigenvalues (Lanczos) and Hessian trace (Hutchinson) of the training loss"
    params = PARAMS
    dims = {
        "eigenvalues": "eigen",
        "trace": "",
        "trace_stderr": "",
        "trace_samples": "probe",
        "loss": "",
        "eos_threshold": "",
        "eos_ratio": "",
        "hvp_calls": "",
    }

    def step(self, view: CheckpointView, params: dict, state: dict) -> StepValues:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        flat = flat_training_loss(view, device, params["dtype"])
        hvp = hessian_vector_product(flat.loss, flat.center)
        values = top_eigenvalues(hvp, params["k"], params["tol"], params["seed"])
        trace, se, samples = hutchinson_trace(hvp, params["probes"], params["seed"])
        train = FAMILY_TRAIN.to_dict() | view.config.get("train", {})
        threshold = eos_threshold(OPTIMIZER, float(train["lr"]), float(train["betas"][0]))
        with torch.no_grad():
            loss = float(flat.loss(flat.center))
        return {
            "eigenvalues": values,
            "trace": np.float64(trace),
            "trace_stderr": np.float64(se),
            "trace_samples": samples,
            "loss": np.float64(loss),
            "eos_threshold": np.float64(threshold),
            "eos_ratio": np.float64(eos_ratio(float(values[0]), OPTIMIZER, threshold, PRECONDITIONER_STORED)),
            "hvp_calls": np.int64(hvp.calls),
        }

    def finalize(self, epochs, steps, params, state):
        out = super().finalize(epochs, steps, params, state)
        out["eigen"] = (np.arange(params["k"]), "eigen")
        out["probe"] = (np.arange(params["probes"]), "probe")
        return out


ANALYZER = Sharpness()
