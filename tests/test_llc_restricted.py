"""The weight-restricted LLC: the exact value of a linear-Gaussian model restricted to k
coordinates, the components' coordinates against devinterp 2.0.1's ``create_param_masks``,
agreement with devinterp's restricted estimate on a small trained model, and the analyzer
through the runner."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from test_llc import ARCH, P, linear_gaussian, trained_weights

from tdw.analyzers import llc as llc_analyzer
from tdw.analyzers import llc_restricted
from tdw.analyzers.runner import checkpoint_view, run_analyzer
from tdw.analyzers.sgld import SGLDSettings, estimate_llc, flat_mask
from tdw.io.checkpoint import save_checkpoint
from tdw.io.h5 import load_artifact
from tdw.models.architecture import ModelConfig
from tdw.params import resolve_params


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_linear_gaussian_restricted_to_k_coordinates():
    """Loss 1/2 mean (x.w - y)^2 with w* its minimum: L(w) - L(w*) = 1/2 δᵀHδ exactly, H the
    rows' second moment. Restricted to coordinates S the localised tempered posterior is
    Gaussian with precision nβ H_SS + γ I, so E[nβ (L - L(w*))] = nβ/2 tr(H_SS (nβ H_SS + γ I)⁻¹)
    (about k/2 for H ~ I). The chains of three restrictions (1, 3 and all 6 coordinates) run
    as one stacked model, one mask row per chain."""
    d, n, per = 6, 500, 8
    loss, center = linear_gaussian(d, n, seed=4)
    gen = torch.Generator().manual_seed(4)  # the rows linear_gaussian drew
    x = torch.randn(n, d, generator=gen).double()
    h = (x.T @ x / n).numpy()
    subsets = [[2], [0, 3, 5], list(range(d))]
    s = SGLDSettings(epsilon=1e-3, gamma=1.0, nbeta=n / math.log(n), chains=per * len(subsets), draws=200, burn_in=30, seed=3)
    rows = []
    for sub in subsets:
        m = np.zeros(d, dtype=bool)
        m[sub] = True
        rows += [{"w": m}] * per
    est = estimate_llc(loss, center, n, s, blowup=1e3, mask=flat_mask(center, rows))
    assert not est.diverged.any()
    for i, sub in enumerate(subsets):
        hs = h[np.ix_(sub, sub)]
        exact = s.nbeta / 2 * np.trace(hs @ np.linalg.inv(s.nbeta * hs + s.gamma * np.eye(len(sub))))
        got = est.llc[i * per : (i + 1) * per]
        se = got.std(ddof=1) / math.sqrt(per)
        assert abs(got.mean() - exact) <= 3 * se + 0.05 * exact, (sub, got.mean(), exact, se)
        assert abs(exact - len(sub) / 2) < 0.1 * len(sub)  # about k/2
    assert np.all(est.mala_acceptance > 0.8)


def test_a_mask_of_ones_is_the_full_sampler_and_a_mask_holds_the_rest_at_w_star():
    loss, center = linear_gaussian(4, 200, seed=2)
    s = SGLDSettings(epsilon=1e-3, gamma=1.0, nbeta=40.0, chains=3, draws=20, burn_in=5, seed=1)
    full = estimate_llc(loss, center, 200, s, blowup=1e3)
    ones = estimate_llc(loss, center, 200, s, blowup=1e3, mask=torch.ones(1, 4))
    for field in ("loss_trace", "distance_trace", "llc", "mala_acceptance"):
        np.testing.assert_array_equal(getattr(full, field), getattr(ones, field), err_msg=field)
    # moving coordinate 1 only: w - w* is (0, δ, 0, 0), so the loss is L(w*) + 1/2 H_11 δ²
    moved = []

    def spy(params, rows):
        moved.append(params["w"].detach().clone())
        return loss(params, rows)

    estimate_llc(spy, center, 200, s, blowup=1e3, mask=flat_mask(center, [{"w": np.array([0, 1, 0, 0], bool)}]))
    offsets = torch.stack(moved[2:]) - center["w"]  # [step, chain, 4]: the calls after L_n(w*) and the first step at w*
    assert offsets[..., 1].abs().min() > 0 and torch.all(offsets[..., [0, 2, 3]] == 0)
    with pytest.raises(ValueError, match="mask of shape"):
        estimate_llc(loss, center, 200, s, blowup=1e3, mask=torch.ones(2, 4))


def test_components_are_devinterps_weight_restrictions():
    """Our head and MLP components select exactly the coordinates devinterp 2.0.1's
    ``create_param_masks`` selects on the same model; embed adds W_pos to devinterp's W_E."""
    from llc_devinterp import restriction_masks

    cfg = ModelConfig(p=P, **ARCH)
    weights = trained_weights(steps=1)
    shapes = {k: v.shape for k, v in weights.items()}
    ours = llc_restricted.component_masks(shapes, cfg.n_heads, ["heads", "mlps", "embed", "unembed", "l0attn"])
    assert list(ours) == ["l0h0", "l0h1", "l0mlp", "embed", "unembed", "l0attn"]
    for name, restriction in [
        ("l0h0", "l0h0"),
        ("l0h1", "l0h1"),
        ("l0mlp", "l0 mlp"),
        ("unembed", "unembed"),
        ("l0attn", "l0 attn"),
    ]:
        ref = {k.removeprefix("net."): m for k, m in restriction_masks(cfg, weights, restriction).items()}
        assert set(ref) == set(ours[name]), name
        for k, m in ref.items():
            want = np.ones(shapes[k], bool) if m is None else m.numpy()
            got = np.ones(shapes[k], bool) if ours[name][k] is None else ours[name][k]
            np.testing.assert_array_equal(got, want, err_msg=f"{name} {k}")
    sizes = llc_restricted.component_sizes(shapes, ours)
    d, e = ARCH["d_model"], ARCH["d_model"] // ARCH["n_heads"]
    assert sizes["l0h0"] == sizes["l0h1"] == 4 * d * e and sizes["l0attn"] == 2 * sizes["l0h0"]
    assert sizes["l0mlp"] == 2 * d * ARCH["d_mlp"] + ARCH["d_mlp"] + d
    assert sizes["embed"] == (P + 1) * d + 3 * d
    with pytest.raises(ValueError, match="'l0h2': the model has no such weights"):
        llc_restricted.component_masks(shapes, cfg.n_heads, ["l0h2"])
    with pytest.raises(ValueError, match="'l1mlp'"):
        llc_restricted.component_masks(shapes, cfg.n_heads, ["l1mlp"])


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from tdw.models.weights import init_params

    root = tmp_path_factory.mktemp("llc_restricted")
    config = {"task": {"operation": "add", "p": P}, "seed": 0, "architecture": ARCH | {"p": P}, "train": {"train_frac": 0.6}}
    weights = [{k: v.numpy() for k, v in init_params(ModelConfig(p=P, **ARCH), 0).items()}, trained_weights()]
    paths = []
    for epoch, w in zip((0, 300), weights, strict=True):
        paths.append(root / f"checkpoint_epoch_{epoch:05d}.safetensors")
        save_checkpoint(paths[-1], w, {"epoch": epoch, "config": config})
    return paths


def params(**given):
    return resolve_params(llc_restricted.PARAMS, given, "test")


def test_agrees_with_devinterps_restricted_estimate(checkpoints):
    """Per component, the mean over chains against devinterp 2.0.1's ``llc`` with its own
    ``create_param_masks`` restriction, the same settings (different noise): within twice
    the standard error of the difference, as the full LLC's test."""
    from llc_devinterp import devinterp_llc, restriction_masks

    view = checkpoint_view(checkpoints[1], None)
    chosen = params(
        epsilon=1e-4, gamma=100.0, nbeta="n", chains=5, draws=100, burn_in=0, batch_size=18, seed=1, components=["l0h1", "l0mlp"]
    )
    names, ours, s, _ = llc_restricted.estimate(view, chosen)
    assert names == ["l0h1", "l0mlp"] and not ours.diverged.any()
    one = dataclasses.replace(s, chains=5)
    means = []
    for i, restriction in enumerate(["l0h1", "l0 mlp"]):
        ref = devinterp_llc(
            view.model, view.weights, view.split()[0], "add", one, restriction_masks(view.model, view.weights, restriction)
        )
        got = ours.llc[5 * i : 5 * (i + 1)]
        assert ours.init_loss == pytest.approx(ref["init_loss"], rel=1e-4)
        se = math.sqrt(got.var(ddof=1) / 5 + ref["llc"].var(ddof=1) / 5)
        assert abs(got.mean() - ref["llc"].mean()) <= 2 * se, (restriction, got, ref["llc"])
        means.append(got.mean())
    assert min(means) > 0.3  # a real signal
    whole = resolve_params(llc_analyzer.PARAMS, {k: v for k, v in chosen.items() if k != "components"}, "test")
    full, _ = llc_analyzer.estimate(view, whole)
    assert max(means) < full.llc_mean  # a component's LLC is below the whole model's


def test_runner_writes_the_artifact(checkpoints, tmp_path):
    out = tmp_path / "llc_restricted.h5"
    chosen = {"chains": 2, "draws": 6, "burn_in": 2, "batch_size": 16, "components": ["heads", "embed"]}
    run_analyzer("llc_restricted", chosen, checkpoints, None, out, {})
    art = load_artifact(out)
    assert list(art["epoch"]) == [0, 300]
    assert [c.decode() for c in art["component"]] == ["l0h0", "l0h1", "embed"]
    assert list(art["component_size"]) == [512, 512, (P + 1) * 16 + 3 * 16]
    assert art["llc"].shape == art["diverged"].shape == art["mala_acceptance"].shape == (2, 3, 2)
    assert art["loss_trace"].shape == (2, 3, 2, 6)
    kept = np.where(art["diverged"], np.nan, art["llc"])
    np.testing.assert_allclose(art["llc_mean"], np.nanmean(kept, 2))
    assert np.all(art["distance_trace"][..., 0] > 0)
    # every component's chains start from the same w*: the trained checkpoint's L_n(w*)
    view = checkpoint_view(checkpoints[1], None)
    ref, _ = llc_analyzer.estimate(view, resolve_params(llc_analyzer.PARAMS, {"chains": 1, "draws": 1, "burn_in": 0}, "t"))
    assert art["init_loss"][1] == pytest.approx(ref.init_loss, rel=1e-7)


def test_figure_draws_each_component(checkpoints, tmp_path):
    from tdw.figures import builder
    from tdw.figures import params as figure_params

    out = tmp_path / "llc_restricted.h5"
    run_analyzer(
        "llc_restricted", {"chains": 2, "draws": 4, "burn_in": 0, "components": ["l0h0", "l0mlp"]}, checkpoints, None, out, {}
    )
    art = load_artifact(out)
    fig = builder("llc_restricted")({"artifact": art}, resolve_params(figure_params("llc_restricted"), {}, "f"), "restricted LLC")
    lines = {t.name: t for t in fig.data if t.mode and "lines" in t.mode}
    assert list(lines) == ["l0h0 (512 weights)", f"l0mlp ({2 * 16 * 32 + 32 + 16:,} weights)"]
    np.testing.assert_allclose(lines["l0mlp (1,072 weights)"].y, art["llc_mean"][:, 1])
    chains = [t for t in fig.data if t.name == "l0h0 chain"]
    assert len(chains) == 1 and len(chains[0].x) == int((~art["diverged"][:, 0]).sum())


def test_masked_noise_drawn_ahead_gives_the_same_numbers():
    """The mask multiplies the step's noise buffer in place while the noise thread fills the
    other buffer: the same traces as drawing in line."""
    loss, center = linear_gaussian(5, 200, seed=3)
    s = SGLDSettings(epsilon=1e-3, gamma=1.0, nbeta=40.0, chains=4, draws=30, burn_in=5, seed=2)
    mask = flat_mask(center, [{"w": np.arange(5) < k} for k in (1, 2, 3, 5)])
    ahead = estimate_llc(loss, center, 200, s, blowup=1e3, noise_ahead=True, mask=mask)
    inline = estimate_llc(loss, center, 200, s, blowup=1e3, noise_ahead=False, mask=mask)
    for field in ("loss_trace", "distance_trace", "llc", "mala_acceptance"):
        np.testing.assert_array_equal(getattr(ahead, field), getattr(inline, field), err_msg=field)
    assert len(set(ahead.llc)) == 4
