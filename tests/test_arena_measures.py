"""The ARENA chapter's over-training measures against independent computations on the
hand-written Fourier model (tests/handmade.py): embedding singular values in closed form,
the key-frequency share of mlp.hook_pre and the neurons' quadratic share by explicit least
squares on trigonometric regressors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from handmade import J, fourier_weights, run_config, write_caches, write_run

from tdw.analyzers.runner import run_analyzer
from tdw.io.h5 import load_artifact
from tdw.models.architecture import ModelConfig
from tdw.models.hooked import HookedModAdd

P, KEYS = 23, (3, 7)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("arena")
    ckpts = write_run(out, P, KEYS, epochs=(0, 10, 20))
    caches = write_caches(ckpts, out / "cache")
    result = {}
    for name in ("embedding_frequencies", "neuron_clusters", "progress_measures"):
        run_analyzer(name, {}, ckpts, caches, out / f"{name}.h5", {})
        result[name] = load_artifact(out / f"{name}.h5")
    return result


def _final_hooks() -> dict[str, np.ndarray]:
    cfg = ModelConfig(**run_config(P, KEYS)["architecture"])
    weights = {k: torch.tensor(v, dtype=torch.float32) for k, v in fourier_weights(P, KEYS).items()}
    a, b = np.divmod(np.arange(P * P), P)
    with torch.no_grad():
        _, cache = HookedModAdd.from_params(cfg, weights).run_with_cache(torch.tensor(np.stack([a, b, np.full_like(a, P)], 1)))
    return {h: cache[f"blocks.0.mlp.{h}"][:, -1].double().numpy() for h in ("hook_pre", "hook_post")}


def _regressors(k: int, quadratic_only: bool = False) -> np.ndarray:
    """Trig functions of frequency k over the grid, [p*p, 8] (or the 4 products)."""
    a, b = np.divmod(np.arange(P * P), P)
    ca, sa = np.cos(2 * np.pi * k * a / P), np.sin(2 * np.pi * k * a / P)
    cb, sb = np.cos(2 * np.pi * k * b / P), np.sin(2 * np.pi * k * b / P)
    products = [ca * cb, ca * sb, sa * cb, sa * sb]
    return np.stack(products if quadratic_only else [ca, sa, cb, sb, *products], 1)


def _explained(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per column of centred y [rows, n], the energy of its least-squares fit on x: [n]."""
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return ((x @ coef) ** 2).sum(0)


def test_embedding_singular_values_closed_form(artifacts):
    """The final embedding has columns cos/sin(w_k x) for the two keys: four singular values
    sqrt(p / 2) (orthogonal columns of that norm), the rest zero."""
    s = artifacts["embedding_frequencies"]["singular_value"]
    assert s.shape == (3, min(P, 16))
    np.testing.assert_allclose(s[-1, :4], np.sqrt(P / 2), rtol=1e-6)
    np.testing.assert_allclose(s[-1, 4:], 0, atol=1e-5)
    assert np.all(np.diff(s, axis=1) <= 1e-9)  # descending at every checkpoint


def test_pre_activation_key_share_equals_least_squares(artifacts):
    pre = _final_hooks()["hook_pre"]
    y = pre - pre.mean(0)
    share = [_explained(y, _regressors(k)).sum() / (y**2).sum() for k in KEYS]
    got = artifacts["progress_measures"]["pre_key_fraction"][-1]
    np.testing.assert_allclose(got, share, rtol=1e-4)
    # the pre-activations are exactly linear in cos/sin(w_k a), cos/sin(w_k b): all of it
    assert got.sum() == pytest.approx(1.0, abs=1e-5)


def test_quadratic_share_per_neuron_equals_least_squares(artifacts):
    art = artifacts["neuron_clusters"]
    post = _final_hooks()["hook_post"]
    y = post - post.mean(0)
    total = np.maximum((y**2).sum(0), 1e-300)
    best = art["best_frequency"][-1]
    expect = np.array([_explained(y[:, [n]], _regressors(int(best[n]), quadratic_only=True))[0] for n in range(y.shape[1])])
    live = total > 1e-6  # dead and always-on neurons have no variance
    np.testing.assert_allclose(art["quadratic_fve"][-1][live], (expect / total)[live], rtol=1e-3, atol=1e-5)
    # ReLU(cos(w a + phi) + cos(w b + phi)) is mostly, not only, its product terms
    firing = art["quadratic_fve"][-1][: len(KEYS) * J]
    assert 0.2 < firing.min() and firing.max() < 0.99
