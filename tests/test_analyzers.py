"""Analyzers against numbers obtained without the analyzer code: a hand-written Fourier
model (tests/handmade.py) whose frequencies, clusters and heads are known by construction,
closed-form dimensionality cases, and brute-force versions of the fast formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from handmade import N_DEAD, J, fourier_weights, run_config, write_caches, write_run

from tdw.analyzers import REGISTRY, get
from tdw.analyzers.base import supports
from tdw.analyzers.dimensionality import dimension_metrics, singular_values
from tdw.analyzers.fourier import gini
from tdw.analyzers.losses import cross_entropy, periodicity
from tdw.analyzers.runner import run_analyzer
from tdw.config import load_family
from tdw.io.h5 import load_artifact
from tdw.io.history import write_history
from tdw.models.architecture import ModelConfig
from tdw.models.hooked import HookedModAdd

# every analyzer that runs on the a + b task (the sequence analyzers have their own tests)
ADD_ANALYZERS = [name for name in REGISTRY if supports(get(name), {"operation": "add"})]

P, KEYS = 23, (3, 7)
# the SGLD measures offered on request, at a few steps (their own modules test them in full)
ON_REQUEST_SGLD = {"chains": 1, "draws": 4, "burn_in": 1}
PARAMS = {"transitions": {"window": 3}} | dict.fromkeys(("llc_restricted", "susceptibilities"), ON_REQUEST_SGLD)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict[str, dict]:
    """Every registered analyzer over three checkpoints (noise -> the Fourier model)."""
    out = tmp_path_factory.mktemp("handmade")
    ckpts = write_run(out, P, KEYS, epochs=(0, 10, 20))
    caches = write_caches(ckpts, out / "cache")
    e = np.arange(21)
    write_history(out / "history.h5", np.exp(-e / 3), e, np.r_[np.linspace(1, 3, 8), np.logspace(0.5, -5, 13)], e, {})
    result = {}
    for name in ADD_ANALYZERS:
        params = load_family("modadd").spec["analyzers"].get(name, {}).get("params", {}) | PARAMS.get(name, {})
        run_analyzer(name, params, ckpts, caches, out / f"{name}.h5", {}, history=out / "history.h5")
        result[name] = load_artifact(out / f"{name}.h5") | {"path": out / f"{name}.h5"}
    return result


def _basis_vectors(p: int, k: int) -> list[np.ndarray]:
    x = np.arange(p)
    const = np.ones(p) / np.sqrt(p)
    cos, sin = np.cos(2 * np.pi * k * x / p), np.sin(2 * np.pi * k * x / p)
    return [const, cos / np.linalg.norm(cos), sin / np.linalg.norm(sin)]


def _final_forward() -> tuple[np.ndarray, np.ndarray, HookedModAdd]:
    cfg = ModelConfig(**run_config(P, KEYS)["architecture"])
    model = HookedModAdd.from_params(cfg, {k: torch.tensor(v, dtype=torch.float32) for k, v in fourier_weights(P, KEYS).items()})
    a, b = np.divmod(np.arange(P * P), P)
    tok = torch.tensor(np.stack([a, b, np.full_like(a, P)], 1))
    with torch.no_grad():
        logits, cache = model.run_with_cache(tok)
    return logits[:, -1, :P].double().numpy(), cache["blocks.0.mlp.hook_post"][:, -1].numpy(), model


def test_key_frequencies_found_from_data(artifacts):
    assert list(artifacts["embedding_frequencies"]["key_frequencies"]) == list(KEYS)
    assert list(artifacts["progress_measures"]["key_frequency"]) == list(KEYS)
    assert list(artifacts["geometry"]["key_frequency"]) == list(KEYS)


def test_neuron_clusters_match_construction(artifacts):
    """Clusters at the paper's FVE threshold 0.85 (REFERENCE section 3), k = p//2 included."""
    art = artifacts["neuron_clusters"]
    expected = np.r_[np.full(J, KEYS[0]), np.full(J, KEYS[1]), np.zeros(N_DEAD + 1, int)]
    assert np.array_equal(art["cluster"][-1], expected)
    assert art["cluster_size"][-1][KEYS[0]] == J and art["cluster_size"][-1][0] == N_DEAD + 1
    assert art["fve"][-1][: 2 * J].max(1).min() > 0.95


def test_fve_equals_direct_projection(artifacts):
    """FVE of neuron 0 from explicit products of normalised 1D basis vectors."""
    _, post, _ = _final_forward()
    m = post[:, 0].reshape(P, P).astype(np.float64)
    m = m - m.mean()
    for k in (1, KEYS[0], P // 2):
        vecs = _basis_vectors(P, k)
        block = sum(float(u @ m @ v) ** 2 for u in vecs for v in vecs)
        assert artifacts["neuron_clusters"]["fve"][-1][0, k - 1] == pytest.approx(block / np.sum(m**2), abs=1e-5)


def test_neuron_activations_grids(artifacts):
    art = artifacts["neuron_activations"]
    _, post, _ = _final_forward()
    i = int(np.flatnonzero(art["neuron"] == 0)[0])
    np.testing.assert_allclose(art["grid"][-1, i], post[:, 0].reshape(P, P), atol=2e-2)
    # the 2D energy of the mean over neurons sits in the key frequencies' rows and columns
    energy = art["mean_fourier_energy"][-1]
    rows = [2 * k - 1 for k in KEYS] + [2 * k for k in KEYS]
    assert energy[np.ix_([0, *rows], [0, *rows])].sum() / energy.sum() > 0.95


def test_progress_measures(artifacts):
    art = artifacts["progress_measures"]
    logits, _, _ = _final_forward()
    labels = (np.arange(P * P) // P + np.arange(P * P) % P) % P
    assert art["train_loss"][-1] < 1e-2 and art["restricted_loss"][-1] < 0.1
    assert art["logit_key_fraction"][-1] > 0.75 and art["neuron_key_fraction"][-1].sum() > 0.9
    # key share of the logits by explicit least squares on cos/sin(w_k (a + b)) per class
    s = np.arange(P * P) // P + np.arange(P * P) % P
    design = np.stack([f(2 * np.pi * k * s / P) for k in KEYS for f in (np.cos, np.sin)], 1)
    centred = logits - logits.mean(0)
    fit = design @ np.linalg.lstsq(design, centred, rcond=None)[0]
    assert art["logit_key_fraction"][-1] == pytest.approx(np.sum(fit**2) / np.sum(centred**2), rel=1e-4)
    assert art["excluded_loss_all"][-1] > 2.0 > art["train_loss"][-1]
    top = np.argsort(-np.abs(art["logit_periodicity"][-1]))[:2] + 1
    assert sorted(top) == list(KEYS)
    assert art["test_restricted_ratio"][-1] == pytest.approx(art["test_loss"][-1] / art["restricted_loss"][-1])
    assert cross_entropy(logits, labels) == pytest.approx(
        (158 * art["train_loss"][-1] + (P * P - 158) * art["test_loss"][-1]) / P**2, rel=1e-4
    )


def test_periodicity_equals_cube():
    """Against the [k, batch, p] cube built explicitly (p = 23 keeps it small)."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(P * P, P))
    target = (np.arange(P * P) // P + np.arange(P * P) % P) % P
    for k in (1, 5, P // 2):
        cube = np.cos(2 * np.pi * k * (target[:, None] - np.arange(P)[None]) / P)
        assert periodicity(logits, target, P)[k - 1] == pytest.approx(np.sum(logits * cube) / np.linalg.norm(cube))


def test_gini_closed_form():
    assert gini(np.ones(10)) == pytest.approx(0.0)
    assert gini(np.array([0, 0, 0, 1.0])) == pytest.approx(0.75)


def test_attention_heads(artifacts):
    art = artifacts["attention"]
    assert list(art["dominant_frequency"][-1][1:3]) == list(KEYS)
    np.testing.assert_allclose(art["mean_pattern"][-1][[0, 3]], 1 / 3, atol=1e-6)
    np.testing.assert_allclose(art["pos0_minus_pos1"][-1][[0, 3]], 0, atol=1e-6)


@pytest.mark.parametrize("r", [1, 3, 7])
def test_dimensionality_equal_singular_values(r):
    q, _ = np.linalg.qr(np.random.default_rng(r).normal(size=(40, 12)))
    x = 2.5 * q[:, :r] @ np.linalg.qr(np.random.default_rng(r + 1).normal(size=(12, 12)))[0][:r]
    m = dimension_metrics(singular_values(x, centred=False))
    assert m["stable_rank"] == pytest.approx(r) and m["participation_ratio"] == pytest.approx(r)
    assert m["effective_rank"] == pytest.approx(r) and m["nuclear_ratio"] == pytest.approx(r)
    assert m["energy_rank"] == np.ceil(0.9 * r)


def test_dimensionality_closed_forms(artifacts):
    m = dimension_metrics(singular_values(np.diag([3.0, 1.0]), centred=False))
    assert m["stable_rank"] == pytest.approx(10 / 9) and m["participation_ratio"] == pytest.approx(100 / 82)
    assert m["nuclear_ratio"] == pytest.approx(4 / 3) and m["energy_rank"] == 1
    assert m["effective_rank"] == pytest.approx(np.exp(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25))))
    assert singular_values(np.ones((5, 3)), centred=True).max() == pytest.approx(0.0, abs=1e-7)
    assert bool(artifacts["dimensionality"]["centred"])
    # resid_mid of the Fourier model: E[a] + E[b] in 2K dims plus a constant (removed by centring)
    assert artifacts["dimensionality"]["energy_rank"][-1][0] <= 2 * len(KEYS)


def test_geometry_circles(artifacts):
    art = artifacts["geometry"]
    np.testing.assert_allclose(art["embed_circularity"][-1], 1.0, atol=1e-6)
    assert art["neuron_circularity"][-1].min() > 0.75  # ReLU harmonics stay off the circle
    assert art["embed_circularity"][0].max() < 0.9  # noise at epoch 0


def test_ablations(artifacts):
    art = artifacts["ablations"]
    groups = [g.decode() for g in art["group"]]
    change = dict(zip(groups, art["loss_change"][-1], strict=True))  # [mode, subset]
    assert art["n_dead"][-1] == N_DEAD and art["always_on"][-1][-1]
    assert change["head_0"][0, 0] > 1.0
    for h in (1, 2, 3):
        np.testing.assert_allclose(change[f"head_{h}"], 0.0, atol=1e-9)
    assert change[f"cluster_{KEYS[0]}"][0, 0] > 0.3


def test_cluster_ablation_equals_forward_without_neurons(artifacts):
    """Zero ablation of cluster k1 against the torch forward with its W_out rows zeroed."""
    weights = fourier_weights(P, KEYS)
    weights["blocks.0.mlp.W_out"][:J] = 0.0
    cfg = ModelConfig(**run_config(P, KEYS)["architecture"])
    model = HookedModAdd.from_params(cfg, {k: torch.tensor(v, dtype=torch.float32) for k, v in weights.items()})
    a, b = np.divmod(np.arange(P * P), P)
    with torch.no_grad():
        logits = model(torch.tensor(np.stack([a, b, np.full_like(a, P)], 1)))[:, -1, :P].double().numpy()
    art = artifacts["ablations"]
    g = [x.decode() for x in art["group"]].index(f"cluster_{KEYS[0]}")
    expected = cross_entropy(logits, (a + b) % P) - art["base_loss"][-1][0]
    assert art["loss_change"][-1][g, 0, 0] == pytest.approx(expected, rel=1e-4)


def test_full_grid_analyzer_refuses_subset(tmp_path):
    ckpts = write_run(tmp_path, P, KEYS, epochs=(0, 1))
    caches = write_caches(ckpts, tmp_path / "cache", index=np.arange(0, P * P, 3))
    with pytest.raises(ValueError, match="needs the full \\(a, b\\) grid"):
        run_analyzer("neuron_clusters", {}, ckpts, caches, tmp_path / "x.h5", {})
    run_analyzer("attention", {}, ckpts, caches, tmp_path / "a.h5", {})  # subsets are fine here
    assert load_artifact(tmp_path / "a.h5")["mean_pattern"].shape == (2, 4, 3)


def test_every_dataset_has_dims(artifacts):
    import h5py

    for art in artifacts.values():
        with h5py.File(art["path"], "r") as fh:
            for key in fh:
                assert len(fh[key].attrs["dims"].split()) == fh[key].ndim, key


def test_ablation_before_after(artifacts):
    art = artifacts["ablations"]
    assert list(art["compare_epochs"]) == [0, 20]  # default: first and last checkpoint
    np.testing.assert_array_equal(art["compare_loss_change"][1], art["loss_change"][-1])
    assert art["compare_dead_count"][1] == N_DEAD
