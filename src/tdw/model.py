"""The transformer of the modular-arithmetic families, as a TransformerLens HookedRootModule.

Parameter names and orientations follow TransformerLens (``embed.W_E`` [d_vocab, d_model],
``blocks.0.attn.W_Q`` [n_heads, d_model, d_head], ...); every intermediate tensor passes a
``HookPoint`` whose name (``blocks.0.mlp.hook_post``) is the vocabulary of the whole
workbench: cache datasets and analyzer inputs use the same strings.

``last_logits`` is the training fast path: the loss reads only the last position, where the
query is always the ``=`` token, so attention reduces to table look-ups per input token.
It must agree with ``HookedModAdd.forward`` (tested).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformer_lens.hook_points import HookPoint
from transformer_lens.HookedRootModule import HookedRootModule

from tdw.architecture import ModelConfig


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """TransformerLens-oriented shape of every parameter, in creation order."""
    d, h, e = cfg.d_model, cfg.n_heads, cfg.d_head
    shapes: dict[str, tuple[int, ...]] = {
        "embed.W_E": (cfg.d_vocab, d),
        "pos_embed.W_pos": (cfg.n_ctx, d),
    }
    for i in range(cfg.n_layers):
        b = f"blocks.{i}."
        if cfg.layernorm:
            shapes |= {b + "ln1.w": (d,), b + "ln1.b": (d,)}
        shapes |= {
            b + "attn.W_K": (h, d, e),
            b + "attn.W_Q": (h, d, e),
            b + "attn.W_V": (h, d, e),
            b + "attn.W_O": (h, e, d),
        }
        if cfg.layernorm:
            shapes |= {b + "ln2.w": (d,), b + "ln2.b": (d,)}
        shapes |= {
            b + "mlp.W_in": (d, cfg.d_mlp),
            b + "mlp.b_in": (cfg.d_mlp,),
            b + "mlp.W_out": (cfg.d_mlp, d),
            b + "mlp.b_out": (d,),
        }
    if cfg.layernorm:
        shapes |= {"ln_final.w": (d,), "ln_final.b": (d,)}
    shapes["unembed.W_U"] = (d, cfg.d_vocab_out)
    return shapes


def init_params(cfg: ModelConfig, seed: int) -> dict[str, torch.Tensor]:
    """Initial weights: N(0,1)/sqrt(d_model) for every matrix, N(0,1)/sqrt(d_vocab) for W_U,
    zero biases, unit LayerNorm gains.

    Matrices are drawn under ``torch.manual_seed(seed)`` in the original code's orientation
    ([d_model, d_vocab] for W_E, [heads, d_head, d_model] for W_Q/K/V, [d_model, heads*d_head]
    for W_O, [d_mlp, d_model] for W_in, ...) and creation order, then transposed.
    """
    gen = torch.Generator().manual_seed(seed)
    d, h, e = cfg.d_model, cfg.n_heads, cfg.d_head
    out: dict[str, torch.Tensor] = {}

    def draw(shape: tuple[int, ...], scale: float) -> torch.Tensor:
        return torch.randn(shape, generator=gen) / math.sqrt(scale)

    out["embed.W_E"] = draw((d, cfg.d_vocab), d).T.contiguous()
    out["pos_embed.W_pos"] = draw((cfg.n_ctx, d), d)
    for i in range(cfg.n_layers):
        b = f"blocks.{i}."
        for name in ("W_K", "W_Q", "W_V"):
            out[b + "attn." + name] = draw((h, e, d), d).transpose(1, 2).contiguous()
        out[b + "attn.W_O"] = draw((d, h * e), d).T.reshape(h, e, d).contiguous()
        out[b + "mlp.W_in"] = draw((cfg.d_mlp, d), d).T.contiguous()
        out[b + "mlp.b_in"] = torch.zeros(cfg.d_mlp)
        out[b + "mlp.W_out"] = draw((d, cfg.d_mlp), d).T.contiguous()
        out[b + "mlp.b_out"] = torch.zeros(d)
    out["unembed.W_U"] = draw((d, cfg.d_vocab_out), cfg.d_vocab)
    for name, shape in param_shapes(cfg).items():
        if name.endswith((".w", ".b")) and ".ln" in "." + name:
            out[name] = torch.ones(shape) if name.endswith(".w") else torch.zeros(shape)
    return {name: out[name] for name in param_shapes(cfg)}


def _activation(name: str):
    return {"relu": F.relu, "gelu": F.gelu}[name]


class _Params(nn.Module):
    """A named bag of parameters with hook points, so the module tree gives TL names."""

    def __init__(self, shapes: dict[str, tuple[int, ...]], hooks: tuple[str, ...] = ()):
        super().__init__()
        for name, shape in shapes.items():
            self.register_parameter(name, nn.Parameter(torch.zeros(shape)))
        for name in hooks:
            setattr(self, name, HookPoint())


class LayerNorm(_Params):
    def __init__(self, d: int):
        super().__init__({"w": (d,), "b": (d,)}, ("hook_scale", "hook_normalized"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [batch, pos, d_model]
        x = x - x.mean(-1, keepdim=True)
        scale = self.hook_scale((x.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt())
        return self.hook_normalized(x / scale) * self.w + self.b


class Attention(_Params):
    def __init__(self, cfg: ModelConfig):
        h, d, e = cfg.n_heads, cfg.d_model, cfg.d_head
        super().__init__(
            {"W_K": (h, d, e), "W_Q": (h, d, e), "W_V": (h, d, e), "W_O": (h, e, d)},
            ("hook_k", "hook_q", "hook_v", "hook_z", "hook_attn_scores", "hook_pattern"),
        )
        self.register_buffer("mask", torch.tril(torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [batch, pos, d_model]
        q = self.hook_q(torch.einsum("bpd,hde->bphe", x, self.W_Q))  # [batch, pos, head, d_head]
        k = self.hook_k(torch.einsum("bpd,hde->bphe", x, self.W_K))
        v = self.hook_v(torch.einsum("bpd,hde->bphe", x, self.W_V))
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(q.shape[-1])
        n = x.shape[1]
        scores = scores.masked_fill(~self.mask[:n, :n], -1e10)
        scores = self.hook_attn_scores(scores)  # [batch, head, query_pos, key_pos]
        pattern = self.hook_pattern(scores.softmax(-1))
        z = self.hook_z(torch.einsum("bhqk,bkhe->bqhe", pattern, v))  # [batch, pos, head, d_head]
        return torch.einsum("bqhe,hed->bqd", z, self.W_O)


class MLP(_Params):
    def __init__(self, cfg: ModelConfig):
        d, m = cfg.d_model, cfg.d_mlp
        super().__init__({"W_in": (d, m), "b_in": (m,), "W_out": (m, d), "b_out": (d,)}, ("hook_pre", "hook_post"))
        self.act = _activation(cfg.act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [batch, pos, d_model]
        pre = self.hook_pre(x @ self.W_in + self.b_in)  # [batch, pos, d_mlp]
        return self.hook_post(self.act(pre)) @ self.W_out + self.b_out


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.layernorm:
            self.ln1 = LayerNorm(cfg.d_model)
            self.ln2 = LayerNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.mlp = MLP(cfg)
        for name in ("hook_resid_pre", "hook_attn_out", "hook_resid_mid", "hook_mlp_out", "hook_resid_post"):
            setattr(self, name, HookPoint())
        self.layernorm = cfg.layernorm

    def forward(self, resid: torch.Tensor) -> torch.Tensor:  # [batch, pos, d_model]
        resid = self.hook_resid_pre(resid)
        attn_in = self.ln1(resid) if self.layernorm else resid
        resid = self.hook_resid_mid(resid + self.hook_attn_out(self.attn(attn_in)))
        mlp_in = self.ln2(resid) if self.layernorm else resid
        return self.hook_resid_post(resid + self.hook_mlp_out(self.mlp(mlp_in)))


class HookedModAdd(HookedRootModule):
    """Token sequences [batch, n_ctx] -> logits [batch, n_ctx, d_vocab_out], hooked throughout."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = _Params({"W_E": (cfg.d_vocab, cfg.d_model)})
        self.pos_embed = _Params({"W_pos": (cfg.n_ctx, cfg.d_model)})
        self.hook_embed = HookPoint()
        self.hook_pos_embed = HookPoint()
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        if cfg.layernorm:
            self.ln_final = LayerNorm(cfg.d_model)
        self.unembed = _Params({"W_U": (cfg.d_model, cfg.d_vocab_out)})
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


def last_logits(params: dict[str, torch.Tensor], cfg: ModelConfig, tokens: torch.Tensor) -> torch.Tensor:
    """Logits at the last position, [batch, d_vocab_out], for tokens [batch, 3] = [a, b, =].

    For the paper's shape the `=` query is the same for every input, so keys, values and
    their W_O images are computed once per vocabulary entry and gathered; other
    architectures fall back to the hooked forward.
    """
    if not cfg.is_paper_shape:
        model = HookedModAdd.from_params(cfg, params)
        return model(tokens)[:, -1]
    W_E, W_pos = params["embed.W_E"], params["pos_embed.W_pos"]
    W_Q, W_K, W_V, W_O = (params[f"blocks.0.attn.{n}"] for n in ("W_Q", "W_K", "W_V", "W_O"))
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
    v_a = F.embedding(a, values[0].reshape(cfg.d_vocab, hd)).view(n, cfg.n_heads, -1)
    v_b = F.embedding(b, values[1].reshape(cfg.d_vocab, hd)).view(n, cfg.n_heads, -1)
    z = w[..., 0, None] * v_a + w[..., 1, None] * v_b + w[..., 2, None] * values[2, cfg.p]  # [batch, head, d_head]
    resid_mid = torch.addmm(x_eq, z.reshape(n, hd), W_O.reshape(hd, cfg.d_model))  # [batch, d_model]
    post = F.relu(torch.addmm(params["blocks.0.mlp.b_in"], resid_mid, params["blocks.0.mlp.W_in"]))
    resid_post = resid_mid + torch.addmm(params["blocks.0.mlp.b_out"], post, params["blocks.0.mlp.W_out"])
    return resid_post @ params["unembed.W_U"]
