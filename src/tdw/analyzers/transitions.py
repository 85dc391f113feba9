"""Phase transitions: grokking phases from the loss history and jumps in measure curves.

Curves: log10 train and test loss (``history.h5``, every logged epoch) and, per
checkpoint, log10 of the total sum of squared weights and the Gini coefficient of the
embedding's Fourier norms. Phase boundaries (end of memorisation, grokking onset = start of
cleanup, end of cleanup) and jumps (``tdw.analyzers.jumps``) are reported as epoch intervals bounded
by the surrounding checkpoints, with their evidence (loss at the boundary, jump size and
z-score). Where the run tracked measures during training (``train.tracking``), their
whole-model curves (gradient norm, weight norm, relative update, each hook's participation
ratio) are stored on their own ``tracked_epoch`` axis and searched for jumps too: a jump in
them is located to the tracking interval before it is bracketed by checkpoints.
"""

from __future__ import annotations

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView, Param, StepValues
from tdw.analyzers.fourier import embedding_component_norms, gini
from tdw.analyzers.jumps import bracket, detect_jumps, grokking_phases
from tdw.analyzers.weightmath import total_sum_sq
from tdw.io.history import read_history, read_tracking

BOUNDARIES = ("memorisation_end", "cleanup_start", "cleanup_end")


def _jump_rows(name: str, y: np.ndarray, epochs: np.ndarray, checkpoints: np.ndarray, params: dict) -> list[tuple]:
    found = detect_jumps(y, params["window"], params["z_threshold"], params["min_fraction"])
    return [
        (name, bracket(epochs[j["index"] - 1], checkpoints)[0], bracket(epochs[j["index"]], checkpoints)[1], j["jump"], j["z"])
        for j in found
    ]


def _tracked_curves(tracked: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, str]]:
    """The whole-model curves of the measures tracked during training, on their own epochs: the
    gradient norm, the total weight norm and relative update (from the per-parameter norms:
    ||dw_k|| = ratio_k ||w_k||), and each hook's participation ratio."""
    out: dict[str, tuple[np.ndarray, str]] = {"tracked_epoch": (tracked["track_epoch"], "tracked_epoch")}
    nan = np.full(len(tracked["track_epoch"]), np.nan)
    out["tracked_grad_norm"] = (tracked.get("grad_norm", nan), "tracked_epoch")
    norms = tracked.get("weight_norm")
    total = np.sqrt((norms**2).sum(1)) if norms is not None else nan
    out["tracked_weight_norm"] = (total, "tracked_epoch")
    ratio = tracked.get("update_ratio")
    moved = np.sqrt(((ratio * norms) ** 2).sum(1)) / total if ratio is not None and norms is not None else nan
    out["tracked_update_ratio"] = (moved, "tracked_epoch")
    if "dim_participation_ratio" in tracked:
        out["tracked_hook"] = (np.array(tracked["track_hook"], dtype="S"), "tracked_hook")
        out["tracked_participation_ratio"] = (tracked["dim_participation_ratio"], "tracked_epoch tracked_hook")
    return out


class Transitions(Analyzer):
    name = "transitions"
    operations = None  # the phases come from the loss history of any task
    on_group = True  # gini_embed: on the task's group where it has one, else over Z_p in the tokens
    models = ("transformer", "mlp")
    needs_history = True
    description = "grokking phase boundaries and jumps in loss and weight curves, as checkpoint-bounded epoch intervals"
    params = (
        Param("window", int, 10, "jumps: points before each step that give the local noise level"),
        Param("z_threshold", float, 5.0, "jumps: a step is a jump when its z-score exceeds this"),
        Param("min_fraction", float, 0.1, "jumps: and when it is at least this share of the curve's range"),
        Param("onset", float, 0.1, "phases: cleanup starts when the test loss has fallen this share of its drop"),
        Param("done", float, 0.9, "phases: cleanup ends at this share of the drop"),
        Param("min_drop", float, 1.0, "phases: a drop of log10 test loss smaller than this is no grokking"),
    )
    dims = {"total_sum_sq_weights": "", "gini_embed": ""}

    def prepare(self, final: CheckpointView, epochs: np.ndarray, params: dict) -> dict:
        return {"history": str(final.history)}

    def step(self, view: CheckpointView, params: dict, state: dict) -> StepValues:
        w = view.weights
        if view.operation == "induction":  # tokens of a sequence task have no Fourier structure
            return {"total_sum_sq_weights": total_sum_sq(w), "gini_embed": np.float64(np.nan)}
        norms = embedding_component_norms(w["embed.W_E"], view.p)
        return {
            "total_sum_sq_weights": total_sum_sq(w),
            "gini_embed": np.float64(gini(norms)),
        }

    def finalize(self, epochs, steps, params, state):
        out = super().finalize(epochs, steps, params, state)
        hist = read_history(state["history"])
        phases = grokking_phases(
            hist["test_epoch"],
            hist["test_loss"],
            params["onset"],
            params["done"],
            params["min_drop"],
        )
        est = np.array([phases[b] for b in BOUNDARIES])
        lo_hi = np.array([bracket(e, epochs) if np.isfinite(e) else (-1, -1) for e in est]).reshape(-1, 2)
        at = [np.interp(e, hist["test_epoch"], hist["test_loss"]) if np.isfinite(e) else np.nan for e in est]
        out |= {
            "boundary": (np.array(BOUNDARIES, dtype="S"), "boundary"),
            "boundary_epoch": (est, "boundary"),
            "boundary_lo": (lo_hi[:, 0], "boundary"),
            "boundary_hi": (lo_hi[:, 1], "boundary"),
            "boundary_test_loss": (np.array(at), "boundary"),
            "grokked": (np.array(np.isfinite(est[1])), ""),
        }
        rows = []
        for name, key, ep in (("train_loss", "train_loss", "train_epoch"), ("test_loss", "test_loss", "test_epoch")):
            y = np.log10(np.maximum(hist[key], 1e-300))
            rows += _jump_rows(name, y, hist[ep], epochs, params)
        rows += _jump_rows("total_sum_sq_weights", np.log10(out["total_sum_sq_weights"][0]), epochs, epochs, params)
        if np.isfinite(out["gini_embed"][0]).all():
            rows += _jump_rows("gini_embed", out["gini_embed"][0], epochs, epochs, params)
        tracked = read_tracking(state["history"])
        if tracked:
            out |= _tracked_curves(tracked)
            te = tracked["track_epoch"]
            rows += _jump_rows("tracked_grad_norm", np.log10(np.maximum(out["tracked_grad_norm"][0], 1e-300)), te, epochs, params)
            rows += _jump_rows("tracked_weight_norm", np.log10(out["tracked_weight_norm"][0]), te, epochs, params)
            if "tracked_participation_ratio" in out:
                for j, hook in enumerate(tracked["track_hook"]):
                    pr = out["tracked_participation_ratio"][0][:, j]
                    rows += _jump_rows(f"tracked_participation_ratio:{hook}", pr, te, epochs, params)
        cols = list(zip(*rows, strict=True)) if rows else [[], [], [], [], []]
        out |= {
            "jump_series": (np.array(cols[0], dtype="S"), "jump"),
            "jump_lo": (np.array(cols[1], dtype=np.int64), "jump"),
            "jump_hi": (np.array(cols[2], dtype=np.int64), "jump"),
            "jump_size": (np.array(cols[3], dtype=np.float64), "jump"),
            "jump_z": (np.array(cols[4], dtype=np.float64), "jump"),
        }
        return out


ANALYZER = Transitions()
