"""Induction heads: per-head previous-token score, induction score and mean attention
pattern, from the cached attention patterns of every layer at every position.

A sequence cache holds ``tokens`` [batch, pos] (padded rows with their ``length``) beside
the patterns [batch, head, query_pos, key_pos]. The induction targets of query position t
are the positions j + 1 (j < t) after every earlier occurrence j of token t: a perfect
induction head puts all its attention there. Scores average over the rows' valid positions:

- previous-token score: attention from t to t - 1, over queries t >= 1;
- induction score: attention on the induction targets, over the queries that have one.
"""

from __future__ import annotations

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView
from tdw.io.h5 import open_h5
from tdw.models import hooks
from tdw.tasks.sequence import OPERATION

TOKENS, LENGTH = "tokens", "length"


def pattern_hook(layer: int) -> str:
    return hooks.hook(layer, hooks.PATTERN)


def read_rows(view: CheckpointView, names: list[str]) -> dict[str, np.ndarray]:
    """Datasets of a sequence cache by name (tokens, length, hook names), kept on the view."""
    missing = [n for n in names if n not in view._arrays]
    if missing:
        if view.cache is None:
            raise ValueError(f"no cache given for epoch {view.epoch}")
        with open_h5(view.cache) as fh:
            for name in missing:
                if name not in fh:
                    raise KeyError(f"{view.cache}: no dataset {name!r}; cached: {sorted(fh)}")
                view._arrays[name] = fh[name][()]
    return {n: view._arrays[n] for n in names}


def valid_positions(lengths: np.ndarray, n_ctx: int) -> np.ndarray:
    """bool [batch, pos]: the position holds a token of the row (not padding)."""
    return np.arange(n_ctx)[None, :] < np.asarray(lengths)[:, None]


def induction_targets(tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """bool [batch, query_pos, key_pos]: key k = j + 1 follows an earlier occurrence j < q of
    the query's token, inside the row."""
    n = tokens.shape[1]
    same = tokens[:, :, None] == tokens[:, None, :]  # [batch, q, j]
    earlier = np.tril(np.ones((n, n), dtype=bool), -1)[None]  # j < q
    occurrence = same & earlier
    targets = np.zeros_like(occurrence)
    targets[:, :, 1:] = occurrence[:, :, :-1]  # key j + 1
    valid = valid_positions(lengths, n)
    return targets & valid[:, :, None] & valid[:, None, :]


def previous_token_score(pattern: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """[head]: mean attention from t to t - 1 over valid queries t >= 1 (pattern [batch, head, q, k])."""
    n = pattern.shape[-1]
    prev = pattern[:, :, np.arange(1, n), np.arange(n - 1)]  # [batch, head, n - 1]
    mask = valid_positions(lengths, n)[:, 1:]  # [batch, n - 1]
    return (prev * mask[:, None]).sum((0, 2)) / max(mask.sum(), 1)


def induction_score(pattern: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """[head]: mean attention on the induction targets over the queries that have one (NaN
    where no query has one)."""
    has = np.asarray(targets.any(-1))  # [batch, q]
    on = (pattern * targets[:, None]).sum(-1)  # [batch, head, q]
    count = has.sum()
    return (on * has[:, None]).sum((0, 2)) / count if count else np.full(pattern.shape[1], np.nan)


def mean_pattern(pattern: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """[head, q, k]: the pattern averaged over the rows in which both positions are tokens."""
    valid = valid_positions(lengths, pattern.shape[-1])
    pair = (valid[:, :, None] & valid[:, None, :])[:, None]  # [batch, 1, q, k]
    return (pattern * pair).sum(0) / np.maximum(pair.sum(0), 1)


class Induction(Analyzer):
    name = "induction"
    reads = (pattern_hook(0),)
    operations = (OPERATION,)
    description = "per-head previous-token and induction scores and mean attention patterns, every layer"
    dims = {"previous_token_score": "layer head", "induction_score": "layer head", "mean_pattern": "layer head query_pos key_pos"}

    def step(self, view: CheckpointView, params: dict, state: dict) -> dict[str, np.ndarray]:
        layers = range(view.model.n_layers)
        rows = read_rows(view, [TOKENS, LENGTH, *(pattern_hook(i) for i in layers)])
        targets = induction_targets(rows[TOKENS], rows[LENGTH])
        patterns = [rows[pattern_hook(i)].astype(np.float64) for i in layers]
        return {
            "previous_token_score": np.stack([previous_token_score(p, rows[LENGTH]) for p in patterns]),
            "induction_score": np.stack([induction_score(p, targets) for p in patterns]),
            "mean_pattern": np.stack([mean_pattern(p, rows[LENGTH]) for p in patterns]),
        }

    def finalize(self, epochs, steps, params, state):
        out = super().finalize(epochs, steps, params, state)
        layers, heads = steps[0]["induction_score"].shape
        return out | {"layer": (np.arange(layers), "layer"), "head": (np.arange(heads), "head")}


ANALYZER = Induction()
