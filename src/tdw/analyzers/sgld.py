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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

# loss_fn(stacked params {name: [chain, ...]}, row indices [batch] or None for all rows) -> [chain]
LossFn = Callable[[dict[str, torch.Tensor], torch.Tensor | None], torch.Tensor]


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


def _per_chain_sq(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum of squares per chain over every tensor [chain, ...] -> [chain] (float64)."""
    return sum(t.flatten(1).square().sum(1, dtype=torch.float64) for t in tensors.values())


def estimate_llc(loss_fn: LossFn, center: dict[str, torch.Tensor], n: int, settings: SGLDSettings, blowup: float) -> LLCEstimate:
    """Run ``settings.chains`` SGLD chains from ``center`` (one model's tensors) on a loss over
    ``n`` rows. ``loss_fn`` gets stacked parameters and row indices (None: all rows)."""
    s = settings
    device = next(iter(center.values())).device
    noise_gen = torch.Generator(device=device).manual_seed(s.seed)
    rows = batch_rows(n, s.batch_size, torch.Generator().manual_seed(s.seed + 1))
    with torch.no_grad():
        stacked = {k: v.detach().unsqueeze(0) for k, v in center.items()}
        init_loss = float(loss_fn(stacked, None)[0])
        anchor = {k: v.expand(s.chains, *v.shape[1:]) for k, v in stacked.items()}
        w = {k: v.clone() for k, v in anchor.items()}
    losses = np.full((s.chains, s.draws), np.nan)
    dists = np.full((s.chains, s.draws), np.nan)
    finite = torch.ones(s.chains, dtype=torch.bool, device=device)
    accept_sum = torch.zeros(s.chains, dtype=torch.float64, device=device)
    accept_n = 0
    prev = None  # (w, drift, U, ||xi||^2) of the last step, for the MALA score
    for t in range(s.steps):
        idx = next(rows)
        for v in w.values():
            v.requires_grad_(True)
        loss = loss_fn(w, None if idx is None else idx.to(device))
        grads = torch.autograd.grad(loss.sum(), list(w.values()))
        with torch.no_grad():
            loss = loss.detach().double()
            finite &= torch.isfinite(loss)
            offset = {k: w[k].detach() - anchor[k] for k in w}
            dist_sq = _per_chain_sq(offset)
            potential = s.nbeta * loss + 0.5 * s.gamma * dist_sq
            drift = {k: s.nbeta * g + s.gamma * offset[k] for k, g in zip(w, grads, strict=True)}
            if prev is not None and t > s.burn_in:
                back = {k: prev[0][k] - w[k] + 0.5 * s.epsilon * drift[k] for k in w}
                log_ratio = prev[2] - potential - _per_chain_sq(back) / (2 * s.epsilon) + 0.5 * prev[3]
                accept_sum += torch.nan_to_num(log_ratio.clamp(max=0.0).exp(), nan=0.0)
                accept_n += 1
            draw, since = divmod(t - s.burn_in, s.steps_between_draws)
            if t >= s.burn_in and since == 0:
                losses[:, draw] = loss.cpu().numpy()
                dists[:, draw] = dist_sq.sqrt().cpu().numpy()
            noise = {k: torch.randn(v.shape, generator=noise_gen, device=device, dtype=v.dtype) for k, v in w.items()}
            new = {k: w[k].detach() - 0.5 * s.epsilon * drift[k] + math.sqrt(s.epsilon) * noise[k] for k in w}
            prev = ({k: v.detach() for k, v in w.items()}, drift, potential, _per_chain_sq(noise))
            w = new
    llc = s.nbeta * (losses.mean(1) - init_loss)
    # Batch losses spike now and then; a blow-up is the later half of the trace sitting high.
    blew_up = ~(losses[:, s.draws // 2 :].mean(1) <= init_loss + blowup)  # NaN compares False
    diverged = blew_up | ~finite.cpu().numpy() | ~np.isfinite(llc)
    acceptance = (accept_sum / accept_n).cpu().numpy() if accept_n else np.full(s.chains, np.nan)
    return LLCEstimate(init_loss, llc, losses, dists, acceptance, diverged)
