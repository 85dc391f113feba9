"""The modular-arithmetic task: inputs, labels, the seeded train/test split and probes.

Inputs are ``[a, b, =]`` with ``=`` the token p; pair (a, b) has flat index ``a * p + b``.
"""

from __future__ import annotations

import random

import numpy as np

OPERATIONS = {
    "add": lambda a, b, p: (a + b) % p,
    "sub": lambda a, b, p: (a - b) % p,
}


def all_pairs(p: int) -> np.ndarray:
    """Every (a, b) in row-major order, shape [p*p, 2]."""
    a, b = np.divmod(np.arange(p * p), p)
    return np.stack([a, b], axis=1)


def tokens(p: int, index: np.ndarray) -> np.ndarray:
    """Token sequences ``[a, b, p]`` for flat pair indices, shape [batch, 3], int64."""
    a, b = np.divmod(np.asarray(index, dtype=np.int64), p)
    return np.stack([a, b, np.full_like(a, p)], axis=1)


def labels(p: int, index: np.ndarray, operation: str = "add") -> np.ndarray:
    """Correct answer for each flat pair index, shape [batch], int64."""
    a, b = np.divmod(np.asarray(index, dtype=np.int64), p)
    return OPERATIONS[operation](a, b, p)


def split(p: int, train_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test flat indices, exactly as ``random.seed(seed); random.shuffle(pairs)``
    on the row-major pair list followed by taking the first ``int(train_frac * p*p)``.

    ``random.shuffle`` permutes by position only, so shuffling indices gives the same
    order as shuffling the (a, b) tuples the original training code shuffled.
    """
    order = list(range(p * p))
    rng = random.Random(seed)
    rng.shuffle(order)
    cut = int(train_frac * p * p)
    return np.array(order[:cut], dtype=np.int64), np.array(order[cut:], dtype=np.int64)


def probe_indices(p: int, spec: dict, train_frac: float, seed: int) -> np.ndarray:
    """Flat pair indices a probe runs on, shape [batch].

    spec: a family probe entry, ``{"kind": "grid" | "train" | "test" | "random", ...}``;
    ``random`` takes ``size`` pairs (sorted) with its own ``seed``.
    """
    kind = spec["kind"]
    if kind == "grid":
        return np.arange(p * p, dtype=np.int64)
    train, test = split(p, train_frac, seed)
    if kind == "train":
        return np.sort(train)
    if kind == "test":
        return np.sort(test)
    if kind == "random":
        size = min(int(spec["size"]), p * p)
        rng = np.random.default_rng(int(spec.get("seed", 0)))
        return np.sort(rng.choice(p * p, size=size, replace=False)).astype(np.int64)
    raise ValueError(f"probe kind {kind!r}: expected one of grid, train, test, random")
