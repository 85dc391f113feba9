"""Head ablation on token sequences: the forward pass of the sequence family's transformer in
numpy (float64, from the weights), with one head's ``hook_z`` replaced, and the loss change it
causes on the repeated and the first-seen predictions of the probe.

Ablating head h of layer l sets its ``hook_z`` [batch, pos, d_head] to zero (``zero``) or to
its mean over the probe's rows at each position (``mean``, from the unablated pass), then runs
every later layer again: a first-layer head changes what the second layer attends to, so the
induction circuit (a previous-token head feeding an induction head) shows in both. Losses are
``tdw.analyzers.induction_loss.token_losses`` over the valid predictions (``all``), those of a
repeated (token, next token) pair (``repeated``) and those of a first-seen token
(``first_seen``), as the ``induction_loss`` analyzer splits them.
"""

from __future__ import annotations

import numpy as np

from tdw.analyzers.base import CheckpointView
from tdw.analyzers.induction import LENGTH, TOKENS, read_rows, valid_positions
from tdw.analyzers.induction_loss import repeated_and_first_seen, token_losses
from tdw.analyzers.neuron_activations import spaced_epochs
from tdw.models.architecture import ModelConfig
from tdw.models.hooks import LOGITS, block
from tdw.models.tail import gelu, layernorm

MODES, SUBSETS = ("zero", "mean"), ("all", "repeated", "first_seen")
# An ablation: (layer, head, replacement z [pos, d_head] or None for zero).
Ablation = tuple[int, int, np.ndarray | None]


def _attention(x: np.ndarray, w: dict[str, np.ndarray], layer: int, cfg: ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    """One layer's attention: x [batch, pos, d_model] -> z [batch, pos, head, d_head] and the
    W_O matrices [head, d_head, d_model] (as ``tdw.models.hooked.Attention``)."""
    b = block(layer) + ".attn."
    heads, d_model, d_head = w[b + "W_Q"].shape
    # [batch, head, pos, d_head] by matmul (einsum without a path is ~10x slower here)
    q, k, v = (
        (x @ w[b + m].transpose(1, 0, 2).reshape(d_model, -1)).reshape(*x.shape[:2], heads, d_head).transpose(0, 2, 1, 3)
        for m in ("W_Q", "W_K", "W_V")
    )
    n = x.shape[1]
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d_head)  # [batch, head, query_pos, key_pos]
    visible = np.tril(np.ones((n, n), dtype=bool))
    scores = np.where(visible, scores, -np.inf)
    pattern = np.exp(scores - scores.max(-1, keepdims=True))
    pattern /= pattern.sum(-1, keepdims=True)
    if cfg.attention_rate != 1.0:  # blended with uniform attention over the visible positions
        pattern = cfg.attention_rate * pattern + (1 - cfg.attention_rate) * visible / visible.sum(-1, keepdims=True)
    return (pattern @ v).transpose(0, 2, 1, 3), w[b + "W_O"]


def forward(
    tokens: np.ndarray,
    weights: dict[str, np.ndarray],
    cfg: ModelConfig,
    ablation: Ablation | None = None,
    base: tuple[list[np.ndarray], list[np.ndarray]] | None = None,
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Logits [batch, pos, d_vocab_out], every layer's z [batch, pos, head, d_head] and every
    layer's input residual stream [batch, pos, d_model] of the sequence model on tokens
    [batch, pos], float64. ``ablation`` replaces one head's z; with ``base`` (the unablated
    pass's z and inputs) the layers before the ablated one and its other heads are reused."""
    w = {k: np.asarray(v, np.float64) for k, v in weights.items()}  # no copy when already float64
    first = ablation[0] if ablation is not None and base is not None else 0
    if first and base is not None:
        resid = base[1][first]
    else:
        resid = w["embed.W_E"][tokens] + w["pos_embed.W_pos"][None, : tokens.shape[1]]
    zs, inputs = [], []
    for layer in range(first, cfg.n_layers):
        b = block(layer) + "."
        inputs.append(resid)
        if base is not None and layer == first:
            z, w_o = base[0][layer], w[b + "attn.W_O"]
        else:
            z, w_o = _attention(layernorm(resid, w[b + "ln1.w"], w[b + "ln1.b"]) if cfg.layernorm else resid, w, layer, cfg)
        if ablation is not None and ablation[0] == layer:
            z = z.copy()
            z[:, :, ablation[1]] = 0.0 if ablation[2] is None else ablation[2]
        zs.append(z)
        resid = resid + z.reshape(*z.shape[:2], -1) @ w_o.reshape(-1, w_o.shape[-1])
        if not cfg.attn_only:
            mlp_in = layernorm(resid, w[b + "ln2.w"], w[b + "ln2.b"]) if cfg.layernorm else resid
            pre = mlp_in @ w[b + "mlp.W_in"] + w[b + "mlp.b_in"]
            post = np.maximum(pre, 0) if cfg.act == "relu" else gelu(pre)
            resid = resid + post @ w[b + "mlp.W_out"] + w[b + "mlp.b_out"]
    if cfg.layernorm:
        resid = layernorm(resid, w["ln_final.w"], w["ln_final.b"])
    return resid @ w["unembed.W_U"], zs, inputs


def position_means(z: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """z [batch, pos, head, d_head] -> its mean over the rows holding each position [pos, head, d_head]."""
    count = np.maximum(valid.sum(0), 1)[:, None, None]
    return (z * valid[:, :, None, None]).sum(0) / count


def subset_losses(logits: np.ndarray, tokens: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
    """Mean next-token loss [subset] over each mask [batch, pos - 1] (NaN for an empty one)."""
    losses = token_losses(logits, tokens)
    return np.array([(losses * m).sum() / m.sum() if m.any() else np.nan for m in masks])


def sequence_masks(tokens: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    """The predictions of each subset (``SUBSETS``), bool [batch, pos - 1] each."""
    valid = valid_positions(lengths, tokens.shape[1])[:, 1:]
    repeated, first = repeated_and_first_seen(tokens)
    return [valid, repeated & valid, first & valid]


def ablation_losses(view: CheckpointView) -> tuple[np.ndarray, np.ndarray]:
    """(loss per subset [subset], loss change per head [layer, head, mode, subset]) of one checkpoint.
    The unablated numpy pass must reproduce the cached logits (the check that it is the model's)."""
    rows = read_rows(view, [TOKENS, LENGTH, LOGITS])
    tokens, lengths, cfg = rows[TOKENS].astype(np.int64), rows[LENGTH], view.model
    valid = valid_positions(lengths, tokens.shape[1])
    weights = {k: np.asarray(v, np.float64) for k, v in view.weights.items()}
    logits, zs, inputs = forward(tokens, weights, cfg)
    cached = rows[LOGITS].astype(np.float64)
    gap = float(np.abs(logits - cached)[valid].max())
    if gap > 1e-3 * (1.0 + float(np.abs(cached[valid]).max())):
        raise ValueError(f"{view.cache}: the numpy forward pass differs from the cached logits by {gap:.3g}")
    masks = sequence_masks(tokens, lengths)
    base = subset_losses(logits, tokens, masks)
    change = np.empty((cfg.n_layers, cfg.n_heads, len(MODES), len(SUBSETS)))
    for layer in range(cfg.n_layers):
        means = position_means(zs[layer], valid)
        for head in range(cfg.n_heads):
            for m, mode in enumerate(MODES):
                replace = None if mode == "zero" else means[:, head]
                new = forward(tokens, weights, cfg, (layer, head, replace), (zs, inputs))[0]
                change[layer, head, m] = subset_losses(new, tokens, masks) - base
    return base, change


def prepare(final: CheckpointView, epochs: np.ndarray, params: dict) -> dict:
    return {"epochs": sorted(spaced_epochs(epochs, params["max_checkpoints"]).tolist())}


def step(view: CheckpointView, params: dict, state: dict) -> dict[str, np.ndarray]:
    if view.epoch not in state["epochs"]:
        shape = (view.model.n_layers, view.model.n_heads, len(MODES), len(SUBSETS))
        return {"base_loss": np.full(len(SUBSETS), np.nan), "loss_change": np.full(shape, np.nan)}
    base, change = ablation_losses(view)
    return {"base_loss": base, "loss_change": change}


def finalize(epochs: np.ndarray, steps: list[dict[str, np.ndarray]]) -> dict[str, tuple[np.ndarray, str]]:
    layers, heads = steps[0]["loss_change"].shape[:2]
    return {
        "epoch": (epochs, "epoch"),
        "base_loss": (np.stack([s["base_loss"] for s in steps]), "epoch subset"),
        "loss_change": (np.stack([s["loss_change"] for s in steps]), "epoch layer head mode subset"),
        "layer": (np.arange(layers), "layer"),
        "head": (np.arange(heads), "head"),
        "mode": (np.array(MODES, dtype="S"), "mode"),
        "subset": (np.array(SUBSETS, dtype="S"), "subset"),
    }
