"""Attention from the `=` query: mean pattern per head and source position, position 0
minus position 1 per head, and each head's dominant frequency.

The dominant frequency of head h: the attention to position 0 as a function of (a, b) is
regressed, for each k = 1..p//2, on [1, cos w_k a, sin w_k a, cos w_k b, sin w_k b]; the
R^2 of that fit is the share of variance frequency k explains (on the full grid it equals
the energy in the 3x3 block {0, 2k-1, 2k}^2 without the (cos, sin) x (cos, sin) cross
terms). The fit works on any probe, so the analyzer accepts subsets.

On token sequences there is no `=` query and no (a, b): the attention per head and position
there is the ``induction`` analyzer's mean pattern (with its previous-token and induction
scores), so this analyzer does not serve the induction task (``not_for`` says so in the error).
"""

from __future__ import annotations

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView
from tdw.models import hooks
from tdw.tasks.sequence import OPERATION as SEQUENCE

PATTERN = hooks.hook(0, hooks.PATTERN)


def frequency_design(index: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frequency regressors at flat pair indices: X^T [freq * 5, batch] with columns
    [1, cos w_k a, sin w_k a, cos w_k b, sin w_k b], and the inverse Gram matrices [freq, 5, 5]."""
    a, b = np.divmod(index, p)
    k = np.arange(1, p // 2 + 1)[:, None]  # [freq, 1]
    wa, wb = 2 * np.pi * k * a / p, 2 * np.pi * k * b / p  # [freq, batch]
    design = np.stack([np.ones_like(wa), np.cos(wa), np.sin(wa), np.cos(wb), np.sin(wb)], 1)  # [freq, 5, batch]
    if p % 2 == 0:  # sin(pi x) is zero up to rounding: exactly zero
        design[-1, [2, 4]] = 0.0
    gram = np.einsum("fib,fjb->fij", design, design, optimize=True)
    return design.reshape(-1, len(index)), np.linalg.inv(gram + 1e-12 * np.eye(5))


def frequency_r2(values: np.ndarray, design: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """values [batch, series] -> R^2 [series, freq] of the per-frequency fits in a and b
    (``design`` from ``frequency_design`` at the rows' pair indices)."""
    xt, inv_gram = design
    y = values - values.mean(0)
    rhs = (xt @ y).reshape(len(inv_gram), 5, -1)  # [freq, 5, series]
    explained = np.einsum("fis,fis->fs", inv_gram @ rhs, rhs)
    total = np.maximum((y**2).sum(0), 1e-300)
    return (explained / total).T


class Attention(Analyzer):
    name = "attention"
    on_group = True
    reads = (PATTERN,)
    not_for = {
        SEQUENCE: "the attention per head, query and key position is the 'induction' analyzer's mean_pattern "
        "(with its previous-token and induction scores); offer that one"
    }
    description = "mean attention from the `=` query per head and source; pos0 - pos1; dominant frequency per head"
    dims = {
        "mean_pattern": "head key_pos",
        "pos0_minus_pos1": "head",
        "frequency_r2": "head frequency",
        "dominant_frequency": "head",
    }

    def prepare(self, final: CheckpointView, epochs: np.ndarray, params: dict) -> dict:
        # the probe's rows are the same at every checkpoint: build the regressors once
        return {"index": final.pair_index, "design": frequency_design(final.pair_index, final.p)}

    def step(self, view: CheckpointView, params: dict, state: dict) -> dict[str, np.ndarray]:
        pattern = view.activation(PATTERN).astype(np.float64)  # [batch, head, key_pos]
        mean = pattern.mean(0)
        if not np.array_equal(view.pair_index, state["index"]):
            raise ValueError(f"{view.cache}: rows differ from the final checkpoint's cache")
        r2 = frequency_r2(pattern[:, :, 0], state["design"])
        return {
            "mean_pattern": mean,
            "pos0_minus_pos1": mean[:, 0] - mean[:, 1],
            "frequency_r2": r2,
            "dominant_frequency": r2.argmax(1) + 1,
        }

    def finalize(self, epochs, steps, params, state):
        out = super().finalize(epochs, steps, params, state)
        out["frequency"] = (np.arange(1, steps[0]["frequency_r2"].shape[1] + 1), "frequency")
        return out


ANALYZER = Attention()
