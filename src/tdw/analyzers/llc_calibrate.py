"""Choosing the LLC's SGLD hyperparameters: estimates of one checkpoint over an ε × nβ grid,
with every chain's loss and distance traces. In the workflow it is the ``llc_calibration``
analyzer (its artifact drawn by the ``llc_calibration`` figure, a view of the default
report); as a command (``tdw.pages.llc_calibrate``) it writes one HDF5 file and an HTML figure.

A good ε is the largest whose loss traces level off (no upward drift, no NaN) with a MALA
acceptance well above zero; the estimate should then change little with ε. The other
parameters are the ``llc`` analyzer's (its defaults unless given).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView, Param
from tdw.analyzers.llc import PARAMS as LLC_PARAMS
from tdw.analyzers.llc import nbeta_range
from tdw.layout import checkpoint_name
from tdw.params import in_range
from tdw.tasks.modular import OPERATIONS


def calibrate(ckpt: Path, eps: list[float], nbetas: list[float | str], given: dict) -> dict[str, tuple[np.ndarray, str]]:
    """The grid's estimates and traces: datasets for ``write_h5`` (axes epsilon, nbeta, chain, draw)."""
    from tdw.analyzers.runner import checkpoint_view

    return calibrate_view(checkpoint_view(ckpt, None), eps, nbetas, given)


def calibrate_view(view: CheckpointView, eps: list[float], nbetas: list[float | str], given: dict) -> dict:
    """``calibrate`` on a checkpoint's view; ``given``: the ``llc`` analyzer's other parameters."""
    from tdw.analyzers import llc
    from tdw.params import resolve_params

    rows = []
    for e in eps:
        for nb in nbetas:
            params = resolve_params(llc.PARAMS, given | {"epsilon": e, "nbeta": nb}, "llc-calibrate")
            est, s = llc.estimate(view, params)
            rows.append((est, s))
            print(
                f"eps {e:.3g} nbeta {s.nbeta:.4g}: llc {est.llc_mean:.4g} ± {est.llc_std:.2g}, "
                f"acceptance {np.nanmean(est.mala_acceptance):.2f}, {int(est.diverged.sum())} diverged",
                flush=True,
            )
    shape = (len(eps), len(nbetas))

    def grid(get, dims: str) -> tuple[np.ndarray, str]:
        return np.stack([get(est, s) for est, s in rows]).reshape(*shape, *np.shape(get(*rows[0]))), dims

    s0 = rows[0][1]
    return {
        "epsilon": (np.array(eps), "epsilon"),
        "nbeta": (np.array([str(nb) for nb in nbetas], dtype="S"), "nbeta"),
        "nbeta_value": grid(lambda est, s: s.nbeta, "epsilon nbeta"),
        "llc_mean": grid(lambda est, s: est.llc_mean, "epsilon nbeta"),
        "llc_std": grid(lambda est, s: est.llc_std, "epsilon nbeta"),
        "llc": grid(lambda est, s: est.llc, "epsilon nbeta chain"),
        "loss_trace": grid(lambda est, s: est.loss_trace, "epsilon nbeta chain draw"),
        "distance_trace": grid(lambda est, s: est.distance_trace, "epsilon nbeta chain draw"),
        "mala_acceptance": grid(lambda est, s: est.mala_acceptance, "epsilon nbeta chain"),
        "diverged": grid(lambda est, s: est.diverged, "epsilon nbeta chain"),
        "init_loss": (np.float64(rows[0][0].init_loss), ""),
        "draw": (s0.burn_in + s0.steps_between_draws * np.arange(s0.draws), "draw"),
    }


def _each_in(check):
    def every(values: list) -> str | None:
        if not values:
            return "expected a non-empty list"
        problems = [f"{v!r}: {check(v)}" for v in values if check(v) is not None]
        return "; ".join(problems) or None

    return every


# The sampler's parameters, with lighter defaults: a grid runs one estimate per cell.
_LIGHTER = {"chains": 2, "draws": 50, "burn_in": 20}
PARAMS = (
    Param("epoch", Literal["final"] | int, "final", "the checkpoint: 'final' or its epoch"),
    Param(
        "epsilons", list[float], (1e-5, 3e-5, 1e-4), "the grid's step sizes ε (each 0 < ε <= 1)", _each_in(in_range(0, 1, True))
    ),
    Param(
        "nbetas",
        list[float | Literal["batch", "n"]],
        ("n", "batch"),
        "the grid's nβ: numbers > 0, 'batch' or 'n'",
        _each_in(nbeta_range),
    ),
    *(dataclasses.replace(p, default=_LIGHTER.get(p.name, p.default)) for p in LLC_PARAMS if p.name not in ("epsilon", "nbeta")),
)


class LLCCalibration(Analyzer):
    name = "llc_calibration"
    operations = tuple(OPERATIONS)
    description = "LLC estimates of one checkpoint over an ε × nβ grid, with every chain's traces, to choose ε and nβ"
    params = PARAMS

    def prepare(self, final: CheckpointView, epochs: np.ndarray, params: dict) -> dict:
        from tdw.analyzers.runner import checkpoint_view

        epoch = int(epochs[-1]) if params["epoch"] == "final" else params["epoch"]
        if epoch not in epochs:
            raise ValueError(f"llc_calibration: epoch {epoch}: no such checkpoint; the run's epochs: {epochs.tolist()}")
        view = final if epoch == final.epoch else checkpoint_view(final.checkpoint.with_name(checkpoint_name(epoch)), None)
        given = {k: v for k, v in params.items() if k not in ("epoch", "epsilons", "nbetas")}
        return {"grid": calibrate_view(view, params["epsilons"], params["nbetas"], given), "epoch": epoch}

    def step(self, view: CheckpointView, params: dict, state: dict) -> dict[str, np.ndarray]:
        return {}  # the grid is of one checkpoint, computed in prepare

    def finalize(self, epochs, steps, params, state):
        # the run's epochs as every artifact has them; the grid is of ``checkpoint_epoch`` only
        return {"epoch": (epochs, "epoch")} | state["grid"] | {"checkpoint_epoch": (np.int64(state["epoch"]), "")}


ANALYZER = LLCCalibration()
