"""Bad input, one row per case: each config is refused while it resolves (the DAG build) with
a message naming the key and the value, before anything is written. The rows run through
``tdw.config.resolve`` (a mapping) or ``tdw.config.load`` (a file); three run through a real
``snakemake -n`` to show the message reaches the user."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tdw.config import load, resolve
from tdw.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
BASE = {"family": "modadd", "sweep": {"p": [5], "seed": [0]}, "checkpoints": [0, 4]}
NAN, INF = float("nan"), float("inf")


def train(**values) -> dict:
    return BASE | {"train": values}


def sweep(**values) -> dict:
    return BASE | {"sweep": {"p": [5], "seed": [0]} | values}


# (id, config, expected fragments of the message)
ROWS = [
    # numbers are finite
    ("nan-lr", train(lr=NAN), ["key 'train.lr'", "nan is not a finite number"]),
    ("inf-weight-decay", train(weight_decay=INF), ["key 'train.weight_decay'", "inf is not a finite number"]),
    ("nan-eps", train(eps=NAN), ["key 'train.eps'", "not a finite number"]),
    ("nan-beta", train(betas=[0.9, NAN]), ["key 'train.betas.1'", "not a finite number"]),
    ("nan-train-frac", train(train_frac=NAN), ["key 'train.train_frac'", "not a finite number"]),
    (
        "nan-early-stop",
        train(early_stop={"test_loss_below": NAN, "for_epochs": 1}),
        ["train.early_stop.test_loss_below", "finite"],
    ),
    ("inf-grokfast-lamb", train(grokfast={"kind": "ema", "alpha": 0.9, "lamb": INF}), ["train.grokfast.lamb", "finite"]),
    ("nan-swept-lr", sweep(lr=[1e-3, NAN]), ["key 'sweep.lr.1'", "not a finite number"]),
    ("nan-analyzer-param", BASE | {"analyzers": {"llc": {"epsilon": NAN}}}, ["'analyzers.llc'", "epsilon"]),
    (
        "inf-analyzer-param-without-range",
        BASE | {"analyzers": {"transitions": {"z_threshold": INF}}},
        ["key 'analyzers.transitions'", "parameter 'z_threshold': inf is not a finite number"],
    ),
    (
        "nan-figure-param",
        BASE | {"figures": {"embedding_frequencies": {"highlight_threshold": NAN}}},
        ["key 'figures.embedding_frequencies'", "parameter 'highlight_threshold': nan is not a finite number"],
    ),
    ("nan-included-lr", sweep(include=[{"p": 7, "lr": NAN}]), ["key 'sweep.include.0.lr'", "nan is not a finite number"]),
    # integers fit what uses them
    ("seed-too-large", sweep(seed=[2**40]), ["key 'sweep.seed.0'", "maximum of 4294967295"]),
    ("data-seed-negative", sweep(data_seed=[-1]), ["key 'sweep.data_seed.0'", "minimum of 0"]),
    ("width-too-large", sweep(d_model=[10**6]), ["key 'sweep.d_model.0'", "maximum of 65536"]),
    ("p-too-large", sweep(p=[2**40]), ["key 'sweep.p.0'", "maximum of 2147483647"]),
    ("epoch-negative", BASE | {"checkpoints": [-1, 4]}, ["key 'checkpoints'", "negative"]),
    (
        "included-seed-too-large",
        sweep(include=[{"p": 7, "seed": 2**40}]),
        ["key 'sweep.include.0.seed'", "maximum of 4294967295"],
    ),
    (
        "rule-width-too-large",
        BASE | {"checkpoints": [{"when": {"d_model": 10**6}, "schedule": [0, 4]}, {"schedule": [0, 4]}]},
        ["key 'checkpoints.0.when.d_model'", "maximum of 65536"],
    ),
    ("epoch-too-large", BASE | {"checkpoints": [0, 10**12]}, ["key 'checkpoints.1'", "maximum of 1000000000"]),
    (
        "range-end-too-large",
        BASE | {"checkpoints": [{"from": 0, "to": 10**12, "every": 1}]},
        ["key 'checkpoints.0.to'", "maximum of 1000000000"],
    ),
    (
        "schedule-too-many-checkpoints",
        BASE | {"checkpoints": [0, {"from": 1, "to": 10**6, "every": 1}]},
        ["key 'checkpoints.1'", "1,000,001 checkpoints", "at most 100,000"],
    ),
    (
        "legacy-p-too-large",
        BASE | {"legacy": [{"name": "old", "path": "x.pth", "p": 2**61 - 1}]},
        ["key 'legacy.0.p'", "maximum of 2147483647"],
    ),
    (
        "legacy-epoch-too-large",
        BASE | {"legacy": [{"name": "old", "path": "x.pth", "epoch": 10**30}]},
        ["key 'legacy.0.epoch'", "maximum of 1000000000"],
    ),
    # names that become folders
    ("variant-name-dotdot", BASE | {"variant_name": ".."}, ["variant name '..'", "is a relative folder"]),
    ("variant-name-too-long", BASE | {"variant_name": "v" * 101}, ["has 101 characters", "expected 1 to 100 of the characters"]),
    ("variant-name-slash", BASE | {"variant_name": "a/p{p}"}, ["variant name 'a/p5'", "has the character '/'"]),
    (
        "variant-name-reserved",
        BASE | {"variant_name": "compare"},
        ["variant name 'compare'", "is a folder or file the results layout uses"],
    ),
    ("variant-name-replaced", BASE | {"variant_name": "replaced"}, ["'replaced'", "is a folder or file the results layout uses"]),
    ("variant-name-bad-field", BASE | {"variant_name": "p{q}"}, ["key 'variant_name'", "not a format string"]),
    ("legacy-name-dotdot", BASE | {"legacy": [{"name": "..", "path": "x.pth"}]}, ["key 'legacy.0.name'", "'..'"]),
    ("legacy-name-slash", BASE | {"legacy": [{"name": "a/b", "path": "x.pth"}]}, ["key 'legacy.0.name'", "does not match"]),
    ("family-name-path", BASE | {"family": "../modadd"}, ["key 'family'", "does not match"]),
    ("results-empty", BASE | {"results": ""}, ["key 'results'", "should be non-empty"]),
    ("results-is-a-file", BASE | {"results": str(ROOT / "README.md")}, ["key 'results'", "is a file; give a folder"]),
    ("results-under-a-file", BASE | {"results": str(ROOT / "README.md" / "sub")}, ["key 'results'", "is a file"]),
    (
        "legacy-path-is-a-folder",
        BASE | {"legacy": [{"name": "old", "path": str(ROOT / "tests")}]},
        ["'legacy.0.path'", "is a folder"],
    ),
    # settings that could never take effect
    (
        "early-stop-window-too-long",
        train(early_stop={"test_loss_below": 0.1, "for_epochs": 5}),
        ["train.early_stop.for_epochs", "ends at epoch 4"],
    ),
    (
        "grokfast-window-too-long",
        train(grokfast={"kind": "ma", "window": 5, "lamb": 2.0}),
        ["train.grokfast.window", "takes 4 steps"],
    ),
    (
        "grokfast-lamb-zero",
        train(grokfast={"kind": "ema", "alpha": 0.9, "lamb": 0}),
        ["key 'train.grokfast.lamb'", "0 for variant p5_seed0", "never change a step"],
    ),
    (
        "llc-calibration-epoch-not-a-checkpoint",
        BASE | {"analyzers": {"llc_calibration": {"epoch": 3}}},
        ["analyzers.llc_calibration.epoch", "epoch 3 is not a checkpoint"],
    ),
    (
        "ablations-compare-not-a-checkpoint",
        BASE | {"analyzers": {"ablations": {"compare": [0, 2]}}},
        ["analyzers.ablations.compare", "epoch 2"],
    ),
    (
        "early-stop-schedule-not-from-0",
        BASE | {"train": {"early_stop": {"test_loss_below": 0.1, "for_epochs": 0}}, "checkpoints": [2, 4]},
        ["stops early", "start it at 0"],
    ),
    (
        "grokfast-window-over-memory",
        {"family": "modadd", "sweep": {"p": [113], "seed": [0]}, "checkpoints": [0, 5000]}
        | {"train": {"grokfast": {"kind": "ma", "window": 2000, "lamb": 2.0}}},
        ["the Grokfast filter's 2000 gradient copies", "more than the 2000 MB the train rule declares"],
    ),
    # what is wrong, not what the schema tried last
    ("range-without-every", BASE | {"checkpoints": [{"from": 0, "to": 4}]}, ["key 'checkpoints.0'", "missing 'every'"]),
    ("rule-without-schedule", BASE | {"checkpoints": [{"when": {"seed": 0}}]}, ["key 'checkpoints.0'", "missing 'schedule'"]),
    (
        "early-stop-without-for-epochs",
        train(early_stop={"test_loss_below": 0.1}),
        ["key 'train.early_stop'", "missing 'for_epochs'"],
    ),
    ("grokfast-ma-without-window", train(grokfast={"kind": "ma", "lamb": 2.0}), ["key 'train.grokfast'", "missing 'window'"]),
    (
        "grokfast-unknown-kind",
        train(grokfast={"kind": "sma", "window": 3, "lamb": 2.0}),
        ["key 'train.grokfast.kind'", "'sma' is not one of 'ema', 'ma'"],
    ),
    (
        "grokfast-ema-alpha-out-of-range",
        train(grokfast={"kind": "ema", "alpha": 1.5, "lamb": 2.0}),
        ["key 'train.grokfast.alpha'", "1.5"],
    ),
    (
        "grokfast-key-of-the-other-kind",
        train(grokfast={"kind": "ema", "window": 3, "lamb": 2.0}),
        ["key 'train.grokfast'", "missing 'alpha'"],
    ),
    ("empty-seed-list", sweep(seed=[]), ["key 'sweep.seed'", "an empty list"]),
    ("empty-p-list", BASE | {"sweep": {"p": [], "seed": [0]}}, ["key 'sweep.p'", "an empty list"]),
    ("exclude-everything", sweep(exclude=[{"seed": 0}]), ["key 'sweep.exclude'", "every combination"]),
    ("exclude-matching-nothing", sweep(exclude=[{"seed": 7}]), ["key 'sweep.exclude.0'", "matches no combination"]),
    ("unknown-key", BASE | {"trian": {}}, ["key '(top level)'", "'trian'"]),
    ("wrong-type", train(lr="fast"), ["key 'train.lr'", "'fast'"]),
    ("duplicate-epoch", BASE | {"checkpoints": [0, 4, 4]}, ["key 'checkpoints'", "duplicate"]),
    ("not-prime", sweep(p=[9]), ["key 'sweep.p'", "not a prime"]),
    ("unknown-analyzer", BASE | {"analyzers": ["nope"]}, ["key 'analyzers'", "unknown analyzer 'nope'"]),
    ("unknown-family", BASE | {"family": "nofamily"}, ["family 'nofamily'", "not found"]),
]


@pytest.mark.parametrize("config, fragments", [pytest.param(c, f, id=i) for i, c, f in ROWS])
def test_bad_config_is_refused_naming_key_and_value(config, fragments, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative results folder is never made by a refused config
    with pytest.raises(ConfigError) as err:
        resolve(config, "bad.yaml", str(ROOT / "families"))
    message = str(err.value)
    assert message.startswith("bad.yaml") or "family" in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert list(tmp_path.iterdir()) == []


def test_every_row_has_its_own_id():
    ids = [r[0] for r in ROWS]
    assert len(ids) == len(set(ids)) and len(ids) >= 40


# (id, file bytes, expected fragments): what a file can get wrong before it is a mapping
FILES = [
    (
        "duplicate-key",
        b"family: modadd\nsweep: {p: [5], seed: [0]}\nsweep: {p: [7], seed: [0]}\n",
        ["key 'sweep' appears twice", "lines 2 and 3"],
    ),
    ("duplicate-nested-key", b"family: modadd\nsweep: {p: [5], p: [7], seed: [0]}\n", ["key 'p' appears twice"]),
    ("not-utf8", b"family: modadd\n# caf\xe9\nsweep: {p: [5], seed: [0]}\n", ["not UTF-8 text", "save the file as UTF-8"]),
    ("not-yaml", b"family: [modadd\n", ["not valid YAML"]),
    ("not-a-mapping", b"- family: modadd\n", ["expected a mapping of config keys"]),
]


@pytest.mark.parametrize("data, fragments", [pytest.param(d, f, id=i) for i, d, f in FILES])
def test_bad_config_file_is_refused_naming_the_file(data, fragments, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as err:
        load(path, str(ROOT / "families"))
    assert str(err.value).startswith(str(path)), err.value
    for fragment in fragments:
        assert fragment in str(err.value)


def _family_json(edit):
    def apply(path: Path) -> None:
        spec = json.loads(path.read_text())
        edit(spec)
        path.write_text(json.dumps(spec))

    return apply


def _replace(old: bytes, new: bytes):
    def apply(path: Path) -> None:
        data = path.read_bytes()
        assert old in data
        path.write_bytes(data.replace(old, new, 1))

    return apply


def _folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


# (id, edit of families/modadd/family.json, expected fragments): a family file is read strictly too
FAMILY_ROWS = [
    ("family-not-utf8", _replace(b'"name"', b'"description": "caf\xe9", "name"'), ["not UTF-8 text", "save the file as UTF-8"]),
    ("family-is-a-folder", _folder, ["family.json: is a folder; expected a JSON file"]),
    ("family-duplicate-key", _replace(b'"name"', b'"name": "other", "name"'), ["key 'name' appears twice in one object"]),
    (
        "family-nan",
        _replace(b'"architecture": {', b'"architecture": {"attention_rate": NaN, '),
        ["'architecture.attention_rate'", "finite"],
    ),
    (
        "family-width-too-large",
        _family_json(lambda s: s["architecture"].update(n_layers=10**9)),
        ["family.json: key 'architecture.n_layers'", "maximum of 65536"],
    ),
    (
        "family-probe-name-path",
        _family_json(lambda s: s["probes"].update({"../up": {"kind": "grid"}})),
        ["family.json: key 'probes'", "'../up' does not match"],
    ),
    (
        "family-probe-name-dot",
        _family_json(lambda s: s["probes"].update({"..": {"kind": "grid"}})),
        ["family.json: key 'probes'", "'..' does not match"],
    ),
    (
        "family-unchecked-float-param",
        _family_json(lambda s: s["analyzers"]["transitions"].update(params={"onset": float("inf")})),
        ["key 'analyzers.transitions.params'", "parameter 'onset': inf is not a finite number"],
    ),
]


@pytest.mark.parametrize("edit, fragments", [pytest.param(e, f, id=i) for i, e, f in FAMILY_ROWS])
def test_bad_family_file_is_refused_naming_the_file(edit, fragments, tmp_path):
    shutil.copytree(ROOT / "families" / "modadd", tmp_path / "modadd")
    edit(tmp_path / "modadd" / "family.json")
    with pytest.raises(ConfigError) as err:
        resolve(BASE, "bad.yaml", str(tmp_path))
    assert str(err.value).startswith(str(tmp_path / "modadd" / "family.json")), err.value
    for fragment in fragments:
        assert fragment in str(err.value), err.value


def test_a_folder_or_a_missing_file_as_config(tmp_path):
    with pytest.raises(ConfigError, match="is a folder; expected a YAML config file"):
        load(tmp_path)
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path / "missing.yaml")


def test_a_family_extending_an_unsafe_name_is_refused(tmp_path):
    shutil.copytree(ROOT / "families" / "modadd", tmp_path / "modadd")
    spec = json.loads((tmp_path / "modadd" / "family.json").read_text())
    (tmp_path / "child").mkdir()
    (tmp_path / "child" / "family.json").write_text(json.dumps({"name": "child", "extends": "../modadd"}))
    with pytest.raises(ConfigError) as err:
        resolve(BASE | {"family": "child"}, "bad.yaml", str(tmp_path))
    assert "child/family.json: key 'extends'" in str(err.value) and "'../modadd'" in str(err.value)
    assert spec["name"] == "modadd"


@pytest.mark.slow
@pytest.mark.parametrize(
    "text, fragment",
    [
        pytest.param(
            "family: modadd\nsweep: {p: [5], seed: [0]}\nsweep: {p: [7], seed: [0]}\n",
            "key 'sweep' appears twice",
            id="duplicate-key",
        ),
        pytest.param(
            "family: modadd\nsweep: {p: [5], seed: [0]}\ntrain: {lr: .nan}\n",
            "key 'train.lr': nan is not a finite number",
            id="nan",
        ),
        pytest.param(
            "family: modadd\nsweep: {p: [5], seed: [0]}\nvariant_name: '..'\n",
            "variant name '..' is a relative folder",
            id="name",
        ),
    ],
)
def test_snakemake_stops_before_any_job_with_the_message(text, fragment, tmp_path):
    from workflow_runs import run_snakemake

    config = tmp_path / "bad.yaml"
    config.write_text(text)
    proc = run_snakemake(tmp_path, config, "--cores", "1", target_list=[])
    assert proc.returncode != 0
    assert fragment in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "results").exists()
    assert yaml.safe_load(text)  # the text itself is ordinary YAML (the plain loader keeps the last key)
