"""Attention from the `=` query: mean pattern per head and source position, position 0
minus position 1 per head, and each head's dominant frequency.

The dominant frequency of head h: the attention to position 0 as a function of (a, b) is
regressed, for each k = 1..p//2, on [1, cos w_k a, sin w_k a, cos w_k b, sin w_k b]; the
R^2 of that fit is the share of variance frequency k explains (on the full grid it equals
the energy in the 3x3 block {0, 2k-1, 2k}^2 without the (cos, sin) x (cos, sin) cross
terms). The fit works on any probe, so the analyzer accepts subsets.
"""

from __future__ import annotations

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView

PATTERN = "blocks.0.attn.hook_pattern"


def frequency_r2(values: np.ndarray, index: np.ndarray, p: int) -> np.ndarray:
    """values [batch, series] at flat pair indices [batch] -> R^2 [series, p//2] of the
    per-frequency fits in a and b."""
    a, b = np.divmod(index, p)
    k = np.arange(1, p // 2 + 1)[:, None]  # [freq, 1]
    wa, wb = 2 * np.pi * k * a / p, 2 * np.pi * k * b / p  # [freq, batch]
    design = np.stack([np.ones_like(wa), np.cos(wa), np.sin(wa), np.cos(wb), np.sin(wb)], -1)  # [freq, batch, 5]
    y = values - values.mean(0)
    gram = np.einsum("fbi,fbj->fij", design, design)
    rhs = np.einsum("fbi,bs->fis", design, y)
    coef = np.linalg.solve(gram + 1e-12 * np.eye(5), rhs)  # [freq, 5, series]
    explained = np.einsum("fis,fis->fs", coef, rhs)
    total = np.maximum((y**2).sum(0), 1e-300)
    return (explained / total).T


class Attention(Analyzer):
    name = "attention"
    reads = (PATTERN,)
    description = "mean attention from the `=` query per head and source; pos0 - pos1; dominant frequency per head"
    dims = {
        "mean_pattern": "head key_pos",
        "pos0_minus_pos1": "head",
        "frequency_r2": "head frequency",
        "dominant_frequency": "head",
    }

    def step(self, view: CheckpointView, params: dict) -> dict[str, np.ndarray]:
        pattern = view.activation(PATTERN).astype(np.float64)  # [batch, head, key_pos]
        mean = pattern.mean(0)
        r2 = frequency_r2(pattern[:, :, 0], view.pair_index, view.p)
        return {
            "mean_pattern": mean,
            "pos0_minus_pos1": mean[:, 0] - mean[:, 1],
            "frequency_r2": r2,
            "dominant_frequency": r2.argmax(1) + 1,
        }

    def finalize(self, epochs, steps, params):
        out = super().finalize(epochs, steps, params)
        out["frequency"] = (np.arange(1, steps[0]["frequency_r2"].shape[1] + 1), "frequency")
        return out


ANALYZER = Attention()
