"""End to end through Snakemake on a tiny config (plus both legacy fixtures): every output
opens and holds what it should; an up-to-date tree schedules nothing; a visual change
schedules only rendering; the workflow lints clean."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tdw.io.checkpoint import load_weights, read_metadata
from tdw.io.h5 import load_artifact, open_h5, read_attrs
from tdw.io.history import read_history
from tdw.io.variant import read_metadata_json, read_variant_config
from tdw.layout import RESULTS, VariantLayout
from tdw.models.architecture import ModelConfig

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
FAMILY = "modadd"

pytestmark = pytest.mark.slow


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--configfile", "config.yaml", *args]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def scheduled(workdir: Path, *args: str) -> dict[str, int]:
    """Rule -> job count of a dry run ({} when nothing is to be done)."""
    out = snakemake(workdir, "-n", *args)
    text = out.stdout + out.stderr
    if "Nothing to be done" in text:
        return {}
    table = text[text.index("Job stats:") :].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


def write_config(workdir: Path, legacy_dir: Path, **extra) -> None:
    cfg = {
        "family": "modadd",
        "sweep": {"p": [13], "seed": [0]},
        "train": {"train_frac": 0.5},
        "checkpoints": [0, {"from": 5, "to": 10, "every": 5}],
        "legacy": [
            {"name": "legacy_no_wd", "path": str(legacy_dir / "mod_addition_no_wd.pth"), "p": 113, "seed": 0, "train_frac": 0.3},
            {"name": "legacy_low_precision", "path": str(legacy_dir / "low_precision_mod_addition.pth"), "p": 113, "seed": 1},
        ],
    } | extra
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))


@pytest.fixture(scope="module")
def run(tmp_path_factory, legacy_dir):
    workdir = tmp_path_factory.mktemp("tiny")
    write_config(workdir, legacy_dir)
    snakemake(workdir, "--cores", "2")
    return workdir


def variant(workdir: Path, name: str) -> VariantLayout:
    return VariantLayout(workdir / RESULTS, FAMILY, name)


def test_trained_variant_outputs(run):
    files = variant(run, "p13_seed0_frac0.5")
    meta = read_metadata_json(files.metadata)
    assert [c["epoch"] for c in meta["checkpoints"]] == [0, 5, 10]
    assert [c["index"] for c in meta["checkpoints"]] == [0, 1, 2]
    assert meta["provenance"]["packages"]["torch"] and meta["provenance"]["git_commit"]
    assert meta["timings"]["ms_per_epoch"] > 0
    cfg = read_variant_config(files.config)
    assert cfg["task"] == {"operation": "add", "p": 13} and cfg["train"]["train_frac"] == 0.5
    for entry in meta["checkpoints"]:
        path = files.dir / entry["file"]
        ck_meta = read_metadata(path)
        assert ck_meta["epoch"] == entry["epoch"] and ck_meta["config"]["seed"] == 0
        assert ck_meta["provenance"]["git_commit"] == meta["provenance"]["git_commit"]
        assert load_weights(path)["embed.W_E"].shape == (14, 128)
    hist = read_history(files.history)
    assert len(hist["train_loss"]) == 11 and hist["train_epoch"][-1] == 10
    # warm-up: the first step has learning rate 0, so epochs 0 and 1 have the same loss
    assert hist["train_loss"][0] == hist["train_loss"][1]
    assert hist["train_loss"][10] < hist["train_loss"][1]
    # the recorded losses are those of the checkpoints: recompute with the hooked full forward
    import torch

    from tdw.io.checkpoint import load_torch
    from tdw.models.hooked import HookedModAdd
    from tdw.tasks import modular as data

    model = HookedModAdd(ModelConfig(**cfg["architecture"]))
    train, test = data.split(13, 0.5, 0)
    for epoch in (0, 10):
        model.load_state_dict(load_torch(files.checkpoint(epoch)), strict=False)
        with torch.no_grad():
            for split, key in ((train, "train_loss"), (test, "test_loss")):
                logits = model(torch.from_numpy(data.tokens(13, split)))[:, -1].double()
                loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(data.labels(13, split))).item()
                np.testing.assert_allclose(hist[key][epoch], loss, rtol=1e-5)


def test_caches_hold_what_the_family_asks(run):
    for epoch in (0, 5, 10):
        path = variant(run, "p13_seed0_frac0.5").cache("full", epoch)
        with open_h5(path) as fh:
            attrs = read_attrs(fh)
            assert attrs["epoch"] == epoch and attrs["probe"] == "full"
            assert attrs["checkpoint"].endswith(f"checkpoint_epoch_{epoch:05d}.safetensors")
            assert fh["blocks.0.hook_resid_mid"].shape == (169, 128)
            assert fh["blocks.0.attn.hook_pattern"].attrs["dims"] == "batch head key_pos"
            np.testing.assert_allclose(fh["blocks.0.attn.hook_pattern"][()].sum(-1), 1.0, rtol=1e-5)
            assert all("dims" in fh[name].attrs for name in fh)


def test_artifact_has_an_epoch_axis_and_loads_in_one_line(run):
    art = load_artifact(variant(run, "p13_seed0_frac0.5").artifact("full", "embedding_frequencies"))
    assert art["epoch"].tolist() == [0, 5, 10]
    assert art["frequency_norm"].shape == (3, 6) and art["component_norm"].shape == (3, 13)
    assert art["attrs"]["params"] == {"dominant_fraction": 0.3}


@pytest.mark.parametrize("name", ["p13_seed0_frac0.5", "legacy_no_wd", "legacy_low_precision"])
def test_figures_and_report(run, name):
    files = variant(run, name)
    for fig in ("loss_curves", "embedding_frequencies"):
        html = files.figure(fig, "html").read_text()
        assert "plotly" in html.lower() and name in html
        assert files.figure(fig, "png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        svg = files.figure(fig, "svg").read_text()
        assert svg.lstrip().startswith("<svg") and "</svg>" in svg
    report = files.report("default").read_text()
    # one section per view: every figure the config renders for this variant
    assert report.count("<h2>") == len(list(files.folder("figures").glob("*.html"))) >= 2
    assert f"Training dynamics: {name}" in report


def test_legacy_variants_flow_through_the_same_rules(run):
    art = load_artifact(variant(run, "legacy_low_precision").artifact("full", "embedding_frequencies"))
    assert art["epoch"].tolist() == [49999]
    assert len(art["key_frequencies"]) >= 3  # a grokked model: a few dominant frequencies
    meta = read_metadata_json(variant(run, "legacy_no_wd").metadata)
    assert meta["source"] == "legacy" and meta["final"]["epoch"] == 4999


def test_up_to_date_tree_schedules_nothing(run):
    assert scheduled(run) == {}


def test_touching_every_source_file_schedules_nothing(run):
    """What a git checkout does to unchanged files: content, not mtimes, decides."""
    for path in [*ROOT.glob("src/tdw/**/*.py"), *ROOT.glob("workflow/scripts/*.py"), *ROOT.glob("families/**/*.json")]:
        os.utime(path)
    assert scheduled(run) == {}


def test_visual_parameter_change_schedules_only_rendering(run, legacy_dir):
    write_config(run, legacy_dir, figures={"loss_curves": {"test_color": "#000000"}})
    try:
        jobs = scheduled(run)
        # the figure's page per variant, and each variant's static images (one browser session)
        assert jobs.get("render") == 3 and jobs.get("static_modadd") == 3, jobs
        assert set(jobs) <= {"render", "static_modadd", "report", "compare", "all"}, jobs
    finally:
        write_config(run, legacy_dir)
    assert scheduled(run) == {}


def test_probe_change_never_retrains(run, legacy_dir):
    """Another probe means new caches, analyses and views; training is never scheduled."""
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["probe"] = "train"
    cfg["analyzers"] = ["embedding_frequencies", "attention"]  # analyzers that accept a subset
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    try:
        jobs = scheduled(run)
        assert jobs["analyze"] == 6 and not {"train"} & set(jobs), jobs
        assert not any(rule.startswith("import_legacy") for rule in jobs), jobs
    finally:
        write_config(run, legacy_dir)


def test_lint_is_clean(run):
    out = snakemake(run, "--lint")
    assert "Congratulations, your workflow is in a good condition!" in out.stdout + out.stderr


def test_bad_config_stops_before_any_job(run, legacy_dir):
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["sweep"]["p"] = [15]
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    try:
        out = snakemake(run, "--cores", "1", check=False)
        assert out.returncode != 0
        assert "config.yaml: key 'sweep.p': 15 is not a prime" in out.stderr
        assert not variant(run, "p15_seed0").dir.exists()
    finally:
        write_config(run, legacy_dir)


def test_corrupt_cache_is_named_and_regenerated(run):
    cache = variant(run, "p13_seed0_frac0.5").cache("full", 5)
    good = cache.read_bytes()
    cache.write_bytes(good[: len(good) // 3])
    from tdw.io.checkpoint import CorruptFileError

    with pytest.raises(CorruptFileError, match="epoch_00005.h5"):
        with open_h5(cache):
            pass
    cache.unlink()  # what the error message tells the user to do
    snakemake(run, "--cores", "2")
    with open_h5(cache) as fh:
        assert fh["blocks.0.hook_resid_mid"].shape == (169, 128)


def test_batched_seeds_through_the_workflow_equal_single_training(run, tmp_path, legacy_dir):
    """`batch_seeds: true` trains p = 13 seeds 0 and 1 in one job; seed 0's checkpoints are
    bit-identical to those of the single-variant run above."""
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg.update(sweep={"p": [13], "seed": [0, 1]}, batch_seeds=True, legacy=[])
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    jobs = scheduled(tmp_path)
    assert jobs["train_batch_p13_frac0_5_seeds0_1"] == 1 and "train" not in jobs
    snakemake(tmp_path, "--cores", "2", str(VariantLayout(RESULTS, FAMILY, "p13_seed0_frac0.5").metadata))
    for epoch in (0, 5, 10):
        a = load_weights(variant(run, "p13_seed0_frac0.5").checkpoint(epoch))
        b = load_weights(variant(tmp_path, "p13_seed0_frac0.5").checkpoint(epoch))
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    meta = read_metadata_json(variant(tmp_path, "p13_seed1_frac0.5").metadata)
    assert meta["timings"]["trained_together"] == ["p13_seed0_frac0.5", "p13_seed1_frac0.5"]
