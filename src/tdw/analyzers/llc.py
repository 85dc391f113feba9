"""The local learning coefficient (LLC) of each checkpoint: SGLD localised at the checkpoint's
weights w* on the run's training split (its data seed), the chains stacked as one model
(``tdw.analyzers.sgld``), on the training loss itself (``stacked_cross_entropy`` of the
training fast path: ``chain_logits`` for the paper's shape, with its gradient written out by
hand in ``chain_loss_grad``, ``tdw.models.fastpath.stacked_logits`` and autograd for other
models, the MLP model's ``mlp_logits`` included). Float32 weights, CUDA when present;
deterministic on the CPU for a seed.

Per checkpoint: the mean and std over the chains that did not diverge (a loss that is not
finite, or the later half of the draws averaging more than ln(number of classes) above
L_n(w*): worse than guessing; ``divergence_rise`` sets another margin, for settings such as
the devinterp grokking example's whose chains run hot by design), each chain's
estimate, the loss and distance traces [chain, draw], a MALA acceptance estimate per chain
and the divergence flag per chain.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView, Param
from tdw.params import in_range
from tdw.tasks.modular import OPERATIONS


def nbeta_range(value: float | str) -> str | None:
    if isinstance(value, str) or (math.isfinite(value) and value > 0):
        return None
    return "expected a finite number > 0, or a preset 'batch' (b / ln b) or 'n' (n / ln n)"


def _batch_range(value: int | str) -> str | None:
    return None if isinstance(value, str) or value >= 0 else "expected 0 or 'full' (the full batch) or a batch size >= 1"


PARAMS = (
    Param("epsilon", float, 3e-5, "SGLD step size ε (0 < ε <= 1)", in_range(0.0, 1.0, lo_open=True)),
    Param("gamma", float, 1000.0, "localisation strength γ pulling w towards w* (>= 0)", in_range(0.0, 1e12)),
    Param("nbeta", float | Literal["batch", "n"], "n", "inverse temperature nβ: a number > 0, 'batch' or 'n'", nbeta_range),
    Param("chains", int, 4, "SGLD chains, run as one stacked model (1..1024)", in_range(1, 1024)),
    Param("draws", int, 100, "draws per chain (>= 1)", in_range(1, 10**7)),
    Param("burn_in", int, 50, "steps before the first draw (>= 0)", in_range(0, 10**7)),
    Param("steps_between_draws", int, 1, "SGLD steps from one draw to the next (>= 1)", in_range(1, 10**6)),
    Param("batch_size", int | Literal["full"], 128, "rows per SGLD step; 0 or 'full': the full training split", _batch_range),
    Param("seed", int, 0, "seed of the noise and of the batch order (>= 0)", in_range(0, 2**62)),
    Param(
        "divergence_rise",
        float | None,
        None,
        "a chain is flagged diverged when its later draws average more than this above L_n(w*); null: ln(classes)",
        lambda v: None if v is None or (math.isfinite(v) and v > 0) else "expected a finite number > 0, or null",
    ),
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


def divergence_margin(params: dict, classes: int) -> float:
    """How far above L_n(w*) the later half of a chain's draws may average before the chain counts
    as diverged: ``divergence_rise`` where given, else ln(classes) (worse than guessing)."""
    rise = params.get("divergence_rise")
    return math.log(classes) if rise is None else float(rise)


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


PAPER_SHAPE_NAMES = frozenset(
    ["embed.W_E", "pos_embed.W_pos", "unembed.W_U"]
    + [f"blocks.0.attn.{n}" for n in ("W_Q", "W_K", "W_V", "W_O")]
    + [f"blocks.0.mlp.{n}" for n in ("W_in", "b_in", "W_out", "b_out")]
)


def chain_loss_grad(params: dict, cfg, a, b, labels):
    """The mean cross-entropy [chain] of ``chain_logits`` on rows (a, b) with their labels and
    its gradient {name: [chain, ...]}, by a hand-written backward of the same forward (no
    autograd graph): one batched matmul per weight and direction, the rows of the three
    positions (a at 0, b at 1, `=` at 2) as one matrix, the embedding's gradient one
    ``index_add_``. The log-softmax is float64 as in ``stacked_cross_entropy``."""
    import torch

    W_E, W_pos = params["embed.W_E"], params["pos_embed.W_pos"]  # [C, V, d], [C, n_ctx, d]
    W_Q, W_K, W_V, W_O = (params[f"blocks.0.attn.{n}"] for n in ("W_Q", "W_K", "W_V", "W_O"))
    W_in, b_in = params["blocks.0.mlp.W_in"], params["blocks.0.mlp.b_in"]
    W_out, b_out, W_U = params["blocks.0.mlp.W_out"], params["blocks.0.mlp.b_out"], params["unembed.W_U"]
    chains, _, d = W_E.shape
    heads, e = cfg.n_heads, cfg.d_head
    hd, n, rate, scale = heads * e, a.shape[0], cfg.attention_rate, 1 / math.sqrt(cfg.d_head)
    # forward: the rows of the three positions, their scores x · (W_K q) and values x W_V
    rows_of = torch.cat([a, b, a.new_full((1,), cfg.p)])
    x = W_E[:, rows_of]  # [C, 2n + 1, d]
    x[:, :n] += W_pos[:, :1]
    x[:, n:-1] += W_pos[:, 1:2]
    x[:, -1] += W_pos[:, 2]
    x_eq = x[:, -1]  # [C, d]
    q = torch.einsum("cd,chde->che", x_eq, W_Q).mul_(scale)
    w_v = W_V.permute(0, 2, 1, 3).reshape(chains, d, hd)
    proj = torch.cat([torch.einsum("chde,che->cdh", W_K, q), w_v], -1)  # [C, d, H + hd]
    t = torch.bmm(x, proj)  # [C, 2n + 1, H + hd]
    s, v = t[..., :heads], t[..., heads:]
    soft = torch.stack([s[:, :n], s[:, n:-1], s[:, -1:].expand(chains, n, heads)], -1).softmax(-1)  # [C, n, H, 3]
    att = soft if rate == 1.0 else soft * rate + (1 - rate) / 3
    v_a, v_b = v[:, :n].reshape(chains, n, heads, e), v[:, n:-1].reshape(chains, n, heads, e)
    v_eq = v[:, -1:].reshape(chains, 1, heads, e)
    z = (att[..., 0, None] * v_a).add_(att[..., 1, None] * v_b).add_(att[..., 2, None] * v_eq).view(chains, n, hd)
    W_O2 = W_O.reshape(chains, hd, d)
    mid = torch.baddbmm(x_eq[:, None], z, W_O2)  # [C, n, d]
    pre = torch.baddbmm(b_in[:, None], mid, W_in)
    post = pre.relu()
    resid = torch.baddbmm(b_out[:, None], post, W_out).add_(mid)
    logp = torch.bmm(resid, W_U).double().log_softmax(-1)  # [C, n, V_out]
    rows = torch.arange(n, device=a.device)
    loss = -logp[:, rows, labels].mean(-1)
    # backward, from the logits down
    g = logp.exp_()
    g[:, rows, labels] -= 1.0
    g = g.to(resid.dtype).div_(n)
    grads = {"unembed.W_U": torch.bmm(resid.transpose(1, 2), g)}
    d_resid = torch.bmm(g, W_U.transpose(1, 2))  # [C, n, d]
    grads["blocks.0.mlp.W_out"] = torch.bmm(post.transpose(1, 2), d_resid)
    grads["blocks.0.mlp.b_out"] = d_resid.sum(1)
    d_pre = torch.bmm(d_resid, W_out.transpose(1, 2)).mul_(pre > 0)
    grads["blocks.0.mlp.W_in"] = torch.bmm(mid.transpose(1, 2), d_pre)
    grads["blocks.0.mlp.b_in"] = d_pre.sum(1)
    d_mid = torch.baddbmm(d_resid, d_pre, W_in.transpose(1, 2))  # [C, n, d]
    grads["blocks.0.attn.W_O"] = torch.bmm(z.transpose(1, 2), d_mid).view(W_O.shape)
    d_z = torch.bmm(d_mid, W_O2.transpose(1, 2)).view(chains, n, heads, e)
    d_att = torch.stack([(d_z * v_a).sum(-1), (d_z * v_b).sum(-1), (d_z * v_eq).sum(-1)], -1)  # [C, n, H, 3]
    if rate != 1.0:
        d_att.mul_(rate)
    d_s = d_att.sub_((d_att * soft).sum(-1, keepdim=True)).mul_(soft)  # softmax's backward
    d_t = torch.empty_like(t)
    d_t[:, :n, :heads], d_t[:, n:-1, :heads] = d_s[..., 0], d_s[..., 1]
    d_t[:, -1, :heads] = d_s[..., 2].sum(1)
    d_t[:, :n, heads:] = (att[..., 0, None] * d_z).view(chains, n, hd)
    d_t[:, n:-1, heads:] = (att[..., 1, None] * d_z).view(chains, n, hd)
    d_t[:, -1, heads:] = (att[..., 2, None] * d_z).sum(1).view(chains, hd)
    d_proj = torch.bmm(x.transpose(1, 2), d_t)  # [C, d, H + hd]
    d_x = torch.bmm(d_t, proj.transpose(1, 2))  # [C, 2n + 1, d]
    d_kq = d_proj[..., :heads]  # [C, d, H]
    grads["blocks.0.attn.W_V"] = d_proj[..., heads:].reshape(chains, d, heads, e).permute(0, 2, 1, 3)
    grads["blocks.0.attn.W_K"] = torch.einsum("cdh,che->chde", d_kq, q)
    d_q = torch.einsum("chde,cdh->che", W_K, d_kq).mul_(scale)
    grads["blocks.0.attn.W_Q"] = torch.einsum("cd,che->chde", x_eq, d_q)
    d_x[:, -1] += d_mid.sum(1) + torch.einsum("chde,che->cd", W_Q, d_q)
    grads["embed.W_E"] = torch.zeros_like(W_E).index_add_(1, rows_of, d_x)
    d_pos = torch.zeros_like(W_pos)
    d_pos[:, 0], d_pos[:, 1], d_pos[:, 2] = d_x[:, :n].sum(1), d_x[:, n:-1].sum(1), d_x[:, -1]
    grads["pos_embed.W_pos"] = d_pos
    return loss, grads


def training_loss(view: CheckpointView, device: str):
    """The training objective of the checkpoint's run on its training split, over stacked
    parameters: (params {name: [chain, ...]}, rows [batch] or None) -> mean loss [chain];
    with the same loss and its gradient by ``chain_loss_grad`` for the paper's shape (None for
    other models), the centre w* (float32 tensors) and n. The paper's shape runs
    ``chain_logits``, other models ``tdw.models.fastpath.stacked_logits``."""
    import torch

    from tdw.models.fastpath import stacked_cross_entropy, stacked_logits
    from tdw.tasks import modular

    train, _ = view.split()
    tokens = torch.as_tensor(modular.tokens(view.p, train), device=device)
    labels = torch.as_tensor(modular.labels(view.p, train, view.operation), device=device)
    center = {k: torch.as_tensor(np.asarray(v, dtype=np.float32), device=device) for k, v in view.weights.items()}
    cfg = view.model

    def batch(rows):
        return (tokens, labels) if rows is None else (tokens[rows], labels[rows])

    def loss(params: dict, rows):
        x, y = batch(rows)
        chains = next(iter(params.values())).shape[0]
        if cfg.is_paper_shape:
            logits = chain_logits(params, cfg, x[:, 0], x[:, 1])
        else:
            logits = stacked_logits(params, cfg, x.expand(chains, -1, -1), vectorize=True)  # [chain, batch, vocab]
        return stacked_cross_entropy(logits, y.expand(chains, -1))

    def loss_grad(params: dict, rows):
        x, y = batch(rows)
        return chain_loss_grad(params, cfg, x[:, 0], x[:, 1], y)

    hand = cfg.is_paper_shape and set(center) == PAPER_SHAPE_NAMES
    return loss, loss_grad if hand else None, center, len(train)


def estimate(view: CheckpointView, params: dict, noise_ahead: bool | None = None):
    """The ``LLCEstimate`` of one checkpoint and the settings it used (``noise_ahead``: as
    ``tdw.analyzers.sgld.estimate_llc`` takes it)."""
    import torch

    from tdw.analyzers.sgld import estimate_llc

    device = "cuda" if torch.cuda.is_available() else "cpu"
    loss, loss_grad, center, n = training_loss(view, device)
    s = settings(params, n)
    blowup = divergence_margin(params, view.model.d_vocab_out)
    return estimate_llc(loss, center, n, s, blowup=blowup, loss_grad=loss_grad, noise_ahead=noise_ahead), s


class LLC(Analyzer):
    name = "llc"
    operations = tuple(OPERATIONS)
    models = ("transformer", "mlp")  # the loss is the model's training objective, whatever its kind
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
