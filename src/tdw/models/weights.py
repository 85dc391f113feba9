"""Parameter names, shapes and initialisation of the family models (TransformerLens
orientation), without importing transformer_lens."""

from __future__ import annotations

import math

import torch

from tdw.models.architecture import ModelConfig
from tdw.models.hooks import block


def mlp_param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The MLP model's parameters (``tdw.models.mlp``): embedding, hidden layer (its bias shared,
    ``mlp.b_in``, or one per operand, ``mlp.b_in_a`` and ``mlp.b_in_b``), unembedding."""
    biases = MLP_OPERAND_BIASES if cfg.input_bias == "per_operand" else ("mlp.b_in",)
    return {
        "embed.W_E": (cfg.d_vocab, cfg.d_model),
        "mlp.W_in": (cfg.d_in, cfg.d_mlp),
        **{name: (cfg.d_mlp,) for name in biases},
        "unembed.W_U": (cfg.d_mlp, cfg.d_vocab_out),
    }


MLP_OPERAND_BIASES = ("mlp.b_in_a", "mlp.b_in_b")


def mlp_torch_init_params(cfg: ModelConfig, seed: int) -> dict[str, torch.Tensor]:
    """torch's default initialisation of the devinterp example's modules, bit for bit: after
    ``torch.manual_seed(seed)`` (on a forked generator: the caller's is left as it was),
    ``nn.Embedding(p, d_model)`` (N(0,1)), then with ``input_bias: per_operand`` the second
    operand's ``nn.Linear(d_model, d_mlp)`` and then the first's (the example creates
    ``linear1r`` before ``linear1l``; weight and bias U(-1/sqrt(d_model), 1/sqrt(d_model))),
    else one ``nn.Linear(d_in, d_mlp)``, and ``nn.Linear(d_mlp, d_vocab_out, bias=False)``
    (U(-1/sqrt(d_mlp), 1/sqrt(d_mlp))). W_in stacks the first operand's map over the second's."""
    from torch import nn

    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        embed = nn.Embedding(cfg.d_vocab, cfg.d_model)
        if cfg.input_bias == "per_operand":
            second, first = nn.Linear(cfg.d_model, cfg.d_mlp), nn.Linear(cfg.d_model, cfg.d_mlp)
            hidden = {
                "mlp.W_in": torch.cat([first.weight.T, second.weight.T], 0),
                "mlp.b_in_a": first.bias,
                "mlp.b_in_b": second.bias,
            }
        else:
            one = nn.Linear(cfg.d_in, cfg.d_mlp)
            hidden = {"mlp.W_in": one.weight.T, "mlp.b_in": one.bias}
        unembed = nn.Linear(cfg.d_mlp, cfg.d_vocab_out, bias=False)
        out = {"embed.W_E": embed.weight, **hidden, "unembed.W_U": unembed.weight.T}
        return {name: out[name].detach().clone().contiguous() for name in mlp_param_shapes(cfg)}


def mlp_init_params(cfg: ModelConfig, seed: int) -> dict[str, torch.Tensor]:
    """The MLP model's initial weights, drawn under ``seed`` in creation order: N(0,1)/sqrt(d_model)
    for the embedding (as the transformer's), N(0,1)/sqrt(fan_in) for W_in and W_U, zero biases;
    with ``init: torch``, ``mlp_torch_init_params``."""
    if cfg.init == "torch":
        return mlp_torch_init_params(cfg, seed)
    gen = torch.Generator().manual_seed(seed)
    out = {
        "embed.W_E": torch.randn((cfg.d_vocab, cfg.d_model), generator=gen) / math.sqrt(cfg.d_model),
        "mlp.W_in": torch.randn((cfg.d_in, cfg.d_mlp), generator=gen) / math.sqrt(cfg.d_in),
        "unembed.W_U": torch.randn((cfg.d_mlp, cfg.d_vocab_out), generator=gen) / math.sqrt(cfg.d_mlp),
    }
    out |= {name: torch.zeros(cfg.d_mlp) for name in mlp_param_shapes(cfg) if ".b_in" in name}
    return {name: out[name] for name in mlp_param_shapes(cfg)}


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """TransformerLens-oriented shape of every parameter, in creation order."""
    if cfg.is_mlp:
        return mlp_param_shapes(cfg)
    d, h, e = cfg.d_model, cfg.n_heads, cfg.d_head
    shapes: dict[str, tuple[int, ...]] = {
        "embed.W_E": (cfg.d_vocab, d),
        "pos_embed.W_pos": (cfg.n_ctx, d),
    }
    for i in range(cfg.n_layers):
        b = block(i) + "."
        if cfg.layernorm:
            shapes |= {b + "ln1.w": (d,), b + "ln1.b": (d,)}
        shapes |= {
            b + "attn.W_K": (h, d, e),
            b + "attn.W_Q": (h, d, e),
            b + "attn.W_V": (h, d, e),
            b + "attn.W_O": (h, e, d),
        }
        if cfg.attn_only:
            continue
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
    """Initial weights (the MLP model's: ``mlp_init_params``): N(0,1)/sqrt(d_model) for every
    matrix, N(0,1)/sqrt(d_vocab) for W_U, zero biases, unit LayerNorm gains.

    Matrices are drawn under ``torch.manual_seed(seed)`` in the original code's orientation
    ([d_model, d_vocab] for W_E, [heads, d_head, d_model] for W_Q/K/V, [d_model, heads*d_head]
    for W_O, [d_mlp, d_model] for W_in, ...) and creation order, then transposed.
    """
    if cfg.is_mlp:
        return mlp_init_params(cfg, seed)
    gen = torch.Generator().manual_seed(seed)
    d, h, e = cfg.d_model, cfg.n_heads, cfg.d_head
    out: dict[str, torch.Tensor] = {}

    def draw(shape: tuple[int, ...], scale: float) -> torch.Tensor:
        return torch.randn(shape, generator=gen) / math.sqrt(scale)

    out["embed.W_E"] = draw((d, cfg.d_vocab), d).T.contiguous()
    out["pos_embed.W_pos"] = draw((cfg.n_ctx, d), d)
    for i in range(cfg.n_layers):
        b = block(i) + "."
        for name in ("W_K", "W_Q", "W_V"):
            out[b + "attn." + name] = draw((h, e, d), d).transpose(1, 2).contiguous()
        out[b + "attn.W_O"] = draw((d, h * e), d).T.reshape(h, e, d).contiguous()
        if cfg.attn_only:
            continue
        out[b + "mlp.W_in"] = draw((cfg.d_mlp, d), d).T.contiguous()
        out[b + "mlp.b_in"] = torch.zeros(cfg.d_mlp)
        out[b + "mlp.W_out"] = draw((d, cfg.d_mlp), d).T.contiguous()
        out[b + "mlp.b_out"] = torch.zeros(d)
    out["unembed.W_U"] = draw((d, cfg.d_vocab_out), cfg.d_vocab)
    for name, shape in param_shapes(cfg).items():
        if name.endswith((".w", ".b")) and ".ln" in "." + name:
            out[name] = torch.ones(shape) if name.endswith(".w") else torch.zeros(shape)
    return {name: out[name] for name in param_shapes(cfg)}
