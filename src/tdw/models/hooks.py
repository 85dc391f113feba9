"""Hook names: the one vocabulary of the cache's datasets, the analyzers' inputs and the figures' sources.

``HookedModAdd`` (``tdw.models.hooked``) builds its ``HookPoint`` modules from the leaf names
here and TransformerLens's ``setup()`` derives each full name from the module tree
(``blocks.{i}`` + module + leaf). This module gives the same strings without torch or
transformer_lens, for the numpy side (``tdw.models.tail``, the cache writer, analyzers);
a test checks every name against the real model's ``hook_dict`` for one and two blocks.
Analyzers declare their inputs before a model is known: ``LAST`` stands for the last block
and ``resolve`` fills it in per model.
"""

from __future__ import annotations

from tdw.models.architecture import ModelConfig

LAST = "{last}"  # placeholder for the last block's index, filled in by ``resolve``

EMBED, POS_EMBED = "hook_embed", "hook_pos_embed"
LOGITS = "logits"  # the model's output: no hook point, cached under this name

# Leaf names of each module's hook points, in creation order; HookedModAdd builds its HookPoints from these.
BLOCK_LEAVES = ("hook_resid_pre", "hook_attn_out", "hook_resid_mid", "hook_mlp_out", "hook_resid_post")
ATTN_LEAVES = ("hook_k", "hook_q", "hook_v", "hook_z", "hook_attn_scores", "hook_pattern")
MLP_LEAVES = ("hook_pre", "hook_post")
LN_LEAVES = ("hook_scale", "hook_normalized")

# Names inside a block (pass them to ``hook``).
RESID_PRE, ATTN_OUT, RESID_MID, MLP_OUT, RESID_POST = BLOCK_LEAVES
Q, K, V, Z = "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_z"
ATTN_SCORES, PATTERN = "attn.hook_attn_scores", "attn.hook_pattern"  # [batch, head, query_pos, key_pos]
MLP_PRE, MLP_POST = "mlp.hook_pre", "mlp.hook_post"  # [batch, pos, d_mlp]
# Every hook point of the MLP model (tdw.models.mlp), none in a block; the cache keeps its output as ``logits``.
MLP_MODEL_HOOKS = (EMBED, MLP_PRE, MLP_POST, "hook_logits")

# Axes of one position of each hook leaf (the batch and position axes come first); d_model otherwise.
LEAF_DIMS = {
    LOGITS: "d_vocab_out",
    "hook_pattern": "head key_pos",
    "hook_attn_scores": "head key_pos",
    "hook_q": "head d_head",
    "hook_k": "head d_head",
    "hook_v": "head d_head",
    "hook_z": "head d_head",
    "hook_pre": "d_mlp",
    "hook_post": "d_mlp",
}
PER_QUERY = ("hook_pattern", "hook_attn_scores")  # leaves with a query-position axis after the head axis


def block_leaves(cfg: ModelConfig) -> tuple[str, ...]:
    """A block's own hook leaves: an attention-only block has no ``hook_resid_mid`` and no
    ``hook_mlp_out`` (as in TransformerLens with ``attn_only``)."""
    if cfg.attn_only:
        return (RESID_PRE, ATTN_OUT, RESID_POST)
    return BLOCK_LEAVES


def block(layer: int | str) -> str:
    """The module path of block ``layer`` (an index, or ``LAST``): ``blocks.0``; parameter names share it."""
    return f"blocks.{layer}"


def hook(layer: int | str, name: str) -> str:
    """Full hook name of ``name`` inside block ``layer``: ``hook(0, MLP_POST)`` is
    ``blocks.0.mlp.hook_post``; ``hook(LAST, MLP_POST)`` is ``blocks.{last}.mlp.hook_post``."""
    return f"{block(layer)}.{name}"


def last_layer(cfg: ModelConfig) -> int:
    return cfg.n_layers - 1


def resolve(name: str, cfg: ModelConfig) -> str:
    """``name`` with ``LAST`` replaced by the model's last block index. The MLP model's one
    hidden layer stands for the last (and first) block's MLP: ``blocks.{last}.mlp.hook_post``
    and ``blocks.0.mlp.hook_post`` are its ``mlp.hook_post``. Other block hooks resolve as for
    one block, which the MLP model does not have: no cache holds them."""
    if cfg.is_mlp:
        for layer in (LAST, 0):
            prefix = hook(layer, "mlp.")
            if name.startswith(prefix):
                return "mlp." + name[len(prefix) :]
    return name.replace(LAST, str(last_layer(cfg)))


def hook_names(cfg: ModelConfig) -> tuple[str, ...]:
    """Every hook point of the model ``tdw.models.build.build_model(cfg)`` builds."""
    if cfg.is_mlp:
        return MLP_MODEL_HOOKS
    names = [EMBED, POS_EMBED]
    for i in range(cfg.n_layers):
        lns = (1,) if cfg.attn_only else (1, 2)
        ln = [f"ln{j}.{leaf}" for j in lns for leaf in LN_LEAVES] if cfg.layernorm else []
        inner = [f"attn.{leaf}" for leaf in ATTN_LEAVES] + ([] if cfg.attn_only else [f"mlp.{leaf}" for leaf in MLP_LEAVES])
        names += [hook(i, n) for n in (*block_leaves(cfg), *ln, *inner)]
    if cfg.layernorm:
        names += [f"ln_final.{leaf}" for leaf in LN_LEAVES]
    return tuple(names)
