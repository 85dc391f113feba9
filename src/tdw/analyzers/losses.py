"""Cross-entropy and the Fourier-restricted views of the logits (progress measures).

Logits here are the last-position logits with the `=` class dropped, [batch, p], float64;
rows are flat pair indices in row-major order over the full grid unless stated.
"""

from __future__ import annotations

import numpy as np


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of logits [batch, classes] against labels [batch], in float64."""
    logits = np.asarray(logits, dtype=np.float64)
    top = logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
    picked = np.take_along_axis(logits, np.asarray(labels)[:, None], axis=1)[:, 0]
    return float(np.mean(log_norm - picked))


def periodicity(logits: np.ndarray, target: np.ndarray, p: int) -> np.ndarray:
    """Coefficient of the logits on the unit vector along cos(w_k (t - c)) over all
    (row, c), k = 1..p//2, where t is each row's target residue (a + b for addition).

    cos(w (t - c)) = cos(w t) cos(w c) + sin(w t) sin(w c), so the inner product is two
    [batch, p] x [p, k] products: the [k, batch, p] cube is never built.
    logits [batch, p], target [batch] -> [p//2].
    """
    k = np.arange(1, p // 2 + 1)
    cls = 2 * np.pi * np.outer(np.arange(p), k) / p  # [class, k]
    rows = 2 * np.pi * np.outer(target, k) / p  # [batch, k]
    inner = np.sum(np.cos(rows) * (logits @ np.cos(cls)) + np.sin(rows) * (logits @ np.sin(cls)), axis=0)
    out = inner / np.sqrt(len(target) * p / 2)
    if p % 2 == 0:  # k = p / 2: cos(pi (t - c)) = +-1 has norm sqrt(batch * p), and sin(pi x) is rounding only
        out[-1] = np.sum(np.cos(rows[:, -1]) * (logits @ np.cos(cls[:, -1]))) / np.sqrt(len(target) * p)
    return out
