"""Induction measures on hand-built attention patterns and logits with known answers: a
perfect induction head scores 1 on induction; a previous-token head scores 1 on the
previous-token measure and ~0 on induction; losses on repeated and first-seen tokens and
the in-context-learning score of logits built to be right only where copying helps."""

import math

import numpy as np
import pytest

from tdw.analyzers.induction import induction_score, induction_targets, mean_pattern, previous_token_score
from tdw.analyzers.induction_loss import icl_score, repeated_and_first_seen, token_losses
from tdw.figures.attention_offsets import offset_profile
from tdw.tasks import sequence as task

HALF = 10
V = 40
ROW = np.random.default_rng(1).permutation(V)[:HALF]
TOKENS = np.tile(ROW, 2)[None]  # [1, 20]: ten distinct tokens, then the same ten again
N = TOKENS.shape[1]
FULL = np.array([N])


def _one_hot_pattern(keys: list[int]) -> np.ndarray:
    """[1, 1, q, k] attending from query q to keys[q] only."""
    pattern = np.zeros((1, 1, N, N))
    pattern[0, 0, np.arange(N), keys] = 1.0
    return pattern


INDUCTION_HEAD = _one_hot_pattern([0 if q < HALF else q - HALF + 1 for q in range(N)])
PREVIOUS_TOKEN_HEAD = _one_hot_pattern([max(q - 1, 0) for q in range(N)])


def test_targets_of_a_repeated_sequence_are_the_tokens_after_the_first_copy():
    targets = induction_targets(TOKENS, FULL)[0]
    assert not targets[:HALF].any()
    for q in range(HALF, N):
        assert list(np.flatnonzero(targets[q])) == [q - HALF + 1]


def test_perfect_induction_head_scores_one_and_a_previous_token_head_zero():
    targets = induction_targets(TOKENS, FULL)
    assert induction_score(INDUCTION_HEAD, targets)[0] == pytest.approx(1.0, abs=1e-12)
    assert induction_score(PREVIOUS_TOKEN_HEAD, targets)[0] == pytest.approx(0.0, abs=1e-12)
    assert previous_token_score(PREVIOUS_TOKEN_HEAD, FULL)[0] == pytest.approx(1.0, abs=1e-12)
    # the induction head attends to t - 1 only at q = 1 (key 0) among the 19 queries t >= 1
    assert previous_token_score(INDUCTION_HEAD, FULL)[0] == pytest.approx(1 / 19, abs=1e-12)


def test_previous_token_head_is_near_zero_on_generated_sequences_and_padding_is_ignored():
    tokens = task.batch(64, 32, 50, seed=0, step=0, segment_min=4, stream=task.PROBE)
    lengths = np.full(len(tokens), 32)
    pattern = np.zeros((50, 1, 32, 32))
    pattern[:, 0, np.arange(1, 32), np.arange(31)] = 1.0
    pattern[:, 0, 0, 0] = 1.0
    assert previous_token_score(pattern, lengths)[0] == pytest.approx(1.0)
    assert induction_score(pattern, induction_targets(tokens, lengths))[0] < 0.1
    # rows padded after 12 tokens, with attention on the padding: only real positions count
    short = np.full(50, 12)
    padded = pattern.copy()
    padded[:, 0, 12:, :] = 0.0
    padded[:, 0, 12:, 20] = 1.0
    assert previous_token_score(padded, short)[0] == pytest.approx(1.0)
    assert mean_pattern(padded, short)[0, 15, 14] == 0.0  # no row holds both positions
    assert mean_pattern(padded, lengths)[0, 15, 20] == pytest.approx(1.0)


def test_losses_on_repeated_and_first_seen_tokens_and_the_icl_score():
    repeated, first = repeated_and_first_seen(TOKENS)
    assert list(np.flatnonzero(repeated[0])) == list(range(HALF, N - 1))
    assert list(np.flatnonzero(first[0])) == list(range(HALF - 1))
    # uniform logits except where copying helps: there the right token's logit is 100
    logits = np.zeros((1, N, V))
    for t in range(HALF, N - 1):
        logits[0, t, TOKENS[0, t + 1]] = 100.0
    losses = token_losses(logits, TOKENS)
    np.testing.assert_allclose(losses[0, :HALF], math.log(V), rtol=1e-12)
    np.testing.assert_allclose(losses[0, HALF:], math.log1p((V - 1) * math.exp(-100)), atol=1e-30)
    assert icl_score(losses, FULL, 4, 4) == pytest.approx(-math.log(V), rel=1e-12)
    # a row of 8 tokens: early = predictions 0..3, late = predictions 3..6
    assert icl_score(losses, np.array([8]), 4, 4) == pytest.approx(0.0, abs=1e-12)


def test_attention_by_offset_of_the_hand_built_heads():
    prev, ind = offset_profile(PREVIOUS_TOKEN_HEAD)[0, 0], offset_profile(INDUCTION_HEAD)[0, 0]
    np.testing.assert_allclose(prev, [1 / N, 1.0] + [0.0] * (N - 2), atol=1e-12)  # q = 0 attends to itself
    # queries of the second copy attend HALF - 1 back (and so does q = HALF - 1, to key 0);
    # each query q < HALF attends to key 0 (offset q)
    assert ind[HALF - 1] == pytest.approx(1.0, abs=1e-12) and ind[HALF:].max() == 0.0
    np.testing.assert_allclose(ind[: HALF - 1], [1 / (N - d) for d in range(HALF - 1)], atol=1e-12)


def test_attention_offsets_figure_has_a_row_per_head_and_a_frame_per_checkpoint():
    from tdw.figures import builder, frames_builder
    from tdw.figures import params as figure_params
    from tdw.params import resolve_params

    pattern = np.zeros((3, 2, 2, N, N))  # [epoch, layer, head, q, k]
    pattern[-1, 0, 1] = PREVIOUS_TOKEN_HEAD[0, 0]
    pattern[-1, 1, 0] = INDUCTION_HEAD[0, 0]
    art = {"epoch": np.array([0, 5, 10]), "mean_pattern": pattern}
    params = resolve_params(figure_params("attention_offsets"), {"max_offset": 12}, "figure")
    fig = builder("attention_offsets")({"artifact": art}, params, "t")
    assert list(fig.data[0].y) == ["L0H0", "L0H1", "L1H0", "L1H1"] and len(fig.data[0].x) == 13
    z = np.array(fig.data[0].z)
    assert z[1, 1] == 1.0 and z[2, HALF - 1] == pytest.approx(1.0) and z[2, HALF] == 0.0
    frames = frames_builder("attention_offsets")({"artifact": art}, params)
    assert frames.epochs == [0, 5, 10] and np.array(frames.updates[0]["z"][0]).max() == 0.0
