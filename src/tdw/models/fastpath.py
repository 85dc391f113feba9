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


def last_logits(params: dict[str, torch.Tensor], cfg: ModelConfig, tokens: torch.Tensor) -> torch.Tensor:
    """Logits at the last position, [batch, d_vocab_out], for tokens [batch, 3] = [a, b, =].

    For the paper's shape the `=` query is the same for every input, so keys, values and
    their W_O images are computed once per vocabulary entry and gathered; other
    architectures fall back to the hooked forward.
    """
    if not cfg.is_paper_shape:
        from tdw.models.hooked import HookedModAdd  # the general case needs the hooked forward

        return torch.func.functional_call(HookedModAdd(cfg), params, (tokens,), strict=False)[:, -1]
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
    post = F.relu(torch.addmm(params[blk + "mlp.b_in"], resid_mid, params[blk + "mlp.W_in"]))
    resid_post = resid_mid + torch.addmm(params[blk + "mlp.b_out"], post, params[blk + "mlp.W_out"])
    return resid_post @ params["unembed.W_U"]
