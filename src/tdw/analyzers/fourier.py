"""Fourier basis over Z_p and the transforms the analyzers use (numpy only).

Row order is fixed: ``const, cos 1, sin 1, cos 2, sin 2, ...``; there are p rows and the
basis is orthonormal. For even p (the group Z_{p-1} of a relabelled multiplicative task) the
last row is cos(pi x) = (-1)^x alone: sin(pi x) vanishes, and that frequency's sin component
counts as zero wherever frequencies are paired.
"""

from __future__ import annotations

import numpy as np


def fourier_basis(p: int) -> np.ndarray:
    """Orthonormal Fourier basis F, shape [p, p]; row j is a basis vector over x = 0..p-1."""
    x = np.arange(p)
    rows = [np.ones(p)]
    for k in range(1, p // 2 + 1):
        rows.append(np.cos(2 * np.pi * k * x / p))
        rows.append(np.sin(2 * np.pi * k * x / p))
    basis = np.stack(rows[:p])
    return basis / np.linalg.norm(basis, axis=1, keepdims=True)


def basis_names(p: int) -> list[str]:
    """Names of the rows of ``fourier_basis(p)``."""
    names = ["const"]
    for k in range(1, p // 2 + 1):
        names += [f"cos {k}", f"sin {k}"]
    return names[:p]


def n_frequencies(p: int) -> int:
    """Number of non-constant frequencies k = 1..p//2."""
    return p // 2


def frequency_norms(component_norms: np.ndarray) -> np.ndarray:
    """Per-frequency norm N_k = sqrt(n_{2k-1}^2 + n_{2k}^2) for k = 1..p//2.

    component_norms: [..., p] norms of the Fourier components (row order as above).
    Returns [..., p//2]; entry k-1 is frequency k.
    """
    p = component_norms.shape[-1]
    cos = component_norms[..., 1 : 2 * (p // 2) : 2]
    sin = component_norms[..., 2 : 2 * (p // 2) + 1 : 2]
    if p % 2 == 0:  # no sin row at the frequency p / 2
        sin = np.concatenate([sin, np.zeros_like(cos[..., :1])], axis=-1)
    return np.sqrt(cos**2 + sin**2)


def fourier_2d(grid: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """2D transform M_hat = F M F^T of a grid tensor M[a, b, ...] (trailing axes kept)."""
    return np.einsum("ia,jb,ab...->ij...", basis, basis, grid, optimize=True)


def fourier_2d_fast(grid: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``fourier_2d`` for a grid [p, p, ...] as two BLAS products (same dtype as ``grid``).

    basis: [r, p], all rows of ``fourier_basis(p)`` or a subset of them; returns [r, r, ...].
    """
    p, d, r = grid.shape[0], int(np.prod(grid.shape[2:], dtype=int)), basis.shape[0]
    basis = basis.astype(grid.dtype)
    half = basis @ grid.reshape(p, -1)  # transform over a: [i, b * d]
    half = half.reshape(r, p, d).transpose(0, 2, 1).reshape(-1, p)  # [(i, d), b]: one GEMM over b
    return (half @ basis.T).reshape(r, d, r).transpose(0, 2, 1).reshape((r, r, *grid.shape[2:]))  # [i, j, ...]


def centred_grid(acts: np.ndarray, p: int) -> np.ndarray:
    """Activations [p*p, d] (rows in row-major (a, b) order) -> the grid [p, p, d] in float32,
    each feature's mean over all p^2 inputs subtracted."""
    grid = acts.reshape(p, p, -1).astype(np.float32)
    return grid - grid.mean(axis=(0, 1))


def centred_fourier_2d(acts: np.ndarray, p: int) -> np.ndarray:
    """2D Fourier transform F (M - mean M) F^T of each feature's centred grid: [p*p, d] -> [p, p, d], float32."""
    return fourier_2d_fast(centred_grid(acts, p), fourier_basis(p))


def embedding_component_norms(w_e: np.ndarray, p: int) -> np.ndarray:
    """Norms n_j = ||(F W_E)_j|| of the embedding's Fourier components (rows of ``fourier_basis``),
    float64, from W_E [d_vocab, d_model] with the `=` row dropped: [p]."""
    return np.linalg.norm(fourier_basis(p) @ w_e[:p].astype(np.float64), axis=1)


def block_fve(energy: np.ndarray) -> np.ndarray:
    """Fraction of energy in the 3x3 block {0, 2k-1, 2k}^2 for every k = 1..p//2.

    energy: [p, p, ...] squared 2D Fourier coefficients (row order of ``fourier_basis``).
    Returns [p//2, ...]: entry k-1 is block k's energy over the total (k = p//2 included).
    """
    p = energy.shape[0]
    total = energy.sum(axis=(0, 1))
    if p % 2 == 0:  # a zero sin row and column for the frequency p / 2
        energy = np.pad(energy, [(0, 1), (0, 1)] + [(0, 0)] * (energy.ndim - 2))
    c = np.arange(1, 2 * (p // 2), 2)  # cos rows 2k-1
    s = c + 1  # sin rows 2k
    block = energy[0, 0][None] + energy[0, c] + energy[0, s] + energy[c, 0] + energy[s, 0]
    block = block + energy[c, c] + energy[c, s] + energy[s, c] + energy[s, s]
    return block / np.where(total > 0, total, 1.0)


def quadratic_fve(energy: np.ndarray) -> np.ndarray:
    """Fraction of energy in the 2x2 block {2k-1, 2k}^2 (the products cos/sin(w_k a) cos/sin(w_k b),
    without the constant and the terms in a or b alone) for every k = 1..p//2.

    energy: [p, p, ...] squared 2D Fourier coefficients. Returns [p//2, ...]. For even p (a
    group Z_{p-1}) the frequency p / 2 has a cos row only: its block is that row's cos-cos term.
    """
    p = energy.shape[0]
    total = energy.sum(axis=(0, 1))
    if p % 2 == 0:  # a zero sin row and column for the frequency p / 2
        energy = np.pad(energy, [(0, 1), (0, 1)] + [(0, 0)] * (energy.ndim - 2))
    c = np.arange(1, 2 * (p // 2), 2)
    s = c + 1
    block = energy[c, c] + energy[c, s] + energy[s, c] + energy[s, s]
    return block / np.where(total > 0, total, 1.0)


def sum_directions(p: int, index: np.ndarray, freqs: np.ndarray, operation: str = "add") -> np.ndarray:
    """Unit directions c_k, s_k over the full grid, evaluated at flat pair indices.

    c_k is proportional to cos(w_k (a + b)), s_k to sin(w_k (a + b)) (a - b for ``sub``),
    normalised over all p^2 pairs (norm sqrt(p^2 / 2); for k = p / 2, p even: c_k has norm
    sqrt(p^2) and s_k is zero). Returns [batch, 2 * len(freqs)] with columns c_{k1}, s_{k1}, c_{k2}, ...
    """
    a, b = np.divmod(np.asarray(index, dtype=np.int64), p)
    target = (a + b) % p if operation == "add" else (a - b) % p
    angle = 2 * np.pi * np.outer(target, np.asarray(freqs)) / p  # [batch, freq]
    out = np.empty((len(target), 2 * len(freqs)))
    out[:, 0::2] = np.cos(angle)
    out[:, 1::2] = np.sin(angle)
    out = out / np.sqrt(p * p / 2)
    nyquist = 2 * np.asarray(freqs) == p
    out[:, 0::2][:, nyquist] /= np.sqrt(2)
    out[:, 1::2][:, nyquist] = 0.0
    return out


def gini(values: np.ndarray) -> float:
    """Gini coefficient (Hurley & Rickard) of non-negative values:
    G = 2 sum_i i c_(i) / (N sum c) - (N + 1) / N over the sorted c_(1..N)."""
    c = np.sort(np.abs(np.ravel(values)))
    n = len(c)
    if c.sum() == 0:
        return 0.0
    return float(2 * np.sum(np.arange(1, n + 1) * c) / (n * c.sum()) - (n + 1) / n)
