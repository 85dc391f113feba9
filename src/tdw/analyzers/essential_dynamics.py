"""Essential dynamics: PCA across checkpoints of the model's outputs on the probe (as in
Hoogland et al. 2024, "The developmental landscape of in-context learning").

Each checkpoint t is one point z_t [D]: the logits on at most ``rows`` probe rows (a seeded
subsample, the same at every checkpoint), each row's mean over the classes removed
(``centre_classes``: softmax ignores it), flattened to rows x classes. With Z [E, D] the
points centred over the checkpoints and Z Z^T = V diag(lambda) V^T (eigenvalues descending),
the coordinates of checkpoint t in the first k components are V[t, :k] sqrt(lambda[:k])
(= Z W[:, :k] for the principal directions W), and component i explains
lambda_i / sum(lambda) of the variance. Each component's sign makes the final checkpoint's
coordinate at least the first's. Also stored: the distance ||z_t - z_{t-1}|| between
consecutive checkpoints, and the grokking phase boundaries of the loss history
(``tdw.analyzers.jumps.grokking_phases``, as ``transitions`` finds them) with the trajectory's
coordinates there (linear between the surrounding checkpoints).

Memory: each step keeps rows x classes float32 values (117 KB at 256 rows and p = 113); the
PCA is one [E, E] Gram, E^2 D multiply-adds.
"""

from __future__ import annotations

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView, Param, StepValues, resolve_hook
from tdw.analyzers.cka import sample_rows
from tdw.analyzers.dimensionality import activation_matrix
from tdw.analyzers.jumps import bracket, grokking_phases
from tdw.analyzers.transitions import BOUNDARIES
from tdw.io.history import read_history
from tdw.models import hooks
from tdw.models.architecture import ModelConfig
from tdw.params import in_range


def trajectory_pca(points: np.ndarray, components: int) -> tuple[np.ndarray, np.ndarray, float]:
    """points [E, D] (one row per checkpoint) -> (coordinates [E, k], explained variance
    ratio [k], total variance sum(lambda) / E), k = min(components, E). A trajectory that does
    not move has ratio NaN."""
    z = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    z = z - z.mean(0)
    lam, vec = np.linalg.eigh(z @ z.T)
    lam, vec = np.clip(lam[::-1], 0, None), vec[:, ::-1]
    k = min(components, len(z))
    coords = vec[:, :k] * np.sqrt(lam[:k])
    flip = np.where(coords[-1] - coords[0] < 0, -1.0, 1.0)
    total = float(lam.sum())
    ratio = lam[:k] / total if total > 0 else np.full(k, np.nan)
    return coords * flip, ratio, total / len(z)


def _components_check(value: int) -> str | None:
    return None if 1 <= value <= 64 else "expected 1 <= components <= 64"


def _rows_check(value: int) -> str | None:
    return None if 1 <= value <= 65536 else "expected 1 <= rows <= 65536"


class EssentialDynamics(Analyzer):
    name = "essential_dynamics"
    operations = None
    models = ("transformer", "mlp")
    needs_history = True
    reads = (hooks.LOGITS,)
    description = "PCA across checkpoints of the outputs on fixed probe rows: the trajectory, explained variance, phases"
    params = (
        Param("hook", str, hooks.LOGITS, "the output whose trajectory is analysed (logits; any cached hook)"),
        Param("rows", int, 256, "probe rows: a seeded subsample where the probe has more (1..65536)", _rows_check),
        Param("seed", int, 0, "seed of the row subsample (>= 0)", in_range(0, 2**32 - 1)),
        Param("components", int, 4, "principal components stored (1..64; at most the number of checkpoints)", _components_check),
        Param("centre_classes", bool, True, "remove each row's mean over its last axis (the logits' classes) first"),
        Param("onset", float, 0.1, "phases: cleanup starts when the test loss has fallen this share of its drop"),
        Param("done", float, 0.9, "phases: cleanup ends at this share of the drop"),
        Param("min_drop", float, 1.0, "phases: a drop of log10 test loss smaller than this is no grokking"),
    )

    def reads_for(self, model: ModelConfig, params: dict) -> tuple[str, ...]:
        return (params.get("hook", hooks.LOGITS),)

    def prepare(self, final: CheckpointView, epochs: np.ndarray, params: dict) -> dict:
        hook = resolve_hook(params["hook"], final.model)
        n = len(activation_matrix(final, hook))
        return {"hook": hook, "n_probe": n, "rows": sample_rows(n, params["rows"], params["seed"]), "history": str(final.history)}

    def step(self, view: CheckpointView, params: dict, state: dict) -> StepValues:
        x = activation_matrix(view, state["hook"])
        if len(x) != state["n_probe"]:
            raise ValueError(f"epoch {view.epoch}: {state['hook']} holds {len(x)} rows, the final checkpoint {state['n_probe']}")
        x = np.asarray(x[state["rows"]], dtype=np.float64).reshape(len(state["rows"]), -1)
        if params["centre_classes"]:
            x = x - x.mean(1, keepdims=True)
        return {"output": x.ravel().astype(np.float32)}

    def finalize(self, epochs, steps, params, state):
        z = np.stack([s["output"] for s in steps])  # [epoch, rows * classes]
        coords, ratio, total = trajectory_pca(z, params["components"])
        hist = read_history(state["history"])
        phases = grokking_phases(hist["test_epoch"], hist["test_loss"], params["onset"], params["done"], params["min_drop"])
        est = np.array([phases[b] for b in BOUNDARIES])
        lo_hi = np.array([bracket(e, epochs) if np.isfinite(e) else (-1, -1) for e in est]).reshape(-1, 2)
        at = np.array([[np.interp(e, epochs, c) if np.isfinite(e) else np.nan for c in coords.T] for e in est])
        step = np.r_[0.0, np.linalg.norm(np.diff(z.astype(np.float64), axis=0), axis=1)]
        return {
            "epoch": (epochs, "epoch"),
            "component": (np.arange(1, len(ratio) + 1), "component"),
            "row": (state["rows"], "row"),
            "hook": (np.array(state["hook"], dtype="S"), ""),
            "coordinates": (coords, "epoch component"),
            "explained_variance_ratio": (ratio, "component"),
            "total_variance": (np.array(total), ""),
            "step_distance": (step, "epoch"),
            "boundary": (np.array(BOUNDARIES, dtype="S"), "boundary"),
            "boundary_epoch": (est, "boundary"),
            "boundary_lo": (lo_hi[:, 0], "boundary"),
            "boundary_hi": (lo_hi[:, 1], "boundary"),
            "boundary_coordinates": (at.reshape(len(est), len(ratio)), "boundary component"),
        }


ANALYZER = EssentialDynamics()
