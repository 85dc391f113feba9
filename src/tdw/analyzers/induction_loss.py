"""In-context learning from the per-token loss: the loss of predicting token t + 1 at each
position t (from the cached logits at every position), its mean per position, the
in-context-learning score (mean loss over the last ``late_positions`` predictions of each
row minus that over the first ``early_positions``; negative when the model uses its
context), and the loss on repeated against first-seen tokens:

- repeated: the pair (token t, token t + 1) occurred earlier in the row, so an induction
  head can copy the answer;
- first seen: token t + 1 occurs nowhere before it in the row (nothing to copy).
"""

from __future__ import annotations

import numpy as np

from tdw.analyzers.base import Analyzer, CheckpointView, Param, StepValues
from tdw.analyzers.induction import LENGTH, TOKENS, read_rows, valid_positions
from tdw.models.hooks import LOGITS
from tdw.tasks.sequence import OPERATION


def token_losses(logits: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """[batch, pos - 1]: cross-entropy of token t + 1 under the logits at t, in float64."""
    z = logits[:, :-1].astype(np.float64)  # [batch, pos - 1, vocab]
    z = z - z.max(-1, keepdims=True)
    logsum = np.log(np.exp(z).sum(-1))
    target = np.take_along_axis(z, np.minimum(tokens[:, 1:], z.shape[-1] - 1)[..., None], -1)[..., 0]
    return logsum - target


def repeated_and_first_seen(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """bool [batch, pos - 1] each: the prediction at t is of a repeated pair / a first-seen token."""
    n = tokens.shape[1]
    cur, nxt = tokens[:, :-1], tokens[:, 1:]  # [batch, n - 1]: the pair (t, t + 1)
    earlier = np.tril(np.ones((n - 1, n - 1), dtype=bool), -1)[None]  # j < t
    pair_seen = (cur[:, :, None] == cur[:, None, :]) & (nxt[:, :, None] == nxt[:, None, :]) & earlier
    before = np.tril(np.ones((n - 1, n), dtype=bool), 0)[None]  # positions 0..t
    token_seen = ((nxt[:, :, None] == tokens[:, None, :]) & before).any(-1)
    return pair_seen.any(-1), ~token_seen


def _mean(values: np.ndarray, mask: np.ndarray) -> float:
    return float((values * mask).sum() / mask.sum()) if mask.any() else float("nan")


def icl_score(losses: np.ndarray, lengths: np.ndarray, early: int, late: int) -> float:
    """Mean loss over each row's last ``late`` predictions minus that over its first ``early``."""
    t = np.arange(losses.shape[1])[None, :]
    n_pred = np.asarray(lengths)[:, None] - 1  # predictions per row
    early_mask = t < np.minimum(early, n_pred)
    late_mask = (t >= n_pred - late) & (t < n_pred)
    return _mean(losses, late_mask) - _mean(losses, early_mask)


class InductionLoss(Analyzer):
    name = "induction_loss"
    reads = (LOGITS,)
    operations = (OPERATION,)
    description = "per-token loss by position, in-context-learning score, loss on repeated vs first-seen tokens"
    params = (
        Param("early_positions", int, 4, "ICL score: the first predictions of each row averaged as 'early'"),
        Param("late_positions", int, 4, "ICL score: the last predictions of each row averaged as 'late'"),
    )
    dims = {"loss_by_position": "position", "icl_score": "", "loss_repeated": "", "loss_first_seen": "", "loss": ""}

    def step(self, view: CheckpointView, params: dict, state: dict) -> StepValues:
        rows = read_rows(view, [TOKENS, LENGTH, LOGITS])
        tokens, lengths = rows[TOKENS], rows[LENGTH]
        losses = token_losses(rows[LOGITS], tokens)
        valid = valid_positions(lengths, tokens.shape[1])[:, 1:]  # the predicted token is in the row
        repeated, first = repeated_and_first_seen(tokens)
        by_pos = (losses * valid).sum(0) / np.maximum(valid.sum(0), 1)
        return {
            "loss_by_position": np.where(valid.any(0), by_pos, np.nan),
            "icl_score": np.float64(icl_score(losses, lengths, params["early_positions"], params["late_positions"])),
            "loss_repeated": np.float64(_mean(losses, repeated & valid)),
            "loss_first_seen": np.float64(_mean(losses, first & valid)),
            "loss": np.float64(_mean(losses, valid)),
        }

    def finalize(self, epochs, steps, params, state):
        out = super().finalize(epochs, steps, params, state)
        return out | {"position": (np.arange(len(steps[0]["loss_by_position"])), "position")}


ANALYZER = InductionLoss()
