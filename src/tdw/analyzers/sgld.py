"""The local learning coefficient (LLC) by SGLD localised at w*, for any loss over stacked
parameters (the ``llc`` analyzer wraps it for a checkpoint and its training split).

Every chain is one slice of a stacked parameter set (leading axis = chain), so the C chains
run as one model: one loss call and one backward per step. With L_B the mean loss of a batch
and U(w) = nβ L_B(w) + (γ/2) ||w − w*||², each step is

    w ← w − (ε/2) ∇U(w) + √ε ξ,   ξ ~ N(0, I),

and the estimate is λ̂ = nβ (mean over draws of L_B(w_t) − L_n(w*)) per chain (the batch loss
at a draw is an unbiased estimate of L_n(w_t); with the full batch it is L_n(w_t)). Draws are
the steps ``burn_in + k * steps_between_draws``, losses taken before the step, as devinterp
does. The MALA acceptance estimate scores each step as a Metropolis-adjusted Langevin
proposal, min(1, exp(U(w) − U(w') + log q(w | w') − log q(w' | w))), with U(w') from the next
step's batch (exact with the full batch). A chain diverges when a loss is not finite or the
mean loss of its later half of draws exceeds L_n(w*) + ``blowup``; the mean and std are over
the other chains only.

A ``mask`` (1 on the coordinates a chain moves, 0 elsewhere; one row for every chain or one
row per chain) restricts the chains to those coordinates: the drift (gradient and
localisation) and the noise are multiplied by it, so the other weights stay at w* (the
weight-restricted LLC of Wang et al. 2024 when every chain's row selects one component).
Without a mask no multiplication is done: the full LLC's numbers are unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

# loss_fn(stacked params {name: [chain, ...]}, row indices [batch] or None for all rows) -> [chain]
LossFn = Callable[[dict[str, torch.Tensor], torch.Tensor | None], torch.Tensor]
# the same loss with its gradient {name: [chain, ...]} computed without autograd
LossGradFn = Callable[[dict[str, torch.Tensor], torch.Tensor | None], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass(frozen=True)
class SGLDSettings:
    """Sampler hyperparameters (``nbeta`` already resolved to a number)."""

    epsilon: float
    gamma: float
    nbeta: float
    chains: int
    draws: int
    burn_in: int = 0
    steps_between_draws: int = 1
    batch_size: int = 0  # 0: the full batch
    seed: int = 0

    @property
    def steps(self) -> int:
        return self.burn_in + self.draws * self.steps_between_draws


@dataclass
class LLCEstimate:
    """One LLC estimate: per chain, its traces and diagnostics."""

    init_loss: float  # L_n(w*)
    llc: np.ndarray  # [chain]
    loss_trace: np.ndarray  # [chain, draw]
    distance_trace: np.ndarray  # [chain, draw]: ||w_t - w*||
    mala_acceptance: np.ndarray  # [chain]
    diverged: np.ndarray  # [chain] bool

    @property
    def llc_mean(self) -> float:
        kept = self.llc[~self.diverged]
        return float(kept.mean()) if len(kept) else float("nan")

    @property
    def llc_std(self) -> float:
        kept = self.llc[~self.diverged]
        return float(kept.std(ddof=1)) if len(kept) > 1 else float("nan")


def resolve_nbeta(nbeta: float | str, n: int, batch_size: int) -> float:
    """nβ from a number or a preset: ``"batch"`` b / ln b (devinterp's default, b the batch
    size actually used), ``"n"`` n / ln n (n the training set size)."""
    if not isinstance(nbeta, str):
        return float(nbeta)
    size = {"batch": batch_size, "n": n}[nbeta]
    if size < 2:
        raise ValueError(f"nbeta preset {nbeta!r} needs a size of at least 2, got {size}")
    return size / math.log(size)


def batch_rows(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor | None]:
    """Row indices per step: shuffled passes over n rows in batches, the incomplete last batch
    of a pass dropped (as a DataLoader with drop_last); ``None`` forever for the full batch."""
    while True:
        if batch_size <= 0 or batch_size >= n:
            yield None
            continue
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


class _Flat:
    """Every chain's parameters as one flat tensor [chain, D] (so that each elementwise step of
    the sampler is one pass over one buffer and the noise one draw), viewed back as the named
    tensors [chain, ...] that the loss takes."""

    def __init__(self, center: dict[str, torch.Tensor]):
        self.names = list(center)
        self.shapes = [tuple(v.shape) for v in center.values()]
        self.sizes = [v.numel() for v in center.values()]

    def flatten(self, tensors: dict[str, torch.Tensor], chains: int = 1) -> torch.Tensor:
        """[chains, D] from tensors [chains, ...] (one model's tensors for ``chains`` 1)."""
        return torch.cat([tensors[k].detach().reshape(chains, -1) for k in self.names], 1)

    def views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        # split's backward is one cat: the gradient arrives flat, without a zero-filled copy per tensor
        parts = flat.split(self.sizes, 1)
        return {k: t.view(flat.shape[0], *shape) for k, t, shape in zip(self.names, parts, self.shapes, strict=True)}


class _Noise:
    """The steps' noise ξ [chain, D], one ``normal_`` over the buffer per step. With ``ahead``
    the next step's noise is drawn in a second thread while the caller computes (torch
    releases the GIL in its kernels), into the other of two buffers: the same generator and
    order of draws, so the same numbers as drawing in line. A step's noise stays valid until
    the call after next (the MALA score of the next step reads it)."""

    def __init__(self, like: torch.Tensor, generator: torch.Generator, ahead: bool):
        self.buffers = (torch.empty_like(like), torch.empty_like(like))
        self.generator = generator
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="sgld-noise") if ahead else None
        self.step = 0
        self.pending = self.pool.submit(self._fill, 0) if self.pool else None

    def _fill(self, i: int) -> None:
        self.buffers[i].normal_(generator=self.generator)

    def next(self) -> torch.Tensor:
        i = self.step % 2
        self.step += 1
        if self.pool is None or self.pending is None:  # pending is set whenever the pool is
            self._fill(i)
        else:
            self.pending.result()
            self.pending = self.pool.submit(self._fill, 1 - i)
        return self.buffers[i]

    def close(self) -> None:
        if self.pool is not None and self.pending is not None:
            self.pending.result()
            self.pool.shutdown()


def _dot(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-row dot products [chain] of two [chain, D] buffers: one pass, no temporary."""
    return torch.bmm(x.unsqueeze(1), y.unsqueeze(2)).view(-1).double()


def _mala_log_ratio(potential, prev_potential, drift_sum, prev_noise, epsilon: float, scale: float) -> torch.Tensor:
    """log of the MALA acceptance ratio of the last step w -> w' = w - (ε/2) d + √ε ξ, with
    d, d' the drifts at w, w' and S = d + d' = ``scale`` * ``drift_sum``:
    log q(w | w') - log q(w' | w) = ||ξ||² / 2 - ||(ε/2) S - √ε ξ||² / (2ε)
    = (√ε / 2) S·ξ - (ε / 8) ||S||² (the ||ξ||² terms cancel exactly, which also spares their
    rounding)."""
    dot, sq = _dot(drift_sum, prev_noise), _dot(drift_sum, drift_sum)
    return prev_potential - potential + 0.5 * math.sqrt(epsilon) * scale * dot - 0.125 * epsilon * scale**2 * sq


def estimate_llc(
    loss_fn: LossFn,
    center: dict[str, torch.Tensor],
    n: int,
    settings: SGLDSettings,
    blowup: float,
    loss_grad: LossGradFn | None = None,
    noise_ahead: bool | None = None,
    mask: torch.Tensor | None = None,
    on_draw: Callable[[dict[str, torch.Tensor], int], None] | None = None,
) -> LLCEstimate:
    """Run ``settings.chains`` SGLD chains from ``center`` (one model's tensors) on a loss over
    ``n`` rows. ``loss_fn`` gets stacked parameters and row indices (None: all rows); where
    ``loss_grad`` is given, the steps take the loss and its gradient from it instead of
    autograd through ``loss_fn``. ``noise_ahead``: draw each step's noise in a second thread
    during the step before (the same numbers; default: on the CPU with more than one torch
    thread, of which the noise thread then takes one: on two cores one matmul thread beside
    the noise beats two matmul threads, whose small kernels gain nothing). ``mask``: [1, D] or
    [chains, D] over the flat parameters (``flat_mask`` builds it from named masks).
    ``on_draw(params, draw)``: called at every draw with the chains' stacked parameters (the
    point whose loss the draw records), without gradients, to evaluate observables."""
    s = settings
    device = next(iter(center.values())).device
    flat = _Flat(center)
    anchor = flat.flatten(center)  # [1, D]
    if mask is not None:
        mask = mask.to(device=device, dtype=anchor.dtype)
        if mask.shape not in ((1, anchor.shape[1]), (s.chains, anchor.shape[1])):
            raise ValueError(
                f"mask of shape {tuple(mask.shape)}: expected (1, {anchor.shape[1]}) or ({s.chains}, {anchor.shape[1]})"
            )
    with torch.inference_mode():
        init_loss = float(loss_fn(flat.views(anchor), None)[0])
    threads = torch.get_num_threads()
    if noise_ahead is None:
        noise_ahead = device.type == "cpu" and threads > 1
    noises = _Noise(anchor.expand(s.chains, -1), torch.Generator(device=device).manual_seed(s.seed), ahead=noise_ahead)
    if noise_ahead and device.type == "cpu" and threads > 1:
        torch.set_num_threads(threads - 1)  # one thread of the job's own is the noise thread's
    try:
        restrict = ({} if mask is None else {"mask": mask}) | ({} if on_draw is None else {"on_draw": on_draw})
        losses, dists, finite, acceptance = _run_chains(loss_fn, loss_grad, flat, anchor, n, s, noises, **restrict)
    finally:
        noises.close()
        torch.set_num_threads(threads)
    llc = s.nbeta * (losses.mean(1) - init_loss)
    # Batch losses spike now and then; a blow-up is the later half of the trace sitting high.
    blew_up = ~(losses[:, s.draws // 2 :].mean(1) <= init_loss + blowup)  # NaN compares False
    diverged = blew_up | ~finite | ~np.isfinite(llc)
    return LLCEstimate(init_loss, llc, losses, dists, acceptance, diverged)


def _run_chains(
    loss_fn, loss_grad, flat: _Flat, anchor: torch.Tensor, n: int, s: SGLDSettings, noises: _Noise, mask=None, on_draw=None
):
    """The SGLD steps of every chain from w* (``anchor`` [1, D]): the loss and distance traces
    [chain, draw], whether every loss was finite [chain] and the mean MALA acceptance [chain].
    With ``mask`` the drift and noise are multiplied by it (w - w* is then 0 off the mask);
    ``on_draw`` sees the parameters at each draw."""
    device = anchor.device
    rows = batch_rows(n, s.batch_size, torch.Generator().manual_seed(s.seed + 1))
    w = anchor.expand(s.chains, -1).clone()  # [chain, D]: updated in place
    offset = torch.empty_like(w)
    losses = np.full((s.chains, s.draws), np.nan)
    dists = np.full((s.chains, s.draws), np.nan)
    finite = torch.ones(s.chains, dtype=torch.bool, device=device)
    accept_sum = torch.zeros(s.chains, dtype=torch.float64, device=device)
    accept_n = 0
    prev = None  # (drift, U, noise) of the last step
    for t in range(s.steps):
        idx = next(rows)
        idx = None if idx is None else idx.to(device)
        # the drift is built in the gradient's own (fresh) tensor, divided by nβ (one pass fewer; the scalars carry nβ)
        if loss_grad is not None:
            with torch.no_grad():
                loss, grads = loss_grad(flat.views(w), idx)
                drift = flat.flatten(grads, s.chains)
        else:
            w.requires_grad_(True)
            loss = loss_fn(flat.views(w), idx)
            (drift,) = torch.autograd.grad(loss.sum(), w)
            w.requires_grad_(False)
        with torch.no_grad():
            loss = loss.detach().double()
            finite &= torch.isfinite(loss)
            torch.sub(w, anchor, out=offset)
            drift.add_(offset, alpha=s.gamma / s.nbeta)  # ∇U / nβ = ∇L_B + (γ / nβ) (w - w*)
            if mask is not None:
                drift.mul_(mask)  # ∇U restricted to the chain's coordinates
            # A float32 sum (pairwise, ~1e-7 relative): a float64 sum would first copy the buffer to float64
            dist_sq = offset.square_().sum(1).double()
            potential = s.nbeta * loss + 0.5 * s.gamma * dist_sq
            if prev is not None and t > s.burn_in:
                log_ratio = _mala_log_ratio(potential, prev[1], prev[0].add_(drift), prev[2], s.epsilon, s.nbeta)
                accept_sum += torch.nan_to_num(log_ratio.clamp(max=0.0).exp(), nan=0.0)
                accept_n += 1
            draw, since = divmod(t - s.burn_in, s.steps_between_draws)
            if t >= s.burn_in and since == 0:
                losses[:, draw] = loss.cpu().numpy()
                dists[:, draw] = dist_sq.sqrt().cpu().numpy()
                if on_draw is not None:
                    on_draw(flat.views(w), draw)
            noise = noises.next()  # every chain's noise for the step in one draw
            if mask is not None:
                noise.mul_(mask)  # the buffer is refilled before its next use
            w.add_(drift, alpha=-0.5 * s.epsilon * s.nbeta).add_(noise, alpha=math.sqrt(s.epsilon))
            prev = (drift, potential, noise)
    acceptance = (accept_sum / accept_n).cpu().numpy() if accept_n else np.full(s.chains, np.nan)
    return losses, dists, finite.cpu().numpy(), acceptance


def flat_mask(center: dict[str, torch.Tensor], masks: list[dict[str, np.ndarray | None]]) -> torch.Tensor:
    """The sampler's mask [len(masks), D] for ``center``'s flat order: one row per entry of
    ``masks`` ({parameter name: bool array of its shape, or None for all of it}; a parameter
    not named is held at w*)."""
    flat = _Flat(center)
    rows = []
    for m in masks:
        parts = []
        for name, size, shape in zip(flat.names, flat.sizes, flat.shapes, strict=True):
            if name not in m:
                parts.append(np.zeros(size, dtype=bool))
            elif m[name] is None:
                parts.append(np.ones(size, dtype=bool))
            else:
                got = np.asarray(m[name], dtype=bool)
                if got.shape != shape:
                    raise ValueError(f"mask of {name!r} has shape {got.shape}, the parameter {shape}")
                parts.append(got.reshape(-1))
        rows.append(np.concatenate(parts))
    like = next(iter(center.values()))
    return torch.as_tensor(np.stack(rows), dtype=like.dtype, device=like.device)
