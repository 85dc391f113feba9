"""The last block's MLP and the unembedding at the last position, in numpy.

Everything after ``blocks.{L-1}.hook_resid_mid`` at a given position is a fixed function
of that vector and the weights. The cache therefore stores the residual stream there
(float32, exact) and readers finish the same forward pass here on demand: the MLP
activations and logits come out in float32 while the cache stays a third of the size of
storing them.
"""

from __future__ import annotations

import numpy as np

from tdw.models.architecture import ModelConfig
from tdw.models.hooks import LOGITS, MLP_OUT, MLP_POST, MLP_PRE, RESID_MID, RESID_POST, block, hook, last_layer


def layernorm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    x = x - x.mean(-1, keepdims=True)
    return x / np.sqrt((x**2).mean(-1, keepdims=True) + 1e-5) * w + b


def gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return (0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))).astype(x.dtype)


def tail_hooks(cfg: ModelConfig) -> tuple[str, ...]:
    """Hook names ``finish_forward`` produces."""
    last = last_layer(cfg)
    return (hook(last, MLP_PRE), hook(last, MLP_POST), hook(last, MLP_OUT), hook(last, RESID_POST), LOGITS)


def source_hook(cfg: ModelConfig) -> str:
    return hook(last_layer(cfg), RESID_MID)


def finish_forward(
    resid_mid: np.ndarray, weights: dict[str, np.ndarray], cfg: ModelConfig, mlp_only: bool = False
) -> dict[str, np.ndarray]:
    """resid_mid [batch, d_model] of the last block -> its MLP hooks and logits
    [batch, d_vocab_out], float32. ``mlp_only`` stops after ``mlp.hook_post`` (half the
    work, for readers of the MLP activations only)."""
    last = last_layer(cfg)
    b = block(last) + "."  # parameter names share the hook names' block prefix
    x = resid_mid.astype(np.float32)
    mlp_in = layernorm(x, weights[b + "ln2.w"], weights[b + "ln2.b"]) if cfg.layernorm else x
    pre = mlp_in @ weights[b + "mlp.W_in"] + weights[b + "mlp.b_in"]
    post = np.maximum(pre, 0) if cfg.act == "relu" else gelu(pre)
    if mlp_only:
        return {hook(last, MLP_PRE): pre, hook(last, MLP_POST): post}
    mlp_out = post @ weights[b + "mlp.W_out"] + weights[b + "mlp.b_out"]
    resid_post = x + mlp_out
    final = layernorm(resid_post, weights["ln_final.w"], weights["ln_final.b"]) if cfg.layernorm else resid_post
    logits = final @ weights["unembed.W_U"]
    return dict(zip(tail_hooks(cfg), (pre, post, mlp_out, resid_post, logits), strict=True))
