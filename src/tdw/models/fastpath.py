"""The training fast path: last-position logits of the paper-shaped model from its weights,
without transformer_lens (a job that imports it pays ~1.7 s before any work).

The loss reads only the last position, where the query is always the ``=`` token, so
attention reduces to per-token tables. Tested equal to ``tdw.models.hooked.HookedModAdd``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tdw.models.architecture import ModelConfig
from tdw.models.hooks import block


def mlp_input(W_E: torch.Tensor, tokens: torch.Tensor, combine: str) -> torch.Tensor:
    """The MLP model's hidden-layer input [batch, d_in] from tokens [batch, >= 2] (a, b first):
    the embeddings of a and b concatenated or summed."""
    e_a, e_b = F.embedding(tokens[:, 0], W_E), F.embedding(tokens[:, 1], W_E)  # F.embedding: see below
    return torch.cat([e_a, e_b], -1) if combine == "concat" else e_a + e_b


def mlp_bias(params: dict[str, torch.Tensor], cfg: ModelConfig) -> torch.Tensor:
    """The MLP's hidden-layer bias [d_mlp]: ``mlp.b_in``, or the sum of the two operands' biases."""
    if cfg.input_bias == "per_operand":
        return params["mlp.b_in_a"] + params["mlp.b_in_b"]
    return params["mlp.b_in"]


def mlp_logits(params: dict[str, torch.Tensor], cfg: ModelConfig, tokens: torch.Tensor) -> torch.Tensor:
    """Logits [batch, d_vocab_out] of the MLP model (``tdw.models.mlp``) for tokens [batch, 3]."""
    x = mlp_input(params["embed.W_E"], tokens, cfg.embed_combine)
    pre = torch.addmm(mlp_bias(params, cfg), x, params["mlp.W_in"])
    post = F.relu(pre) if cfg.act == "relu" else F.gelu(pre)
    return post @ params["unembed.W_U"]


def last_logits(params: dict[str, torch.Tensor], cfg: ModelConfig, tokens: torch.Tensor) -> torch.Tensor:
    """Logits at the last position, [batch, d_vocab_out], for tokens [batch, 3] = [a, b, =].

    For the paper's shape the `=` query is the same for every input, so keys, values and
    their W_O images are computed once per vocabulary entry and gathered; other
    architectures fall back to the hooked forward. The MLP model has its own fast path.
    """
    if cfg.is_mlp:
        return mlp_logits(params, cfg, tokens)
    if not cfg.is_paper_shape:
        from tdw.models.build import build_model  # the general case needs the hooked forward

        return torch.func.functional_call(build_model(cfg), params, (tokens,), strict=False)[:, -1]
    W_E, W_pos = params["embed.W_E"], params["pos_embed.W_pos"]
    blk = block(0) + "."  # the paper's shape has one block
    W_Q, W_K, W_V, W_O = (params[f"{blk}attn.{n}"] for n in ("W_Q", "W_K", "W_V", "W_O"))
    x = W_E.unsqueeze(0) + W_pos.unsqueeze(1)  # [pos, d_vocab, d_model]: token v at position j
    x_eq = x[2, cfg.p]  # the residual at the last position before attention: [d_model]
    q = torch.einsum("d,hde->he", x_eq, W_Q) / math.sqrt(cfg.d_head)  # [head, d_head]
    keys = torch.einsum("jvd,hde->jvhe", x, W_K)  # [pos, d_vocab, head, d_head]
    scores = torch.einsum("jvhe,he->jvh", keys, q)  # [pos, d_vocab, head]
    values = torch.einsum("jvd,hde->jvhe", x, W_V)  # [pos, d_vocab, head, d_head]
    a, b = tokens[:, 0], tokens[:, 1]
    # Gathers through F.embedding: its backward is a dense scatter, far cheaper on CPU
    # than advanced-indexing backward.
    n, hd = len(a), cfg.n_heads * cfg.d_head
    s = torch.stack([F.embedding(a, scores[0]), F.embedding(b, scores[1]), scores[2, cfg.p].expand(n, -1)], -1)
    w = s.softmax(-1)  # [batch, head, key_pos]
    if cfg.attention_rate != 1.0:  # the `=` query sees all three positions: uniform is 1/3 each
        w = cfg.attention_rate * w + (1 - cfg.attention_rate) / 3
    v_a = F.embedding(a, values[0].reshape(cfg.d_vocab, hd)).view(n, cfg.n_heads, -1)
    v_b = F.embedding(b, values[1].reshape(cfg.d_vocab, hd)).view(n, cfg.n_heads, -1)
    z = w[..., 0, None] * v_a + w[..., 1, None] * v_b + w[..., 2, None] * values[2, cfg.p]  # [batch, head, d_head]
    resid_mid = torch.addmm(x_eq, z.reshape(n, hd), W_O.reshape(hd, cfg.d_model))  # [batch, d_model]
    # In place on fresh addmm outputs (addmm's backward does not read its output; relu's reads
    # the result either way) and a + b == b + a exactly: the same numbers, two fewer
    # [batch, d_mlp]-sized allocations, about a quarter off the no-grad test pass.
    post = torch.addmm(params[blk + "mlp.b_in"], resid_mid, params[blk + "mlp.W_in"]).relu_()
    resid_post = torch.addmm(params[blk + "mlp.b_out"], post, params[blk + "mlp.W_out"]).add_(resid_mid)
    return resid_post @ params["unembed.W_U"]


def stacked_logits(
    params: dict[str, torch.Tensor], cfg: ModelConfig, tokens: torch.Tensor, vectorize: bool | None = None
) -> torch.Tensor:
    """Last-position logits [S, batch, d_vocab_out] of S stacked models on their own tokens
    [S, batch, 3].

    ``vectorize`` (default: on CUDA) runs the S models as one ``torch.func.vmap`` call: few
    large kernels, but batched matmuls round differently from single ones. Otherwise each
    model runs on its slice with exactly the kernels of a single run, so stacked training on
    the CPU is bit-identical to training one variant at a time.
    """
    if vectorize is None:
        vectorize = tokens.is_cuda
    if vectorize and tokens.shape[0] > 1:
        return torch.func.vmap(lambda p, x: last_logits(p, cfg, x))(params, tokens)
    return torch.stack([last_logits({k: v[i] for k, v in params.items()}, cfg, tokens[i]) for i in range(tokens.shape[0])])


def stacked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-model mean cross-entropy [S] of logits [S, batch, vocab], in float64."""
    logprobs = logits.to(torch.float64).log_softmax(-1)
    return -logprobs.gather(-1, labels[..., None]).squeeze(-1).mean(-1)


def _padded(n: int) -> int:
    """``n`` rounded up to a multiple of 8: a [rows, 512] x [512, 120] product runs about a
    quarter faster than x [512, 114] on the CPU (MKL, AVX-512; measured)."""
    return -(-n // 8) * 8


@dataclass(frozen=True)
class Tables:
    """What ``train.fast_path: tables`` computes once per step for one model (the paper's shape).

    The logits at the last position are linear in the MLP's output and in the attention
    output z, so they are ``relu(z M_in + c_in) (W_out W_U) + z M_U + c_U`` with
    ``M_in = W_O W_in``, ``M_U = W_O W_U``, ``c_in = b_in + x_eq W_in``, ``c_U = (b_out + x_eq) W_U``.
    z is a weighted sum of per-token value rows (weights: the `=` query's attention), so
    ``z M + c`` is the same weighted sum of rows of ``values M``, plus the constant row with
    weight 1: 3 x n_heads + 1 gathered rows per input instead of a [d_model, F] product.
    ``table_in`` and ``table_U`` [(2 d_vocab + 1) n_heads + 1, F] hold position 0's rows (token v,
    head h at v n_heads + h), position 1's, the `=` position's n_heads rows, then c. The
    unembedding is zero-padded to a multiple of 8 columns (``_padded``); the logits are sliced
    back.
    """

    scores: torch.Tensor  # [pos, d_vocab, head]: the `=` query's scaled score of token v at pos
    table_in: torch.Tensor  # [(2 d_vocab + 1) head + 1, d_mlp]
    table_U: torch.Tensor  # [(2 d_vocab + 1) head + 1, padded d_vocab_out]
    out_unembed: torch.Tensor  # W_out W_U: [d_mlp, padded d_vocab_out]


def build_tables(params: dict[str, torch.Tensor], cfg: ModelConfig) -> Tables:
    """The tables of one model, with autograd through their construction."""
    if not cfg.is_paper_shape:
        raise ValueError("the tables fast path covers the one-layer transformer with MLP, ReLU and no LayerNorm only")
    W_E, W_pos = params["embed.W_E"], params["pos_embed.W_pos"]
    blk = block(0) + "."
    W_Q, W_K, W_V, W_O = (params[f"{blk}attn.{n}"] for n in ("W_Q", "W_K", "W_V", "W_O"))
    W_in, W_out = params[blk + "mlp.W_in"], params[blk + "mlp.W_out"]
    W_U = F.pad(params["unembed.W_U"], (0, _padded(cfg.d_vocab_out) - cfg.d_vocab_out))
    x = W_E.unsqueeze(0) + W_pos.unsqueeze(1)  # [pos, d_vocab, d_model]
    x_eq = x[2, cfg.p]
    q = torch.einsum("d,hde->he", x_eq, W_Q) / math.sqrt(cfg.d_head)
    scores = torch.einsum("jvhe,he->jvh", torch.einsum("jvd,hde->jvhe", x, W_K), q)
    values = torch.einsum("jvd,hde->jvhe", x[:2], W_V)  # [2, d_vocab, head, d_head]
    v_eq = torch.einsum("d,hde->he", x_eq, W_V)
    tables = []
    for W, c in ((W_in, params[blk + "mlp.b_in"] + x_eq @ W_in), (W_U, (params[blk + "mlp.b_out"] + x_eq) @ W_U)):
        mix = torch.einsum("hed,df->hef", W_O, W)  # [head, d_head, F]
        rows = torch.einsum("jvhe,hef->jvhf", values, mix).reshape(-1, W.shape[1])
        tables.append(torch.cat([rows, torch.einsum("he,hef->hf", v_eq, mix), c[None]]))
    return Tables(scores, tables[0], tables[1], W_out @ W_U)


def _attention(tab: Tables, cfg: ModelConfig, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The `=` query's attention weights [batch, key_pos, head]."""
    n = len(a)
    s = torch.stack([F.embedding(a, tab.scores[0]), F.embedding(b, tab.scores[1]), tab.scores[2, cfg.p].expand(n, -1)], 1)
    w = s.softmax(1)
    if cfg.attention_rate != 1.0:  # the `=` query sees all three positions: uniform is 1/3 each
        w = cfg.attention_rate * w + (1 - cfg.attention_rate) / 3
    return w


def _groups(tok: torch.Tensor, n_vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows of each token value, padded: ``slots`` [n_vocab, most rows of one value] holds
    row numbers (``len(tok)`` where padded), ``where`` [batch] each row's place in ``slots``
    flattened."""
    n = len(tok)
    order = torch.argsort(tok, stable=True)
    counts = torch.bincount(tok, minlength=n_vocab)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(n, device=tok.device) - starts[tok[order]]
    width = int(counts.max())
    where = torch.empty_like(tok)
    where[order] = tok[order] * width + rank
    slots = torch.full((n_vocab * width,), n, dtype=tok.dtype, device=tok.device)
    slots[where] = torch.arange(n, device=tok.device)
    return slots.view(n_vocab, width), where


class _Bag(torch.autograd.Function):
    """``out[i] = sum_k w[i, k] table[idx[i, k]]`` (one ``F.embedding_bag``) for the table of
    ``_mixed``: rows [(2 d_vocab + 1) head + 1, F] (position 0's token-head rows, position 1's,
    the `=` position's, then the constant row), idx and w [batch, 3 head + 1] (the constant's
    weight is 1).

    The backward groups the rows by token (``_groups``) and runs batched products per token
    ([head, rows] x [rows, F] for the table, [rows, F] x [F, head] for the weights): several
    times faster on the CPU than ``embedding_bag``'s own backward (a scatter and a dot
    product per sample)."""

    @staticmethod
    def forward(ctx, table, w, idx, n_heads, n_vocab, slots_a, where_a, slots_b, where_b):  # type: ignore[override]
        ctx.save_for_backward(table, w, slots_a, where_a, slots_b, where_b)
        ctx.n_heads, ctx.n_vocab = n_heads, n_vocab
        return F.embedding_bag(idx, table, per_sample_weights=w, mode="sum")

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        table, w, slots_a, where_a, slots_b, where_b = ctx.saved_tensors
        H, V = ctx.n_heads, ctx.n_vocab
        grad_ext = torch.cat([grad, grad.new_zeros(1, grad.shape[1])])  # row len(batch): padding
        w_ext = torch.cat([w, w.new_zeros(1, w.shape[1])])
        grad_table, grad_w = [], []
        for j, (slots, where) in enumerate(((slots_a, where_a), (slots_b, where_b))):
            g = F.embedding(slots, grad_ext)  # [d_vocab, width, F] (index_select: faster than [slots])
            block = table[j * V * H : (j + 1) * V * H].view(V, H, -1)
            w_j = F.embedding(slots, w_ext[:, j * H : (j + 1) * H].contiguous())  # [d_vocab, width, head]
            grad_table.append(torch.bmm(w_j.transpose(1, 2), g).flatten(0, 1))
            grad_w.append(torch.bmm(g, block.transpose(1, 2)).flatten(0, 1).index_select(0, where))
        grad_table.append(w[:, 2 * H :].T @ grad)  # the `=` rows and the constant row
        grad_w.append(grad @ table[2 * V * H :].T)
        return torch.cat(grad_table), torch.cat(grad_w, 1), None, None, None, None, None, None, None


def _mixed(tab: Tables, cfg: ModelConfig, tokens: torch.Tensor, grad: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``z M_in + c_in`` [batch, d_mlp] and ``z M_U + c_U`` [batch, padded d_vocab_out] as weighted
    sums of table rows."""
    a, b = tokens[:, 0], tokens[:, 1]
    n, H, V = len(a), cfg.n_heads, cfg.d_vocab
    # [batch, (key_pos, head)], then weight 1 for the constant row
    w = torch.cat([_attention(tab, cfg, a, b).reshape(n, 3 * H), torch.ones(n, 1, dtype=tab.table_in.dtype, device=a.device)], 1)
    h = torch.arange(H, device=a.device)
    tail = (2 * V * H + torch.arange(H + 1, device=a.device)).expand(n, -1)  # the `=` rows and the constant row
    idx = torch.cat([a[:, None] * H + h, (V + b[:, None]) * H + h, tail], 1)
    if not grad:
        return tuple(F.embedding_bag(idx, t, per_sample_weights=w, mode="sum") for t in (tab.table_in, tab.table_U))  # type: ignore[return-value]
    groups = (*_groups(a, V), *_groups(b, V))
    return _Bag.apply(tab.table_in, w, idx, H, V, *groups), _Bag.apply(tab.table_U, w, idx, H, V, *groups)


def table_logits(tab: Tables, cfg: ModelConfig, tokens: torch.Tensor) -> torch.Tensor:
    """Last-position logits [batch, d_vocab_out] for tokens [batch, 3] = [a, b, =] from the tables,
    with gradients where autograd is on."""
    pre, resid = _mixed(tab, cfg, tokens, torch.is_grad_enabled())
    return torch.addmm(resid, pre.relu_(), tab.out_unembed)[:, : cfg.d_vocab_out]


def stacked_tables(params: dict[str, torch.Tensor], cfg: ModelConfig) -> list[Tables]:
    """The tables of each of S stacked models."""
    return [build_tables({k: v[i] for k, v in params.items()}, cfg) for i in range(next(iter(params.values())).shape[0])]


def stacked_table_logits(tables: list[Tables], cfg: ModelConfig, tokens: torch.Tensor) -> torch.Tensor:
    """Logits [S, batch, d_vocab_out] of S models' tables on their own tokens [S, batch, 3]
    (without gradients where autograd is off)."""
    return torch.stack([table_logits(t, cfg, x) for t, x in zip(tables, tokens, strict=True)])
