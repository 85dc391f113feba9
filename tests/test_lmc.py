"""Weight matching (``tdw.analyzers.rebasin``) and the linear-mode-connectivity analyzer
(``tdw.analyzers.lmc``): permuting neurons and heads leaves the hooked forward's logits
unchanged; matching a permuted copy recovers the permutation (and attains the brute-force
maximum of the objective on random models); a checkpoint with itself or with its own
permuted copy has a flat line; two independently trained seeds have a barrier, and matching
brings them closer; the analyzer end to end on two trained p = 13 variants, its figure, and
(slow) a partner through the workflow."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.special import log_softmax

from tdw.analyzers import lmc, rebasin
from tdw.analyzers.runner import checkpoint_view, run_analyzer
from tdw.config import TrainConfig, Variant, load_family
from tdw.io.h5 import load_artifact
from tdw.models.architecture import ModelConfig
from tdw.models.hooked import HookedModAdd
from tdw.models.mlp import HookedMLP
from tdw.models.weights import init_params
from tdw.tasks import modular

ONE = ModelConfig(p=7, d_model=16, n_heads=4, d_mlp=24)
TWO = ModelConfig(p=7, n_layers=2, d_model=16, n_heads=4, d_mlp=12, act="gelu", layernorm=True)
MLP = ModelConfig(p=7, model="mlp", d_model=8, d_mlp=10)
EPOCHS = (0, 10, 20, 30)


def random_weights(cfg: ModelConfig, seed: int) -> dict[str, np.ndarray]:
    return {k: v.numpy().astype(np.float64) for k, v in init_params(cfg, seed).items()}


def random_perms(cfg: ModelConfig, weights: dict, seed: int, residual: bool = False) -> dict[str, np.ndarray]:
    """A permutation of every unit group (and the residual stream's), each drawn again until
    it is not the identity."""
    rng = np.random.default_rng(seed)
    perms = {}
    groups = rebasin.unit_groups(cfg, set(weights))
    for group in (rebasin.residual_group(cfg, set(weights)), *groups) if residual else groups:
        n = group.size(weights)
        while np.array_equal(perm := rng.permutation(n), np.arange(n)):
            pass
        perms[group.name] = perm
    for perm in perms.values():
        assert not np.array_equal(perm, np.arange(len(perm)))
    return perms


def hooked_logits(cfg: ModelConfig, weights: dict) -> np.ndarray:
    """Logits at every position of every input pair, by the hooked model (TransformerLens)."""
    params = {k: torch.tensor(v, dtype=torch.float64) for k, v in weights.items()}
    model = (HookedMLP if cfg.is_mlp else HookedModAdd).from_params(cfg, params).double()
    with torch.no_grad():
        return model(torch.as_tensor(modular.tokens(cfg.p, np.arange(cfg.p**2)))).numpy()


@pytest.mark.parametrize("cfg", [ONE, TWO, MLP], ids=["one_layer", "two_layer_ln_gelu", "mlp"])
def test_permuted_units_compute_the_same_logits(cfg):
    w = random_weights(cfg, 0)
    perms = random_perms(cfg, w, 1)
    permuted = rebasin.permute(w, perms, cfg)
    assert any(not np.array_equal(permuted[k], w[k]) for k in w)
    np.testing.assert_allclose(hooked_logits(cfg, permuted), hooked_logits(cfg, w), rtol=0, atol=1e-12)


@pytest.mark.parametrize("cfg", [ONE, TWO], ids=["one_layer", "two_layer_ln_gelu"])
def test_residual_permutation_too_computes_the_same_logits_and_is_recovered(cfg):
    w = random_weights(cfg, 8)
    perms = random_perms(cfg, w, 9, residual=True)
    permuted = rebasin.permute(w, perms, cfg)
    np.testing.assert_allclose(hooked_logits(cfg, permuted), hooked_logits(cfg, w), rtol=0, atol=1e-12)
    found = rebasin.match_weights(w, permuted, cfg, residual=True)
    assert set(found) == set(perms)
    for name, perm in perms.items():
        np.testing.assert_array_equal(found[name], np.argsort(perm))


@pytest.mark.parametrize("cfg", [ONE, TWO, MLP], ids=["one_layer", "two_layer_ln_gelu", "mlp"])
def test_matching_recovers_the_permutation(cfg):
    w = random_weights(cfg, 2)
    perms = random_perms(cfg, w, 3)
    found = rebasin.match_weights(w, rebasin.permute(w, perms, cfg), cfg)
    for name, perm in perms.items():
        np.testing.assert_array_equal(found[name], np.argsort(perm))  # the inverse: B's unit perm^-1[i] is A's i
    restored = rebasin.permute(rebasin.permute(w, perms, cfg), found, cfg)
    for k in w:
        np.testing.assert_array_equal(restored[k], w[k])


def test_matching_attains_the_brute_force_maximum():
    """On two unrelated models the assignment's objective is the best over all 4! head orders
    and all 6! neuron orders (each group's objective is separate: the residual stream is fixed)."""
    cfg = ModelConfig(p=5, d_model=8, n_heads=4, d_mlp=6)
    a, b = random_weights(cfg, 4), random_weights(cfg, 5)
    found = rebasin.match_weights(a, b, cfg)
    for group in rebasin.unit_groups(cfg, set(a)):
        best = max(
            rebasin.matching_objective(a, rebasin.permute(b, {group.name: np.array(p)}, cfg), cfg)
            for p in itertools.permutations(range(group.size(a)))
        )
        got = rebasin.matching_objective(a, rebasin.permute(b, {group.name: found[group.name]}, cfg), cfg)
        assert got == pytest.approx(best, rel=1e-12)
        assert got > rebasin.matching_objective(a, b, cfg)  # the identity is not the optimum here


def test_permute_refuses_a_non_permutation():
    w = random_weights(ONE, 0)
    with pytest.raises(ValueError, match="not a permutation"):
        rebasin.permute(w, {"blocks.0.attn": np.array([0, 0, 1, 2])}, ONE)


def test_barrier_closed_forms():
    alphas = np.linspace(0, 1, 5)
    assert lmc.barrier(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), alphas) == pytest.approx(0.0)  # on the chord
    assert lmc.barrier(np.array([1.0, 2.0, 3.5, 2.0, 1.0]), alphas) == pytest.approx(2.5)
    assert lmc.barrier(np.array([1.0, 0.5, 0.2, 0.5, 1.0]), alphas, sign=-1.0) == pytest.approx(0.8)


def rows_of(cfg: ModelConfig, train_frac: float = 0.5, seed: int = 0) -> dict:
    train, test = modular.split(cfg.p, train_frac, seed)
    return {s: (modular.tokens(cfg.p, i), modular.labels(cfg.p, i)) for s, i in zip(lmc.SPLITS, (train, test), strict=True)}


@pytest.mark.parametrize("cfg", [ONE, TWO], ids=["one_layer", "two_layer_ln_gelu"])
def test_a_checkpoint_with_itself_and_its_permuted_copy_is_flat(cfg):
    w = random_weights(cfg, 6)
    rows = rows_of(cfg)
    same = lmc.pair_measures(w, w, cfg, rows, 3, "cpu")
    np.testing.assert_allclose(same["loss"], same["loss"][..., :1].repeat(3, -1), atol=1e-6)
    np.testing.assert_allclose(same["barrier"], 0.0, atol=1e-6)
    np.testing.assert_array_equal(same["distance"], 0.0)
    np.testing.assert_array_equal(same["fixed_units"], 1.0)
    copy = lmc.pair_measures(w, rebasin.permute(w, random_perms(cfg, w, 7), cfg), cfg, rows, 3, "cpu")
    matched = copy["loss"][1]
    np.testing.assert_allclose(matched, matched[..., :1].repeat(3, -1), atol=1e-6)
    np.testing.assert_allclose(copy["barrier"][1], 0.0, atol=1e-6)
    assert copy["distance"][0] > 1.0 and copy["distance"][1] == 0.0
    assert np.all(copy["fixed_units"] < 1.0)
    np.testing.assert_allclose(copy["loss"][0][:, [0, -1]], matched[:, [0, -1]], atol=1e-6)  # the same endpoints


@pytest.fixture(scope="module")
def variants(tmp_path_factory) -> dict:
    """Two seeds of a small p = 13 transformer (the test-only family's: d_model 32, d_mlp 64)
    trained on one split (data seed 0), and the analyzer on seed 0 with seed 1 as its partner."""
    from tdw.train.trainer import TrainJob, train_variant

    family = load_family("test_only_tiny")
    root = tmp_path_factory.mktemp("results") / "test_only_tiny"
    ckpts = {}
    for seed in (0, 1):
        v = Variant(f"p13_seed{seed}", 13, seed, 0.5, EPOCHS, data_seed=0)
        train_variant(TrainJob("test_only_tiny", "add", family.model_config(13), TrainConfig(train_frac=0.5), v, root / v.name))
        ckpts[seed] = [root / v.name / "checkpoints" / f"checkpoint_epoch_{e:05d}.safetensors" for e in EPOCHS]
    out = root / "p13_seed0" / "artifacts" / "lmc.h5"
    run_analyzer("lmc", {"partner": "p{p}_seed1", "points": 5}, ckpts[0], None, out, {"variant": "p13_seed0"})
    return {"ckpts": ckpts, "artifact": load_artifact(out)}


def hooked_loss(view) -> tuple[float, float]:
    """Train and test cross-entropy of a checkpoint by the hooked model (float64)."""
    logp = log_softmax(hooked_logits(view.model, view.weights)[:, -1], axis=-1)  # [p^2, vocab], row a * p + b
    labels = modular.labels(view.p, np.arange(view.p**2))
    train, test = (float(-logp[i, labels[i]].mean()) for i in view.split())
    return train, test


def test_lmc_artifact_end_to_end(variants):
    art = variants["artifact"]
    assert art["pair"].tolist() == [b"previous", b"partner"] and art["line"].tolist() == [b"naive", b"matched"]
    np.testing.assert_array_equal(art["epoch"], EPOCHS)
    np.testing.assert_allclose(art["alpha"], [0, 0.25, 0.5, 0.75, 1])
    assert art["loss"].shape == (4, 2, 2, 2, 5) and art["fixed_units"].shape == (4, 2, 2)
    # the first checkpoint has no predecessor
    assert np.all(np.isnan(art["loss"][0, 0])) and np.isnan(art["barrier"][0, 0]).all() and art["epoch_a"][0, 0] == -1
    np.testing.assert_array_equal(art["epoch_a"][1:, 0], EPOCHS[:-1])
    np.testing.assert_array_equal(art["epoch_a"][:, 1], EPOCHS)
    assert np.all(np.isfinite(art["barrier"][1:])) and np.all(art["barrier"][1:] >= -1e-9)
    # endpoints: A of the pair at epoch e is B of the pair before; the partner's A is this checkpoint
    loss = art["loss"]
    np.testing.assert_allclose(loss[1:, 0, :, :, -1], loss[1:, 1, :, :, 0], rtol=1e-6)
    np.testing.assert_allclose(loss[2:, 0, :, :, 0], loss[1:-1, 0, :, :, -1], rtol=1e-6)
    # the workbench's fast forward agrees with the hooked model at the final checkpoint
    train, test = hooked_loss(checkpoint_view(variants["ckpts"][0][-1], None))
    np.testing.assert_allclose(loss[-1, 1, 0, :, 0], [train, test], rtol=1e-5)
    # consecutive checkpoints of one run: matching leaves most units in place
    assert np.all(art["fixed_units"][1:, 0] == 1.0)


def test_two_seeds_have_a_barrier_and_matching_brings_them_closer(variants):
    """Two seeds on one split: a training-loss barrier well above 0 at the last epoch, and the
    matched B nearer to A than B: ||A - pi B||^2 = ||A||^2 + ||B||^2 - 2 <A, pi B>, and the
    assignment maximises <A, pi B> over orders that include the identity. (Matching does not
    remove the barrier: the seeds' solutions differ by more than a relabelling of units.)"""
    art = variants["artifact"]
    final = art["barrier"][-1, 1]  # [line, split] of the two seeds at the last epoch
    assert final[0, 0] > 0.05 and final[1, 0] > 0.05, final
    assert np.all(art["distance"][:, 1, 1] <= art["distance"][:, 1, 0])
    assert np.all(art["distance"][:, 1, 1] < art["distance"][:, 1, 0] - 1e-3)  # a real improvement at every epoch
    # the seeds' endpoints differ: B's loss at epoch 0 is seed 1's initial loss
    assert abs(art["loss"][0, 1, 0, 0, -1] - art["loss"][0, 1, 0, 0, 0]) > 1e-4
    np.testing.assert_array_equal(art["previous_barrier"], art["barrier"][:, 0, 1, 0])


def test_lmc_figure_draws_the_artifact(variants):
    from tdw.figures import builder, frames_builder, params
    from tdw.params import resolve_params

    art = variants["artifact"]
    p = resolve_params(params("lmc"), {"split": "test"}, "lmc figure")
    fig = builder("lmc")({"artifact": art}, p, "lmc")
    assert len(fig.data) == 8  # 2 pairs x 2 lines, barrier and loss along the line
    assert fig.data[0].y[0] is None  # no predecessor at the first epoch
    np.testing.assert_allclose(np.array(fig.data[1].y[1:], float), art["barrier"][1:, 0, 1, 1], rtol=1e-4)
    np.testing.assert_allclose(fig.data[7].y, art["loss"][-1, 1, 1, 1], rtol=1e-4)
    fr = frames_builder("lmc")({"artifact": art}, p)
    assert fr.epochs == list(EPOCHS) and fr.traces == [4, 5, 6, 7]
    np.testing.assert_allclose(fr.updates[2]["y"][3], art["loss"][2, 1, 1, 1], rtol=1e-4)
    assert fr.updates[0]["y"][0] == [None] * 5


@pytest.mark.slow
def test_partner_through_the_workflow(root, tmp_path):
    """A config naming a partner: the analyze job of seed 0 waits for seed 1's training (its
    metadata.json is an input) and the artifact holds the pair at every epoch; a partner
    outside the config stops the DAG naming it."""
    import subprocess
    import sys
    from pathlib import Path

    from tdw.layout import VariantLayout

    snakemake = Path(sys.executable).with_name("snakemake")
    if not snakemake.exists():
        pytest.skip("snakemake not installed next to this python")
    results = tmp_path / "results"
    config = tmp_path / "lmc.yaml"
    body = "family: modadd\nsweep:\n  p: [13]\n  seed: [0, 1]\ntrain:\n  train_frac: 0.5\ncheckpoints: [0, 10, 20]\n"
    body += "analyzers:\n  embedding_frequencies: {}\n  lmc: {partner: PARTNER, points: 3}\n"
    target = VariantLayout(results, "modadd", "p13_seed0_frac0.5").artifact("full", "lmc")
    cmd = [str(snakemake), "--cores", "1", "--configfile", str(config), "--config", f"results={results}", "--", str(target)]
    config.write_text(body.replace("PARTNER", '"p{p}_seed7_frac0.5"'))
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "no variant named 'p13_seed7_frac0.5'" in proc.stdout + proc.stderr
    config.write_text(body.replace("PARTNER", '"p{p}_seed1_frac0.5"'))
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    art = load_artifact(target)
    assert art["pair"].tolist() == [b"previous", b"partner"]
    assert np.all(np.isfinite(art["barrier"][:, 1])) and art["epoch_a"][:, 1].tolist() == [0, 10, 20]
