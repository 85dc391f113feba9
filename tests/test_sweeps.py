"""Sweeps over any name the family declares sweepable: the product, include and exclude,
variant names, each variant's own recipe, architecture, data seed and schedule, rule
planning, and the errors a bad sweep raises while the DAG is built."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
import yaml
from workflow_runs import job_counts, run_snakemake

from tdw.analyzers.base import CheckpointView
from tdw.config import ConfigError, TrainConfig, load, load_family, resolve
from tdw.layout import RESULTS, VariantLayout
from tdw.tasks import modular
from tdw.train.trainer import TrainJob, _split_tensors
from tdw.workflow import plan
from tdw.workflow.resources import TRAIN_MEM_MB, train_memory_mb

BASE = {"family": "modadd", "train": {"train_frac": 0.3, "weight_decay": 1.0}, "checkpoints": [0, 5, 10]}


def wb_of(sweep, families_dir="families", **extra):
    return resolve(BASE | {"sweep": sweep} | extra, "cfg.yaml", families_dir)


def error_of(sweep, families_dir="families", **extra):
    with pytest.raises(ConfigError) as info:
        wb_of(sweep, families_dir, **extra)
    return str(info.value)


def test_sweeping_p_and_seed_tags_the_configs_recipe(root):
    """The default config sweeps p and seed; its train fraction 0.5 differs from the
    family's default (0.3): every name says so."""
    wb = load(root / "config" / "config.yaml", str(root / "families"))
    family = load_family("modadd", str(root / "families"))
    assert [(v.name, v.p, v.seed, v.data_seed) for v in wb.variants] == [
        ("p113_seed0_frac0.5", 113, 0, 0),
        ("p113_seed1_frac0.5", 113, 1, 1),
    ]
    for v in wb.variants:
        assert v.train == wb.train and v.train_frac == 0.5 and v.tags == (("train_frac", 0.5),)
        assert v.model == family.model_config(113)


def test_product_names_and_per_variant_recipes():
    wb = wb_of({"p": [13], "weight_decay": [0.3, 1.0], "train_frac": [0.3, 0.5], "seed": [0]})
    got = [(v.name, v.train.weight_decay, v.train.train_frac, v.train_frac) for v in wb.variants]
    assert got == [  # p outermost, then train_frac, weight_decay, ..., seeds innermost
        ("p13_seed0_wd0.3", 0.3, 0.3, 0.3),
        ("p13_seed0", 1.0, 0.3, 0.3),
        ("p13_seed0_wd0.3_frac0.5", 0.3, 0.5, 0.5),
        ("p13_seed0_frac0.5", 1.0, 0.5, 0.5),
    ]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+", v.name) for v in wb.variants)
    # every other field of the recipe is the config's
    assert {(v.train.lr, v.train.betas, v.train.warmup_steps) for v in wb.variants} == {(1e-3, (0.9, 0.98), 10)}


def test_architecture_betas_lr_and_warmup_sweeps():
    wb = wb_of(
        {"p": [13], "d_model": [64], "n_heads": [2, 4], "betas": [[0.9, 0.98], [0.9, 0.99]], "lr": [0.003], "warmup_steps": [5]}
    )
    names = [v.name for v in wb.variants]
    assert names == [
        "p13_seed0_lr0.003_warmup5_dmodel64_heads2",
        "p13_seed0_lr0.003_warmup5_dmodel64",
        "p13_seed0_lr0.003_warmup5_betas0.9-0.99_dmodel64_heads2",
        "p13_seed0_lr0.003_warmup5_betas0.9-0.99_dmodel64",
    ]
    v = wb.variant("p13_seed0_lr0.003_warmup5_betas0.9-0.99_dmodel64_heads2")
    assert (v.model.d_model, v.model.n_heads, v.model.d_mlp, v.model.d_head) == (64, 2, 512, 32)
    assert (v.train.lr, v.train.betas, v.train.warmup_steps) == (0.003, (0.9, 0.99), 5)


def test_include_adds_and_exclude_removes():
    sweep = {
        "p": [13],
        "weight_decay": [0.3, 1.0],
        "train_frac": [0.3, 0.5],
        "exclude": [{"weight_decay": 0.3, "train_frac": 0.5}],
        "include": [{"p": 17, "weight_decay": 3.0, "seed": 2}, {"p": 13}],  # the second is already there
    }
    names = [v.name for v in wb_of(sweep).variants]
    assert names == ["p13_seed0_wd0.3", "p13_seed0", "p13_seed0_frac0.5", "p17_seed2_wd3"]


def test_data_seed_drives_the_split_and_the_seed_the_init():
    wb = wb_of({"p": [13], "seed": [0], "data_seed": [0, 5]})
    same, other = wb.variants
    assert (same.name, same.data_seed, other.name, other.data_seed) == ("p13_seed0", 0, "p13_seed0_dseed5", 5)
    job = TrainJob("modadd", "add", other.model, other.train, other, RESULTS)
    cfg = job.run_config()
    assert (cfg["seed"], cfg["data_seed"]) == (0, 5)
    x_train, y_train, x_test, _ = _split_tensors([job], torch.device("cpu"))
    train_idx, test_idx = modular.split(13, 0.3, 5)
    assert not np.array_equal(train_idx, modular.split(13, 0.3, 0)[0])
    assert np.array_equal(x_train[0].numpy(), modular.tokens(13, train_idx))
    assert np.array_equal(y_train[0].numpy(), (train_idx // 13 + train_idx % 13) % 13)
    assert x_test.shape[1] == len(test_idx) == 169 - int(0.3 * 169)
    # the analyzers' view of the split reads the stored data seed; an older config without one uses the seed
    assert np.array_equal(CheckpointView(0, other.model, RESULTS, config=cfg).split()[0], train_idx)
    old = {k: v for k, v in cfg.items() if k != "data_seed"}
    assert np.array_equal(CheckpointView(0, other.model, RESULTS, config=old).split()[0], modular.split(13, 0.3, 0)[0])


def test_training_key_without_a_data_seed_is_the_key_from_before_data_seeds():
    v = wb_of({"p": [13], "seed": [1]}).variants[0]
    job = TrainJob("modadd", "add", v.model, v.train, v, RESULTS, code_hash="abc")
    cfg = job.run_config()
    assert cfg["data_seed"] == 1
    before = {k: cfg[k] for k in ("family", "task", "seed", "architecture", "train")}
    assert job.key() == hashlib.sha256((json.dumps(before, sort_keys=True) + "abc").encode()).hexdigest()[:16]
    moved = TrainJob("modadd", "add", v.model, v.train, type(v)(**{**v.__dict__, "data_seed": 2}), RESULTS, code_hash="abc")
    assert moved.key() != job.key()


def test_train_params_carry_each_variants_recipe(root):
    """What rules/common.smk hands a train job, read back the way the trainer reads it."""
    wb = wb_of({"p": [13], "weight_decay": [0.3], "d_mlp": [256], "data_seed": [4]})
    v = wb.variants[0]
    job = TrainJob.from_params(
        {"family": "modadd", "operation": "add", "model": v.model.to_dict(), "train": v.train.to_dict(),
         "variant": {"name": v.name, "p": 13, "seed": 0, "train_frac": 0.3, "epochs": [0, 5], "data_seed": 4}},
        RESULTS, "",
    )  # fmt: skip
    assert job.train == TrainConfig(weight_decay=0.3) and job.model.d_mlp == 256 and job.variant.data_seed == 4
    assert v.name == "p13_seed0_wd0.3_dmlp256_dseed4"


def test_seed_batches_stack_what_shares_shapes():
    # the stacked trainer gives each model its own seed, split and optimizer settings: one batch
    # per prime holds both weight decays and both seeds
    wb = wb_of({"p": [13, 17], "weight_decay": [0.3, 1.0], "seed": [0, 1]}, batch_seeds=True)
    batches = plan.seed_batches(wb)
    assert [(b.name, [v.name for v in b.variants]) for b in batches] == [
        ("train_batch_p13_4models", ["p13_seed0_wd0.3", "p13_seed1_wd0.3", "p13_seed0", "p13_seed1"]),
        ("train_batch_p17_4models", ["p17_seed0_wd0.3", "p17_seed1_wd0.3", "p17_seed0", "p17_seed1"]),
    ]
    # a tag all members share names the batch; seeds alone name it by its seeds
    wb = wb_of({"p": [13], "weight_decay": [0.3], "seed": [0, 1]}, batch_seeds=True)
    assert [b.name for b in plan.seed_batches(wb)] == ["train_batch_p13_wd0_3_seeds0_1"]
    # the data seed may differ within a batch (each model has its own split), as the seed does
    wb = wb_of({"p": [13], "seed": [0, 1], "data_seed": [7]}, batch_seeds=True)
    assert [b.name for b in plan.seed_batches(wb)] == ["train_batch_p13_seeds0_1"]
    # shapes that differ (the width) cannot stack: one variant per width, nothing to batch
    assert plan.seed_batches(wb_of({"p": [13], "d_mlp": [64, 128]}, batch_seeds=True)) == []
    # neither can two schedules
    rules = [{"when": {"weight_decay": 0.3}, "schedule": [0, 5]}, {"schedule": [0, 4]}]
    assert plan.seed_batches(wb_of({"p": [13], "weight_decay": [0.3, 1.0]}, batch_seeds=True, checkpoints=rules)) == []


def test_per_variant_schedules_give_a_rule_group_each():
    rules = [{"when": {"weight_decay": 0.3}, "schedule": [0, {"from": 5, "to": 15, "every": 5}]}, {"schedule": [0, 4]}]
    wb = wb_of({"p": [13], "weight_decay": [0.3, 1.0], "seed": [0, 1]}, checkpoints=rules)
    assert {v.name: v.epochs for v in wb.variants} == {
        "p13_seed0_wd0.3": (0, 5, 10, 15),
        "p13_seed1_wd0.3": (0, 5, 10, 15),
        "p13_seed0": (0, 4),
        "p13_seed1": (0, 4),
    }
    classes = plan.epoch_classes(wb)
    assert [(c.name, c.epochs, c.variants) for c in classes] == [
        ("trained", (0, 5, 10, 15), ("p13_seed0_wd0.3", "p13_seed1_wd0.3")),
        ("trained_2", (0, 4), ("p13_seed0", "p13_seed1")),
    ]


@pytest.mark.parametrize(
    "sweep,extra,needles",
    [
        ({"p": [13], "weight_decay": 0.3}, {}, ["cfg.yaml", "'sweep.weight_decay'", "0.3 is not of type 'array'"]),
        ({"p": [13], "lr": ["fast"]}, {}, ["'sweep.lr.0'", "'fast' is not of type 'number'"]),
        ({"p": [13], "betas": [0.9]}, {}, ["'sweep.betas.0'", "0.9 is not of type 'array'"]),
        ({"p": [13], "dropout": [0.1]}, {}, ["'sweep'", "'dropout'", "allowed keys"]),
        ({"p": [13], "d_model": [100], "n_heads": [3]}, {}, ["'sweep'", "d_model 100 is not divisible by n_heads 3"]),
        ({"p": [3], "train_frac": [0.1]}, {}, ["'sweep.train_frac'", "p = 3 with train_frac 0.1", "0 train and 9 test"]),
        ({"p": [13], "include": [{"p": 13, "wd": 0.3}]}, {}, ["'sweep.include.0'", "'wd'", "allowed keys"]),
        ({"p": [13], "include": [{"seed": 3}]}, {}, ["'sweep.include.0'", "gives no 'p'"]),
        ({"p": [13], "include": [{"p": 15}]}, {}, ["'sweep.p'", "15 is not a prime"]),
        ({"p": [13], "weight_decay": [0.3, 1.0], "exclude": [{"weight_decay": 3.0}]}, {}, ["'sweep.exclude.0'", "matches no"]),
        ({"p": [13]}, {"checkpoints": [{"when": {"lr": 0.5}, "schedule": [0]}, {"schedule": [0, 1]}]}, ["'checkpoints.0.when'"]),
        ({"p": [13], "weight_decay": [0.3, 1.0]}, {"checkpoints": [{"when": {"weight_decay": 0.3}, "schedule": [0]}]},
         ["'checkpoints'", "weight_decay: 1", "matches no rule"]),
        ({"p": [13]}, {"checkpoints": [0, {"schedule": [0, 1]}]}, ["'checkpoints.0'", "either a list of epochs"]),
        ({"p": [13]}, {"checkpoints": [{"schedule": [5, 2]}]}, ["'checkpoints.0.schedule'", "2 is out of order"]),
    ],
)  # fmt: skip
def test_bad_sweeps_are_refused_naming_key_and_value(sweep, extra, needles):
    msg = error_of(sweep, **extra)
    for needle in needles:
        assert needle in msg, (needle, msg)


def test_wide_variants_are_sized_with_their_own_width():
    wide = 16384
    family = load_family("modadd", "families")
    cfg = family.model_config(113)
    n_train = int(0.9 * 113**2)
    assert train_memory_mb(cfg, n_train, 113**2 - n_train) < TRAIN_MEM_MB  # the family's width fits
    assert train_memory_mb(replace(cfg, d_mlp=wide), n_train, 113**2 - n_train) > TRAIN_MEM_MB
    wb_of({"p": [113], "train_frac": [0.9]})
    msg = error_of({"p": [113], "train_frac": [0.9], "d_mlp": [512, wide]})
    assert "p = 113 with train_frac 0.9" in msg and f"d_mlp {wide}" in msg and "p113_seed0_frac0.9_dmlp16384" in msg


@pytest.fixture
def families_copy(tmp_path, root):
    dest = tmp_path / "families"
    shutil.copytree(root / "families", dest)
    return dest


def test_a_name_the_family_does_not_declare_sweepable_is_refused(families_copy):
    spec = json.loads((families_copy / "modsub" / "family.json").read_text())
    (families_copy / "modsub" / "family.json").write_text(json.dumps(spec | {"sweepable": ["p", "seed"]}))
    ok = resolve({"family": "modsub", "sweep": {"p": [13], "seed": [0, 1]}}, "cfg.yaml", str(families_copy))
    assert [v.name for v in ok.variants] == ["p13_seed0", "p13_seed1"]
    with pytest.raises(ConfigError) as info:
        resolve({"family": "modsub", "sweep": {"p": [13], "lr": [0.01]}}, "cfg.yaml", str(families_copy))
    assert "'sweep.lr'" in str(info.value)
    assert "not a name family modsub declares sweepable" in str(info.value) and "['p', 'seed']" in str(info.value)
    # modsub extends modadd: its declaration is modadd's
    assert load_family("modsub", "families").spec["sweepable"] == load_family("modadd", "families").spec["sweepable"]


def test_colliding_names_are_refused_naming_both_combinations(families_copy):
    spec = json.loads((families_copy / "modadd" / "family.json").read_text())
    (families_copy / "modadd" / "family.json").write_text(json.dumps(spec | {"variant_name": "p{p}"}))
    msg = error_of({"p": [13], "seed": [0, 1]}, str(families_copy))
    assert "'sweep'" in msg and "both give variant name 'p13'" in msg
    assert "{p: 13, seed: 0," in msg and "{p: 13, seed: 1," in msg


def test_a_tags_placeholder_places_the_tags(families_copy):
    spec = json.loads((families_copy / "modadd" / "family.json").read_text())
    (families_copy / "modadd" / "family.json").write_text(json.dumps(spec | {"variant_name": "p{p}{tags}_seed{seed}"}))
    wb = wb_of({"p": [113], "weight_decay": [0.3], "train_frac": [0.4], "seed": [0]}, str(families_copy))
    assert [v.name for v in wb.variants] == ["p113_wd0.3_frac0.4_seed0"]


def test_shipped_sweep_config_resolves(root):
    wb = load(root / "config" / "sweep_wd_frac.yaml", str(root / "families"))
    assert {(v.p, v.seed) for v in wb.variants} == {(59, 0)}
    got = {(v.train.weight_decay, v.train.train_frac) for v in wb.variants}
    assert got == {(wd, f) for wd in (0.3, 1.0, 3.0) for f in (0.3, 0.5, 0.7)} and len(wb.variants) == 9


def _write(workdir, sweep, checkpoints):
    config = {"family": "modadd", "sweep": sweep, "train": {"train_frac": 0.5}, "checkpoints": checkpoints}
    config["analyzers"] = ["embedding_frequencies"]
    path = workdir / "sweep.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _caches(workdir, path):
    """Every variant's checkpoints and forward-pass caches (probe full)."""
    out = []
    for v in load(path, "families").variants:
        files = VariantLayout(RESULTS, "modadd", v.name)
        out += [str(files.checkpoint(e)) for e in v.epochs] + [str(files.cache("full", e)) for e in v.epochs]
    return out


@pytest.mark.slow
def test_two_schedules_plan_their_own_checkpoint_files(tmp_path):
    rules = [{"when": {"weight_decay": 0.3}, "schedule": [0, 6]}, {"schedule": [0, 4, 8]}]
    path = _write(tmp_path, {"p": [13], "weight_decay": [0.3, 1.0]}, rules)
    run = run_snakemake(tmp_path, path, "-n", target_list=_caches(tmp_path, path))
    assert run.returncode == 0, run.stderr + run.stdout
    counts = job_counts(run.stdout + run.stderr)
    assert counts == {"train": 1, "train_2": 1, "forward_cache_trained": 1, "forward_cache_trained_2": 1}
    outputs = "\n".join(line for line in (run.stdout + run.stderr).splitlines() if line.strip().startswith("output:"))
    planned = set(re.findall(r"results/modadd/[^\s,]+\.safetensors", outputs))
    want = {f"results/modadd/p13_seed0_wd0.3_frac0.5/checkpoints/{VariantLayout.at(tmp_path).checkpoint(e).name}" for e in (0, 6)}
    want |= {f"results/modadd/p13_seed0_frac0.5/checkpoints/{VariantLayout.at(tmp_path).checkpoint(e).name}" for e in (0, 4, 8)}
    assert planned == want


@pytest.mark.slow
def test_adding_a_value_trains_only_the_new_variant(tmp_path):
    first = _write(tmp_path, {"p": [13], "weight_decay": [1.0]}, [0, 5, 10])
    run = run_snakemake(tmp_path, first, "--cores", "1", target_list=_caches(tmp_path, first))
    assert run.returncode == 0, run.stderr
    old = VariantLayout(tmp_path / RESULTS, "modadd", "p13_seed0_frac0.5")
    before = {p: p.stat().st_mtime_ns for p in old.dir.rglob("*") if p.is_file()}
    assert old.checkpoint(10) in before
    second = _write(tmp_path, {"p": [13], "weight_decay": [1.0, 0.3]}, [0, 5, 10])
    assert [v.name for v in load(second, "families").variants] == ["p13_seed0_frac0.5", "p13_seed0_wd0.3_frac0.5"]
    dry = run_snakemake(tmp_path, second, "-n", target_list=_caches(tmp_path, second))
    assert dry.returncode == 0, dry.stderr
    out = dry.stdout + dry.stderr
    assert job_counts(out) == {"train": 1, "forward_cache_trained": 1}
    assert set(re.findall(r"wildcards:[^\n]*?\bvariant=([^\s,]+)", out)) == {"p13_seed0_wd0.3_frac0.5"}
    assert {p: p.stat().st_mtime_ns for p in old.dir.rglob("*") if p.is_file()} == before


@pytest.mark.slow
def test_a_swept_width_and_data_seed_run_through_training_and_the_cache(tmp_path):
    """A variant with its own d_model and data seed: the trainer builds its width, splits by
    the data seed and initialises by the seed; the cache job runs its width on its split."""
    import h5py

    from tdw.models.fastpath import last_logits
    from tdw.models.weights import init_params

    path = _write(tmp_path, {"p": [13], "d_model": [64], "data_seed": [3]}, [0, 5])
    (v,) = load(path, "families").variants
    assert v.name == "p13_seed0_frac0.5_dmodel64_dseed3"
    files = VariantLayout(RESULTS, "modadd", v.name)
    run = run_snakemake(tmp_path, path, "--cores", "1", target_list=[str(files.cache("train", 5))])
    assert run.returncode == 0, run.stderr
    out = VariantLayout(tmp_path / RESULTS, "modadd", v.name)
    cfg = json.loads(out.config.read_text())
    assert (cfg["seed"], cfg["data_seed"], cfg["architecture"]["d_model"]) == (0, 3, 64)
    train_idx, _ = modular.split(13, 0.5, 3)
    with h5py.File(out.cache("train", 5), "r") as fh:
        assert np.array_equal(fh["pair_index"][()], np.sort(train_idx))
        assert fh["blocks.0.hook_resid_mid"].shape[-1] == 64
    # epoch 0's train loss is the seed-0 initialisation on the data-seed-3 train pairs
    params = init_params(v.model, 0)
    logits = last_logits(params, v.model, torch.from_numpy(modular.tokens(13, train_idx))).to(torch.float64)
    labels = torch.from_numpy(modular.labels(13, train_idx))
    want = -logits.log_softmax(-1).gather(-1, labels[:, None]).mean().item()
    with h5py.File(out.history, "r") as fh:
        assert fh["train_loss"][0] == pytest.approx(want, rel=1e-12)
