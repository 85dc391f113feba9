"""Early stopping (``train.early_stop``): the stop epoch against an independent reading of a
full run's history, the unreached checkpoints recorded as such with no file, a stack whose
models stop independently bit-identical to each one alone, and resuming (after the outputs
are lost, and a stack with a stopped model after its schedule grows) bit-identical."""

import shutil

import numpy as np
import pytest
from safetensors import safe_open

from tdw.config import TrainConfig, Variant
from tdw.io.checkpoint import load_weights
from tdw.io.h5 import open_h5
from tdw.io.history import read_history
from tdw.io.variant import read_metadata_json, read_variant_config
from tdw.layout import VariantLayout
from tdw.models.architecture import ModelConfig
from tdw.train.early_stop import stop_epoch
from tdw.train.trainer import TrainJob, train_variant, train_variants

P = 13
MODEL = ModelConfig(p=P, d_model=32, d_mlp=64, n_heads=4)
SCHEDULE = tuple(range(0, 81, 10))


def _job(root, seed=0, early_stop=None, epochs=SCHEDULE, lr=3e-3) -> TrainJob:
    train = TrainConfig(train_frac=0.7, lr=lr, early_stop=early_stop)
    variant = Variant(f"p{P}_seed{seed}", P, seed, 0.7, epochs)
    return TrainJob("modadd", "add", MODEL, train, variant, root / variant.name)


def independent_stop(test_loss: np.ndarray, below: float, n: int) -> int | None:
    """The first epoch e (every epoch tested) whose n + 1 test losses e - n .. e are all below."""
    ok = test_loss < below
    hits = [e for e in range(n, len(ok)) if ok[e - n : e + 1].all()]
    return hits[0] if hits else None


@pytest.fixture(scope="module")
def full_runs(tmp_path_factory):
    """Seeds 0 and 1 trained through the whole schedule without a rule."""
    root = tmp_path_factory.mktemp("full")
    for seed in (0, 1):
        train_variant(_job(root, seed))
    return root


def _rule(full_root, seed: int, at: int, n: int) -> dict:
    """A threshold just above the largest test loss of epochs at .. at + n of the full run: it
    stops there or earlier."""
    test = read_history(_job(full_root, seed).layout.history)["test_loss"]
    return {"test_loss_below": float(test[at : at + n + 1].max()) * (1 + 1e-9), "for_epochs": n}


def _assert_same_files(a: TrainJob, b: TrainJob, epochs, history: bool = True) -> None:
    for e in epochs:
        wa, wb = load_weights(a.layout.checkpoint(e)), load_weights(b.layout.checkpoint(e))
        for key in wa:
            np.testing.assert_array_equal(wb[key], wa[key], err_msg=f"{b.layout.checkpoint(e)} {key}")
    if not history:
        return
    ha, hb = read_history(a.layout.history), read_history(b.layout.history)
    for key in ha:
        np.testing.assert_array_equal(hb[key], ha[key], err_msg=key)


def test_run_stops_where_the_history_says_and_records_unreached_checkpoints(full_runs, tmp_path, one_thread):
    full = read_history(_job(full_runs, 0).layout.history)
    rule = _rule(full_runs, 0, 30, 10)
    expected = independent_stop(full["test_loss"], rule["test_loss_below"], rule["for_epochs"])
    assert expected is not None and 10 <= expected <= 40
    job = _job(tmp_path, 0, rule)
    meta = train_variant(job)

    record = meta["early_stop"]
    assert record["stop_epoch"] == expected == meta["final"]["epoch"]
    assert stop_epoch(full["test_epoch"], full["test_loss"], rule) == expected
    reached = [e for e in SCHEDULE if e <= expected]
    assert record["reached"] == reached == [c["epoch"] for c in meta["checkpoints"]]
    assert record["unreached"] == [e for e in SCHEDULE if e > expected] and record["unreached"]
    assert f"test loss below {rule['test_loss_below']:g} for 10 epochs" in record["reason"]
    for e in record["unreached"]:  # no file pretends to be an unreached checkpoint
        assert (
            not job.layout.checkpoint(e).exists() and not (job.layout.state_checkpoints / job.layout.checkpoint(e).name).exists()
        )
    # the history is the full run's up to the stop, and records it
    history = read_history(job.layout.history)
    assert history["train_epoch"][-1] == history["test_epoch"][-1] == expected
    np.testing.assert_array_equal(history["test_loss"], full["test_loss"][: expected + 1])
    np.testing.assert_array_equal(history["train_loss"], full["train_loss"][: expected + 1])
    with open_h5(job.layout.history) as fh:
        assert int(fh.attrs["stop_epoch"]) == expected
    assert read_metadata_json(job.layout.metadata)["early_stop"] == record
    assert read_variant_config(job.layout.config)["train"]["early_stop"] == rule  # the rule is in provenance
    _assert_same_files(_job(full_runs, 0), job, reached, history=False)  # the histories: compared above

    # the outputs lost, the train state kept: the rerun resumes at the last reached checkpoint, same files
    again = _job(tmp_path / "copy", 0, rule)
    shutil.copytree(job.layout.dir, again.layout.dir)
    for path in (again.layout.folder("checkpoints"), again.layout.history, again.layout.metadata):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    resumed = train_variant(again)
    assert resumed["timings"]["resumed_from_epoch"] == reached[-1]
    assert resumed["early_stop"] == record
    _assert_same_files(job, again, reached)


def test_a_rule_that_never_fires_changes_nothing(full_runs, tmp_path, one_thread):
    rule = {"test_loss_below": 1e-30, "for_epochs": 0}
    meta = train_variant(_job(tmp_path, 0, rule))
    assert meta["early_stop"]["stop_epoch"] is None and meta["early_stop"]["unreached"] == []
    assert meta["final"]["epoch"] == SCHEDULE[-1] and "did not stay below" in meta["early_stop"]["reason"]
    _assert_same_files(_job(full_runs, 0), _job(tmp_path, 0, rule), SCHEDULE)


def test_stacked_models_stop_independently_bit_identical_to_alone(full_runs, tmp_path, one_thread):
    """Seed 0 stops early, seed 1 (another rule) later, seed 2 has none: trained as one stack,
    each one's files equal training it alone."""
    rules = [_rule(full_runs, 0, 10, 3), _rule(full_runs, 1, 30, 5), None]
    together = train_variants([_job(tmp_path / "stack", s, r) for s, r in enumerate(rules)])
    stops = [m.get("early_stop", {}).get("stop_epoch") for m in together]
    assert stops[0] is not None and stops[1] is not None and "early_stop" not in together[2]
    with safe_open(str(_job(tmp_path / "stack", 0).layout.snapshot), framework="pt") as fh:
        assert fh.metadata()["stopped"] == str(stops[0])  # its last snapshot, past its stop, says so
    for seed, rule in enumerate(rules):
        alone = _job(tmp_path / "alone", seed, rule)
        meta = train_variant(alone)
        assert together[seed]["checkpoints"] == meta["checkpoints"]
        assert together[seed].get("early_stop") == meta.get("early_stop")
        _assert_same_files(alone, _job(tmp_path / "stack", seed, rule), [c["epoch"] for c in meta["checkpoints"]])


def test_stack_resumes_after_a_model_stopped(full_runs, tmp_path, one_thread):
    """A stack trained to epoch 40 (seed 0 stopped before), then its schedule extended to 80:
    it resumes at 40 with seed 0 still stopped, and ends as one run through 80."""
    rules = [_rule(full_runs, 0, 10, 3), None]
    short = tuple(e for e in SCHEDULE if e <= 40)
    train_variants([_job(tmp_path / "resumed", s, r, short) for s, r in enumerate(rules)])
    resumed = train_variants([_job(tmp_path / "resumed", s, r) for s, r in enumerate(rules)])
    assert [m["timings"]["resumed_from_epoch"] for m in resumed] == [40, 40]
    once = train_variants([_job(tmp_path / "once", s, r) for s, r in enumerate(rules)])
    assert resumed[0]["early_stop"] == once[0]["early_stop"] and once[0]["early_stop"]["stop_epoch"] < 40
    for seed, rule in enumerate(rules):
        epochs = [c["epoch"] for c in once[seed]["checkpoints"]]
        _assert_same_files(_job(tmp_path / "once", seed, rule), _job(tmp_path / "resumed", seed, rule), epochs)


def test_a_changed_rule_starts_over(full_runs, tmp_path, one_thread):
    """A snapshot taken past where a stricter rule stops cannot be resumed under that rule."""
    job = _job(tmp_path, 0)
    train_variant(job)
    rule = _rule(full_runs, 0, 10, 3)
    meta = train_variant(_job(tmp_path, 0, rule))
    assert meta["timings"]["resumed_from_epoch"] == 0 and meta["early_stop"]["stop_epoch"] <= 13


WORKFLOW_RULE = {"test_loss_below": 2.7, "for_epochs": 2}


@pytest.mark.slow
def test_workflow_run_that_stops_early(tmp_path):
    """A tiny real run (p = 11, two seeds) whose rule fires: the stop epoch is where the
    history says, the checkpoints, caches and artifacts cover the reached epochs only, the
    report and the sweep page render, and a rerun is a no-op."""
    import json
    import re

    import h5py
    import yaml
    from workflow_runs import job_counts, run_snakemake

    from tdw.layout import RESULTS, FamilyLayout

    config = {
        "family": "modadd",
        "sweep": {"p": [11], "seed": [0, 1]},
        "train": {"train_frac": 0.5, "early_stop": WORKFLOW_RULE},
        "checkpoints": [{"from": 0, "to": 20, "every": 2}],
        "analyzers": ["embedding_frequencies", "transitions"],
    }
    path = tmp_path / "early.yaml"
    path.write_text(yaml.safe_dump(config))
    family = FamilyLayout(RESULTS, "modadd")
    names = ["p11_seed0_frac0.5", "p11_seed1_frac0.5"]
    targets = [str(family.sweep("default")), str(family.compare("default"))]
    targets += [str(family.variant(n).report("default")) for n in names]
    targets += [str(family.variant(n).cache_dir("full")) for n in names]
    run = run_snakemake(tmp_path, path, "--cores", "2", target_list=targets, timeout=1500)
    assert run.returncode == 0, run.stderr[-3000:]

    schedule = list(range(0, 21, 2))
    stopped = []
    for n in names:
        files = VariantLayout.at(tmp_path / family.variant(n).dir)
        meta = read_metadata_json(files.metadata)
        history = read_history(files.history)
        stop = meta["early_stop"]["stop_epoch"]
        assert stop == independent_stop(history["test_loss"], **_args(WORKFLOW_RULE))
        assert stop == history["train_epoch"][-1] == meta["final"]["epoch"]
        reached = [e for e in schedule if e <= stop]
        assert meta["early_stop"]["unreached"] == [e for e in schedule if e > stop]
        assert sorted(p.name for p in files.folder("checkpoints").glob("*.safetensors")) == [
            files.checkpoint(e).name for e in reached
        ]
        assert sorted(p.name for p in files.cache_dir("full").glob("*.h5")) == [files.cache("full", e).name for e in reached]
        with h5py.File(files.artifact("full", "embedding_frequencies"), "r") as fh:
            assert fh["epoch"][()].tolist() == reached
        assert "<html" in files.report("default").read_text()
        stopped.append(stop)
    assert min(stopped) < 20  # the rule fired: some checkpoints are unreached

    page = (tmp_path / family.sweep("default")).read_text()
    data = json.loads(re.search(r'<script type="application/json" id="tdw-data">(.*?)</script>', page, re.S)[1])
    table = next(t for t in data["tables"] if t[0][-1] == "stop_epoch")
    assert {row[0]: row[-1] for row in table[1:]} == dict(zip(names, stopped, strict=True))
    assert "early stop" in (tmp_path / family.compare("default")).read_text()

    again = run_snakemake(tmp_path, path, "-n", target_list=targets)
    assert again.returncode == 0 and job_counts(again.stdout) == {}, again.stdout[-2000:]
    assert "Nothing to be done" in again.stdout + again.stderr


def _args(rule: dict) -> dict:
    return {"below": rule["test_loss_below"], "n": rule["for_epochs"]}


@pytest.mark.parametrize(
    "train, checkpoints, message",
    [
        (
            {"early_stop": {"test_loss_below": 1e-3, "for_epochs": 5}},
            [5, 10],
            r"key 'checkpoints': variant p11_seed0 stops early",
        ),
        ({"early_stop": {"test_loss_below": 0, "for_epochs": 5}}, [0, 10], r"key 'train.early_stop"),
        ({"early_stop": {"test_loss_below": 1e-3}}, [0, 10], r"key 'train.early_stop"),
        ({"early_stop": {"test_loss_below": 1e-3, "for_epochs": -1}}, [0, 10], r"key 'train.early_stop"),
    ],
)
def test_bad_early_stop_settings_stop_the_dag_build(train, checkpoints, message):
    from tdw.config import ConfigError, resolve

    config = {"family": "modadd", "sweep": {"p": [11], "seed": [0]}, "train": train, "checkpoints": checkpoints}
    with pytest.raises(ConfigError, match=message):
        resolve(config, "early.yaml")


def test_the_rule_is_recorded_but_not_part_of_the_training_key(tmp_path):
    """A run with a rule resumes from one without (the trajectory is the same up to the stop)."""
    rule = {"test_loss_below": 1e-3, "for_epochs": 5}
    with_rule, without = _job(tmp_path, 0, rule), _job(tmp_path, 0)
    assert with_rule.key() == without.key() != _job(tmp_path, 0, rule, lr=1e-3).key()
    assert with_rule.run_config()["train"]["early_stop"] == rule and "early_stop" not in without.run_config()["train"]
