"""Fourier basis over Z_p and the transforms the analyzers use (numpy only).

Row order is fixed: ``const, cos 1, sin 1, cos 2, sin 2, ...``; for odd p there are
p rows and the basis is orthonormal.
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
    return np.sqrt(cos**2 + sin**2)


def fourier_2d(grid: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """2D transform M_hat = F M F^T of a grid tensor M[a, b, ...] (trailing axes kept)."""
    return np.einsum("ia,jb,ab...->ij...", basis, basis, grid, optimize=True)
