"""Head ablation on token sequences, on a hand-built two-layer induction circuit with known
answers: a previous-token head (layer 0, head 0) writes each position's previous token into its
own subspace, an induction head (layer 1, head 0) attends from a token to the position after its
earlier copy and copies that token into the logits, a head with W_O = 0 (layer 0, head 1) and a
positional head (layer 1, head 1) that writes the same vector at a position in every row.

Checked: the numpy forward pass equals the hooked torch model; the W_O = 0 head changes nothing;
mean-ablating the positional head changes nothing while zeroing it does; zeroing the induction
head leaves the positional head's logits alone (loss computed independently) and costs the
repeated predictions ~ln 8, more than the first-seen ones; the previous-token head costs them
too (it feeds the induction head)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tdw.analyzers.head_ablation import MODES, SUBSETS, forward
from tdw.analyzers.induction_loss import repeated_and_first_seen, token_losses
from tdw.analyzers.runner import run_analyzer
from tdw.io.checkpoint import save_checkpoint
from tdw.io.h5 import load_artifact
from tdw.layout import VariantLayout
from tdw.models.architecture import ModelConfig
from tdw.models.build import build_model

V, N, D, HEADS = 8, 16, 40, 2  # vocabulary, n_ctx, d_model = token | position | previous token | output
TOK, POS, PREV, OUT = (np.arange(V), np.arange(V, V + N), np.arange(V + N, 2 * V + N), np.arange(2 * V + N, D))
ARCH = {"p": V, "n_layers": 2, "d_model": D, "n_heads": HEADS, "d_mlp": 4, "n_ctx": N, "attn_only": True, "unembed_equals": False}
CFG = ModelConfig(**ARCH)
SHARP, GAMMA, POSITIONAL = 30.0 * math.sqrt(D // HEADS), 10.0, 3.0  # attention scores 30 on a match


def circuit() -> dict[str, np.ndarray]:
    """The hand-built weights (see the module docstring)."""
    e = D // HEADS
    w = {"embed.W_E": np.zeros((V + 1, D)), "pos_embed.W_pos": np.zeros((N, D)), "unembed.W_U": np.zeros((D, V))}
    w["embed.W_E"][np.arange(V), TOK] = 1.0  # the padding token V embeds as zero
    w["pos_embed.W_pos"][np.arange(N), POS] = 1.0
    w["unembed.W_U"][OUT, np.arange(V)] = 1.0
    for layer in (0, 1):
        for m in ("W_Q", "W_K", "W_V"):
            w[f"blocks.{layer}.attn.{m}"] = np.zeros((HEADS, D, e))
        w[f"blocks.{layer}.attn.W_O"] = np.zeros((HEADS, e, D))
    q0, k0, v0, o0 = (w[f"blocks.0.attn.{m}"] for m in ("W_Q", "W_K", "W_V", "W_O"))
    q0[0, POS, np.arange(N)] = SHARP  # query at position i meets the key at i - 1
    k0[0, POS[:-1], np.arange(1, N)] = 1.0
    v0[0, TOK, np.arange(V)] = 1.0
    o0[0, np.arange(V), PREV] = 1.0  # the previous token, in its own subspace
    rng = np.random.default_rng(0)
    for m in (q0, k0, v0):
        m[1] = rng.normal(0, 1, m[1].shape)  # head 1 of layer 0 computes, but its W_O stays 0
    q1, k1, v1, o1 = (w[f"blocks.1.attn.{m}"] for m in ("W_Q", "W_K", "W_V", "W_O"))
    q1[0, TOK, np.arange(V)] = SHARP  # the current token meets keys whose previous token it is
    k1[0, PREV, np.arange(V)] = 1.0
    v1[0, TOK, np.arange(V)] = 1.0
    o1[0, np.arange(V), OUT] = GAMMA
    v1[1, POS, np.arange(N)] = 1.0  # uniform attention (W_Q = W_K = 0) over the positions seen
    o1[1, np.arange(N), OUT[np.arange(N) % V]] = POSITIONAL
    return w


def sequences(rows: int = 6) -> np.ndarray:
    """[rows, 16]: a permutation of the 8 tokens, then the same permutation again."""
    rng = np.random.default_rng(1)
    return np.stack([np.tile(rng.permutation(V), 2) for _ in range(rows)])


def test_numpy_forward_equals_the_hooked_model():
    tokens = sequences()
    weights = circuit()
    model = build_model(CFG, {k: torch.tensor(v, dtype=torch.float32) for k, v in weights.items()})
    with torch.no_grad():
        expected = model(torch.from_numpy(tokens)).double().numpy()
    np.testing.assert_allclose(forward(tokens, weights, CFG)[0], expected, rtol=1e-5, atol=1e-4)
    # with MLPs, LayerNorm, GELU and an attention rate below 1 (the family's "MLP as an option")
    cfg = ModelConfig(**ARCH | {"attn_only": False, "layernorm": True, "act": "gelu", "attention_rate": 0.7})
    model = build_model(cfg)
    rng = np.random.default_rng(2)
    params = {k: torch.tensor(rng.normal(0, 0.3, tuple(v.shape)), dtype=torch.float32) for k, v in model.state_dict().items()}
    params = {k: (v if "mask" not in k else model.state_dict()[k]) for k, v in params.items()}
    model.load_state_dict(params)
    with torch.no_grad():
        expected = model(torch.from_numpy(tokens)).double().numpy()
    weights = {k: v.double().numpy() for k, v in params.items()}
    np.testing.assert_allclose(forward(tokens, weights, cfg)[0], expected, rtol=1e-4, atol=1e-4)


def test_reusing_the_unablated_pass_changes_nothing():
    """The analyzer's shortcut (earlier layers and the ablated layer's other heads from the
    unablated pass) gives the full ablated pass, on the circuit and on a model with MLPs and LayerNorm."""
    tokens = sequences()
    rng = np.random.default_rng(3)
    cfg = ModelConfig(**ARCH | {"attn_only": False, "layernorm": True})
    shapes = {k: tuple(v.shape) for k, v in build_model(cfg).state_dict().items() if "mask" not in k}
    for model, weights in ((CFG, circuit()), (cfg, {k: rng.normal(0, 0.3, s) for k, s in shapes.items()})):
        _, zs, inputs = forward(tokens, weights, model)
        for layer in (0, 1):
            for replace in (None, zs[layer][:, :, 1].mean(0)):
                full = forward(tokens, weights, model, (layer, 1, replace))[0]
                np.testing.assert_allclose(
                    forward(tokens, weights, model, (layer, 1, replace), (zs, inputs))[0], full, rtol=1e-12
                )


def _checkpoint(out: Path, weights: dict[str, np.ndarray], epoch: int) -> Path:
    path = VariantLayout.at(out).checkpoint(epoch)
    config = {"architecture": ARCH, "task": {"operation": "induction"}, "seed": 0}
    save_checkpoint(path, {k: v.astype(np.float32) for k, v in weights.items()}, {"epoch": epoch, "config": config})
    return path


def _cache(ckpt: Path, out: Path, tokens: np.ndarray) -> Path:
    """A sequence cache (tokens, length, logits at every position) as the forward-pass rule writes it."""
    from tdw.cache.forward import forward_cache, hook_dims
    from tdw.io.checkpoint import load_torch
    from tdw.io.h5 import write_h5

    model = build_model(CFG, load_torch(ckpt))
    spec = {"logits": {"positions": "all", "dtype": "float32"}}
    arrays = forward_cache(model, torch.from_numpy(tokens), spec)
    datasets = {"tokens": (tokens.astype(np.int32), "batch pos"), "length": (np.full(len(tokens), N, np.int32), "batch")}
    datasets["logits"] = (arrays["logits"], hook_dims("logits", "all"))
    write_h5(out, datasets, {})
    return out


@pytest.fixture(scope="module")
def ablated(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("seqabl")
    tokens = sequences()
    weak = circuit()
    weak["blocks.1.attn.W_O"][0] *= 0.1  # an earlier checkpoint: the induction head is weaker
    ckpts = [_checkpoint(tmp, weak, 0), _checkpoint(tmp, circuit(), 10)]
    caches = [_cache(c, tmp / f"cache_{i}.h5", tokens) for i, c in enumerate(ckpts)]
    run_analyzer("ablations", {}, ckpts, caches, tmp / "ablations.h5", {})
    return {"art": load_artifact(tmp / "ablations.h5"), "tokens": tokens, "ckpts": ckpts, "caches": caches, "tmp": tmp}


def _change(art: dict, layer: int, head: int, mode: str) -> np.ndarray:
    """Loss change [subset] at the last checkpoint."""
    return art["loss_change"][-1, layer, head, MODES.index(mode)]


def test_artifact_axes_and_base_losses(ablated):
    art, tokens = ablated["art"], ablated["tokens"]
    assert art["loss_change"].shape == (2, 2, HEADS, 2, 3) and list(art["epoch"]) == [0, 10]
    assert [s.decode() for s in art["subset"]] == list(SUBSETS) and [m.decode() for m in art["mode"]] == list(MODES)
    losses = token_losses(forward(tokens, circuit(), CFG)[0], tokens)
    repeated, first = repeated_and_first_seen(tokens)
    assert art["base_loss"][-1] == pytest.approx([losses.mean(), losses[repeated].mean(), losses[first].mean()], rel=1e-6)
    assert art["base_loss"][-1, 1] < 0.2 < 1.5 < art["base_loss"][-1, 2]  # copying works on repeated tokens only


def test_a_head_with_zero_output_has_zero_effect_and_a_positional_head_none_under_mean_ablation(ablated):
    art = ablated["art"]
    for mode in MODES:
        assert np.all(art["loss_change"][:, 0, 1, MODES.index(mode)] == 0.0)  # W_O = 0: bit-identical passes
    np.testing.assert_allclose(_change(art, 1, 1, "mean"), 0.0, atol=1e-9)  # the same vector in every row
    assert np.all(np.abs(_change(art, 1, 1, "zero")) > 1e-3)


def test_zeroing_the_induction_head_leaves_the_positional_logits(ablated):
    art, tokens = ablated["art"], ablated["tokens"]
    # only the positional head writes the output subspace: logit t at q is 3 / (q + 1) #{k <= q: k mod 8 = t}
    q = np.arange(N)[:, None]
    counts = np.stack([((np.arange(N)[None, :] <= q) & (np.arange(N)[None, :] % V == t)).sum(1) for t in range(V)], 1)
    logits = np.broadcast_to(POSITIONAL * counts / (q + 1), (len(tokens), N, V))
    losses = token_losses(logits, tokens)
    repeated, first = repeated_and_first_seen(tokens)
    expected = np.array([losses.mean(), losses[repeated].mean(), losses[first].mean()]) - art["base_loss"][-1]
    np.testing.assert_allclose(_change(art, 1, 0, "zero"), expected, rtol=1e-6)
    change = _change(art, 1, 0, "zero")
    assert change[1] > 0.9 * math.log(V) - art["base_loss"][-1, 1] and change[1] > change[2] + 1.0
    # the weaker head of the earlier checkpoint costs less
    assert art["loss_change"][0, 1, 0, 0, 1] < change[1]


def test_the_previous_token_head_feeds_the_induction_head(ablated):
    art = ablated["art"]
    for mode in MODES:
        change = _change(art, 0, 0, mode)
        assert change[1] > 1.0 and change[1] > change[2] + 1.0


def test_a_cache_of_another_model_is_refused(ablated):
    tmp, ckpts, caches = ablated["tmp"], ablated["ckpts"], ablated["caches"]
    with pytest.raises(ValueError, match="numpy forward pass differs from the cached logits"):
        run_analyzer("ablations", {}, ckpts[1:], caches[:1], tmp / "wrong.h5", {})


def test_head_ablations_figure_draws_each_head_on_both_subsets(ablated):
    from tdw.figures import builder
    from tdw.figures import params as figure_params
    from tdw.params import resolve_params

    art = ablated["art"]
    params = resolve_params(figure_params("head_ablations"), {"mode": "zero"}, "figure")
    fig = builder("head_ablations")({"artifact": art}, params, "t")
    assert len(fig.data) == 2 * 2 * HEADS  # subsets x layers x heads
    by_name = {(t.name, t.xaxis): t for t in fig.data}
    for s, axis in ((1, "x"), (2, "x2")):  # repeated on the left, first seen on the right
        np.testing.assert_allclose(by_name[("L1H0", axis)].y, art["loss_change"][:, 1, 0, 0, s])
    assert list(by_name[("L0H1", "x")].y) == [0.0, 0.0]


def test_grid_ablations_still_refuse_a_subset_of_the_grid(tmp_path):
    """The grid tasks' full-grid check moved into the analyzer (token sequences have no grid)."""
    from handmade import write_caches, write_run

    ckpts = write_run(tmp_path, 7, (1,), epochs=(0, 1))
    caches = write_caches(ckpts, tmp_path / "cache", index=np.arange(0, 49, 3))
    with pytest.raises(ValueError, match=r"'ablations' needs the full \(a, b\) grid \(49 inputs .*holds 17 rows"):
        run_analyzer("ablations", {}, ckpts, caches, tmp_path / "x.h5", {})
