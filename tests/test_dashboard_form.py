"""The Train tab's sweep controls without the browser: one list field per knob the family
declares sweepable, read by type, resolved exactly as the same config written by hand, refused
with the knob and the value before anything is written or run."""

import json
import shutil

import pytest
import yaml

from tdw import config as tdw_config
from tdw.config import ConfigError
from tdw.pages.dashboard import jobs

TRAIN = {"lr": 1e-3, "weight_decay": 1.0, "train_frac": 0.5}


def test_sweep_form_resolves_as_the_same_yaml_written_by_hand(tmp_path):
    knobs = {"p": "7", "seed": "0, 1", "weight_decay": "0.1, 1"}
    path, wb = jobs.make_config(tmp_path, "wd", "modadd", knobs, "0-20/10, 30", TRAIN)
    assert path == tmp_path / "dashboard" / "wd.yaml"
    by_hand = f"""
family: modadd
results: {tmp_path / "results"}
sweep: {{p: [7], seed: [0, 1], weight_decay: [0.1, 1.0]}}
train: {{lr: 0.001, weight_decay: 1.0, train_frac: 0.5}}
checkpoints: [{{from: 0, to: 20, every: 10}}, 30]
"""
    hand = tdw_config.resolve(yaml.safe_load(by_hand), "by hand", str(jobs.FAMILIES))
    # The product order (weight decay outer, seed inner); weight decay 1.0 is the family's default: no tag.
    names = ["p7_seed0_wd0.1_frac0.5", "p7_seed1_wd0.1_frac0.5", "p7_seed0_frac0.5", "p7_seed1_frac0.5"]
    assert [v.name for v in hand.variants] == names
    assert wb.variants == hand.variants  # names, recipes, models, schedules, data seeds, tags
    assert [v.train.weight_decay for v in wb.variants] == [0.1, 0.1, 1.0, 1.0]
    assert [v.epochs for v in wb.variants] == [(0, 10, 20, 30)] * 4
    assert tdw_config.load(path, str(jobs.FAMILIES)).variants == hand.variants  # the file written says the same


def test_knob_values_are_read_by_the_type_of_their_sweep_list():
    assert jobs.parse_knob("seed", "0, 1 2") == [0, 1, 2]
    assert jobs.parse_knob("lr", "1e-3, 0.01,3") == [0.001, 0.01, 3.0]
    assert jobs.parse_knob("betas", "0.9-0.98, 0.9-0.999") == [[0.9, 0.98], [0.9, 0.999]]
    assert jobs.parse_knob("betas", "0.9-1e-3") == [[0.9, 0.001]]  # an exponent's minus is not the separator
    assert jobs.parse_knob("d_model", " ") == []


@pytest.mark.parametrize(
    ("knob", "text", "bad", "expected"),
    [
        ("weight_decay", "0.1, abc", "abc", "numbers"),
        ("seed", "0, 1.5", "1.5", "integers"),
        ("p", "7, 1e2", "1e2", "integers"),
        ("lr", "inf", "inf", "numbers"),
        ("betas", "0.9", "0.9", "pairs beta1-beta2"),
        ("betas", "0.9-0.98-0.99", "0.9-0.98-0.99", "pairs beta1-beta2"),
    ],
)
def test_unreadable_value_names_the_knob_and_nothing_is_written(tmp_path, knob, text, bad, expected):
    with pytest.raises(ConfigError) as err:
        jobs.make_config(tmp_path, "bad", "modadd", {"p": "7", knob: text}, "0-10/5", TRAIN)
    assert f"sweep knob {knob!r}: cannot read {bad!r}; expected {expected}" in str(err.value)
    assert not (tmp_path / "dashboard" / "bad.yaml").exists()


@pytest.mark.parametrize(
    ("knobs", "include", "exclude", "message"),
    [
        ({"train_frac": "0.3, 1.5"}, "", "", "key 'sweep.train_frac.1': 1.5 is greater than or equal to the maximum of 1"),
        ({"d_model": "30"}, "", "", "d_model 30 is not divisible by n_heads 4"),
        ({"seed": "0, 0"}, "", "", "key 'sweep.seed': [0, 0] has non-unique elements"),
        ({"p": "7, 9"}, "", "", "key 'sweep.p': 9 is not a prime"),
        ({"weight_decay": "0.1, 1"}, "", "{weight_decay: 3.0}", "key 'sweep.exclude.0': {'weight_decay': 3.0} matches no"),
        ({}, "{lr: 0.01}", "", "key 'sweep.include.0': {'lr': 0.01} gives no 'p'"),
        ({}, "{p: 7", "", "sweep include: '{p: 7' is not valid YAML"),
        ({}, "", "[1, 2]", "sweep exclude: '[1, 2]' is not a list of mappings"),
    ],
)
def test_a_sweep_that_makes_no_valid_config_is_refused_as_at_dag_build(tmp_path, knobs, include, exclude, message):
    with pytest.raises(ConfigError) as err:
        jobs.make_config(tmp_path, "bad", "modadd", {"p": "7"} | knobs, "0-10/5", TRAIN, include, exclude)
    assert message in str(err.value)
    assert not (tmp_path / "dashboard" / "bad.yaml").exists()


def test_include_and_exclude_change_the_product(tmp_path):
    knobs = {"p": "7", "seed": "0", "weight_decay": "0.1, 1", "train_frac": "0.3, 0.5"}
    _, wb = jobs.make_config(
        tmp_path, "ie", "modadd", knobs, "0-10/5", TRAIN, "{p: 7, lr: 0.01}", "{weight_decay: 1, train_frac: 0.3}"
    )
    # train fraction 0.3 is the family's default (no tag), 0.5 the config's
    names = ["p7_seed0_wd0.1", "p7_seed0_wd0.1_frac0.5", "p7_seed0_frac0.5", "p7_seed0_frac0.5_lr0.01"]
    assert [v.name for v in wb.variants] == names
    assert yaml.safe_load((tmp_path / "dashboard" / "ie.yaml").read_text())["sweep"]["exclude"] == [
        {"weight_decay": 1, "train_frac": 0.3}
    ]


def test_targets_of_a_sweep_page(tmp_path):
    path, wb = jobs.make_config(tmp_path, "t", "modadd", {"p": "7", "seed": "0, 1"}, "0-10/5", TRAIN)
    page = str(tmp_path / "results" / "modadd" / "sweeps" / "default.html")
    reports = [
        str(tmp_path / "results" / "modadd" / v / "reports" / "default.html") for v in ("p7_seed0_frac0.5", "p7_seed1_frac0.5")
    ]
    assert jobs.targets(path, "sweep", "default") == [page]
    assert jobs.targets(path, "reports", "default") == [*reports, page]
    assert jobs.targets(path, "reports") == reports  # the Analyze tab's runs, as before
    with pytest.raises(ConfigError, match="sweep page 'nope' is not one of family modadd's: its sweep files are"):
        jobs.targets(path, "sweep", "nope")


def test_shown_sweep_page_is_a_snapshot_named_by_its_content(tmp_path):
    built = tmp_path / "results" / "modadd" / "sweeps" / "default.html"
    built.parent.mkdir(parents=True)
    built.write_text("<p>first</p>")
    first = jobs.show_sweep_page(tmp_path, "modadd", "default")
    assert first.parent == tmp_path / "dashboard" / "views" and first.read_text() == "<p>first</p>"
    assert jobs.show_sweep_page(tmp_path, "modadd", "default") == first
    built.unlink()
    built.write_text("<p>rebuilt</p>")  # the workflow replaces the page (atomically: a new file)
    again = jobs.show_sweep_page(tmp_path, "modadd", "default")
    assert again != first and again.read_text() == "<p>rebuilt</p>" and first.read_text() == "<p>first</p>"


def test_knob_fields_follow_the_familys_sweepable_names(tmp_path, monkeypatch, root):
    """Choosing a family shows one field per name it declares sweepable and hides the others;
    a hidden field's text is not part of the config."""
    shutil.copytree(root / "families" / "modadd", tmp_path / "modadd")
    shutil.copytree(root / "families" / "modadd", tmp_path / "wdonly")
    spec = json.loads((tmp_path / "wdonly" / "family.json").read_text())
    spec |= {"name": "wdonly", "sweepable": ["p", "seed", "weight_decay"]}
    (tmp_path / "wdonly" / "family.json").write_text(json.dumps(spec))
    shutil.rmtree(tmp_path / "wdonly" / "sweeps")
    monkeypatch.setattr(jobs, "FAMILIES", tmp_path)
    assert jobs.knob_names("wdonly") == ["p", "seed", "weight_decay"]
    assert jobs.sweep_pages("wdonly") == [] and jobs.sweep_pages("modadd") == ["default"]
    knobs = {"p": "7", "seed": "0", "weight_decay": "0.1, 1", "lr": "0.01, 0.1"}
    _, wb = jobs.make_config(tmp_path / "work", "w", "wdonly", knobs, "0-10/5", TRAIN)
    # the train fraction is not sweepable in this family: not in its names
    assert [v.name for v in wb.variants] == ["p7_seed0_wd0.1", "p7_seed0"]
    assert [v.name for v in jobs.make_config(tmp_path / "work", "m", "modadd", knobs, "0-10/5", TRAIN)[1].variants] == [
        "p7_seed0_wd0.1_frac0.5_lr0.01",
        "p7_seed0_wd0.1_frac0.5_lr0.1",
        "p7_seed0_frac0.5_lr0.01",
        "p7_seed0_frac0.5_lr0.1",
    ]
    from tdw.pages.dashboard.app import KNOBS, build_app

    app = build_app(tmp_path / "work")
    (on_family,) = [
        f
        for f in app.fns.values()
        if any(i is not None and app.blocks[i].elem_id == "cfg-family" and e == "change" for i, e in f.targets)
    ]
    *fields, sweep = on_family.fn("wdonly")
    assert [n for n, u in zip(KNOBS, fields, strict=True) if u["visible"]] == ["p", "seed", "weight_decay"]
    assert sweep["choices"] == [] and sweep["value"] is None
    *fields, sweep = on_family.fn("modadd")
    assert all(u["visible"] for u in fields) and len(fields) == len(KNOBS) == 12
    assert sweep["choices"] == ["default"] and sweep["value"] == "default"
