"""Config and family validation: every error names the file, the key and what is expected."""

import json
import shutil

import pytest

from tdw.config import ConfigError, expand_schedule, load_family, resolve

BASE = {"family": "modadd", "sweep": {"p": [13], "seed": [0]}, "checkpoints": [0, 5, 10]}


def with_(**changes):
    cfg = json.loads(json.dumps(BASE))
    for dotted, value in changes.items():
        node = cfg
        keys = dotted.split("__")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return cfg


def error_of(cfg, families_dir="families"):
    with pytest.raises(ConfigError) as info:
        resolve(cfg, "cfg.yaml", families_dir)
    return str(info.value)


def test_the_default_and_paper_configs_resolve(root):
    from tdw.config import load

    wb = load(root / "config" / "config.yaml", str(root / "families"))
    assert [v.name for v in wb.variants] == ["p113_seed0", "p113_seed1"]
    paper = load(root / "config" / "paper.yaml", str(root / "families"))
    assert paper.variants[0].epochs == tuple(range(0, 40001, 100)) and paper.train.train_frac == 0.3
    assert paper.train.weight_decay == 1.0 and paper.train.betas == (0.9, 0.98)


def test_schedule_mixes_epochs_and_ranges():
    assert expand_schedule([0, {"from": 10, "to": 50, "every": 20}, 100], "x") == (0, 10, 30, 50, 100)


@pytest.mark.parametrize(
    "cfg,needles",
    [
        ({**BASE, "lerning_rate": 1}, ["cfg.yaml", "lerning_rate", "allowed keys"]),
        (with_(train__lr="fast"), ["cfg.yaml", "'train.lr'", "'fast' is not of type 'number'"]),
        (with_(train__wd=1.0), ["cfg.yaml", "'train'", "'wd'", "allowed keys"]),
        (with_(sweep__p=[15]), ["cfg.yaml", "'sweep.p'", "15 is not a prime"]),
        (with_(sweep__p=[2]), ["'sweep.p'", "2 is not a prime >= 3"]),
        (with_(sweep__p=["113"]), ["'sweep.p.0'", "not of type 'integer'"]),
        (with_(checkpoints=[0, -5]), ["'checkpoints'", "-5"]),
        (with_(checkpoints=[0, 10, 10]), ["'checkpoints'", "10 is duplicate"]),
        (with_(checkpoints=[0, 20, 10]), ["'checkpoints'", "10 is out of order"]),
        (with_(checkpoints=[{"from": 0, "to": 100, "every": 0}]), ["'checkpoints.0.every'"]),
        (with_(analyzers=["fourier_magic"]), ["'analyzers'", "unknown analyzer 'fourier_magic'"]),
        (with_(probe="everything"), ["'probe'", "unknown probe 'everything'"]),
        (with_(family="nosuch"), ["family 'nosuch'", "not found", "modadd"]),
        (with_(figures={"loss_curves": {"colour": "red"}}), ["'figures.loss_curves'", "colour"]),
        (with_(legacy=[{"name": "x", "path": "/nonexistent.pth", "p": 113}]), ["'legacy.0.path'", "not found"]),
    ],
)
def test_bad_config_names_file_and_key(cfg, needles):
    message = error_of(cfg)
    for needle in needles:
        assert needle in message, message


def test_bad_family_file_names_file_and_key(tmp_path, root):
    shutil.copytree(root / "families" / "modadd", tmp_path / "modadd")
    path = tmp_path / "modadd" / "family.json"
    spec = json.loads(path.read_text())
    spec["architecture"]["d_modle"] = 64
    path.write_text(json.dumps(spec))
    load_family.cache_clear()
    message = error_of(BASE, str(tmp_path))
    assert str(path) in message and "'architecture'" in message and "d_modle" in message
    spec["architecture"].pop("d_modle")
    spec["analyzers"]["no_such_analyzer"] = {}
    path.write_text(json.dumps(spec))
    load_family.cache_clear()
    message = error_of(BASE, str(tmp_path))
    assert "'analyzers.no_such_analyzer'" in message and "unknown analyzer" in message
    load_family.cache_clear()
