"""Linear mode connectivity: the loss and accuracy along the straight line
w(alpha) = (1 - alpha) w_A + alpha w_B between two checkpoints, before and after weight
matching B's hidden units to A's (``tdw.analyzers.rebasin``), and the barrier

    B = max_alpha [ L(w(alpha)) - ((1 - alpha) L(w_A) + alpha L(w_B)) ]

on the run's training and test split. A barrier of 0 (to float tolerance) means the two
checkpoints lie in one linearly connected basin; matching removes what is only a relabelling
of neurons and heads.

Pairs: each checkpoint's B with its predecessor as A (the first checkpoint has none: NaN), and,
where the ``partner`` parameter names another variant of the same family (a different seed,
say), that variant's checkpoint at the same epoch as B, with this variant's as A (NaN at
epochs the partner has no checkpoint for). Both splits are this variant's (its data seed): for
a partner of the same training set, give the two one data seed. The loss is the workbench's own forward
(``tdw.models.fastpath.last_logits``, float32; the cross-entropy in float64) on every pair of
the split; torch is imported inside the functions. A step holds two checkpoints' weights (three
with a partner): the predecessor is read from its file, next to the checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tdw.analyzers import rebasin
from tdw.analyzers.base import Analyzer, CheckpointView, Param
from tdw.io.checkpoint import load_weights
from tdw.layout import VariantLayout, checkpoint_name
from tdw.models.architecture import ModelConfig
from tdw.params import in_range
from tdw.tasks import modular
from tdw.tasks.modular import OPERATIONS

PAIRS = ("previous", "partner")
LINES = ("naive", "matched")
SPLITS = ("train", "test")

PARAMS = (
    Param("points", int, 11, "points on each line, alpha = 0, 1/(points - 1), ..., 1 (3..1001)", in_range(3, 1001)),
    Param(
        "match_residual",
        bool,
        False,
        "also permute the residual stream's coordinates (the groups then matched in turn until none changes)",
    ),
    Param(
        "partner",
        str,
        "",
        "another variant of the same family (its name; {p} and {seed} take this variant's) whose "
        "checkpoint at each epoch is matched to this variant's and interpolated; '' for none",
    ),
)


def partner_name(template: str, p: int, seed: int) -> str:
    """The partner variant's name: ``template`` with ``{p}`` and ``{seed}`` filled in."""
    return template.replace("{p}", str(p)).replace("{seed}", str(seed))


def partner_checkpoint(checkpoint: Path, partner: str, epoch: int) -> Path:
    """The checkpoint file of variant ``partner`` (beside ``checkpoint``'s variant folder) at ``epoch``."""
    here = VariantLayout.at(Path(checkpoint).parent.parent)
    return VariantLayout(here.results, here.family, partner).checkpoint(epoch)


def line_metrics(
    w_a: rebasin.Weights, w_b: rebasin.Weights, cfg: ModelConfig, split_rows: dict, alphas: np.ndarray, device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """Loss and accuracy [split, alpha] of (1 - alpha) w_a + alpha w_b on each split's rows.
    ``split_rows``: {split: (tokens [n, 3], labels [n])}, in ``SPLITS`` order (an empty
    split gives NaN). One forward per alpha over all the splits' rows."""
    import torch

    from tdw.models.fastpath import last_logits

    a = {k: torch.as_tensor(np.asarray(v, dtype=np.float32), device=device) for k, v in w_a.items()}
    b = {k: torch.as_tensor(np.asarray(w_b[k], dtype=np.float32), device=device) for k in a}
    x = torch.as_tensor(np.concatenate([t for t, _ in split_rows.values()]), device=device)
    y = torch.as_tensor(np.concatenate([lab for _, lab in split_rows.values()]), device=device)
    ends = np.cumsum([0] + [len(lab) for _, lab in split_rows.values()])
    loss = np.full((len(split_rows), len(alphas)), np.nan)
    acc = np.full_like(loss, np.nan)
    with torch.no_grad():
        for j, alpha in enumerate(alphas):
            w = {k: torch.lerp(a[k], b[k], float(alpha)) if 0 < alpha < 1 else (a[k] if alpha == 0 else b[k]) for k in a}
            logits = last_logits(w, cfg, x)
            nll = -logits.double().log_softmax(-1).gather(-1, y[:, None])[:, 0]
            right = (logits.argmax(-1) == y).double()
            for s in range(len(split_rows)):
                if ends[s + 1] > ends[s]:
                    loss[s, j] = float(nll[ends[s] : ends[s + 1]].mean())
                    acc[s, j] = float(right[ends[s] : ends[s + 1]].mean())
    return loss, acc


def barrier(values: np.ndarray, alphas: np.ndarray, sign: float = 1.0) -> np.ndarray:
    """max_alpha sign * (v(alpha) - ((1 - alpha) v(0) + alpha v(1))) over the last axis of
    ``values`` [..., alpha] (sign -1 for an accuracy, where the dip is the barrier)."""
    chord = (1 - alphas) * values[..., :1] + alphas * values[..., -1:]
    return np.max(sign * (values - chord), axis=-1)


def pair_measures(
    w_a: rebasin.Weights,
    w_b: rebasin.Weights,
    cfg: ModelConfig,
    split_rows: dict,
    points: int,
    device: str,
    residual: bool = False,
) -> dict:
    """One pair's measures: loss and accuracy [line, split, alpha], their barriers [line, split],
    the weight distance [line] and the fraction of each unit group matching leaves in place [group]."""
    alphas = np.linspace(0.0, 1.0, points)
    perms = rebasin.match_weights(w_a, w_b, cfg, residual=residual)
    matched = rebasin.permute(w_b, perms, cfg)
    losses, accs, dists = [], [], []
    for b in (w_b, matched):
        loss, acc = line_metrics(w_a, b, cfg, split_rows, alphas, device)
        losses.append(loss)
        accs.append(acc)
        dists.append(np.sqrt(sum(np.sum((np.asarray(b[k], np.float64) - np.asarray(w_a[k], np.float64)) ** 2) for k in w_a)))
    loss, acc = np.stack(losses), np.stack(accs)
    return {
        "loss": loss,
        "accuracy": acc,
        "barrier": barrier(loss, alphas),
        "accuracy_barrier": barrier(acc, alphas, sign=-1.0),
        "distance": np.array(dists),
        "fixed_units": np.array([np.mean(p == np.arange(len(p))) for p in perms.values()]),
    }


def split_rows(view: CheckpointView) -> dict:
    """{split: (tokens [n, 3], labels [n])} of the run's training and test split."""
    return {name: (modular.tokens(view.p, idx), view.task.labels(idx)) for name, idx in zip(SPLITS, view.split(), strict=True)}


def _empty(groups: int, points: int) -> dict:
    shape = (len(LINES), len(SPLITS))
    return {
        "loss": np.full((*shape, points), np.nan),
        "accuracy": np.full((*shape, points), np.nan),
        "barrier": np.full(shape, np.nan),
        "accuracy_barrier": np.full(shape, np.nan),
        "distance": np.full(len(LINES), np.nan),
        "fixed_units": np.full(groups, np.nan),
    }


class LMC(Analyzer):
    name = "lmc"
    operations = tuple(OPERATIONS)
    models = ("transformer", "mlp")
    description = "loss barrier on the line between consecutive checkpoints (and a partner variant's), naive and weight-matched"
    params = PARAMS
    dims = {
        "loss": "pair line split alpha",
        "accuracy": "pair line split alpha",
        "barrier": "pair line split",
        "accuracy_barrier": "pair line split",
        "distance": "pair line",
        "fixed_units": "pair unit_group",
        "epoch_a": "pair",
    }

    def other_variants(self, params: dict, p: int, seed: int) -> tuple[str, ...]:
        return (partner_name(params["partner"], p, seed),) if params["partner"] else ()

    def prepare(self, final: CheckpointView, epochs: np.ndarray, params: dict) -> dict:
        partner = partner_name(params["partner"], final.p, int(final.config.get("seed", 0))) if params["partner"] else ""
        groups = rebasin.unit_groups(final.model, set(final.weights))
        if params["match_residual"] and not final.model.is_mlp:
            groups = (rebasin.residual_group(final.model, set(final.weights)), *groups)
        return {"epochs": [int(e) for e in epochs], "partner": partner, "groups": [g.name for g in groups]}

    def _pairs(self, view: CheckpointView, state: dict):
        """(epoch of A or -1, A's weights or None) per pair, B being this checkpoint or the partner's."""
        i = state["epochs"].index(view.epoch)
        if i > 0:
            prev = state["epochs"][i - 1]
            yield prev, load_weights(view.checkpoint.with_name(checkpoint_name(prev))), view.weights
        else:
            yield -1, None, None
        if state["partner"]:
            path = partner_checkpoint(view.checkpoint, state["partner"], view.epoch)
            yield (view.epoch, view.weights, load_weights(path)) if path.exists() else (-1, None, None)

    def step(self, view: CheckpointView, params: dict, state: dict) -> dict[str, np.ndarray]:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        rows = split_rows(view)
        per_pair, epoch_a = [], []
        for epoch, w_a, w_b in self._pairs(view, state):
            if w_a is None or w_b is None:
                per_pair.append(_empty(len(state["groups"]), params["points"]))
            else:
                if {k: np.shape(v) for k, v in w_a.items()} != {k: np.shape(v) for k, v in w_b.items()}:
                    raise ValueError(f"lmc: epoch {view.epoch}: the two checkpoints' weights differ in names or shapes")
                per_pair.append(pair_measures(w_a, w_b, view.model, rows, params["points"], device, params["match_residual"]))
            epoch_a.append(epoch)
        out = {k: np.stack([m[k] for m in per_pair]) for k in per_pair[0]}
        return out | {"epoch_a": np.array(epoch_a, dtype=np.int64)}

    def finalize(self, epochs, steps, params, state):
        out = super().finalize(epochs, steps, params, state)
        pairs = PAIRS if state["partner"] else PAIRS[:1]
        out["pair"] = (np.array(pairs, dtype="S"), "pair")
        out["line"] = (np.array(LINES, dtype="S"), "line")
        out["split"] = (np.array(SPLITS, dtype="S"), "split")
        out["alpha"] = (np.linspace(0.0, 1.0, params["points"]), "alpha")
        out["unit_group"] = (np.array(state["groups"], dtype="S"), "unit_group")
        # the sweep pages' scalar: the matched training-loss barrier to the predecessor
        out["previous_barrier"] = (out["barrier"][0][:, 0, 1, 0], "epoch")
        return out


ANALYZER = LMC()
