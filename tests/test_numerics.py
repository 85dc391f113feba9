"""Unit tests of the pure pieces: Fourier basis, split, model fast path, the cached tail."""

import random

import numpy as np
import pytest
import torch

from tdw.analyzers.fourier import basis_names, fourier_2d, fourier_basis, frequency_norms
from tdw.layout import VariantLayout
from tdw.models.architecture import ModelConfig
from tdw.models.fastpath import last_logits
from tdw.models.hooked import HookedModAdd
from tdw.models.tail import finish_forward, tail_hooks
from tdw.models.weights import init_params, param_shapes
from tdw.tasks import modular as data


@pytest.mark.parametrize("p", [3, 13, 113])
def test_fourier_basis_is_orthonormal(p):
    F = fourier_basis(p)
    assert F.shape == (p, p)
    np.testing.assert_allclose(F @ F.T, np.eye(p), atol=1e-12)
    assert basis_names(p)[:3] == ["const", "cos 1", "sin 1"] and len(basis_names(p)) == p


def test_fourier_rows_are_the_named_waves():
    p = 13
    F, x = fourier_basis(p), np.arange(p)
    k = 4
    np.testing.assert_allclose(F[2 * k - 1], np.cos(2 * np.pi * k * x / p) / np.sqrt(p / 2), atol=1e-12)
    np.testing.assert_allclose(F[2 * k], np.sin(2 * np.pi * k * x / p) / np.sqrt(p / 2), atol=1e-12)


def test_frequency_norms_pick_the_planted_frequency():
    p, k = 17, 5
    x = np.arange(p)
    emb = np.stack([3 * np.cos(2 * np.pi * k * x / p), 3 * np.sin(2 * np.pi * k * x / p)], 1)  # [p, 2]
    norms = np.linalg.norm(fourier_basis(p) @ emb, axis=1)
    freq = frequency_norms(norms)
    assert freq.argmax() + 1 == k
    # each column has norm 3 * sqrt(p / 2) and lies entirely in frequency k
    np.testing.assert_allclose(freq[k - 1], 3 * np.sqrt(p / 2) * np.sqrt(2), rtol=1e-12)
    assert np.delete(freq, k - 1).max() < 1e-10


def test_fourier_2d_matches_explicit_product():
    p = 7
    rng = np.random.default_rng(0)
    m = rng.normal(size=(p, p, 3))
    F = fourier_basis(p)
    expected = np.stack([F @ m[..., i] @ F.T for i in range(3)], -1)
    np.testing.assert_allclose(fourier_2d(m, F), expected, atol=1e-12)


@pytest.mark.parametrize("p,frac,seed", [(113, 0.3, 0), (13, 0.5, 7), (59, 0.4, 123)])
def test_split_matches_pythons_seeded_shuffle_of_pairs(p, frac, seed):
    pairs = [(i, j, p) for i in range(p) for j in range(p)]  # what the original code shuffled
    random.seed(seed)
    random.shuffle(pairs)
    cut = int(frac * len(pairs))
    train, test = data.split(p, frac, seed)
    assert [(int(i) // p, int(i) % p) for i in train] == [(a, b) for a, b, _ in pairs[:cut]]
    assert [(int(i) // p, int(i) % p) for i in test] == [(a, b) for a, b, _ in pairs[cut:]]
    if (p, frac) == (113, 0.3):
        assert (len(train), len(test)) == (3830, 8939)  # REFERENCE §2


def test_paper_model_has_the_published_parameter_count():
    shapes = param_shapes(ModelConfig(p=113))
    assert sum(int(np.prod(s)) for s in shapes.values()) == 226_816  # REFERENCE §1


@pytest.mark.parametrize(
    "cfg",
    [
        ModelConfig(p=23),
        ModelConfig(p=23, unembed_equals=False),
        ModelConfig(p=11, n_layers=2, layernorm=True, act="gelu", d_model=32, n_heads=2, d_mlp=64),
    ],
    ids=["paper", "p-outputs", "2layer-ln-gelu"],
)
def test_fast_path_equals_full_forward(cfg):
    params = init_params(cfg, seed=3)
    # perturb so that attention is far from uniform and biases are non-zero
    g = torch.Generator().manual_seed(1)
    params = {k: v + 0.5 * torch.randn(v.shape, generator=g) for k, v in params.items()}
    tokens = torch.from_numpy(data.tokens(cfg.p, np.arange(cfg.p**2)))
    full = HookedModAdd.from_params(cfg, params)(tokens)[:, -1]
    fast = last_logits(params, cfg, tokens)
    assert full.shape == (cfg.p**2, cfg.d_vocab_out)
    # float32 rounding differs between the two orders of summation: compare at the logits' scale
    scale = full.abs().max().item()
    assert scale > 1.0
    assert (fast - full).abs().max().item() < 1e-5 * scale


def test_fast_path_gradients_equal_full_forward_gradients():
    cfg = ModelConfig(p=13)
    base = init_params(cfg, seed=0)
    tokens = torch.from_numpy(data.tokens(13, np.arange(169)))
    labels = torch.from_numpy(data.labels(13, np.arange(169)))
    model = HookedModAdd.from_params(cfg, base)
    torch.nn.functional.cross_entropy(model(tokens)[:, -1].double(), labels).backward()
    params = {k: v.clone().requires_grad_(True) for k, v in base.items()}
    torch.nn.functional.cross_entropy(last_logits(params, cfg, tokens).double(), labels).backward()
    for k in base:
        torch.testing.assert_close(params[k].grad, model.get_parameter(k).grad, rtol=1e-4, atol=1e-6)


def test_run_with_cache_names_are_transformerlens_names():
    cfg = ModelConfig(p=7)
    model = HookedModAdd.from_params(cfg, init_params(cfg, 0))
    _, cache = model.run_with_cache(torch.from_numpy(data.tokens(7, np.arange(49))))
    for name in (
        "hook_embed",
        "hook_pos_embed",
        "blocks.0.attn.hook_pattern",
        "blocks.0.hook_resid_mid",
        "blocks.0.mlp.hook_post",
    ):
        assert name in cache
    assert cache["blocks.0.attn.hook_pattern"].shape == (49, 4, 3, 3)
    # causal: the first query attends only to itself
    torch.testing.assert_close(cache["blocks.0.attn.hook_pattern"][:, :, 0, 0], torch.ones(49, 4))


@pytest.mark.parametrize(
    "cfg",
    [ModelConfig(p=13), ModelConfig(p=11, n_layers=2, layernorm=True, act="gelu", d_model=32, n_heads=2, d_mlp=64)],
    ids=["paper", "2layer-ln-gelu"],
)
def test_tail_from_cached_resid_mid_equals_run_with_cache(cfg):
    params = init_params(cfg, seed=5)
    model = HookedModAdd.from_params(cfg, params)
    with torch.no_grad():
        logits, cache = model.run_with_cache(torch.from_numpy(data.tokens(cfg.p, np.arange(cfg.p**2))))
    last = cfg.n_layers - 1
    weights = {k: v.numpy() for k, v in params.items()}
    out = finish_forward(cache[f"blocks.{last}.hook_resid_mid"][:, -1].numpy(), weights, cfg)
    assert set(out) == set(tail_hooks(cfg))
    for name in tail_hooks(cfg)[:-1]:
        np.testing.assert_allclose(out[name], cache[name][:, -1].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["logits"], logits[:, -1].numpy(), rtol=1e-4, atol=1e-5)


def _seed_job(seed, root, epochs=(0, 30, 60)):
    from tdw.config import TrainConfig, Variant
    from tdw.train.trainer import TrainJob

    variant = Variant(f"p23_seed{seed}", 23, seed, 0.5, epochs)
    return TrainJob("modadd", "add", ModelConfig(p=23), TrainConfig(train_frac=0.5), variant, root / variant.name)


def _compare_runs(root_a, root_b, seeds, epochs, **tol):
    from tdw.io.checkpoint import load_weights
    from tdw.io.history import read_history

    check = np.testing.assert_allclose if tol else np.testing.assert_array_equal
    for seed in seeds:
        a_files, b_files = (VariantLayout.at(root / f"p23_seed{seed}") for root in (root_a, root_b))
        for epoch in epochs:
            a, b = load_weights(a_files.checkpoint(epoch)), load_weights(b_files.checkpoint(epoch))
            for key in a:
                check(b[key], a[key], err_msg=f"{b_files.checkpoint(epoch)} {key}", **tol)
        ha, hb = read_history(a_files.history), read_history(b_files.history)
        for key in ha:
            check(hb[key], ha[key], **({"rtol": 1e-4} if tol else {}))


def test_stacked_seeds_train_bit_identically_to_single_runs(tmp_path, one_thread):
    """Three seeds trained in one process (stacked parameters, one AdamW) end exactly where
    each ends when trained alone (CPU)."""
    from tdw.train.trainer import train_variant, train_variants

    together = train_variants([_seed_job(s, tmp_path / "stacked") for s in (0, 1, 2)])
    assert together[0]["timings"]["trained_together"] == ["p23_seed0", "p23_seed1", "p23_seed2"]
    for seed in (0, 1, 2):
        train_variant(_seed_job(seed, tmp_path / "single"))
    _compare_runs(tmp_path / "single", tmp_path / "stacked", (0, 1, 2), (0, 30, 60))
    with pytest.raises(ValueError, match="differ in more than the seed"):
        from tdw.config import Variant

        other = _seed_job(0, tmp_path / "x")
        other.variant = Variant("p29_seed0", 29, 0, 0.5, (0, 30, 60))
        train_variants([_seed_job(1, tmp_path / "x"), other])


def test_vmapped_seeds_match_single_runs(tmp_path, one_thread):
    """The vectorized (vmap) path, the default on CUDA, agrees with single runs to float32
    rounding over 20 steps (Adam amplifies rounding differences as training goes on)."""
    from tdw.train.trainer import train_variant, train_variants

    train_variants([_seed_job(s, tmp_path / "vmap", (0, 10, 20)) for s in (0, 1)], vectorize=True)
    for seed in (0, 1):
        train_variant(_seed_job(seed, tmp_path / "single", (0, 10, 20)))
    _compare_runs(tmp_path / "single", tmp_path / "vmap", (0, 1), (0, 10, 20), rtol=1e-3, atol=2e-5)
