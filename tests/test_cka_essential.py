"""Representation similarity (``cka``) and essential dynamics (``essential_dynamics``): the
closed forms of linear CKA (self-similarity, invariances, feature form = HSIC form), the
debiased form against Song et al.'s unbiased HSIC written out as sums, PCA of a trajectory
in a plane, and both analyzers and figures on a p = 13 variant trained for 30 epochs."""

from __future__ import annotations

import numpy as np
import pytest

from tdw.analyzers import cka
from tdw.analyzers.cka import centred, cka_matrices, debiased_cka, linear_cka, sample_rows, triangle
from tdw.analyzers.essential_dynamics import trajectory_pca
from tdw.analyzers.jumps import grokking_phases
from tdw.analyzers.runner import checkpoint_view, run_analyzer
from tdw.cache.forward import cache_checkpoints
from tdw.config import TrainConfig, Variant, load_family
from tdw.figures import builder, frames_builder
from tdw.io.h5 import load_artifact
from tdw.io.history import read_history

EPOCHS = (0, 10, 20, 30)
HOOKS = ("blocks.0.hook_resid_post", "blocks.0.mlp.hook_post")


def hsic_form(x: np.ndarray, y: np.ndarray) -> float:
    """CKA from HSIC with the centring matrix written out: tr(K H L H) over the norms."""
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    kx, ky = x @ x.T, y @ y.T
    return np.trace(kx @ h @ ky @ h) / np.sqrt(np.trace(kx @ h @ kx @ h) * np.trace(ky @ h @ ky @ h))


def hsic_unbiased_sums(k: np.ndarray, g: np.ndarray) -> float:
    """Song et al. (2012), eq. 5, as explicit sums over i != j."""
    n = len(k)
    trace = sum(k[i, j] * g[i, j] for i in range(n) for j in range(n) if i != j)
    sum_k = sum(k[i, j] for i in range(n) for j in range(n) if i != j)
    sum_g = sum(g[i, j] for i in range(n) for j in range(n) if i != j)
    cross = sum(sum(k[i, j] for j in range(n) if j != i) * sum(g[i, m] for m in range(n) if m != i) for i in range(n))
    return (trace + sum_k * sum_g / ((n - 1) * (n - 2)) - 2 * cross / (n - 2)) / (n * (n - 3))


def brute_debiased(x: np.ndarray, y: np.ndarray) -> float:
    kx, ky = x @ x.T, y @ y.T
    return hsic_unbiased_sums(kx, ky) / np.sqrt(hsic_unbiased_sums(kx, kx) * hsic_unbiased_sums(ky, ky))


def pair(n: int = 14, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)) + 3.0  # uncentred on purpose
    return x, x @ rng.normal(size=(6, 9)) + 0.7 * rng.normal(size=(n, 9))


def test_cka_of_a_representation_with_itself_is_one():
    x, y = pair()
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert debiased_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert 0.2 < linear_cka(x, y) < 0.99


def test_cka_is_invariant_to_orthogonal_maps_isotropic_scaling_and_translation():
    x, y = pair()
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(6, 6)))
    for fn in (linear_cka, debiased_cka):
        ref = fn(x, y)
        assert fn(x @ q, y) == pytest.approx(ref, rel=1e-10)
        assert fn(4.5 * x, 0.2 * y) == pytest.approx(ref, rel=1e-10)
        assert fn(x + 10.0, y) == pytest.approx(ref, rel=1e-10)
    s = np.diag([1.0, 5.0, 1.0, 1.0, 1.0, 1.0])  # anisotropic scaling does change it
    assert abs(linear_cka(x @ s, y) - linear_cka(x, y)) > 1e-3


def test_feature_form_equals_the_hsic_form():
    x, y = pair(20, seed=3)
    xc, yc = x - x.mean(0), y - y.mean(0)
    feature = np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    assert linear_cka(x, y) == pytest.approx(feature, rel=1e-12)
    assert linear_cka(x, y) == pytest.approx(hsic_form(x, y), rel=1e-10)


def test_debiased_cka_equals_the_unbiased_hsic_sums():
    x, y = pair(12, seed=4)
    assert debiased_cka(x, y) == pytest.approx(brute_debiased(x, y), rel=1e-10)
    # independent representations: the biased form is far from 0, the debiased one near it
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(60, 40)), rng.normal(size=(60, 40))
    assert linear_cka(a, b) > 0.3 and abs(debiased_cka(a, b)) < 0.05


def test_all_pairs_from_stored_grams_match_the_pairwise_functions(monkeypatch):
    rng = np.random.default_rng(6)
    n = 10
    base = rng.normal(size=(n, 5))
    xs = [base @ rng.normal(size=(5, 7)) * (1 + t) + t * rng.normal(size=(n, 7)) for t in range(5)]
    grams = np.stack([triangle(centred(x) @ centred(x).T) for x in xs])
    monkeypatch.setattr(cka, "BLOCK_VALUES", 2 * grams.shape[1])  # blocks of two checkpoints
    plain, debiased = cka_matrices(grams, n)
    expected = np.array([[linear_cka(a, b) for b in xs] for a in xs])
    expected_d = np.array([[brute_debiased(centred(a), centred(b)) for b in xs] for a in xs])
    np.testing.assert_allclose(plain, expected, rtol=1e-5)
    np.testing.assert_allclose(debiased, expected_d, rtol=1e-5, atol=1e-6)
    assert np.array_equal(plain, plain.T) and np.all(np.diag(plain) == 1.0)


def test_row_sample_is_seeded_sorted_and_bounded():
    a, b = sample_rows(169, 64, 0), sample_rows(169, 64, 0)
    assert np.array_equal(a, b) and len(np.unique(a)) == 64 and np.all(np.diff(a) > 0) and a[-1] < 169
    assert not np.array_equal(a, sample_rows(169, 64, 1))
    assert np.array_equal(sample_rows(50, 64, 0), np.arange(50))


def test_a_trajectory_in_a_plane_has_its_variance_in_two_components():
    rng = np.random.default_rng(7)
    t = np.linspace(0, 3, 60)
    basis, _ = np.linalg.qr(rng.normal(size=(500, 2)))  # an orthonormal plane in R^500
    points = np.stack([np.cos(2 * t) * 3, t**2], 1) @ basis.T + rng.normal(size=500)
    points += 1e-4 * rng.normal(size=points.shape)
    coords, ratio, total = trajectory_pca(points, 4)
    assert coords.shape == (60, 4) and ratio[:2].sum() >= 0.999
    z = points - points.mean(0)
    s = np.linalg.svd(z, compute_uv=False)
    np.testing.assert_allclose(ratio, s[:4] ** 2 / np.sum(s**2), rtol=1e-9, atol=1e-15)
    assert total == pytest.approx(np.sum(s**2) / 60)
    # two components keep the distances between checkpoints
    d_full = np.linalg.norm(z[:, None] - z[None], axis=-1)
    d_plane = np.linalg.norm(coords[:, None, :2] - coords[None, :, :2], axis=-1)
    np.testing.assert_allclose(d_plane, d_full, atol=1e-3)
    assert np.all(coords[-1] >= coords[0])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A p = 13 variant of the small test model trained for 30 epochs, its caches, both artifacts."""
    from tdw.train.trainer import TrainJob, train_variant

    family = load_family("test_only_tiny")
    v = Variant("p13_seed0", 13, 0, 0.5, EPOCHS)
    out = tmp_path_factory.mktemp("trained") / v.name
    train_variant(TrainJob("test_only_tiny", "add", family.model_config(13), TrainConfig(train_frac=0.5), v, out))
    ckpts = [out / "checkpoints" / f"checkpoint_epoch_{e:05d}.safetensors" for e in EPOCHS]
    caches = [out / "cache/full" / f"epoch_{e:05d}.h5" for e in EPOCHS]
    cache_checkpoints(family, v, "full", ckpts, caches)
    runs = {"cka": {"rows": 64, "seed": 3}, "essential_dynamics": {"rows": 40}}
    arts = {}
    for name, params in runs.items():
        path = out / f"{name}.h5"
        run_analyzer(name, params, ckpts, caches, path, {}, history=out / "history.h5")
        arts[name] = load_artifact(path)
    return {"ckpts": ckpts, "caches": caches, "history": out / "history.h5"} | arts


def test_cka_on_a_trained_variant(trained):
    art = trained["cka"]
    assert [h.decode() for h in art["hook"]] == list(HOOKS) and art["cka"].shape == (4, 4, 2)
    assert np.array_equal(art["row"], sample_rows(169, 64, 3)) and art["attrs"]["params"]["rows"] == 64
    for key in ("cka", "cka_debiased"):
        m = art[key]
        np.testing.assert_allclose(np.diagonal(m, axis1=0, axis2=1), 1.0, atol=1e-12)
        np.testing.assert_array_equal(m, m.transpose(1, 0, 2))
        np.testing.assert_array_equal(art[f"{key}_final"], m[:, -1])
    assert np.all((art["cka"] > 0) & (art["cka"] <= 1 + 1e-12))
    # entries against CKA of the activations read and compared here
    views = [checkpoint_view(c, h) for c, h in zip(trained["ckpts"], trained["caches"], strict=True)]
    for h, hook in enumerate(HOOKS):
        acts = [v.activation(hook)[art["row"]] for v in views]
        for i, j in ((0, 3), (1, 2), (2, 3)):
            assert art["cka"][i, j, h] == pytest.approx(linear_cka(acts[i], acts[j]), rel=1e-5)
            assert art["cka_debiased"][i, j, h] == pytest.approx(debiased_cka(acts[i], acts[j]), rel=1e-4, abs=1e-6)


def test_essential_dynamics_on_a_trained_variant(trained):
    art = trained["essential_dynamics"]
    assert art["coordinates"].shape == (4, 4) and list(art["component"]) == [1, 2, 3, 4]
    ratio = art["explained_variance_ratio"]
    assert np.all(np.diff(ratio) <= 1e-12) and ratio.sum() == pytest.approx(1.0)  # 4 points: 3 components hold all
    assert ratio[-1] < 1e-9
    # the PCA of the logits read here, row-centred over the classes
    rows = sample_rows(169, 40, 0)
    z = []
    for c, h in zip(trained["ckpts"], trained["caches"], strict=True):
        logits = checkpoint_view(c, h).activation("logits")[rows].astype(np.float64)
        z.append((logits - logits.mean(1, keepdims=True)).ravel())
    zc = np.array(z) - np.mean(z, 0)
    u, s, _ = np.linalg.svd(zc, full_matrices=False)
    np.testing.assert_allclose(np.abs(art["coordinates"][:, :3]), np.abs(u[:, :3] * s[:3]), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(art["step_distance"][1:], np.linalg.norm(np.diff(z, axis=0), axis=1), rtol=1e-5)
    hist = read_history(trained["history"])
    phases = grokking_phases(hist["test_epoch"], hist["test_loss"])
    np.testing.assert_array_equal(art["boundary_epoch"], [phases[b.decode()] for b in art["boundary"]])


def test_figures_of_both_artifacts(trained):
    family = load_family("modadd").spec["figures"]
    fig = builder("cka")({"artifact": trained["cka"]}, family["cka"]["params"], "cka")
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 2
    np.testing.assert_allclose(np.asarray(heat[1].z), trained["cka"]["cka"][:, :, 1], rtol=1e-4)
    frames = frames_builder("cka")({"artifact": trained["cka"]}, family["cka"]["params"])
    assert frames.epochs == list(EPOCHS) and frames.traces == [2, 5]
    np.testing.assert_allclose(frames.updates[1]["y"][0], trained["cka"]["cka"][1, :, 0], rtol=1e-3)
    assert sum(s.name == "epoch-indicator" for s in fig.layout.shapes) == 4
    art = trained["essential_dynamics"]
    params = family["essential_dynamics"]["params"]
    fig = builder("essential_dynamics")({"artifact": art}, params, "essential dynamics")
    np.testing.assert_array_equal(np.asarray(fig.data[0].x), art["coordinates"][:, 0])
    np.testing.assert_array_equal(np.asarray(fig.data[0].marker.color), art["epoch"])
    marked = [t for t in fig.data if t.type == "scatter" and t.mode == "markers+text"]
    assert len(marked) == int(np.isfinite(art["boundary_epoch"]).sum())
    np.testing.assert_array_equal(np.asarray(fig.data[-1].y), art["explained_variance_ratio"])
    frames = frames_builder("essential_dynamics")({"artifact": art}, params)
    assert frames.updates[0] == {"x": [[art["coordinates"][0, 0]]], "y": [[art["coordinates"][0, 1]]]}


def test_sequence_caches_compare_the_valid_positions_only(tmp_path):
    """A two-layer sequence model's caches at every position, padding filled with junk that
    changes per checkpoint: the valid (sequence, position) rows of checkpoint 1 are those of
    checkpoint 0 rotated and scaled (CKA 1 in both forms), checkpoint 2's are unrelated; the
    logits' trajectory has the PCA of its valid rows."""
    from tdw.io.checkpoint import save_checkpoint
    from tdw.io.h5 import write_h5
    from tdw.io.history import write_history
    from tdw.layout import VariantLayout

    vocab, n_ctx, d = 7, 10, 12
    arch = {"p": vocab, "n_layers": 2, "d_model": d, "n_heads": 2, "d_mlp": 4, "n_ctx": n_ctx, "attn_only": True}
    config = {"architecture": arch | {"unembed_equals": False}, "task": {"operation": "induction"}, "seed": 0}
    rng = np.random.default_rng(8)
    lengths = np.array([n_ctx] * 12 + [6] * 8)
    valid = np.arange(n_ctx)[None] < lengths[:, None]  # 168 valid rows of 200
    base = rng.normal(size=(int(valid.sum()), d))
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    rows = [base, 2.5 * base @ q, rng.normal(size=base.shape)]
    ckpts, caches, logits = [], [], []
    for epoch, x in zip((0, 10, 20), rows, strict=True):
        act = rng.normal(0, 50, (20, n_ctx, d))
        act[valid] = x
        out = rng.normal(0, 50, (20, n_ctx, vocab))
        out[valid] = x[:, :vocab] * (1 + epoch)
        logits.append(out[valid])
        ckpts.append(VariantLayout.at(tmp_path).checkpoint(epoch))
        save_checkpoint(ckpts[-1], {"embed.W_E": np.zeros((vocab, d), np.float32)}, {"epoch": epoch, "config": config})
        caches.append(tmp_path / f"cache_{epoch}.h5")
        datasets = {
            "tokens": (rng.integers(0, vocab, (20, n_ctx)).astype(np.int32), "batch pos"),
            "length": (lengths.astype(np.int32), "batch"),
            "blocks.1.hook_resid_post": (act.astype(np.float32), "batch pos d_model"),
            "logits": (out.astype(np.float32), "batch pos d_vocab_out"),
        }
        write_h5(caches[-1], datasets, {})
    e = np.arange(21)
    write_history(tmp_path / "history.h5", np.exp(-e / 3), e, np.exp(-e / 3), e, {})
    hooks = {"hooks": ["blocks.{last}.hook_resid_post"], "rows": 100}
    run_analyzer("cka", hooks, ckpts, caches, tmp_path / "cka.h5", {})
    art = load_artifact(tmp_path / "cka.h5")
    assert len(art["row"]) == 100 and art["row"][-1] < 168
    assert art["cka"][0, 1, 0] == pytest.approx(1.0, abs=1e-5) and art["cka_debiased"][0, 1, 0] == pytest.approx(1.0, abs=1e-5)
    assert art["cka"][0, 2, 0] < 0.9 and abs(art["cka_debiased"][0, 2, 0]) < 0.1
    params = {"components": 2, "centre_classes": False, "rows": 500}
    run_analyzer("essential_dynamics", params, ckpts, caches, tmp_path / "ed.h5", {}, history=tmp_path / "history.h5")
    ed = load_artifact(tmp_path / "ed.h5")
    z = np.stack([x.astype(np.float32).astype(np.float64).ravel() for x in logits])
    s = np.linalg.svd(z - z.mean(0), compute_uv=False)
    np.testing.assert_allclose(ed["explained_variance_ratio"], s[:2] ** 2 / np.sum(s**2), rtol=1e-5)
    assert len(ed["row"]) == 168


def test_the_sweep_measures_read_both_artifacts(trained):
    from tdw.analyzers import REGISTRY
    from tdw.pages.sweep_data import artifact_value
    from tdw.pages.sweep_spec import load_sweep_spec, sweep_file

    family = load_family("modadd")
    spec = load_sweep_spec(sweep_file(family, "default"), ["cka", "essential_dynamics"], list(REGISTRY))
    measures = {m["name"]: m for m in spec["measures"] if m["source"] in ("cka", "essential_dynamics")}
    assert set(measures) == {"least_cka_to_final", "essential_pc1_share"}
    m = measures["least_cka_to_final"]
    least = artifact_value(trained["cka"][m["dataset"]], "epoch hook", m["at"], m["reduce"], m["name"])
    assert least == trained["cka"]["cka_final"].min() and least < 1.0
    m = measures["essential_pc1_share"]
    ratio = trained["essential_dynamics"]["explained_variance_ratio"]
    assert artifact_value(ratio, "component", m["at"], m["reduce"], m["name"]) == ratio[0]
