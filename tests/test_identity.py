"""A variant's name determines its definition: name tags are relative to the family's
defaults, so the shipped configs give distinct names where their recipes differ, and a
results folder holding a variant of the same name defined otherwise stops the run at DAG
build (tdw.workflow.identity), unless the user types ``--config replace=NAME``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from workflow_runs import run_snakemake

from tdw import config as tdw_config
from tdw.io.variant import variant_config
from tdw.layout import FamilyLayout, VariantLayout
from tdw.validation import ConfigError
from tdw.workflow import identity

ROOT = Path(__file__).resolve().parents[1]


def names(path: Path) -> list[str]:
    return [v.name for wb in tdw_config.resolve_runs(yaml.safe_load(path.read_text()), str(path)) for v in wb.variants]


def test_default_and_paper_configs_name_their_variants_apart():
    """The default config (train fraction 0.5) and the paper's (0.3, the family default)
    used to write the same folder p113_seed0."""
    default = names(ROOT / "config" / "config.yaml")
    paper = names(ROOT / "config" / "paper.yaml")
    assert default == ["p113_seed0_frac0.5", "p113_seed1_frac0.5"]
    assert paper == ["p113_seed0"]


def test_every_shipped_config_names_differently_defined_variants_apart():
    """Across all shipped configs of one family, two variants with one name have the same
    sweepable values (their names are relative to the family, not to a config)."""
    from tdw import sweep

    seen: dict[tuple[str, str], tuple] = {}
    for path in sorted((ROOT / "config").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if "legacy" in data:
            continue
        for wb in tdw_config.resolve_runs(data, str(path)):
            for v in wb.variants:
                t = v.train or wb.train
                model = v.model or wb.family.model_config(v.p)
                values = (v.p, v.seed, v.data_seed, *(getattr(t, n) for n in sweep.TRAIN_NAMES), model)
                key = (wb.family.name, v.name)
                assert seen.setdefault(key, values) == values, f"{key} defined two ways ({path})"


def test_name_tag_marks_a_value_the_config_states_but_the_family_does_not():
    cfg = {"family": "modadd", "sweep": {"p": [13], "seed": [0]}, "train": {"weight_decay": 0.5, "lr": 1e-3}}
    wb = tdw_config.resolve(cfg, "t.yaml")
    assert [v.name for v in wb.variants] == ["p13_seed0_wd0.5"]  # lr 1e-3 is the family's: no tag


def run_params(name="p13_seed0", eps=1e-8, epochs=(0, 5), early_stop=None):
    train = {"train_frac": 0.5, "lr": 1e-3, "weight_decay": 1.0, "betas": [0.9, 0.98], "eps": eps}
    if early_stop:
        train["early_stop"] = early_stop
    return {
        "family": "modadd",
        "operation": "add",
        "model": {"p": 13, "d_model": 8},
        "train": train,
        "variant": {"name": name, "p": 13, "seed": 0, "train_frac": 0.5, "epochs": list(epochs)},
    }


def write_config(layout: VariantLayout, run: dict) -> None:
    layout.dir.mkdir(parents=True)
    layout.config.write_text(json.dumps(variant_config(run)))


def test_a_differing_definition_is_refused_naming_the_key_and_both_values(tmp_path):
    layout = FamilyLayout(tmp_path, "modadd").variant("p13_seed0")
    write_config(layout, run_params())
    wanted = [(layout, variant_config(run_params(eps=1e-7)))]
    with pytest.raises(ConfigError) as err:
        identity.check_existing(wanted, (), "c.yaml")
    msg = str(err.value)
    assert "c.yaml" in msg and "'p13_seed0'" in msg and str(layout.config) in msg
    assert "train.eps: 1e-08 on disk, 1e-07 in this config" in msg
    assert "--config replace=p13_seed0" in msg
    assert layout.config.exists()  # nothing touched


def test_a_longer_schedule_or_early_stop_is_the_same_variant(tmp_path):
    layout = FamilyLayout(tmp_path, "modadd").variant("p13_seed0")
    write_config(layout, run_params())
    longer = run_params(epochs=(0, 5, 10, 20), early_stop={"test_loss_below": 0.1, "for_epochs": 5})
    assert identity.check_existing([(layout, variant_config(longer))], (), "c.yaml") == []


def test_a_run_not_finished_is_known_by_its_train_state(tmp_path):
    layout = FamilyLayout(tmp_path, "modadd").variant("p13_seed0")
    layout.train_state.mkdir(parents=True)
    layout.state_key.write_text(json.dumps({"key": "abc", "config": variant_config(run_params())}))
    with pytest.raises(ConfigError, match="train.eps"):
        identity.check_existing([(layout, variant_config(run_params(eps=1e-7)))], (), "c.yaml")


def test_replace_sets_the_folder_aside_and_nothing_is_deleted(tmp_path):
    layout = FamilyLayout(tmp_path, "modadd").variant("p13_seed0")
    write_config(layout, run_params())
    found = identity.check_existing([(layout, variant_config(run_params(eps=1e-7)))], ("p13_seed0",), "c.yaml")
    assert [c.variant for c in found] == ["p13_seed0"]
    assert layout.config.exists()  # only when the run starts
    (line,) = identity.set_aside(found)
    moved = list((tmp_path / "modadd" / "replaced").iterdir())
    assert len(moved) == 1 and moved[0].name.startswith("p13_seed0-") and (moved[0] / "config.json").exists()
    assert str(moved[0]) in line and not layout.dir.exists()


def test_replace_names_must_be_variants_of_the_config():
    assert identity.replace_names("a, b", "c.yaml", ["a", "b"]) == ("a", "b")
    with pytest.raises(ConfigError, match="'c' is not a variant of this config"):
        identity.replace_names(["c"], "c.yaml", ["a"])


def test_an_unreadable_definition_is_an_error_naming_the_file(tmp_path):
    layout = FamilyLayout(tmp_path, "modadd").variant("p13_seed0")
    layout.dir.mkdir(parents=True)
    layout.config.write_bytes(b"\xff{")
    with pytest.raises(ConfigError, match="config.json: cannot be read"):
        identity.check_existing([(layout, variant_config(run_params()))], (), "c.yaml")


@pytest.mark.slow
def test_workflow_refuses_then_replaces_a_differently_defined_variant(tmp_path):
    """Two configs, one name: the second run stops at DAG build before any job, its dry run
    with replace moves nothing, and the real run sets the old folder aside and trains anew."""
    base = {"family": "modadd", "sweep": {"p": [5], "seed": [0]}, "checkpoints": [0, 2], "analyzers": ["embedding_frequencies"]}
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(yaml.safe_dump(base | {"train": {"eps": 1e-8}}))
    b.write_text(yaml.safe_dump(base | {"train": {"eps": 1e-7}}))
    layout = FamilyLayout(tmp_path / "results", "modadd").variant("p5_seed0")
    target = [str(layout.metadata.relative_to(tmp_path))]

    def run(config, *options):
        return run_snakemake(tmp_path, config, "--cores", "1", *options, target_list=target)

    assert run(a).returncode == 0
    before = layout.config.read_text()
    refused = run(b)
    assert refused.returncode != 0
    assert "train.eps: 1e-08 on disk, 1e-07 in this config" in refused.stderr
    assert "Traceback" not in refused.stderr and layout.config.read_text() == before
    assert run(b, "-n", "--config", "replace=p5_seed0").returncode == 0
    assert layout.config.read_text() == before and not (layout.dir.parent / "replaced").exists()
    done = run(b, "--config", "replace=p5_seed0")
    assert done.returncode == 0, done.stderr[-2000:]
    (old,) = (layout.dir.parent / "replaced").iterdir()
    assert (old / "config.json").read_text() == before
    assert json.loads(layout.config.read_text())["train"]["eps"] == 1e-7
    shutil.rmtree(old)


def test_the_trainer_writes_the_definition_the_workflow_compares(tmp_path):
    """What a train job writes to config.json is ``variant_config`` of the parameters the
    workflow passes it (the round trip through ModelConfig and TrainConfig changes nothing)."""
    from tdw.train.state import TrainJob

    run = run_params(early_stop={"test_loss_below": 0.1, "for_epochs": 2}) | {"relabel": "log"}
    run["model"] = tdw_config.load_family("modadd").model_config(13).to_dict()
    run["train"] = tdw_config.TrainConfig(
        train_frac=0.5, early_stop=run["train"]["early_stop"]
    ).to_dict()  # as train_params gives it
    assert TrainJob.from_params(run, tmp_path / "v", "").run_config() == variant_config(run)
    assert variant_config(run)["task"] == {"operation": "add", "p": 13, "relabel": "log"}
