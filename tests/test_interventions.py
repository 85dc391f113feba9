"""Magnitude pruning on hand-built weights, the pruning curve's end points (no pruning: the
model's own loss and accuracy; everything pruned: zero logits, ln(classes)), the weight-noise
loss increase against (sigma^2 / 2) tr H from the full autograd Hessian and from the
``sharpness`` analyzer's Hutchinson trace, and the figure."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from curvature_models import FRAC, SEED, P, flatten, full_hessian, model_config, reference_loss, write_checkpoints

from tdw.analyzers.curvature import flat_training_loss
from tdw.analyzers.interventions import PARAMS, is_pruned, magnitude_prune, noise_increase
from tdw.analyzers.runner import checkpoint_view, run_analyzer
from tdw.io.h5 import load_artifact
from tdw.params import ParamError, resolve_params
from tdw.tasks import modular


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_magnitude_pruning_ranks_every_weight_matrix_together_and_keeps_biases():
    weights = {
        "a.W_x": np.array([[3.0, -1.0], [0.5, 2.0]]),
        "a.b_x": np.array([0.1, -5.0]),
        "b.W_y": np.array([-0.2, 4.0]),
    }
    assert [k for k in weights if is_pruned(k)] == ["a.W_x", "b.W_y"]
    pruned, cut = magnitude_prune(weights, 0.5)  # 3 of the 6 matrix entries: |w| = 0.2, 0.5, 1
    np.testing.assert_array_equal(pruned["a.W_x"], [[3.0, 0.0], [0.0, 2.0]])
    np.testing.assert_array_equal(pruned["b.W_y"], [0.0, 4.0])
    np.testing.assert_array_equal(pruned["a.b_x"], weights["a.b_x"])
    assert cut == 1.0
    same, cut = magnitude_prune(weights, 0.0)
    assert cut == 0.0 and all(np.array_equal(same[k], weights[k]) for k in weights)
    none, cut = magnitude_prune({k: torch.as_tensor(v) for k, v in weights.items()}, 1.0)
    assert cut == 4.0 and not none["a.W_x"].any() and not none["b.W_y"].any()
    assert torch.equal(none["a.b_x"], torch.as_tensor(weights["a.b_x"]))


@pytest.fixture(scope="module", params=["transformer", "mlp"])
def tiny(request, tmp_path_factory):
    kind = request.param
    root = tmp_path_factory.mktemp(kind)
    paths = write_checkpoints(root, kind)
    out = root / "interventions.h5"
    run_analyzer("interventions", {"fractions": [0.0, 0.5, 1.0], "sigmas": [1e-6, 1e-5], "draws": 1600}, paths, None, out, {})
    return {"kind": kind, "paths": paths, "art": load_artifact(out), "root": root}


def test_pruning_end_points(tiny):
    art, cfg = tiny["art"], model_config(tiny["kind"])
    assert art["prune_loss"].shape == (2, 2, 3) and [s.decode() for s in art["split"]] == ["train", "test"]
    splits = modular.split(P, FRAC, SEED)
    for e, path in enumerate(tiny["paths"]):
        weights = checkpoint_view(path, None).weights
        for s, rows in enumerate(splits):
            loss = reference_loss(weights, tiny["kind"], rows)(flatten(weights))
            assert art["prune_loss"][e, s, 0] == pytest.approx(float(loss), rel=1e-12)
            from tdw.models.fastpath import last_logits

            w = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in weights.items()}
            logits = last_logits(w, cfg, torch.as_tensor(modular.tokens(P, rows)))
            acc = (logits.argmax(-1).numpy() == modular.labels(P, rows)).mean()
            assert art["prune_accuracy"][e, s, 0] == pytest.approx(acc)
            # everything pruned: zero logits over d_vocab_out classes; argmax of ties is class 0
            assert art["prune_loss"][e, s, 2] == pytest.approx(math.log(cfg.d_vocab_out), rel=1e-12)
            assert art["prune_accuracy"][e, s, 2] == pytest.approx((modular.labels(P, rows) == 0).mean())
        assert art["prune_loss"][e, 0, 0] == pytest.approx(art["loss"][e], rel=1e-12)
    assert np.all(art["prune_threshold"][:, 0] == 0) and np.all(art["prune_threshold"][:, 1] < art["prune_threshold"][:, 2])


def test_small_noise_raises_the_loss_by_half_sigma_squared_times_the_trace(tiny, tmp_path):
    """E[L(w + eps) - L(w)] = (sigma^2 / 2) tr H + O(sigma^4) for eps ~ N(0, sigma^2 I): the
    gradient term has mean zero (and cancels in each antithetic pair), so it holds anywhere.
    "Small" is below the margins of the ReLU pre-activations: the autograd Hessian is that of
    the linear piece the weights sit in, and noise that moves pre-activations across zero adds
    curvature it does not see (for the trained tiny transformer the increase is already 30 %
    below (sigma^2 / 2) tr H at sigma = 1e-4), hence sigma = 1e-6 and 1e-5 here."""
    art = tiny["art"]
    sharp = tmp_path / "sharpness.h5"
    run_analyzer("sharpness", {"k": 1, "probes": 200}, tiny["paths"], None, sharp, {})
    trace = load_artifact(sharp)
    for e, path in enumerate(tiny["paths"]):
        exact = np.trace(full_hessian(checkpoint_view(path, None).weights, tiny["kind"]))
        for i, sigma in enumerate((1e-6, 1e-5)):
            mean, se = art["noise_increase"][e, i], art["noise_stderr"][e, i]
            assert 0 < se < 0.25 * abs(mean)  # the check below is not vacuous
            assert abs(mean - sigma**2 / 2 * exact) < 4 * se
            combined = math.hypot(se, sigma**2 / 2 * trace["trace_stderr"][e])
            assert abs(mean - sigma**2 / 2 * trace["trace"][e]) < 4 * combined


def test_noise_is_the_same_draws_for_a_seed_and_zero_noise_changes_nothing(tiny):
    view = checkpoint_view(tiny["paths"][1], None)
    flat = flat_training_loss(view, "cpu", "float64")
    a, b = noise_increase(flat, [1e-2], 5, 7), noise_increase(flat, [1e-2], 5, 7)
    assert a[0][0] == b[0][0] and a[2] == pytest.approx(float(reference_loss(view.weights, tiny["kind"])(flat.center)), rel=1e-12)
    assert noise_increase(flat, [1e-300], 3, 0)[0][0] == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize(("key", "value"), [("fractions", [0.5, 1.5]), ("fractions", []), ("sigmas", [0.0]), ("draws", 1)])
def test_parameter_ranges(key, value):
    with pytest.raises(ParamError, match=key):
        resolve_params(PARAMS, {key: value}, "interventions")


def test_figure_shows_the_pruning_heat_map_and_the_noise_lines(tiny):
    from tdw.figures import builder
    from tdw.figures import params as figure_params

    art = tiny["art"]
    fig = builder("interventions")({"artifact": art}, resolve_params(figure_params("interventions"), {}, "fig"), "x")
    heat = fig.data[0]
    np.testing.assert_array_equal(np.asarray(heat.z), art["prune_accuracy"][:, 1].T)
    assert list(heat.y) == [0.0, 0.5, 1.0] and list(heat.x) == [0, 60]
    lines = {t.name: t for t in fig.data if t.name}
    np.testing.assert_array_equal(lines["σ = 1e-05"].y, art["noise_increase"][:, 1])
    params = resolve_params(figure_params("interventions"), {"split": "train", "metric": "loss"}, "fig")
    fig = builder("interventions")({"artifact": art}, params, "x")
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), art["prune_loss"][:, 0].T)


@pytest.mark.slow
def test_both_analyzers_run_through_the_workflow(root, tmp_path):
    """On request: a config that names them gets their artifacts and figures on the tiny config
    (p = 13, three checkpoints, the family's model)."""
    import yaml
    from workflow_runs import run_snakemake

    from tdw.layout import VariantLayout

    files = VariantLayout(tmp_path / "results", "modadd", "p13_seed0_frac0.5")
    names = ("sharpness", "interventions")
    targets = [str(files.artifact("full", n)) for n in names] + [str(files.figure(n, "html")) for n in names]
    tiny = yaml.safe_load((root / "tests/configs/tiny.yaml").read_text())
    path = tmp_path / "curvature.yaml"
    path.write_text(yaml.safe_dump(tiny | {"analyzers": ["embedding_frequencies", *names]}))
    proc = run_snakemake(tmp_path, path, "--cores", "1", "--config", f"results={tmp_path / 'results'}", target_list=targets)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sharp, inter = (load_artifact(files.artifact("full", n)) for n in names)
    assert list(sharp["epoch"]) == [0, 5, 10] and sharp["eigenvalues"].shape == (3, 3)
    assert np.all(np.diff(sharp["eigenvalues"], axis=1) <= 0) and np.isnan(sharp["eos_ratio"]).all()
    assert inter["prune_loss"].shape == (3, 2, 8) and inter["noise_increase"].shape == (3, 5)
    assert inter["prune_loss"][:, 0, -1] == pytest.approx(math.log(14))  # p + 1 output classes, zero logits
    assert all(files.figure(n, "html").stat().st_size > 10_000 for n in names)
