"""Several families in one config (``runs:``): each entry resolved like a config of its own
over the top level's keys, names unique across the families (a collision stops the DAG
build), a dry run planning every family's jobs, and a tiny run whose comparison page puts
the variants of both families side by side."""

import base64
import json
import re

import numpy as np
import pytest
import yaml
from workflow_runs import job_counts, run_snakemake

from tdw.config import ConfigError, resolve, resolve_runs
from tdw.io.history import read_history
from tdw.io.variant import read_metadata_json
from tdw.layout import RESULTS, FamilyLayout

TWO = {
    "train": {"train_frac": 0.5},
    "checkpoints": [0, 5, 10],
    "analyzers": ["embedding_frequencies"],
    "runs": [
        {"family": "modadd", "sweep": {"p": [11], "seed": [0]}},
        {"family": "modadd_2layer", "variant_name": "l2_p{p}_seed{seed}", "sweep": {"p": [11], "seed": [0, 1]}},
    ],
}
NAMES = {"modadd": ["p11_seed0_frac0.5"], "modadd_2layer": ["l2_p11_seed0_frac0.5", "l2_p11_seed1_frac0.5"]}
COMPARE = FamilyLayout(RESULTS, "modadd+modadd_2layer").compare("default")


def _values(y) -> np.ndarray:
    """A trace's values as Plotly writes them: a list, or base64 binary with its dtype."""
    if isinstance(y, dict):
        return np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"])
    return np.asarray(y)


def _write(tmp_path, config: dict):
    path = tmp_path / "runs.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_each_entry_resolves_over_the_top_level_keys():
    config = json.loads(json.dumps(TWO))
    config["runs"][1]["checkpoints"] = [0, 20]
    runs = resolve_runs(config, "two.yaml")
    assert [wb.family.name for wb in runs] == ["modadd", "modadd_2layer"]
    assert {wb.family.name: [v.name for v in wb.variants] for wb in runs} == NAMES
    assert [wb.variants[0].epochs for wb in runs] == [(0, 5, 10), (0, 20)]  # the entry's own schedule
    assert all(wb.train.train_frac == 0.5 and wb.analyzers == ("embedding_frequencies",) for wb in runs)
    assert runs[1].family.model_config(11).n_layers == 2
    # a config without runs is one run, resolved as before
    single = {k: v for k, v in TWO.items() if k != "runs"} | TWO["runs"][0]
    assert resolve_runs(single, "one.yaml") == (resolve(single, "one.yaml"),)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda c: c["runs"][1].pop("variant_name"),
            r"two.yaml: key 'runs.1': variant name 'p11_seed0_frac0.5' of family modadd_2layer is also one of family modadd",
        ),
        (lambda c: c["runs"][1].update(family="modadd"), r"key 'runs.1.family': family 'modadd' is listed twice"),
        (lambda c: c.update(family="modadd"), r"key 'family': with 'runs', each entry gives its own 'family'"),
        (lambda c: c["runs"][1].update(results="elsewhere"), r"key 'runs.1': Additional properties"),
        (lambda c: c["runs"][0].update(variant_name="p{q}"), r"runs.0 \(family modadd\): key 'variant_name': 'p\{q\}'"),
        (lambda c: c["runs"][1]["sweep"].update(p=[12]), r"runs.1 \(family modadd_2layer\): key 'sweep.p': 12 is not a prime"),
    ],
)
def test_bad_runs_stop_the_dag_build_naming_the_key(change, message):
    config = json.loads(json.dumps(TWO))
    change(config)
    with pytest.raises(ConfigError, match=message):
        resolve_runs(config, "two.yaml")


def test_dry_run_plans_both_families(tmp_path):
    dry = run_snakemake(tmp_path, _write(tmp_path, TWO), "-n", target_list=[])
    assert dry.returncode == 0, dry.stderr[-3000:]
    counts = job_counts(dry.stdout)
    assert counts["train"] == 3 and counts["forward_cache_trained"] == 3 and counts["analyze"] == 3
    assert counts["sweep_page"] == 2 and counts["compare"] == 1  # a sweep page per family, one comparison
    # each family's static images: one job per variant, by the family's own rule
    assert {f: counts[f"static_{f}"] for f in NAMES} == {f: len(n) for f, n in NAMES.items()}
    for family, names in NAMES.items():
        for n in names:
            assert str(FamilyLayout(RESULTS, family).variant(n).metadata) in dry.stdout
        assert str(FamilyLayout(RESULTS, family).sweep("default")) in dry.stdout
    assert str(COMPARE) in dry.stdout


def test_name_collision_stops_the_workflow_before_any_job(tmp_path):
    config = json.loads(json.dumps(TWO))
    config["runs"][1].pop("variant_name")
    dry = run_snakemake(tmp_path, _write(tmp_path, config), "-n", target_list=[])
    assert dry.returncode != 0
    assert "variant name 'p11_seed0_frac0.5' of family modadd_2layer is also one of family modadd" in dry.stdout + dry.stderr
    assert not (tmp_path / RESULTS).exists()


@pytest.mark.slow
def test_two_families_train_and_the_comparison_page_lists_both(tmp_path):
    run = run_snakemake(tmp_path, _write(tmp_path, TWO), "--cores", "2", target_list=[str(COMPARE)], timeout=1500)
    assert run.returncode == 0, run.stderr[-3000:]
    text = (tmp_path / COMPARE).read_text()
    for family, names in NAMES.items():
        for n in names:
            meta = read_metadata_json(tmp_path / FamilyLayout(RESULTS, family).variant(n).metadata)
            assert meta["family"] == family
            # the table row: family, variant, final epoch and losses as the variant's own files say
            row = f"<tr><td>{family}</td><td>{n}</td><td>10</td><td>{meta['final']['train_loss']:.3e}</td>"
            assert row in text
    figures = json.loads(re.search(r'<script type="application/json" id="tdw-data">(.*?)</script>', text, re.S)[1])
    traces = {t["name"]: t for t in figures[0]["data"]}
    for family, names in NAMES.items():
        for n in names:
            history = read_history(tmp_path / FamilyLayout(RESULTS, family).variant(n).history)
            np.testing.assert_array_equal(_values(traces[f"{n} test"]["y"]), history["test_loss"])
    two_layer = read_metadata_json(tmp_path / FamilyLayout(RESULTS, "modadd_2layer").variant("l2_p11_seed0_frac0.5").metadata)
    one_layer = read_metadata_json(tmp_path / FamilyLayout(RESULTS, "modadd").variant("p11_seed0_frac0.5").metadata)
    assert two_layer["final"]["test_loss"] != one_layer["final"]["test_loss"]  # two models, not one twice
