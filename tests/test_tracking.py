"""Measures tracked during training (``train.tracking``): each series against an independent
computation from the checkpoints at the tracked epochs, the weights bit-identical to a run
without tracking, a resumed run's series equal to an uninterrupted run's, the transitions
analyzer reading them, and bad settings refused at config time naming the key."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tdw.analyzers.dimensionality import METRICS
from tdw.config import ConfigError, TrainConfig, Variant, load_family, resolve
from tdw.io.checkpoint import load_weights
from tdw.io.h5 import open_h5
from tdw.io.history import read_tracking
from tdw.models.hooked import HookedModAdd
from tdw.tasks import modular as data

P, SEED, FRAC = 13, 0, 0.5
HOOKS = ["blocks.0.hook_resid_post", "blocks.{last}.mlp.hook_post"]
TRACK = {"every": 5, "hooks": HOOKS, "probe_rows": 64, "probe_seed": 3}
EPOCHS = (0, 10, 11, 20)


def train(out, epochs=EPOCHS, tracking=TRACK):
    from tdw.train.trainer import TrainJob, train_variant

    family = load_family("modadd")
    v = Variant(f"p{P}_seed{SEED}", P, SEED, FRAC, tuple(epochs))
    job = TrainJob("modadd", "add", family.model_config(P), TrainConfig(train_frac=FRAC, tracking=tracking), v, out)
    train_variant(job)
    return family.model_config(P)


def ckpt(root, epoch):
    return {
        k: torch.from_numpy(v)
        for k, v in load_weights(root / "checkpoints" / f"checkpoint_epoch_{epoch:05d}.safetensors").items()
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("tracking")
    cfg = train(base / "on")
    train(base / "off", tracking=None)
    return {"on": base / "on", "off": base / "off", "cfg": cfg, "base": base}


def test_tracking_changes_no_weight_and_off_is_as_before(runs):
    for epoch in EPOCHS:
        on, off = ckpt(runs["on"], epoch), ckpt(runs["off"], epoch)
        assert all(torch.equal(on[k], off[k]) for k in on), epoch
    assert read_tracking(runs["off"] / "history.h5") == {}
    with open_h5(runs["off"] / "history.h5") as fh:
        assert sorted(fh) == ["test_epoch", "test_loss", "train_epoch", "train_loss"]
    assert "tracking" not in json.loads((runs["off"] / "config.json").read_text())["train"]
    assert json.loads((runs["on"] / "config.json").read_text())["train"]["tracking"] == TRACK


def test_series_equal_independent_computations_at_the_checkpoints(runs):
    t = read_tracking(runs["on"] / "history.h5")
    assert t["track_epoch"].tolist() == [0, 5, 10, 15]  # every 5 epochs that take a step (20 is the last)
    at = t["track_epoch"].tolist().index(10)
    w10, w11 = ckpt(runs["on"], 10), ckpt(runs["on"], 11)
    names = t["track_param"].tolist()
    assert sorted(names) == sorted(w10)
    np.testing.assert_allclose(t["weight_norm"][at], [w10[k].double().norm().item() for k in names], rtol=1e-12)
    ratio = [(w11[k] - w10[k]).double().norm().item() / w10[k].double().norm().item() for k in names]
    np.testing.assert_allclose(t["update_ratio"][at], ratio, rtol=1e-6)

    # the gradient of the mean training cross-entropy through the hooked model (not the fast path)
    cfg = runs["cfg"]
    train_idx, _ = data.split(P, FRAC, SEED, "add")
    params = {k: v.clone().requires_grad_(True) for k, v in w10.items()}
    model = HookedModAdd.from_params(cfg, params)
    logits = model(torch.from_numpy(data.tokens(P, train_idx)))[:, -1]
    loss = F.cross_entropy(logits.double(), torch.from_numpy(data.labels(P, train_idx, "add")))
    grads = torch.autograd.grad(loss, list(model.parameters()))
    expected = np.sqrt(sum(g.double().pow(2).sum().item() for g in grads))
    assert t["grad_norm"][at] == pytest.approx(expected, rel=1e-5)

    # dimensionality of the probe batch: the same seeded rows, metrics from numpy's SVD
    rows = np.sort(np.random.default_rng(TRACK["probe_seed"]).choice(P * P, size=TRACK["probe_rows"], replace=False))
    _, cache = HookedModAdd.from_params(cfg, w10).run_with_cache(torch.from_numpy(data.tokens(P, rows)))
    assert t["track_hook"].tolist() == ["blocks.0.hook_resid_post", "blocks.0.mlp.hook_post"]
    for j, hook in enumerate(t["track_hook"]):
        x = cache[hook][:, -1].double().numpy()
        s = np.linalg.svd(x - x.mean(0), compute_uv=False)
        assert t["dim_participation_ratio"][at, j] == pytest.approx((s**2).sum() ** 2 / (s**4).sum(), rel=1e-6)
        assert t["dim_stable_rank"][at, j] == pytest.approx((s**2).sum() / s[0] ** 2, rel=1e-6)
    assert sorted(k[4:] for k in t if k.startswith("dim_")) == sorted(METRICS)


def test_a_resumed_run_tracks_as_an_uninterrupted_one(runs):
    longer = (*EPOCHS, 30)
    resumed = runs["base"] / "resumed"
    shutil.copytree(runs["on"], resumed)
    train(resumed, longer)  # resumes from the snapshot at epoch 20
    straight = runs["base"] / "straight"
    train(straight, longer)
    meta = json.loads((resumed / "metadata.json").read_text())
    assert meta["timings"]["resumed_from_epoch"] == 20
    a, b = read_tracking(resumed / "history.h5"), read_tracking(straight / "history.h5")
    assert a["track_epoch"].tolist() == [0, 5, 10, 15, 20, 25]
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_transitions_reads_the_tracked_series(runs):
    from tdw.analyzers.runner import run_analyzer
    from tdw.io.h5 import load_artifact

    root = runs["on"]
    out = root / "artifacts" / "transitions.h5"
    ckpts = [root / "checkpoints" / f"checkpoint_epoch_{e:05d}.safetensors" for e in EPOCHS]
    run_analyzer("transitions", {"window": 2}, ckpts, [None] * len(ckpts), out, {"variant": "t"}, history=root / "history.h5")
    art = load_artifact(out)
    t = read_tracking(root / "history.h5")
    assert art["tracked_epoch"].tolist() == t["track_epoch"].tolist()
    np.testing.assert_allclose(art["tracked_grad_norm"], t["grad_norm"])
    np.testing.assert_allclose(art["tracked_weight_norm"], np.sqrt((t["weight_norm"] ** 2).sum(1)))


BASE = {"family": "modadd", "sweep": {"p": [13], "seed": [0]}, "checkpoints": [0, 5, 10]}


@pytest.mark.parametrize(
    "tracking, family, needles",
    [
        (
            {"hooks": ["blocks.0.hook_resid_pots"]},
            "modadd",
            ["train.tracking.hooks[0]", "hook_resid_pots", "blocks.0.hook_resid_post"],
        ),
        ({"hooks": ["blocks.0.attn.hook_pattern"]}, "modadd", ["train.tracking.hooks[0]", "one vector per position"]),
        ({"measures": ["dimensionality"]}, "modadd", ["train.tracking.hooks", "at least one hook"]),
        ({"every": 0}, "modadd", ["train.tracking", "every"]),
        ({"measures": ["grad_nrom"]}, "modadd", ["train.tracking", "grad_nrom"]),
        ({"measures": ["grad_norm"]}, "induction", ["train.tracking", "full-batch", "induction"]),
    ],
)
def test_bad_tracking_is_refused_naming_the_key(tracking, family, needles):
    cfg = BASE | {"family": family, "train": {"tracking": tracking}}
    if family == "induction":
        cfg["sweep"] = {"p": [31], "seed": [0]}
    with pytest.raises(ConfigError) as info:
        resolve(cfg, "cfg.yaml")
    assert all(n in str(info.value) for n in needles + ["cfg.yaml"]), str(info.value)


def test_the_mlp_family_tracks_its_hooks():
    wb = resolve(BASE | {"family": "modadd_mlp", "train": {"tracking": {"hooks": ["mlp.hook_post"]}}}, "cfg.yaml")
    assert wb.variants[0].train.tracking == {"hooks": ["mlp.hook_post"]}


def test_switching_tracking_on_for_a_trained_variant_is_a_different_definition(runs):
    from tdw.workflow.identity import defining, differences

    off = json.loads((runs["off"] / "config.json").read_text())
    on = json.loads((runs["on"] / "config.json").read_text())
    assert [d[0] for d in differences(defining(off), defining(on))] == ["train.tracking"]


def test_the_transitions_figure_draws_the_tracked_curves(runs):
    from tdw.analyzers.runner import run_analyzer
    from tdw.figures import builder
    from tdw.io.h5 import load_artifact

    root = runs["on"]
    out = root / "artifacts" / "transitions_fig.h5"
    ckpts = [root / "checkpoints" / f"checkpoint_epoch_{e:05d}.safetensors" for e in EPOCHS]
    run_analyzer("transitions", {"window": 2}, ckpts, [None] * len(ckpts), out, {"variant": "t"}, history=root / "history.h5")
    art = load_artifact(out)
    fig = builder("transitions")({"artifact": art}, {"line_color": "#000", "width": 900, "height": 550}, "t")
    grad = next(t for t in fig.data if t.name == "gradient norm")
    assert list(grad.x) == art["tracked_epoch"].tolist()
    np.testing.assert_allclose(grad.y, np.log10(art["tracked_grad_norm"]))
