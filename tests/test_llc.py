"""The LLC estimator: d/2 for a linear-Gaussian regression, agreement with devinterp on a small
trained model, determinism, divergence flags, parameter range errors at config time, and the
analyzer through the runner."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from handmade import adam_trained

from tdw.analyzers import llc as llc_analyzer
from tdw.analyzers.runner import checkpoint_view, run_analyzer
from tdw.analyzers.sgld import LLCEstimate, SGLDSettings, estimate_llc, resolve_nbeta
from tdw.config import ConfigError, resolve
from tdw.io.checkpoint import save_checkpoint
from tdw.io.h5 import load_artifact
from tdw.models.architecture import ModelConfig
from tdw.models.fastpath import last_logits
from tdw.params import resolve_params
from tdw.tasks import modular

ARCH = {"n_layers": 1, "d_model": 16, "n_heads": 2, "d_mlp": 32, "act": "relu", "layernorm": False, "unembed_equals": True}
P, FRAC, SEED = 11, 0.6, 0


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: on a shared, loaded machine extra threads only cost time."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def linear_gaussian(d: int, n: int, seed: int):
    """Loss 0.5 * mean (x.w - y)^2 over n rows in d dimensions, with its minimum w*."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen)
    y = x @ torch.randn(d, generator=gen) + torch.randn(n, generator=gen)
    w_star = torch.linalg.lstsq(x, y[:, None]).solution[:, 0]

    def loss(params, rows):
        xb, yb = (x, y) if rows is None else (x[rows], y[rows])
        return 0.5 * ((torch.einsum("bd,cd->cb", xb, params["w"]) - yb) ** 2).mean(1)

    return loss, {"w": w_star}


@pytest.mark.parametrize("d", [2, 8])
def test_linear_gaussian_llc_is_half_the_dimension(d):
    n = 500
    loss, center = linear_gaussian(d, n, seed=d)
    s = SGLDSettings(epsilon=1e-3, gamma=1.0, nbeta=resolve_nbeta("n", n, n), chains=8, draws=200, burn_in=30, seed=3)
    est = estimate_llc(loss, center, n, s, blowup=1e3)
    # the exact value for the localised tempered posterior: d/2 * nβ / (nβ + γ) (H = Cov(x) ~ I)
    expected = d / 2 * s.nbeta / (s.nbeta + s.gamma)
    assert not est.diverged.any()
    assert abs(est.llc_mean - expected) <= 2 * est.llc_std / math.sqrt(s.chains) + 0.05 * expected, (est.llc_mean, est.llc_std)
    assert est.loss_trace.shape == est.distance_trace.shape == (8, 200)
    assert np.all(est.mala_acceptance > 0.8)  # small steps on a quadratic: nearly every proposal accepted


def test_mala_acceptance_falls_with_the_step_size():
    loss, center = linear_gaussian(4, 500, seed=1)
    rates = []
    for eps in (1e-4, 3e-2):
        s = SGLDSettings(epsilon=eps, gamma=1.0, nbeta=80.0, chains=4, draws=100, seed=0)
        rates.append(estimate_llc(loss, center, 500, s, blowup=1e3).mala_acceptance.mean())
    assert rates[0] > 0.95 and rates[1] < 0.8 * rates[0]


def test_mean_and_std_leave_out_diverged_chains():
    est = LLCEstimate(
        init_loss=0.0,
        llc=np.array([1.0, 3.0, 1e9, np.nan]),
        loss_trace=np.zeros((4, 1)),
        distance_trace=np.zeros((4, 1)),
        mala_acceptance=np.ones(4),
        diverged=np.array([False, False, True, True]),
    )
    assert est.llc_mean == 2.0 and est.llc_std == pytest.approx(math.sqrt(2.0))


def trained_weights(steps: int = 200) -> dict[str, np.ndarray]:
    """A tiny model trained with Adam on its training split (full batch)."""
    cfg = ModelConfig(p=P, **ARCH)
    return adam_trained(cfg, steps, FRAC, SEED)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Two checkpoints of the tiny model (untrained and trained) with a run config."""
    from tdw.models.weights import init_params

    root = tmp_path_factory.mktemp("llc")
    config = {"task": {"operation": "add", "p": P}, "seed": SEED, "architecture": ARCH | {"p": P}, "train": {"train_frac": FRAC}}
    weights = [{k: v.numpy() for k, v in init_params(ModelConfig(p=P, **ARCH), 0).items()}, trained_weights()]
    paths = []
    for epoch, w in zip((0, 300), weights, strict=True):
        paths.append(root / f"checkpoint_epoch_{epoch:05d}.safetensors")
        save_checkpoint(paths[-1], w, {"epoch": epoch, "config": config})
    return paths


def params(**given):
    return resolve_params(llc_analyzer.PARAMS, given, "test")


def test_agrees_with_devinterp(checkpoints):
    from llc_devinterp import devinterp_llc

    view = checkpoint_view(checkpoints[1], None)
    chosen = params(epsilon=1e-4, gamma=1000.0, nbeta="n", chains=5, draws=100, burn_in=0, batch_size=18, seed=1)
    ours, s = llc_analyzer.estimate(view, chosen)
    ref = devinterp_llc(view.model, view.weights, view.split()[0], "add", s)
    assert not ours.diverged.any()
    assert ours.init_loss == pytest.approx(ref["init_loss"], rel=1e-4)  # 4 batches of 18 cover the 72 rows: both are L_n(w*)
    se = math.sqrt(ours.llc.var(ddof=1) / len(ours.llc) + ref["llc"].var(ddof=1) / len(ref["llc"]))
    assert abs(ours.llc_mean - ref["llc"].mean()) <= 2 * se, (ours.llc, ref["llc"])
    assert ours.llc_mean > 0.3  # a real signal, not two estimates of zero


def test_deterministic_for_a_seed(checkpoints):
    view = checkpoint_view(checkpoints[1], None)
    chosen = params(chains=3, draws=20, burn_in=5, batch_size=8)
    a, _ = llc_analyzer.estimate(view, chosen)
    b, _ = llc_analyzer.estimate(view, chosen)
    c, _ = llc_analyzer.estimate(view, chosen | {"seed": 1})
    np.testing.assert_array_equal(a.loss_trace, b.loss_trace)
    np.testing.assert_array_equal(a.distance_trace, b.distance_trace)
    np.testing.assert_array_equal(a.llc, b.llc)
    assert not np.array_equal(a.loss_trace, c.loss_trace)
    assert len(set(a.loss_trace[:, -1])) == 3  # the chains draw their own noise


def test_huge_step_is_flagged_as_diverged(checkpoints):
    view = checkpoint_view(checkpoints[1], None)
    est, _ = llc_analyzer.estimate(view, params(epsilon=1.0, chains=3, draws=10, burn_in=0))
    assert est.diverged.all() and math.isnan(est.llc_mean) and math.isnan(est.llc_std)


def test_nbeta_presets():
    assert resolve_nbeta("batch", 1000, 64) == pytest.approx(64 / math.log(64))
    assert resolve_nbeta("n", 1000, 64) == pytest.approx(1000 / math.log(1000))
    assert resolve_nbeta(3.5, 1000, 64) == 3.5
    s = llc_analyzer.settings(params(batch_size="full", nbeta="batch"), 66)
    assert s.batch_size == 0 and s.nbeta == pytest.approx(66 / math.log(66))  # the full batch is b = n
    assert llc_analyzer.settings(params(batch_size=500), 66).batch_size == 0  # larger than the split: full batch


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("epsilon", -1e-3, "0.0 < value <= 1.0"),
        ("epsilon", 0.0, "0.0 < value <= 1.0"),
        ("gamma", -1.0, "0.0 <= value"),
        ("nbeta", 0.0, "a preset 'batch'"),
        ("nbeta", "huge", "expected number | 'batch' | 'n'"),
        ("chains", 0, "1 <= value <= 1024"),
        ("chains", 5000, "1 <= value <= 1024"),
        ("draws", 0, "1 <= value"),
        ("burn_in", -1, "0 <= value"),
        ("steps_between_draws", 0, "1 <= value"),
        ("batch_size", -4, "0 or 'full'"),
    ],
)
def test_bad_parameters_name_analyzer_and_key_when_the_config_resolves(key, value, says):
    config = {"family": "modadd", "sweep": {"p": [13], "seed": [0]}, "analyzers": {"llc": {key: value}}}
    with pytest.raises(ConfigError) as info:
        resolve(config, "cfg.yaml")
    message = str(info.value)
    assert "cfg.yaml" in message and "analyzer 'llc'" in message and f"parameter {key!r}" in message and says in message


def test_a_family_without_a_training_loss_is_refused():
    from tdw.analyzers import check_family_analyzers
    from tdw.families import load_family

    spec = copy.deepcopy(load_family("modadd", "families").spec)  # the loaded family is cached: not edited in place
    spec["task"] = {"operation": "induction"}
    spec["analyzers"] = {"llc": {}}
    spec["figures"] = {}
    with pytest.raises(ConfigError, match=r"key 'analyzers\.llc': the analyzer supports tasks"):
        check_family_analyzers(spec, "family.json")


def test_runner_writes_the_artifact(checkpoints, tmp_path):
    out = tmp_path / "llc.h5"
    chosen = {"chains": 2, "draws": 6, "burn_in": 2, "steps_between_draws": 2, "batch_size": 16}
    run_analyzer("llc", chosen, checkpoints, None, out, {})
    art = load_artifact(out)
    assert list(art["epoch"]) == [0, 300] and list(art["draw"]) == [2, 4, 6, 8, 10, 12]
    assert art["loss_trace"].shape == art["distance_trace"].shape == (2, 2, 6)
    assert art["diverged"].dtype == bool and art["attrs"]["params"]["epsilon"] == 3e-5
    kept = np.where(art["diverged"], np.nan, art["llc"])
    np.testing.assert_allclose(art["llc_mean"], np.nanmean(kept, 1))  # over the chains that did not diverge
    np.testing.assert_array_equal(art["n_diverged"], art["diverged"].sum(1))
    assert np.all(art["distance_trace"][:, :, 0] > 0)  # the first draw follows the burn-in
    # the trained checkpoint's L_n(w*) is the cross-entropy of its logits on the training split
    view = checkpoint_view(checkpoints[1], None)
    train, _ = view.split()
    w = {k: torch.as_tensor(v) for k, v in view.weights.items()}
    logits = last_logits(w, view.model, torch.as_tensor(modular.tokens(P, train))).double()
    ce = torch.nn.functional.cross_entropy(logits, torch.as_tensor(modular.labels(P, train)))
    assert art["init_loss"][1] == pytest.approx(float(ce), rel=1e-6)


def test_a_failed_run_leaves_no_artifact(checkpoints, tmp_path):
    """A job that dies after some checkpoints (here: a checkpoint without its unembedding)
    writes nothing under the artifact's name: the rerun starts from nothing."""
    from tdw.io.checkpoint import read_metadata

    view = checkpoint_view(checkpoints[1], None)
    broken = tmp_path / "checkpoint_epoch_00200.safetensors"
    weights = {k: v for k, v in view.weights.items() if k != "unembed.W_U"}
    save_checkpoint(broken, weights, {"epoch": 200, "config": read_metadata(checkpoints[1])["config"]})
    out = tmp_path / "llc.h5"
    with pytest.raises(KeyError, match="unembed.W_U"):
        run_analyzer("llc", {"chains": 1, "draws": 2, "burn_in": 0}, [checkpoints[0], broken, checkpoints[1]], None, out, {})
    assert not out.exists() and not list(tmp_path.glob("*.h5*"))


def test_figure_plots_the_mean_and_marks_diverged_chains(checkpoints, tmp_path):
    from tdw.figures import builder
    from tdw.figures import params as figure_params
    from tdw.params import resolve_params as resolve

    out = tmp_path / "llc.h5"
    run_analyzer("llc", {"chains": 3, "draws": 4, "burn_in": 0, "epsilon": 1.0}, checkpoints[1:], None, out, {})
    run_analyzer("llc", {"chains": 3, "draws": 4, "burn_in": 0}, checkpoints[:1], None, tmp_path / "ok.h5", {})
    art, ok = load_artifact(out), load_artifact(tmp_path / "ok.h5")
    merged = {
        k: np.concatenate([ok[k], art[k]])
        for k in ("epoch", "llc_mean", "llc_std", "llc", "diverged", "mala_acceptance", "n_diverged")
    }
    fig = builder("llc")({"artifact": merged}, resolve(figure_params("llc"), {}, "llc"), "LLC")
    traces = {t.name: t for t in fig.data}
    assert list(traces["mean"].x) == [0, 300] and traces["mean"].y[0] == pytest.approx(ok["llc_mean"][0])
    assert math.isnan(traces["mean"].y[1])  # every chain diverged at epoch 300: no mean
    assert traces["diverged (3)"].marker.symbol == "x" and list(traces["diverged (3)"].x) == [300] * int(
        np.isfinite(art["llc"]).sum()
    )
    assert len(traces["chain"].x) == 3 and set(traces["chain"].x) == {0}


def test_calibrate_command_writes_the_grid(checkpoints, tmp_path):
    import shutil

    from tdw.pages.llc_calibrate import main

    variant = tmp_path / "results" / "modadd" / "p11_seed0_frac0.5"
    (variant / "checkpoints").mkdir(parents=True)
    shutil.copy(checkpoints[1], variant / "checkpoints")
    args = [str(variant), "--epoch", "300", "--eps", "1e-5,1e-4", "--nbeta", "n,20", "--chains", "2", "--draws", "5"]
    assert main([*args, "--burn-in", "0", "--batch-size", "18"]) == 0
    art = load_artifact(variant / "figures" / "llc_calibration_epoch_00300.h5")
    assert art["loss_trace"].shape == (2, 2, 2, 5) and list(art["epsilon"]) == [1e-5, 1e-4]
    assert art["nbeta_value"][0, 1] == 20.0 and art["nbeta_value"][0, 0] == pytest.approx(72 / math.log(72))
    view = checkpoint_view(checkpoints[1], None)
    one, _ = llc_analyzer.estimate(view, params(epsilon=1e-4, nbeta=20.0, chains=2, draws=5, burn_in=0, batch_size=18))
    np.testing.assert_array_equal(art["llc"][1, 1], one.llc)  # the grid's cell is the analyzer's estimate
    assert (variant / "figures" / "llc_calibration_epoch_00300.html").stat().st_size > 1000


@pytest.mark.slow
def test_llc_runs_through_the_workflow(root, tmp_path):
    """The analyzer in the DAG on the tiny config (p = 13, three checkpoints), its figure too."""
    from workflow_runs import run_snakemake

    from tdw.layout import VariantLayout

    files = VariantLayout(tmp_path / "results", "modadd", "p13_seed0_frac0.5")
    targets = [str(files.artifact("full", "llc")), str(files.figure("llc", "html"))]
    config = ["--config", f"results={tmp_path / 'results'}"]
    proc = run_snakemake(tmp_path, root / "tests/configs/tiny.yaml", "--cores", "1", *config, target_list=targets)
    assert proc.returncode == 0, proc.stderr[-3000:]
    art = load_artifact(files.artifact("full", "llc"))
    assert list(art["epoch"]) == [0, 5, 10] and art["loss_trace"].shape == (3, 4, 100)
    assert art["attrs"]["params"]["nbeta"] == "n" and np.all(art["nbeta_value"] == pytest.approx(84 / math.log(84)))


@pytest.mark.parametrize("rate", [1.0, 0.3])
def test_chain_logits_equal_the_fast_path_per_chain(rate):
    """The sampler's forward (chains as the batch axis of each matmul, scores as x · W_K q)
    against ``last_logits`` of each chain's own weights."""
    from tdw.models.weights import init_params

    cfg = ModelConfig(p=P, **ARCH, attention_rate=rate)
    gen = torch.Generator().manual_seed(5)
    chains = [{k: v + 0.3 * torch.randn(v.shape, generator=gen) for k, v in init_params(cfg, c).items()} for c in range(3)]
    stacked = {k: torch.stack([w[k] for w in chains]) for k in chains[0]}
    rows = torch.randint(0, P * P, (40,), generator=gen)
    a, b = rows // P, rows % P
    got = llc_analyzer.chain_logits(stacked, cfg, a, b)
    tokens = torch.stack([a, b, torch.full_like(a, P)], 1)
    want = torch.stack([last_logits(w, cfg, tokens) for w in chains])
    assert want.abs().max() > 0.5
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rate", [1.0, 0.3])
def test_hand_written_gradient_equals_autograd(rate):
    """``chain_loss_grad`` (the sampler's loss and gradient without autograd) against autograd
    through ``chain_logits`` and ``stacked_cross_entropy``, on rows that repeat tokens (a = b,
    a row twice), so that the embedding's gradient accumulates."""
    from tdw.models.weights import init_params
    from tdw.train.trainer import stacked_cross_entropy

    cfg = ModelConfig(p=P, **ARCH, attention_rate=rate)
    gen = torch.Generator().manual_seed(7)
    chains = [{k: v + 0.3 * torch.randn(v.shape, generator=gen) for k, v in init_params(cfg, c).items()} for c in range(3)]
    stacked = {k: torch.stack([w[k] for w in chains]) for k in chains[0]}
    assert set(stacked) == llc_analyzer.PAPER_SHAPE_NAMES
    a = torch.cat([torch.randint(0, P, (30,), generator=gen), torch.tensor([4, 4, 9])])
    b = torch.cat([torch.randint(0, P, (30,), generator=gen), torch.tensor([4, 4, 2])])
    labels = (a + b) % P
    leaves = {k: v.clone().requires_grad_(True) for k, v in stacked.items()}
    want_loss = stacked_cross_entropy(llc_analyzer.chain_logits(leaves, cfg, a, b), labels.expand(3, -1))
    want = dict(zip(leaves, torch.autograd.grad(want_loss.sum(), list(leaves.values())), strict=True))
    loss, grads = llc_analyzer.chain_loss_grad(stacked, cfg, a, b, labels)
    torch.testing.assert_close(loss, want_loss.detach(), rtol=1e-6, atol=1e-7)
    assert set(grads) == set(want)
    for name, g in want.items():
        assert g.abs().max() > 1e-3, name  # every weight gets a gradient here
        torch.testing.assert_close(grads[name], g, rtol=1e-4, atol=1e-6, msg=name)


def test_sampler_with_the_hand_written_gradient_matches_autograd(checkpoints):
    """The analyzer's estimate (``loss_grad``) against the same sampler on autograd through
    the same loss: the same noise and batches, so the traces agree to rounding."""
    from tdw.analyzers.sgld import estimate_llc

    view = checkpoint_view(checkpoints[1], None)
    loss, loss_grad, center, n = llc_analyzer.training_loss(view, "cpu")
    assert loss_grad is not None
    s = llc_analyzer.settings(params(draws=30, burn_in=10, batch_size=32), n)
    hand = estimate_llc(loss, center, n, s, blowup=math.log(P), loss_grad=loss_grad)
    auto = estimate_llc(loss, center, n, s, blowup=math.log(P))
    assert np.all(np.abs(hand.llc) > 0.1)
    np.testing.assert_allclose(hand.loss_trace, auto.loss_trace, rtol=1e-4)
    np.testing.assert_allclose(hand.llc, auto.llc, rtol=1e-3)
    np.testing.assert_allclose(hand.mala_acceptance, auto.mala_acceptance, rtol=1e-3, atol=1e-3)


def test_noise_drawn_ahead_in_a_thread_gives_the_same_numbers(checkpoints, monkeypatch):
    """The next step's noise drawn in a second thread during the step: the same generator and
    order of draws, so every trace is bit-identical to drawing in line. With two torch
    threads the noise thread takes one of them for the run (the matmuls run on one, as in
    line on one thread) and gives it back."""
    from tdw.analyzers import sgld
    from tdw.analyzers.sgld import estimate_llc

    modes = []  # (ahead, torch threads while the chains run) per estimate
    run_chains = sgld._run_chains
    monkeypatch.setattr(
        sgld, "_run_chains", lambda *a: modes.append((a[-1].pool is not None, torch.get_num_threads())) or run_chains(*a)
    )
    view = checkpoint_view(checkpoints[1], None)
    loss, loss_grad, center, n = llc_analyzer.training_loss(view, "cpu")
    s = llc_analyzer.settings(params(draws=20, burn_in=5, batch_size=32), n)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        ahead = estimate_llc(loss, center, n, s, blowup=math.log(P), loss_grad=loss_grad)  # the default on 2 threads
        assert torch.get_num_threads() == 2
        torch.set_num_threads(1)
        inline = estimate_llc(loss, center, n, s, blowup=math.log(P), loss_grad=loss_grad)  # the default on 1 thread
    finally:
        torch.set_num_threads(threads)
    assert modes == [(True, 1), (False, 1)]
    assert np.all(np.diff(ahead.loss_trace, axis=1) != 0)
    for field in ("loss_trace", "distance_trace", "llc", "mala_acceptance"):
        np.testing.assert_array_equal(getattr(ahead, field), getattr(inline, field), err_msg=field)
