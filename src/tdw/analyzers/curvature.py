"""Curvature of a loss at a point, for any torch loss of one flat parameter vector w [D]:
Hessian-vector products by double backward, the top Hessian eigenvalues by Lanczos
(``scipy.sparse.linalg.eigsh`` on a ``LinearOperator`` of those products), the trace by
Hutchinson's estimator with Rademacher probes, and the loss of a checkpoint's run on its
training split as such a function (``flat_training_loss``). Torch is imported inside the
functions: analysis modules stay light until they compute."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tdw.analyzers.base import CheckpointView

# (v [D] float64) -> H v [D] float64
MatVec = Callable[[np.ndarray], np.ndarray]


@dataclass
class HVP:
    """Hessian-vector products of a loss at w: ``matvec`` counts its calls in ``calls``."""

    fn: MatVec
    dim: int
    calls: int = 0

    def matvec(self, v: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.fn(v)


def hessian_vector_product(loss: Callable, w) -> HVP:
    """H v for the Hessian of ``loss`` (a torch function of a flat vector [D] -> scalar) at
    w [D] (a torch tensor; its dtype and device are those of the products). The gradient's
    graph is built once (``create_graph``) and each product is one backward through it."""
    import torch

    w = w.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(w), w, create_graph=True)

    def fn(v: np.ndarray) -> np.ndarray:
        if not grad.requires_grad:  # a loss linear in w: the Hessian is zero
            return np.zeros(w.numel())
        vt = torch.as_tensor(np.ascontiguousarray(v, dtype=np.float64).reshape(-1), device=w.device).to(w.dtype)
        (hv,) = torch.autograd.grad(grad, w, grad_outputs=vt, retain_graph=True, allow_unused=True)
        return np.zeros(w.numel()) if hv is None else hv.detach().to("cpu", torch.float64).numpy()

    return HVP(fn, w.numel())


def top_eigenvalues(hvp: HVP, k: int, tol: float, seed: int, maxiter: int | None = None) -> np.ndarray:
    """The k largest (algebraic) eigenvalues of the Hessian [k], descending, by implicitly
    restarted Lanczos (ARPACK through ``eigsh``, ``which="LA"``) from a seeded Gaussian start
    vector; ``tol``: ARPACK's relative accuracy of each Ritz value; ``maxiter``: its restarts
    (None: 10 D). Values that have not converged by then are NaN. k must be below the dimension."""
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    if not 1 <= k < hvp.dim:
        raise ValueError(f"k = {k}: Lanczos finds 1 .. {hvp.dim - 1} eigenvalues of a {hvp.dim}-dimensional Hessian")
    op = LinearOperator((hvp.dim, hvp.dim), matvec=hvp.matvec, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(hvp.dim)
    try:
        values = eigsh(op, k=k, which="LA", tol=tol, v0=v0, maxiter=maxiter, return_eigenvectors=False)
    except ArpackNoConvergence as err:  # the Ritz values that converged, NaN for the others
        values = np.concatenate([err.eigenvalues, np.full(k - len(err.eigenvalues), np.nan)])
    return -np.sort(-values)  # descending, NaN last


def hutchinson_trace(hvp: HVP, probes: int, seed: int) -> tuple[float, float, np.ndarray]:
    """tr H by Hutchinson: the mean of z^T H z over ``probes`` Rademacher vectors z (entries
    +-1, seeded), its standard error std / sqrt(probes) (NaN for one probe) and each probe's
    value [probe]. Unbiased; its variance is 2 (||H||_F^2 - sum_i H_ii^2) / probes."""
    rng = np.random.default_rng(seed)
    samples = np.empty(probes)
    for i in range(probes):
        z = rng.integers(0, 2, hvp.dim) * 2.0 - 1.0
        samples[i] = z @ hvp.matvec(z)
    se = float(samples.std(ddof=1) / np.sqrt(probes)) if probes > 1 else float("nan")
    return float(samples.mean()), se, samples


@dataclass
class FlatLoss:
    """A checkpoint's training loss as a function of one flat vector: ``loss(w [D]) -> scalar``,
    ``stacked(w [S, D]) -> [S]`` (S points at once), ``center`` the checkpoint's weights [D] and
    ``names``/``shapes`` the parameters in the order they are laid out (sorted names)."""

    loss: Callable
    stacked: Callable
    center: Any  # torch tensor [D]
    names: list[str]
    shapes: list[tuple[int, ...]]
    n: int  # training rows


def unflatten(w, names: list[str], shapes: list[tuple[int, ...]]) -> dict:
    """{name: tensor [S, ...]} from flat points w [S, D] laid out in ``names`` order."""
    pieces = w.split([math.prod(s) for s in shapes], dim=-1)
    return {k: x.reshape(w.shape[0], *s) for k, x, s in zip(names, pieces, shapes, strict=True)}


def flat_training_loss(view: CheckpointView, device: str, dtype: str = "float64") -> FlatLoss:
    """The run's mean cross-entropy on its training split (``tdw.analyzers.llc.training_loss``,
    the training objective itself) as a function of the flat parameter vector, in ``dtype``."""
    import torch

    from tdw.analyzers.llc import training_loss

    loss, _, center, n = training_loss(view, device)
    names = sorted(center)
    shapes = [tuple(center[k].shape) for k in names]
    w0 = torch.cat([center[k].reshape(-1) for k in names]).to(getattr(torch, dtype))

    def stacked(w):
        return loss(unflatten(w, names, shapes), None)

    return FlatLoss(lambda w: stacked(w[None])[0], stacked, w0, names, shapes, n)


def eos_threshold(optimizer: str, lr: float, beta1: float = 0.0) -> float:
    """The edge-of-stability sharpness of an optimizer at step size lr: 2 / lr for full-batch
    gradient descent (``"sgd"``); (2 + 2 beta1) / ((1 - beta1) lr) for Adam and AdamW, which
    bounds the *preconditioned* sharpness, the top eigenvalue of P^-1 H with P = diag(sqrt(v) + eps)
    (Cohen et al. 2022, adaptive edge of stability), not that of H."""
    if optimizer == "sgd":
        return 2.0 / lr
    if optimizer in ("adam", "adamw"):
        return (2.0 + 2.0 * beta1) / ((1.0 - beta1) * lr)
    raise ValueError(f"no edge-of-stability threshold known for optimizer {optimizer!r}")
