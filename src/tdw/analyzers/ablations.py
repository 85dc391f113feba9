"""Ablations: dead and always-on neurons; loss change when frequency clusters, heads or top
neurons are zero- or mean-ablated; a before/after comparison of two checkpoints.

Neuron ablation is exact from the cache: with W_L = W_out W_U, replacing post[:, S] by r
changes the logits by -(post[:, S] - r) @ W_L[S]. Head ablation recomputes the forward
pass in numpy from the weights: the head's output o_h = (sum_j pattern_j v_j) W_O[h] at the
`=` position, with v_j = (W_E[token_j] + W_pos[j]) W_V[h] and the cached pattern, is
replaced in the residual stream, then the MLP and unembedding run again (``tdw.models.tail``).
Both need the paper's shape (one block, no LayerNorm). On the MLP model (``tdw.models.mlp``)
the logits are post @ W_U exactly, so W_L = W_U and neuron ablation is as exact; it has no
heads. Losses are over all grid rows and the train and test rows; ablations run on at most ``max_checkpoints`` checkpoints (evenly
spaced, plus the compared ones); other checkpoints hold NaN. ``compare`` names two epochs
(default: first and last; the nearest checkpoints are used) whose results are set side by side.

On token sequences (the induction task) it ablates heads only: per layer and head, the loss
change on all, repeated and first-seen predictions when the head's ``hook_z`` is zeroed or
replaced by its mean, every later layer recomputed (``tdw.analyzers.head_ablation``);
``threshold``, ``top_neurons`` and ``compare`` are the grid tasks' and are not used there.
"""

from __future__ import annotations

import numpy as np

from tdw.analyzers import head_ablation
from tdw.analyzers.base import Analyzer, CheckpointView, Param, StepValues
from tdw.analyzers.losses import cross_entropy
from tdw.analyzers.neuron_activations import spaced_epochs
from tdw.analyzers.neuron_clusters import assign_clusters, neuron_fve
from tdw.analyzers.weightmath import neuron_logit_map
from tdw.models import hooks
from tdw.models.architecture import ModelConfig
from tdw.models.tail import finish_forward
from tdw.tasks.modular import tokens
from tdw.tasks.sequence import OPERATION as SEQUENCE

PRE, POST, LOGITS = hooks.hook(0, hooks.MLP_PRE), hooks.hook(0, hooks.MLP_POST), hooks.LOGITS
PATTERN, RESID = hooks.hook(0, hooks.PATTERN), hooks.hook(0, hooks.RESID_MID)
MODES, SUBSETS = ("zero", "mean"), ("all", "train", "test")


def head_outputs(view: CheckpointView, head: int) -> np.ndarray:
    """Output of one head at the `=` position, [batch, d_model], from cached pattern and weights."""
    w = view.weights
    tok = tokens(view.p, view.pair_index)  # [batch, 3]
    x = w["embed.W_E"][tok] + w["pos_embed.W_pos"][None]  # [batch, pos, d_model]
    v = x @ w["blocks.0.attn.W_V"][head]  # [batch, pos, d_head]
    z = np.einsum("bj,bje->be", view.activation(PATTERN)[:, head], v)
    return z @ w["blocks.0.attn.W_O"][head]


def logit_map(view: CheckpointView) -> np.ndarray:
    """W_L [d_mlp, d_vocab_out], float64: the logits' change per unit of each neuron."""
    if view.model.is_mlp:
        return view.weights["unembed.W_U"].astype(np.float64)
    return neuron_logit_map(view.weights, 0)


def subset_losses(logits: np.ndarray, labels: np.ndarray, rows: list[np.ndarray], p: int) -> np.ndarray:
    return np.array([cross_entropy(logits[r, :p], labels[r]) for r in rows])


class Ablations(Analyzer):
    name = "ablations"
    operations = ("add", "sub", SEQUENCE)
    models = ("transformer", "mlp")
    reads = (PRE, POST, LOGITS, PATTERN, RESID)
    # The grid tasks need the full grid (checked in ``prepare``); token sequences have none.
    needs_full_grid = False
    description = "dead/always-on neurons; loss change under zero and mean ablation of clusters, heads, top neurons"
    params = (
        Param("threshold", float, 0.85, "the FVE threshold of the frequency clusters ablated (see neuron_clusters)"),
        Param("top_neurons", int, 5, "the neurons with the largest |activation| x |W_L row| ablated one by one"),
        Param("max_checkpoints", int, 40, "ablations run on at most this many checkpoints, evenly spaced"),
        Param("compare", list[int] | None, None, "two epochs set side by side; null: the first and the last"),
    )
    dims = {"dead": "neuron", "always_on": "neuron", "base_loss": "subset", "loss_change": "group mode subset"}

    def reads_for(self, model: ModelConfig, params: dict) -> tuple[str, ...]:
        if model.attn_only:  # the sequence model: tokens and the logits to check the numpy forward against
            return (LOGITS,)
        return (PRE, POST, LOGITS) if model.is_mlp else self.reads  # the MLP model has no heads

    def prepare(self, final: CheckpointView, epochs: np.ndarray, params: dict) -> dict:
        if final.operation == SEQUENCE:
            return head_ablation.prepare(final, epochs, params) | {"sequence": True}
        if final.cache is not None and not final.is_full_grid:
            raise ValueError(
                f"analyzer {self.name!r} needs the full (a, b) grid ({final.p**2} inputs in row-major order); "
                f"{final.cache} holds {len(final.pair_index)} rows: use a probe of kind 'grid'"
            )
        if not (final.model.is_paper_shape or final.model.is_mlp):
            raise ValueError("ablations: exact neuron and head ablation assume one block, no LayerNorm, ReLU")
        post = final.activation(POST)
        _, cluster = assign_clusters(neuron_fve(post, final.p), params["threshold"])
        w_l = logit_map(final)
        size = np.linalg.norm(post, axis=0) * np.linalg.norm(w_l, axis=1)
        top = np.argsort(-size)[: params["top_neurons"]]
        compare = [int(e) for e in params["compare"] or [epochs[0], epochs[-1]]]
        compare = [int(epochs[np.argmin(np.abs(epochs - e))]) for e in compare]
        chosen = set(spaced_epochs(epochs, params["max_checkpoints"]).tolist()) | set(compare)
        groups: list[tuple[str, np.ndarray | int]] = [
            (f"cluster_{k}", np.flatnonzero(cluster == k)) for k in np.unique(cluster[cluster > 0])
        ]
        groups += [(f"neuron_{n}", np.array([n])) for n in top]
        groups += [(f"head_{h}", h) for h in range(0 if final.model.is_mlp else final.model.n_heads)]
        return {"groups": groups, "epochs": sorted(chosen), "compare": compare}

    def step(self, view: CheckpointView, params: dict, state: dict) -> StepValues:
        if state.get("sequence"):
            return head_ablation.step(view, params, state)
        pre, post = view.activation(PRE), view.activation(POST)
        out = {"dead": (post <= 0).all(0), "always_on": (pre > 0).all(0)}
        groups = state["groups"]
        if view.epoch not in state["epochs"]:
            nan = np.full((len(groups), len(MODES), len(SUBSETS)), np.nan)
            return out | {"base_loss": np.full(len(SUBSETS), np.nan), "loss_change": nan}
        train, test = view.split()
        rows, labels, p = [np.arange(view.p**2), train, test], view.labels(), view.p
        logits = view.activation(LOGITS).astype(np.float64)
        base = subset_losses(logits, labels, rows, p)
        w_l = logit_map(view)
        change = np.empty((len(groups), len(MODES), len(SUBSETS)))
        for g, (name, members) in enumerate(groups):
            for m, mode in enumerate(MODES):
                if name.startswith("head_"):
                    o = head_outputs(view, members)
                    resid = view.activation(RESID) - o + (o.mean(0) if mode == "mean" else 0.0)
                    new = finish_forward(resid, view.weights, view.model)[LOGITS].astype(np.float64)
                else:
                    act = post[:, members].astype(np.float64)
                    new = logits - (act - (act.mean(0) if mode == "mean" else 0.0)) @ w_l[members]
                change[g, m] = subset_losses(new, labels, rows, p) - base
        return out | {"base_loss": base, "loss_change": change}

    def finalize(self, epochs, steps, params, state):
        if state.get("sequence"):
            return head_ablation.finalize(epochs, steps)
        out = super().finalize(epochs, steps, params, state)
        i, j = (int(np.flatnonzero(epochs == e)[0]) for e in state["compare"])
        change = out["loss_change"][0]
        out |= {
            "group": (np.array([g for g, _ in state["groups"]], dtype="S"), "group"),
            "mode": (np.array(MODES, dtype="S"), "mode"),
            "subset": (np.array(SUBSETS, dtype="S"), "subset"),
            "compare_epochs": (np.array(state["compare"]), "compared"),
            "compare_loss_change": (change[[i, j]], "compared group mode subset"),
            "compare_dead_count": (out["dead"][0][[i, j]].sum(1), "compared"),
            "n_dead": (out["dead"][0].sum(1), "epoch"),
            "n_always_on": (out["always_on"][0].sum(1), "epoch"),
        }
        return out


ANALYZER = Ablations()
