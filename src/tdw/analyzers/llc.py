"""The local learning coefficient (LLC) of each checkpoint: SGLD localised at the checkpoint's
weights w* on the run's training split (its data seed), the chains stacked as one model
(``tdw.analyzers.sgld``), on the training loss itself (``stacked_cross_entropy`` of the
training fast path: ``chain_logits`` for the paper's shape, ``tdw.train.trainer.stacked_logits``
for other models). Float32 weights, CUDA when present;
deterministic on the CPU for a seed.

Per checkpoint: the mean and std over the chains that did not diverge (a loss that is not
finite, or the later half of the draws averaging more than ln(number of classes) above
L_n(w*): worse than guessing), each chain's
estimate, the loss and distance traces [chain, draw], a MALA acceptance estimate per chain
and the divergence flag per chain.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView, Param
from tdw.tasks.modular import OPERATIONS


def _in_range(lo: float, hi: float, lo_open: bool = False):
    """A range check: ``lo < v <= hi`` (``lo_open``) or ``lo <= v <= hi``."""

    def check(value: float) -> str | None:
        ok = (value > lo if lo_open else value >= lo) and value <= hi
        return None if ok else f"expected {lo} {'<' if lo_open else '<='} value <= {hi}"

    return check


def _nbeta_range(value: float | str) -> str | None:
    if isinstance(value, str) or (math.isfinite(value) and value > 0):
        return None
    return "expected a finite number > 0, or a preset 'batch' (b / ln b) or 'n' (n / ln n)"


def _batch_range(value: int | str) -> str | None:
    return None if isinstance(value, str) or value >= 0 else "expected 0 or 'full' (the full batch) or a batch size >= 1"


PARAMS = (
    Param("epsilon", float, 3e-5, "SGLD step size ε (0 < ε <= 1)", _in_range(0.0, 1.0, lo_open=True)),
    Param("gamma", float, 1000.0, "localisation strength γ pulling w towards w* (>= 0)", _in_range(0.0, 1e12)),
    Param("nbeta", float | Literal["batch", "n"], "n", "inverse temperature nβ: a number > 0, 'batch' or 'n'", _nbeta_range),
    Param("chains", int, 4, "SGLD chains, run as one stacked model (1..1024)", _in_range(1, 1024)),
    Param("draws", int, 100, "draws per chain (>= 1)", _in_range(1, 10**7)),
    Param("burn_in", int, 50, "steps before the first draw (>= 0)", _in_range(0, 10**7)),
    Param("steps_between_draws", int, 1, "SGLD steps from one draw to the next (>= 1)", _in_range(1, 10**6)),
    Param("batch_size", int | Literal["full"], 128, "rows per SGLD step; 0 or 'full': the full training split", _batch_range),
    Param("seed", int, 0, "seed of the noise and of the batch order (>= 0)", _in_range(0, 2**62)),
)


def settings(params: dict, n: int):
    """``SGLDSettings`` for a training split of n rows (a batch at least n is the full batch)."""
    from tdw.analyzers.sgld import SGLDSettings, resolve_nbeta

    batch = 0 if params["batch_size"] in ("full", 0) or params["batch_size"] >= n else int(params["batch_size"])
    return SGLDSettings(
        epsilon=params["epsilon"],
        gamma=params["gamma"],
        nbeta=resolve_nbeta(params["nbeta"], n, batch or n),
        chains=params["chains"],
        draws=params["draws"],
        burn_in=params["burn_in"],
        steps_between_draws=params["steps_between_draws"],
        batch_size=batch,
        seed=params["seed"],
    )


def chain_logits(params: dict, cfg, a, b):
    """Last-position logits [chain, batch, d_vocab_out] of the paper-shaped model for inputs
    [a, b, =] (a, b: [batch], the same rows for every chain), from stacked parameters
    {name: [chain, ...]}: the training fast path (``tdw.models.fastpath.last_logits``) with the
    chains as the batch axis of each matmul. The `=` query is fixed, so a score is
    x · (W_K q) (one vector per head, not a key per vocabulary entry), and values are taken
    only where they are read: positions 0 and 1 over the vocabulary, position 2 at `=`."""
    import torch
    import torch.nn.functional as F

    W_E, W_pos = params["embed.W_E"], params["pos_embed.W_pos"]  # [C, V, d], [C, n_ctx, d]
    W_Q, W_K, W_V, W_O = (params[f"blocks.0.attn.{n}"] for n in ("W_Q", "W_K", "W_V", "W_O"))  # [C, H, d, e] / [C, H, e, d]
    chains, vocab, d = W_E.shape
    heads, hd = cfg.n_heads, cfg.n_heads * cfg.d_head
    x_eq = W_E[:, cfg.p] + W_pos[:, 2]  # [C, d]
    q = torch.einsum("cd,chde->che", x_eq, W_Q) / math.sqrt(cfg.d_head)
    kq = torch.einsum("chde,che->cdh", W_K, q)  # [C, d, H]
    w_v = W_V.permute(0, 2, 1, 3).reshape(chains, d, hd)
    x01 = torch.cat([W_E + W_pos[:, :1], W_E + W_pos[:, 1:2]], 1)  # [C, 2V, d]: token v at position 0, then 1
    table = torch.cat([torch.bmm(x01, kq), torch.bmm(x01, w_v)], -1).reshape(chains * 2 * vocab, heads + hd)
    base = torch.arange(chains, device=a.device)[:, None] * (2 * vocab)
    # split, not slices: its backward is one cat, a slice's a zero-filled copy
    s_a, v_a = F.embedding(base + a, table).split((heads, hd), -1)  # [C, n, H], [C, n, hd]
    s_b, v_b = F.embedding(base + vocab + b, table).split((heads, hd), -1)
    n = a.shape[0]
    s_eq = torch.einsum("cd,cdh->ch", x_eq, kq)[:, None].expand(chains, n, heads)
    w = torch.stack([s_a, s_b, s_eq], -1).softmax(-1)  # [C, n, H, 3]
    if cfg.attention_rate != 1.0:  # the `=` query sees all three positions: uniform is 1/3 each
        w = cfg.attention_rate * w + (1 - cfg.attention_rate) / 3
    v_eq = torch.bmm(x_eq[:, None], w_v).view(chains, 1, heads, cfg.d_head)
    z = w[..., 0, None] * v_a.view(chains, n, heads, -1) + w[..., 1, None] * v_b.view(chains, n, heads, -1)
    z = z + w[..., 2, None] * v_eq  # [C, n, H, e]
    resid_mid = torch.baddbmm(x_eq[:, None], z.reshape(chains, n, hd), W_O.reshape(chains, hd, d))
    post = torch.baddbmm(params["blocks.0.mlp.b_in"][:, None], resid_mid, params["blocks.0.mlp.W_in"]).relu_()
    resid_post = torch.baddbmm(params["blocks.0.mlp.b_out"][:, None], post, params["blocks.0.mlp.W_out"]).add_(resid_mid)
    return torch.bmm(resid_post, params["unembed.W_U"])


def training_loss(view: CheckpointView, device: str):
    """The training objective of the checkpoint's run on its training split, over stacked
    parameters: (params {name: [chain, ...]}, rows [batch] or None) -> mean loss [chain];
    with the centre w* (float32 tensors) and n. The paper's shape runs ``chain_logits``,
    other models ``tdw.train.trainer.stacked_logits``."""
    import torch

    from tdw.tasks import modular
    from tdw.train.trainer import stacked_cross_entropy, stacked_logits

    train, _ = view.split()
    tokens = torch.as_tensor(modular.tokens(view.p, train), device=device)
    labels = torch.as_tensor(modular.labels(view.p, train, view.operation), device=device)
    center = {k: torch.as_tensor(np.asarray(v, dtype=np.float32), device=device) for k, v in view.weights.items()}
    cfg = view.model

    def loss(params: dict, rows):
        x, y = (tokens, labels) if rows is None else (tokens[rows], labels[rows])
        chains = next(iter(params.values())).shape[0]
        if cfg.is_paper_shape:
            logits = chain_logits(params, cfg, x[:, 0], x[:, 1])
        else:
            logits = stacked_logits(params, cfg, x.expand(chains, -1, -1), vectorize=True)  # [chain, batch, vocab]
        return stacked_cross_entropy(logits, y.expand(chains, -1))

    return loss, center, len(train)


def estimate(view: CheckpointView, params: dict):
    """The ``LLCEstimate`` of one checkpoint and the settings it used."""
    import torch

    from tdw.analyzers.sgld import estimate_llc

    device = "cuda" if torch.cuda.is_available() else "cpu"
    loss, center, n = training_loss(view, device)
    s = settings(params, n)
    return estimate_llc(loss, center, n, s, blowup=math.log(view.model.d_vocab_out)), s


class LLC(Analyzer):
    name = "llc"
    operations = tuple(OPERATIONS)
    description = "local learning coefficient by SGLD at each checkpoint, with traces and divergence flags"
    params = PARAMS
    dims = {
        "llc_mean": "",
        "llc_std": "",
        "llc": "chain",
        "init_loss": "",
        "n_diverged": "",
        "loss_trace": "chain draw",
        "distance_trace": "chain draw",
        "mala_acceptance": "chain",
        "diverged": "chain",
        "nbeta_value": "",
    }

    def step(self, view: CheckpointView, params: dict, state: dict) -> dict[str, np.ndarray]:
        est, s = estimate(view, params)
        return {
            "llc_mean": np.float64(est.llc_mean),
            "llc_std": np.float64(est.llc_std),
            "llc": est.llc,
            "init_loss": np.float64(est.init_loss),
            "n_diverged": np.int64(est.diverged.sum()),
            "loss_trace": est.loss_trace,
            "distance_trace": est.distance_trace,
            "mala_acceptance": est.mala_acceptance,
            "diverged": est.diverged,
            "nbeta_value": np.float64(s.nbeta),
        }

    def finalize(self, epochs, steps, params, state):
        out = super().finalize(epochs, steps, params, state)
        draws = steps[0]["loss_trace"].shape[1]
        out["chain"] = (np.arange(params["chains"]), "chain")
        out["draw"] = (params["burn_in"] + params["steps_between_draws"] * np.arange(draws), "draw")
        return out


ANALYZER = LLC()
