"""Quantities several modules share, each against an independent computation; hook names
against the real model's hook points; library functions that leave process-wide settings
alone; caches that see a file change within one process."""

from __future__ import annotations

import math
import subprocess

import numpy as np
import pytest
import torch
from handmade import write_caches, write_run

from tdw.analyzers import REGISTRY, get
from tdw.analyzers.dimensionality import DEFAULT_HOOKS
from tdw.analyzers.fourier import centred_fourier_2d, embedding_component_norms, fourier_2d_fast, frequency_norms, gini
from tdw.analyzers.keyfreq import embedding_frequency_norms
from tdw.analyzers.runner import run_analyzer
from tdw.analyzers.weightmath import neuron_logit_map, sum_sq, total_sum_sq
from tdw.config import load_family
from tdw.io.checkpoint import load_weights
from tdw.io.h5 import load_artifact
from tdw.io.history import write_history
from tdw.models import hooks
from tdw.models.architecture import ModelConfig
from tdw.models.hooked import HookedModAdd
from tdw.models.tail import source_hook, tail_hooks
from tdw.models.weights import init_params
from tdw.tasks import modular as data

P = 13


def _dft(p: int) -> np.ndarray:
    """The complex DFT matrix D[k, x] = exp(-2 pi i k x / p)."""
    return np.exp(-2j * np.pi * np.outer(np.arange(p), np.arange(p)) / p)


def _real_basis(p: int) -> np.ndarray:
    """Orthonormal const, cos k, sin k rows written out from their formulas."""
    x = np.arange(p)
    rows = [np.full(p, 1 / math.sqrt(p))]
    for k in range(1, p // 2 + 1):
        rows += [math.sqrt(2 / p) * np.cos(2 * np.pi * k * x / p), math.sqrt(2 / p) * np.sin(2 * np.pi * k * x / p)]
    return np.stack(rows)


def test_embedding_fourier_norms_against_the_dft():
    w_e = np.random.default_rng(0).normal(size=(P + 1, 8)).astype(np.float32)  # the `=` row is last
    spectrum = _dft(P) @ w_e[:P].astype(np.complex128)  # [k, d_model]
    norms = embedding_component_norms(w_e, P)
    assert norms[0] == pytest.approx(np.linalg.norm(spectrum[0]) / math.sqrt(P), rel=1e-12)
    for k in range(1, P // 2 + 1):  # cos k w = Re, sin k w = -Im of the DFT, scaled to unit rows
        assert norms[2 * k - 1] == pytest.approx(math.sqrt(2 / P) * np.linalg.norm(spectrum[k].real), rel=1e-12)
        assert norms[2 * k] == pytest.approx(math.sqrt(2 / P) * np.linalg.norm(spectrum[k].imag), rel=1e-12)
    freq = math.sqrt(2 / P) * np.linalg.norm(spectrum[1 : P // 2 + 1], axis=1)
    np.testing.assert_allclose(frequency_norms(norms), freq, rtol=1e-12)
    np.testing.assert_array_equal(embedding_frequency_norms(w_e, P), frequency_norms(norms))


def test_centred_fourier_2d_against_explicit_sums():
    acts = np.random.default_rng(1).normal(size=(P * P, 5)).astype(np.float32) + 3.0
    grid = acts.astype(np.float64).reshape(P, P, 5)
    grid -= grid.mean(axis=(0, 1))
    basis = _real_basis(P)
    expected = np.einsum("ia,jb,abn->ijn", basis, basis, grid)
    hat = centred_fourier_2d(acts, P)
    assert hat.dtype == np.float32 and hat.shape == (P, P, 5)
    np.testing.assert_allclose(hat, expected, atol=2e-5)
    np.testing.assert_allclose(hat[0, 0], 0.0, atol=1e-4)  # centred: no constant component (39 uncentred)
    # a subset of basis rows gives the matching block of the full transform
    rows = np.array([0, 5, 6])
    np.testing.assert_allclose(fourier_2d_fast(grid.astype(np.float32), basis[rows]), expected[np.ix_(rows, rows)], atol=2e-5)


def test_sums_of_squared_weights_against_fsum():
    rng = np.random.default_rng(2)
    weights = {"b": rng.normal(size=(7, 3)).astype(np.float32), "a": rng.normal(size=11).astype(np.float32)}
    for name, got in zip(["b", "a"], sum_sq(weights, ["b", "a"]), strict=True):
        assert got == pytest.approx(math.fsum(float(x) ** 2 for x in weights[name].ravel()), rel=1e-14)
    exact = math.fsum(float(x) ** 2 for w in weights.values() for x in w.ravel())
    assert total_sum_sq(weights) == pytest.approx(exact, rel=1e-14)


@pytest.mark.parametrize("n_layers", [1, 2])
def test_neuron_logit_map_is_the_logits_change_per_unit_of_a_neuron(n_layers):
    """Adding 1 to neuron n of the last block's MLP at the last position moves the logits
    there by W_L[n] = (W_out W_U)[n], measured through the hooked model."""
    cfg = ModelConfig(p=7, n_layers=n_layers, d_model=16, n_heads=2, d_mlp=12)
    params = init_params(cfg, 3)
    model = HookedModAdd.from_params(cfg, params)
    tokens = torch.from_numpy(data.tokens(7, np.arange(5)))
    post = hooks.hook(cfg.n_layers - 1, hooks.MLP_POST)
    w_l = neuron_logit_map({k: v.numpy() for k, v in params.items()}, cfg.n_layers - 1)
    assert w_l.shape == (cfg.d_mlp, cfg.d_vocab_out) and w_l.dtype == np.float64
    with torch.no_grad():
        base = model(tokens)[:, -1].double()
        for n in (0, 5, 11):

            def bump(act, hook, n=n):
                act = act.clone()
                act[:, -1, n] += 1.0
                return act

            moved = model.run_with_hooks(tokens, fwd_hooks=[(post, bump)])[:, -1].double()
            np.testing.assert_allclose((moved - base).numpy(), np.broadcast_to(w_l[n], (5, cfg.d_vocab_out)), atol=2e-5)


def test_analyzers_report_one_value_for_each_shared_quantity(tmp_path):
    """The embedding's Fourier norms and the total sum of squared weights are bit-identical
    across the analyzers that report them."""
    p = 23
    ckpts = write_run(tmp_path, p, (3, 7), epochs=(0, 10, 20))
    caches = write_caches(ckpts, tmp_path / "cache")
    e = np.arange(21)
    write_history(tmp_path / "history.h5", np.exp(-e / 3), e, np.r_[np.linspace(1, 3, 8), np.logspace(0.5, -5, 13)], e, {})
    family, art = load_family("modadd").spec["analyzers"], {}
    for name in ("embedding_frequencies", "transitions", "weight_norms", "progress_measures"):
        params = family.get(name, {}).get("params", {}) | ({"window": 3} if name == "transitions" else {})
        run_analyzer(name, params, ckpts, caches, tmp_path / f"{name}.h5", {}, history=tmp_path / "history.h5")
        art[name] = load_artifact(tmp_path / f"{name}.h5")
    for i, ckpt in enumerate(ckpts):
        weights = load_weights(ckpt)
        norms = embedding_component_norms(weights["embed.W_E"], p)
        np.testing.assert_array_equal(art["embedding_frequencies"]["component_norm"][i], norms)
        assert art["transitions"]["gini_embed"][i] == art["progress_measures"]["gini_embed"][i] == gini(norms)
        total = total_sum_sq(weights)
        assert art["transitions"]["total_sum_sq_weights"][i] == total
        assert art["weight_norms"]["total_sum_sq"][i] == total
        assert art["progress_measures"]["total_sum_sq_weights"][i] == total


MODELS = [
    ModelConfig(p=7),
    ModelConfig(p=7, n_layers=2),
    ModelConfig(p=7, n_layers=2, layernorm=True, act="gelu", d_model=16, n_heads=2, d_mlp=12),
]


@pytest.mark.parametrize("cfg", MODELS, ids=["1layer", "2layer", "2layer-ln"])
def test_hook_names_are_the_models_hook_points(cfg):
    points = set(HookedModAdd(cfg).hook_dict)
    assert set(hooks.hook_names(cfg)) == points
    top = {hooks.EMBED, hooks.POS_EMBED}
    assert top <= points and hooks.LOGITS not in points  # the output is cached by name, it is no hook point
    inner = {
        k: v for k, v in vars(hooks).items() if k.isupper() and isinstance(v, str) and v not in top | {hooks.LAST, hooks.LOGITS}
    }
    assert {"RESID_MID", "MLP_POST", "PATTERN"} <= set(inner)
    for layer in range(cfg.n_layers):
        for const, name in inner.items():
            assert hooks.hook(layer, name) in points, const
    for name in inner.values():
        assert hooks.resolve(hooks.hook(hooks.LAST, name), cfg) == hooks.hook(cfg.n_layers - 1, name)
    leaves = {h.rsplit(".", 1)[-1] for h in points}
    assert set(hooks.LEAF_DIMS) - {hooks.LOGITS} <= leaves and set(hooks.PER_QUERY) <= leaves
    assert source_hook(cfg) in points and tail_hooks(cfg)[-1] == hooks.LOGITS
    assert set(tail_hooks(cfg)[:-1]) <= points


@pytest.mark.parametrize("cfg", MODELS[:2], ids=["1layer", "2layer"])
def test_analyzer_inputs_are_hook_points(cfg):
    points = set(HookedModAdd(cfg).hook_dict) | {hooks.LOGITS}
    for name in REGISTRY:
        for hook in get(name).reads:
            assert hooks.resolve(hook, cfg) in points, (name, hook)
    assert {hooks.resolve(h, cfg) for h in DEFAULT_HOOKS} <= points


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_library_functions_leave_torch_threads_alone(tmp_path, restore_threads):
    """Thread counts are the entry point's (workflow/scripts, benches): the forward cache
    and training run on whatever torch has."""
    from tdw.cache.forward import cache_checkpoints
    from tdw.config import TrainConfig, Variant
    from tdw.io.checkpoint import save_checkpoint
    from tdw.train.trainer import TrainJob, train_variant

    torch.set_num_threads(3)
    family = load_family("test_only_tiny")
    cfg = family.model_config(7)
    ckpt = tmp_path / "ckpt.safetensors"
    save_checkpoint(ckpt, {k: v.numpy() for k, v in init_params(cfg, 0).items()}, {"epoch": 0, "config": {"task": {"p": 7}}})
    cache_checkpoints(family, Variant("v", 7, 0, 0.5, (0,)), "full", [ckpt], [tmp_path / "cache.h5"])
    assert torch.get_num_threads() == 3
    variant = Variant("p7_seed0", 7, 0, 0.5, (0, 2))
    meta = train_variant(TrainJob("modadd", "add", cfg, TrainConfig(train_frac=0.5), variant, tmp_path / variant.name))
    assert torch.get_num_threads() == 3 and meta["timings"]["threads"] == 3


def test_training_threads_grow_with_the_training_rows():
    from tdw.config import TrainConfig, Variant
    from tdw.train.trainer import MIN_ROWS_PER_EXTRA_THREAD, TrainJob, training_threads

    def jobs(p, n):
        v = Variant(f"p{p}", p, 0, 0.3, (0,))
        return [TrainJob("modadd", "add", ModelConfig(p=p), TrainConfig(train_frac=0.3), v, None)] * n

    assert MIN_ROWS_PER_EXTRA_THREAD == 2048
    assert training_threads(jobs(23, 1), 8) == 1  # 158 rows
    assert training_threads(jobs(113, 1), 8) == 2  # 3830 rows
    assert training_threads(jobs(113, 4), 8) == 8  # 15320 rows: 8 threads, all there are
    assert training_threads(jobs(113, 4), 3) == 3


def test_code_closure_sees_an_edited_file_in_the_same_process(tmp_path):
    from tdw.workflow.codehash import SRC, closure, code_hash

    entry = tmp_path / "entry.py"
    entry.write_text("import tdw.analyzers.losses\n")
    first, first_hash = closure(str(entry)), code_hash(str(entry))
    assert SRC / "analyzers" / "losses.py" in first and SRC / "analyzers" / "weightmath.py" not in first
    assert closure(str(entry)) == first
    entry.write_text("from tdw.analyzers import weightmath\n")
    second = closure(str(entry))
    assert SRC / "analyzers" / "weightmath.py" in second and SRC / "analyzers" / "losses.py" not in second
    assert SRC / "models" / "hooks.py" in second  # reached through weightmath
    assert code_hash(str(entry)) != first_hash


def test_git_commit_follows_the_checkout(tmp_path, monkeypatch):
    from tdw.io import provenance

    def git(*args):
        cmd = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.org", *args]
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "f.txt").write_text("one")
    git("add", "f.txt")
    git("commit", "-qm", "one")
    monkeypatch.setattr(provenance, "REPO", tmp_path)
    assert provenance.git_commit() == git("rev-parse", "HEAD")
    (tmp_path / "f.txt").write_text("two")
    assert provenance.git_commit() == git("rev-parse", "HEAD") + "+dirty"
    git("commit", "-qam", "two")
    assert provenance.git_commit() == git("rev-parse", "HEAD")
