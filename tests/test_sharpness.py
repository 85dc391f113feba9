"""Hessian-vector products, Lanczos eigenvalues and the Hutchinson trace against closed-form
Hessians (linear and logistic regression, a diagonal quadratic) and against the full autograd
Hessian of tiny float64 models; the ``sharpness`` analyzer, its edge-of-stability fields and
its figure."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from curvature_models import LR, flatten, full_hessian, reference_loss, write_checkpoints

from tdw.analyzers.curvature import (
    eos_threshold,
    flat_training_loss,
    hessian_vector_product,
    hutchinson_trace,
    top_eigenvalues,
)
from tdw.analyzers.runner import checkpoint_view, run_analyzer
from tdw.analyzers.sharpness import PARAMS, eos_ratio
from tdw.io.h5 import load_artifact
from tdw.params import ParamError, resolve_params


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def design(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64) * torch.linspace(0.3, 2.0, d, dtype=torch.float64)
    return x, torch.randn(n, generator=gen, dtype=torch.float64), torch.randn(d, generator=gen, dtype=torch.float64)


def rademacher_samples(h: np.ndarray, probes: int, seed: int) -> np.ndarray:
    """z^T H z for the probes ``hutchinson_trace`` draws (same generator, same order)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(probes):
        z = rng.integers(0, 2, len(h)) * 2.0 - 1.0
        out.append(z @ h @ z)
    return np.array(out)


def test_linear_regression_hessian_is_twice_the_gram_matrix():
    x, y, w = design(60, 7, 0)
    h = (2 * x.T @ x / len(x)).numpy()  # loss mean (x.w - y)^2: H = 2 X^T X / n at every w
    hvp = hessian_vector_product(lambda v: ((x @ v - y) ** 2).mean(), w)
    v = np.random.default_rng(1).standard_normal(7)
    np.testing.assert_allclose(hvp.matvec(v), h @ v, rtol=1e-12)
    np.testing.assert_allclose(top_eigenvalues(hvp, 3, 1e-12, 0), np.linalg.eigvalsh(h)[::-1][:3], rtol=1e-10)
    trace, se, samples = hutchinson_trace(hvp, 1000, 2)
    np.testing.assert_allclose(samples, rademacher_samples(h, 1000, 2), rtol=1e-10)
    assert abs(trace - np.trace(h)) < 4 * se and se < 0.1 * np.trace(h)


def test_logistic_regression_hessian():
    x, y, w = design(80, 5, 3)
    labels = (y > 0).double()
    s = torch.sigmoid(x @ w)
    h = (x.T @ torch.diag(s * (1 - s)) @ x / len(x)).numpy()  # X^T diag(s(1-s)) X / n

    def loss(v):
        return torch.nn.functional.binary_cross_entropy_with_logits(x @ v, labels)

    hvp = hessian_vector_product(loss, w)
    np.testing.assert_allclose(top_eigenvalues(hvp, 2, 1e-12, 5), np.linalg.eigvalsh(h)[::-1][:2], rtol=1e-9)
    trace, se, _ = hutchinson_trace(hvp, 1000, 0)
    assert abs(trace - np.trace(h)) < 4 * se


def test_trace_of_a_diagonal_hessian_is_exact_for_every_probe():
    """z^T diag(c) z = sum c_i z_i^2 = sum c_i for z in {-1, 1}^D: zero spread."""
    c = torch.tensor([3.0, -1.0, 0.5, 7.0], dtype=torch.float64)
    hvp = hessian_vector_product(lambda v: 0.5 * (c * v**2).sum(), torch.ones(4, dtype=torch.float64))
    trace, se, samples = hutchinson_trace(hvp, 5, 0)
    assert trace == pytest.approx(9.5, abs=1e-12) and se == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(samples, 9.5)
    np.testing.assert_allclose(top_eigenvalues(hvp, 2, 0.0, 0), [7.0, 3.0], rtol=1e-10)
    assert hvp.calls > 5


def test_a_linear_loss_has_a_zero_hessian_and_k_is_checked():
    hvp = hessian_vector_product(lambda v: v.sum(), torch.zeros(3, dtype=torch.float64))
    np.testing.assert_array_equal(hvp.matvec(np.ones(3)), 0.0)
    with pytest.raises(ValueError, match="1 .. 2 eigenvalues"):
        top_eigenvalues(hvp, 3, 0.0, 0)


@pytest.fixture(scope="module", params=["transformer", "mlp"])
def tiny(request, tmp_path_factory):
    kind = request.param
    paths = write_checkpoints(tmp_path_factory.mktemp(kind), kind)
    views = [checkpoint_view(p, None) for p in paths]
    hessians = [full_hessian(v.weights, kind) for v in views]
    return {"kind": kind, "paths": paths, "views": views, "hessians": hessians}


@pytest.fixture(scope="module")
def artifact(tiny, tmp_path_factory):
    """The analyzer over the tiny run's two checkpoints: k = 2, six probes."""
    out = tmp_path_factory.mktemp("sharpness") / "sharpness.h5"
    run_analyzer("sharpness", {"k": 2, "probes": 6, "tol": 1e-10}, tiny["paths"], None, out, {})
    return load_artifact(out)


def test_tiny_model_against_the_full_autograd_hessian(tiny):
    view, h = tiny["views"][1], tiny["hessians"][1]
    flat = flat_training_loss(view, "cpu", "float64")
    w = flatten(view.weights)
    assert torch.equal(flat.center, w) and flat.center.dtype == torch.float64
    assert float(flat.loss(w)) == pytest.approx(float(reference_loss(view.weights, tiny["kind"])(w)), rel=1e-12)
    hvp = hessian_vector_product(flat.loss, flat.center)
    v = np.random.default_rng(0).standard_normal(len(h))
    np.testing.assert_allclose(hvp.matvec(v), h @ v, rtol=1e-9, atol=1e-11 * np.abs(h).max())
    exact = np.linalg.eigh(h)[0][::-1]
    np.testing.assert_allclose(top_eigenvalues(hvp, 4, 1e-10, 0), exact[:4], rtol=1e-7)
    trace, se, samples = hutchinson_trace(hvp, 100, 3)
    np.testing.assert_allclose(samples, rademacher_samples(h, 100, 3), rtol=1e-8, atol=1e-9)
    assert abs(trace - np.trace(h)) < 4 * se


def test_analyzer_writes_eigenvalues_trace_and_eos_fields(tiny, artifact):
    art = artifact
    assert list(art["epoch"]) == [0, 60] and art["eigenvalues"].shape == (2, 2) and art["trace_samples"].shape == (2, 6)
    for i, h in enumerate(tiny["hessians"]):
        np.testing.assert_allclose(art["eigenvalues"][i], np.linalg.eigvalsh(h)[::-1][:2], rtol=1e-7)
        np.testing.assert_allclose(art["trace_samples"][i], rademacher_samples(h, 6, 0), rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(art["trace"], art["trace_samples"].mean(1))
    np.testing.assert_allclose(art["trace_stderr"], art["trace_samples"].std(1, ddof=1) / math.sqrt(6))
    # AdamW, beta1 = 0.9: (2 + 2 beta1) / ((1 - beta1) lr); the ratio needs Adam's moments: NaN
    np.testing.assert_allclose(art["eos_threshold"], 3.8 / (0.1 * LR))
    assert np.isnan(art["eos_ratio"]).all() and np.all(art["hvp_calls"] > 6)
    w = flatten(tiny["views"][1].weights)
    assert art["loss"][1] == pytest.approx(float(reference_loss(tiny["views"][1].weights, tiny["kind"])(w)), rel=1e-12)


def test_edge_of_stability_thresholds():
    assert eos_threshold("sgd", 0.01) == pytest.approx(200.0)
    assert eos_threshold("adamw", 1e-3, 0.9) == pytest.approx(38000.0)
    assert eos_threshold("adam", 0.1, 0.0) == pytest.approx(20.0)  # beta1 = 0: RMSProp-like, 2 / lr
    assert eos_ratio(50.0, "sgd", 200.0, False) == 0.25
    assert math.isnan(eos_ratio(50.0, "adamw", 38000.0, False)) and eos_ratio(19.0, "adamw", 38.0, True) == 0.5
    with pytest.raises(ValueError, match="lion"):
        eos_threshold("lion", 1e-3)


@pytest.mark.parametrize(("key", "value"), [("k", 0), ("probes", 1), ("tol", -1.0)])
def test_parameter_ranges(key, value):
    with pytest.raises(ParamError, match=key):
        resolve_params(PARAMS, {key: value}, "sharpness")


def test_figure_draws_eigenvalues_trace_and_says_why_the_ratio_is_missing(artifact):
    from tdw.figures import builder
    from tdw.figures import params as figure_params

    art = artifact
    fig = builder("sharpness")({"artifact": art}, resolve_params(figure_params("sharpness"), {}, "fig"), "sharpness")
    traces = {t.name: t for t in fig.data}
    np.testing.assert_allclose(traces["λ1"].y, art["eigenvalues"][:, 0])
    np.testing.assert_allclose(traces["trace"].y, art["trace"])
    assert any("undefined" in a.text for a in fig.layout.annotations)
    assert fig.layout.yaxis.type == "log" and list(traces["λ2"].x) == [0, 60]


def test_sweep_pages_offer_the_final_top_eigenvalue(tiny, artifact):
    from tdw.analyzers import REGISTRY
    from tdw.config import load_family
    from tdw.pages.sweep_data import artifact_value
    from tdw.pages.sweep_spec import load_sweep_spec, sweep_file

    art = artifact
    for family in ("modadd", "modadd_mlp"):
        spec = load_sweep_spec(sweep_file(load_family(family), "default"), ["sharpness"], REGISTRY)
        (m,) = [m for m in spec["measures"] if m["name"] == "final_top_eigenvalue"]
        value = artifact_value(art[m["dataset"]], "epoch eigen", m["at"], m["reduce"], "test")
        assert value == pytest.approx(np.linalg.eigvalsh(tiny["hessians"][-1]).max(), rel=1e-7)
        assert "final_top_eigenvalue" not in [
            m["name"] for m in load_sweep_spec(sweep_file(load_family(family), "default"), [], REGISTRY)["measures"]
        ]


def test_eigenvalues_that_do_not_converge_are_nan():
    x, y, w = design(200, 60, 4)
    hvp = hessian_vector_product(lambda v: ((x @ v - y) ** 2).mean(), w)
    values = top_eigenvalues(hvp, 5, 1e-14, 0, maxiter=1)
    assert values.shape == (5,) and np.isnan(values).any()
    found = values[np.isfinite(values)]
    exact = np.linalg.eigvalsh((2 * x.T @ x / len(x)).numpy())
    assert all(np.min(np.abs(exact - v)) < 1e-6 * exact.max() for v in found)


def test_float32_products_agree_with_float64(tiny, tmp_path):
    out = tmp_path / "f32.h5"
    run_analyzer("sharpness", {"k": 2, "probes": 6, "dtype": "float32"}, tiny["paths"][1:], None, out, {})
    art = load_artifact(out)
    h = tiny["hessians"][1]
    np.testing.assert_allclose(art["eigenvalues"][0], np.linalg.eigvalsh(h)[::-1][:2], rtol=1e-3)
    np.testing.assert_allclose(art["trace_samples"][0], rademacher_samples(h, 6, 0), rtol=1e-3, atol=1e-4)
