"""The hooked forward pass of a converted GPT-2 or GPT-NeoX checkpoint (``tdw.models.hf``), in
torch, over TransformerLens-named weights, with TransformerLens's hook names.

transformer_lens 4.x no longer ships ``HookedTransformer`` / ``HookedTransformerConfig`` (its
package raises a message pointing to ``TransformerBridge``, which wraps the Hugging Face module
itself rather than converted weights), and the workbench's own hooked model has no rotary
positions; so this module computes the forward directly.

Hook points (activation names as in TransformerLens): ``hook_embed``, ``hook_pos_embed`` (GPT-2
only), and per block ``l``: ``blocks.{l}.hook_resid_pre``, ``blocks.{l}.ln1.hook_normalized``,
``blocks.{l}.attn.hook_q/hook_k/hook_v`` [batch, pos, head, d_head] (before rotary),
``blocks.{l}.attn.hook_rot_q/hook_rot_k`` (after rotary; GPT-NeoX only),
``blocks.{l}.attn.hook_attn_scores`` and ``blocks.{l}.attn.hook_pattern``
[batch, head, query, key], ``blocks.{l}.attn.hook_z``, ``blocks.{l}.hook_attn_out``,
``blocks.{l}.hook_resid_mid`` (sequential blocks only), ``blocks.{l}.ln2.hook_normalized``,
``blocks.{l}.mlp.hook_pre``, ``blocks.{l}.mlp.hook_post``, ``blocks.{l}.hook_mlp_out``,
``blocks.{l}.hook_resid_post``; then ``ln_final.hook_normalized``.

A parallel-attention block (GPT-NeoX with ``use_parallel_residual``, as in Pythia) computes
``resid_post = resid_pre + attn(ln1(resid_pre)) + mlp(ln2(resid_pre))``: there is no residual
stream between attention and MLP, so such a block has no ``hook_resid_mid``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

Hook = Callable[[torch.Tensor, str], torch.Tensor | None]


def _activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if name == "gelu":
        return F.gelu
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu
    raise ValueError(f"activation {name!r} is not supported; supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu")


def _rotate(x: torch.Tensor, rotary_dim: int, base: float) -> torch.Tensor:
    """GPT-NeoX rotary positions on the first ``rotary_dim`` coordinates of [batch, pos, head,
    d_head]: the halves of that slice are rotated together (``rotate_half``), frequency
    ``base ** (-2 i / rotary_dim)`` for coordinate pair ``i``."""
    n_pos = x.shape[1]
    inv_freq = 1.0 / (base ** (torch.arange(0, rotary_dim, 2, dtype=torch.float32, device=x.device) / rotary_dim))
    freqs = torch.arange(n_pos, dtype=torch.float32, device=x.device)[:, None] * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)  # [pos, rotary_dim]
    cos, sin = emb.cos()[None, :, None, :], emb.sin()[None, :, None, :]
    rot, rest = x[..., :rotary_dim], x[..., rotary_dim:]
    half = rotary_dim // 2
    rotated_half = torch.cat((-rot[..., half:], rot[..., :half]), dim=-1)
    return torch.cat((rot * cos + rotated_half * sin, rest), dim=-1)


def to_torch(weights: Mapping[str, np.ndarray], device: str = "cpu") -> dict[str, torch.Tensor]:
    """The converted numpy weights as float32 torch tensors."""
    return {k: torch.as_tensor(np.asarray(v), dtype=torch.float32, device=device) for k, v in weights.items()}


def run_with_cache(
    arch: Mapping[str, Any],
    weights: Mapping[str, torch.Tensor],
    tokens: torch.Tensor,
    hooks: Mapping[str, Hook] | None = None,
    cache_names: Callable[[str], bool] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits [batch, pos, d_vocab] of ``tokens`` [batch, pos] and the cached activations.

    ``hooks`` maps hook names to functions ``(activation, name)`` whose non-None result replaces
    the activation (as TransformerLens's forward hooks); ``cache_names`` selects which activations
    are cached (all when None)."""
    hooks = hooks or {}
    cache: dict[str, torch.Tensor] = {}

    def hook(name: str, x: torch.Tensor) -> torch.Tensor:
        fn = hooks.get(name)
        if fn is not None:
            replaced = fn(x, name)
            if replaced is not None:
                x = replaced
        if cache_names is None or cache_names(name):
            cache[name] = x
        return x

    w = weights
    eps = float(arch["eps"])
    act = _activation(str(arch["act_fn"]))
    d_head = int(arch["d_head"])
    rotary = arch["positional_embedding_type"] == "rotary"
    n_pos = tokens.shape[1]
    causal = torch.ones(n_pos, n_pos, dtype=torch.bool, device=tokens.device).tril()

    def layer_norm(x: torch.Tensor, prefix: str) -> torch.Tensor:
        normalized = F.layer_norm(x, (x.shape[-1],), eps=eps)
        return hook(prefix + ".hook_normalized", normalized) * w[prefix + ".w"] + w[prefix + ".b"]

    resid = hook("hook_embed", w["embed.W_E"][tokens])
    if not rotary:
        positions = torch.arange(n_pos, device=tokens.device)
        resid = resid + hook("hook_pos_embed", w["pos_embed.W_pos"][positions][None])
    for layer in range(int(arch["n_layers"])):
        p = f"blocks.{layer}."
        resid = hook(p + "hook_resid_pre", resid)
        x = layer_norm(resid, p + "ln1")
        q = hook(p + "attn.hook_q", torch.einsum("bpd,hde->bphe", x, w[p + "attn.W_Q"]) + w[p + "attn.b_Q"])
        k = hook(p + "attn.hook_k", torch.einsum("bpd,hde->bphe", x, w[p + "attn.W_K"]) + w[p + "attn.b_K"])
        v = hook(p + "attn.hook_v", torch.einsum("bpd,hde->bphe", x, w[p + "attn.W_V"]) + w[p + "attn.b_V"])
        if rotary:
            q = hook(p + "attn.hook_rot_q", _rotate(q, int(arch["rotary_dim"]), float(arch["rotary_base"])))
            k = hook(p + "attn.hook_rot_k", _rotate(k, int(arch["rotary_dim"]), float(arch["rotary_base"])))
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(d_head)
        scores = hook(p + "attn.hook_attn_scores", scores.masked_fill(~causal, float("-inf")))
        pattern = hook(p + "attn.hook_pattern", scores.softmax(dim=-1))
        z = hook(p + "attn.hook_z", torch.einsum("bhqk,bkhe->bqhe", pattern, v))
        attn_out = hook(p + "hook_attn_out", torch.einsum("bqhe,hed->bqd", z, w[p + "attn.W_O"]) + w[p + "attn.b_O"])
        if arch["parallel_attn_mlp"]:
            mlp_in = resid
        else:
            resid = hook(p + "hook_resid_mid", resid + attn_out)
            mlp_in = resid
        y = layer_norm(mlp_in, p + "ln2")
        pre = hook(p + "mlp.hook_pre", y @ w[p + "mlp.W_in"] + w[p + "mlp.b_in"])
        post = hook(p + "mlp.hook_post", act(pre))
        mlp_out = hook(p + "hook_mlp_out", post @ w[p + "mlp.W_out"] + w[p + "mlp.b_out"])
        if arch["parallel_attn_mlp"]:
            resid = resid + attn_out + mlp_out
        else:
            resid = resid + mlp_out
        resid = hook(p + "hook_resid_post", resid)
    final = layer_norm(resid, "ln_final")
    logits = final @ w["unembed.W_U"] + w["unembed.b_U"]
    return logits, cache
