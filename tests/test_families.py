"""Families declared purely under families/: modsub and modadd_2layer resolve, offer only
analyzers that apply, and their analyzers run on their own models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from family_params import (
    CURVATURE_ANALYZERS,
    CURVATURE_FIGURES,
    LLC_CALIBRATION_ANALYZER,
    LLC_CALIBRATION_FIGURE,
    LLC_RESTRICTED_ANALYZER,
    LLC_RESTRICTED_FIGURE,
    LMC_ANALYZER,
    LMC_FIGURE,
    MODADD_ADDED_ANALYZERS,
    MODADD_ADDED_FIGURES,
    MODADD_ANALYZERS,
    MODADD_FIGURES,
    SIMILARITY_ANALYZERS,
    SIMILARITY_FIGURES,
    TINY_ANALYZERS,
    TINY_FIGURES,
)
from handmade import write_caches

from tdw.analyzers import check_family_analyzers, get
from tdw.analyzers.runner import run_analyzer
from tdw.config import ConfigError, load, load_family
from tdw.io.checkpoint import checkpoint_name, save_checkpoint
from tdw.io.h5 import load_artifact
from tdw.models.architecture import ModelConfig
from tdw.models.hooked import HookedModAdd
from tdw.models.weights import init_params


def test_families_offer_only_applicable_analyzers(root):
    sub, two = load_family("modsub", str(root / "families")), load_family("modadd_2layer", str(root / "families"))
    assert sub.operation == "sub" and "progress_measures" in sub.spec["analyzers"]
    assert "ablations" not in two.spec["analyzers"]
    bad = dict(sub.spec) | {"task": {"operation": "mul"}}
    with pytest.raises(ConfigError, match="supports tasks \\['add', 'sub'\\], not 'mul'"):
        check_family_analyzers(bad, "modsub")
    for name in ("modsub", "modadd_2layer"):
        wb = load(root / "tests" / "configs" / f"tiny_{name}.yaml", str(root / "families"))
        assert wb.family.name == name and list(wb.analyzers) == wb.family.default_analyzers


@pytest.mark.slow
@pytest.mark.parametrize("family", ["modsub", "modadd_2layer"])
def test_dry_run(root, family):
    snakemake = Path(sys.executable).with_name("snakemake")
    cmd = [str(snakemake), "-n", "--configfile", f"tests/configs/tiny_{family}.yaml", "--config", "results=/tmp/tdw_dry"]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "analyze" in proc.stdout + proc.stderr


def test_two_layer_analyzers(root, tmp_path):
    """A random 2-layer LayerNorm + GELU model: cached blocks.1.hook_resid_mid, finished by
    the tail, gives the same MLP activations as the torch forward; the family's analyzers run."""
    family = load_family("modadd_2layer", str(root / "families"))
    p = 11
    cfg = ModelConfig(p=p, **family.spec["architecture"])
    config = {"task": {"operation": "add", "p": p}, "seed": 0, "architecture": cfg.to_dict(), "train": {"train_frac": 0.3}}
    ckpts = []
    for e, seed in ((0, 0), (5, 1)):
        ckpts.append(tmp_path / checkpoint_name(e))
        weights = {k: v.numpy() for k, v in init_params(cfg, seed).items()}
        save_checkpoint(ckpts[-1], weights, {"epoch": e, "config": config})
    caches = write_caches(ckpts, tmp_path / "cache", spec=family.spec["cache"])
    for name, entry in family.spec["analyzers"].items():
        if not get(name).needs_history:  # no history here (transitions, essential_dynamics)
            cheap = {"chains": 1, "draws": 4, "burn_in": 1, "components": ["l1h0", "l1mlp"]}  # second-layer parts, few steps
            params = entry.get("params", {}) | (cheap if name in ("llc_restricted", "susceptibilities") else {})
            run_analyzer(name, params, ckpts, caches, tmp_path / f"{name}.h5", {})
    dims = load_artifact(tmp_path / "dimensionality.h5")
    assert [h.decode() for h in dims["hook"]][-1] == "blocks.1.mlp.hook_post"
    model = HookedModAdd.from_params(cfg, {k: torch.from_numpy(v) for k, v in weights.items()})
    a, b = np.divmod(np.arange(p * p), p)
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.tensor(np.stack([a, b, np.full_like(a, p)], 1)))
    grid = load_artifact(tmp_path / "neuron_activations.h5")
    sel = grid["neuron"]
    expected = cache["blocks.1.mlp.hook_post"][:, -1].numpy()[:, sel].T.reshape(len(sel), p, p)
    np.testing.assert_allclose(grid["grid"][-1], expected, atol=5e-3)


def test_subtraction_progress_measures(root, tmp_path):
    """progress_measures on a - b: a random modsub model's logits (torch forward) projected by
    explicit least squares onto cos/sin(w_k (a - b)) per class give the artifact's key share and
    restricted loss; the a + b directions give another share."""
    family = load_family("modsub", str(root / "families"))
    p, keys = 11, [2, 5]
    cfg = ModelConfig(p=p, **family.spec["architecture"])
    config = {"task": {"operation": "sub", "p": p}, "seed": 0, "architecture": cfg.to_dict(), "train": {"train_frac": 0.3}}
    weights = {k: v.numpy() for k, v in init_params(cfg, 3).items()}
    ckpt = tmp_path / checkpoint_name(0)
    save_checkpoint(ckpt, weights, {"epoch": 0, "config": config})
    caches = write_caches([ckpt], tmp_path / "cache", spec=family.spec["cache"])
    run_analyzer("progress_measures", {"key_frequencies": keys}, [ckpt], caches, tmp_path / "pm.h5", {})
    art = load_artifact(tmp_path / "pm.h5")
    model = HookedModAdd.from_params(cfg, {k: torch.from_numpy(v) for k, v in weights.items()})
    a, b = np.divmod(np.arange(p * p), p)
    with torch.no_grad():
        logits = model(torch.tensor(np.stack([a, b, np.full_like(a, p)], 1)))[:, -1, :p].double().numpy()
    labels = (a - b) % p

    def ce(z):
        z = z - z.max(1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(z)), labels]))

    def project(t):
        design = np.stack([f(2 * np.pi * k * t / p) for k in keys for f in (np.cos, np.sin)], 1)
        centred = logits - logits.mean(0)
        fit = design @ np.linalg.lstsq(design, centred, rcond=None)[0]
        return np.sum(fit**2) / np.sum(centred**2), ce(fit + logits.mean(0))

    share, restricted = project(a - b)
    assert art["logit_key_fraction"][0] == pytest.approx(share, rel=1e-4)
    assert art["restricted_loss"][0] == pytest.approx(restricted, rel=1e-4)
    wrong_share, _ = project(a + b)  # the addition directions: a share almost twice as large here
    assert not 0.67 < wrong_share / share < 1.5


def _without(table: dict, *names: str) -> dict:
    return {k: v for k, v in table.items() if k not in names}


RESOLVED = {
    "modadd": (
        MODADD_ANALYZERS
        | MODADD_ADDED_ANALYZERS
        | LLC_CALIBRATION_ANALYZER
        | LMC_ANALYZER
        | SIMILARITY_ANALYZERS
        | CURVATURE_ANALYZERS
        | LLC_RESTRICTED_ANALYZER,
        MODADD_FIGURES
        | MODADD_ADDED_FIGURES
        | LLC_CALIBRATION_FIGURE
        | LMC_FIGURE
        | SIMILARITY_FIGURES
        | CURVATURE_FIGURES
        | LLC_RESTRICTED_FIGURE,
    ),
    "modsub": (
        MODADD_ANALYZERS
        | MODADD_ADDED_ANALYZERS
        | LLC_CALIBRATION_ANALYZER
        | LMC_ANALYZER
        | SIMILARITY_ANALYZERS
        | CURVATURE_ANALYZERS
        | LLC_RESTRICTED_ANALYZER,
        MODADD_FIGURES
        | MODADD_ADDED_FIGURES
        | LLC_CALIBRATION_FIGURE
        | LMC_FIGURE
        | SIMILARITY_FIGURES
        | CURVATURE_FIGURES
        | LLC_RESTRICTED_FIGURE,
    ),
    "modadd_2layer": (
        _without(MODADD_ANALYZERS, "progress_measures", "ablations")
        | LLC_CALIBRATION_ANALYZER
        | LMC_ANALYZER
        | SIMILARITY_ANALYZERS
        | LLC_RESTRICTED_ANALYZER,
        _without(MODADD_FIGURES, "progress_losses", "progress_weights", "ablations")
        | LLC_CALIBRATION_FIGURE
        | LMC_FIGURE
        | SIMILARITY_FIGURES
        | LLC_RESTRICTED_FIGURE,
    ),
    "test_only_tiny": (TINY_ANALYZERS, TINY_FIGURES),
}


@pytest.mark.parametrize("name", sorted(RESOLVED))
def test_resolved_families_keep_their_parameters(root, name):
    """Declared defaults, ``extends`` and the families' overrides give each family exactly the
    parameters (and their order) its file stated in full before."""
    spec = load_family(name, str(root / "families")).spec
    analyzers, figures = RESOLVED[name]
    assert [(k, v["params"]) for k, v in spec["analyzers"].items()] == list(analyzers.items())
    assert [(k, {"source": v["source"], "params": v["params"]}) for k, v in spec["figures"].items()] == list(figures.items())
    full = ["full", "train", "test", "random"]
    probes = {"neuron_activations": ["full"], "neuron_clusters": ["full"], "progress_measures": ["full"], "ablations": ["full"]}
    probes["clock_pizza"] = ["full"]
    probes |= dict.fromkeys(["attention", "dimensionality", "geometry"], full)
    assert {k: v.get("probes") for k, v in spec["analyzers"].items()} == {k: probes.get(k) for k in analyzers}
    assert list(spec["probes"]) == full and spec["probes"]["random"] == {"kind": "random", "size": 2048, "seed": 0}
    assert spec["default_probe"] == "full" and spec["variant_name"] == "p{p}_seed{seed}"
    assert spec["task"] == {"operation": "sub" if name == "modsub" else "add"}


def test_resolved_architectures_and_caches(root):
    fams = {n: load_family(n, str(root / "families")).spec for n in RESOLVED}
    paper = {"n_layers": 1, "d_model": 128, "n_heads": 4, "d_mlp": 512, "act": "relu", "layernorm": False, "unembed_equals": True}
    assert fams["modadd"]["architecture"] == paper == fams["modsub"]["architecture"]
    assert fams["modadd_2layer"]["architecture"] == paper | {"n_layers": 2, "act": "gelu", "layernorm": True}
    assert fams["test_only_tiny"]["architecture"] == paper | {"d_model": 32, "d_mlp": 64}
    last = {"positions": "last", "dtype": "float32"}
    for name, block in (("modadd", 0), ("modsub", 0), ("modadd_2layer", 1), ("test_only_tiny", 0)):
        assert list(fams[name]["cache"].items()) == [
            ("blocks.0.attn.hook_pattern", last),
            (f"blocks.{block}.hook_resid_mid", last),
        ]


def test_every_declared_analyzer_parameter_is_in_the_docs(root):
    from tdw.analyzers import REGISTRY, get

    text = (root / "docs" / "ANALYZERS.md").read_text()
    table = text[text.index("| analyzer | parameter |") :]
    for name in REGISTRY:
        for param in get(name).params:
            assert f"`{param.name}`" in table, (name, param.name)
