"""The transformer of the modular-arithmetic families, as a TransformerLens HookedRootModule.

Parameter names and orientations follow TransformerLens (``embed.W_E`` [d_vocab, d_model],
``blocks.0.attn.W_Q`` [n_heads, d_model, d_head], ...); every intermediate tensor passes a
``HookPoint`` whose name (``blocks.0.mlp.hook_post``) is the vocabulary of the whole
workbench: cache datasets and analyzer inputs use the same strings. The hook points' leaf
names come from ``tdw.models.hooks``, which gives the full names to code without torch. Training does not import
this module (nor transformer_lens): it uses ``tdw.models.fastpath``, tested equal to this forward.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn
from transformer_lens.hook_points import HookPoint
from transformer_lens.HookedRootModule import HookedRootModule

from tdw.models import hooks
from tdw.models.architecture import ModelConfig
from tdw.models.weights import param_shapes


def _activation(name: str):
    return {"relu": F.relu, "gelu": F.gelu}[name]


class HookedParams(nn.Module):
    """A named bag of parameters with hook points, so the module tree gives TL names."""

    if TYPE_CHECKING:  # parameters and hook points are registered by name (tdw.models.hooks), not declared

        def __getattr__(self, name: str) -> Any: ...

    def __init__(self, shapes: dict[str, tuple[int, ...]], hooks: tuple[str, ...] = ()):
        super().__init__()
        for name, shape in shapes.items():
            self.register_parameter(name, nn.Parameter(torch.zeros(shape)))
        for name in hooks:
            setattr(self, name, HookPoint())


class LayerNorm(HookedParams):
    def __init__(self, d: int):
        super().__init__({"w": (d,), "b": (d,)}, hooks.LN_LEAVES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [batch, pos, d_model]
        x = x - x.mean(-1, keepdim=True)
        scale = self.hook_scale((x.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt())
        return self.hook_normalized(x / scale) * self.w + self.b


class Attention(HookedParams):
    def __init__(self, cfg: ModelConfig):
        h, d, e = cfg.n_heads, cfg.d_model, cfg.d_head
        super().__init__(
            {"W_K": (h, d, e), "W_Q": (h, d, e), "W_V": (h, d, e), "W_O": (h, e, d)},
            hooks.ATTN_LEAVES,
        )
        self.register_buffer("mask", torch.tril(torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool)))
        self.rate = cfg.attention_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [batch, pos, d_model]
        q = self.hook_q(torch.einsum("bpd,hde->bphe", x, self.W_Q))  # [batch, pos, head, d_head]
        k = self.hook_k(torch.einsum("bpd,hde->bphe", x, self.W_K))
        v = self.hook_v(torch.einsum("bpd,hde->bphe", x, self.W_V))
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(q.shape[-1])
        n = x.shape[1]
        scores = scores.masked_fill(~self.mask[:n, :n], -1e10)
        scores = self.hook_attn_scores(scores)  # [batch, head, query_pos, key_pos]
        pattern = scores.softmax(-1)
        if self.rate != 1.0:  # blend with uniform attention over the visible (causal) positions
            visible = self.mask[:n, :n].to(pattern.dtype)
            pattern = self.rate * pattern + (1 - self.rate) * visible / visible.sum(-1, keepdim=True)
        pattern = self.hook_pattern(pattern)
        z = self.hook_z(torch.einsum("bhqk,bkhe->bqhe", pattern, v))  # [batch, pos, head, d_head]
        return torch.einsum("bqhe,hed->bqd", z, self.W_O)


class MLP(HookedParams):
    def __init__(self, cfg: ModelConfig):
        d, m = cfg.d_model, cfg.d_mlp
        super().__init__({"W_in": (d, m), "b_in": (m,), "W_out": (m, d), "b_out": (d,)}, hooks.MLP_LEAVES)
        self.act = _activation(cfg.act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [batch, pos, d_model]
        pre = self.hook_pre(x @ self.W_in + self.b_in)  # [batch, pos, d_mlp]
        return self.hook_post(self.act(pre)) @ self.W_out + self.b_out


class Block(nn.Module):
    if TYPE_CHECKING:  # hook points are registered by name (tdw.models.hooks.block_leaves), not declared

        def __getattr__(self, name: str) -> Any: ...

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.layernorm:
            self.ln1 = LayerNorm(cfg.d_model)
            if not cfg.attn_only:
                self.ln2 = LayerNorm(cfg.d_model)
        self.attn = Attention(cfg)
        if not cfg.attn_only:
            self.mlp = MLP(cfg)
        for name in hooks.block_leaves(cfg):
            setattr(self, name, HookPoint())
        self.layernorm = cfg.layernorm
        self.attn_only = cfg.attn_only

    def forward(self, resid: torch.Tensor) -> torch.Tensor:  # [batch, pos, d_model]
        resid = self.hook_resid_pre(resid)
        attn_in = self.ln1(resid) if self.layernorm else resid
        if self.attn_only:
            return self.hook_resid_post(resid + self.hook_attn_out(self.attn(attn_in)))
        resid = self.hook_resid_mid(resid + self.hook_attn_out(self.attn(attn_in)))
        mlp_in = self.ln2(resid) if self.layernorm else resid
        return self.hook_resid_post(resid + self.hook_mlp_out(self.mlp(mlp_in)))


class HookedModAdd(HookedRootModule):
    """Token sequences [batch, n_ctx] -> logits [batch, n_ctx, d_vocab_out], hooked throughout."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = HookedParams({"W_E": (cfg.d_vocab, cfg.d_model)})
        self.pos_embed = HookedParams({"W_pos": (cfg.n_ctx, cfg.d_model)})
        self.hook_embed = HookPoint()
        self.hook_pos_embed = HookPoint()
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        if cfg.layernorm:
            self.ln_final = LayerNorm(cfg.d_model)
        self.unembed = HookedParams({"W_U": (cfg.d_model, cfg.d_vocab_out)})
        self.setup()

    @classmethod
    def from_params(cls, cfg: ModelConfig, params: dict[str, torch.Tensor]) -> HookedModAdd:
        model = cls(cfg)
        model.load_state_dict(params, strict=False)
        missing = set(param_shapes(cfg)) - set(params)
        if missing:
            raise KeyError(f"parameters missing for this architecture: {sorted(missing)}")
        return model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n = tokens.shape[1]
        resid = self.hook_embed(self.embed.W_E[tokens]) + self.hook_pos_embed(self.pos_embed.W_pos[:n])
        for block in self.blocks:
            resid = block(resid)
        if self.cfg.layernorm:
            resid = self.ln_final(resid)
        return resid @ self.unembed.W_U
