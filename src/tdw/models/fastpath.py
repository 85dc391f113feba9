"""The training fast path: last-position logits of the paper-shaped model from its weights,
without transformer_lens (a job that imports it pays ~1.7 s before any work).

The loss reads only the last position, where the query is always the ``=`` token, so
attention reduces to per-token tables. Tested equal to ``tdw.models.hooked.HookedModAdd``.
"""

from __future__ import annotations

import math

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
