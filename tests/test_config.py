"""Config and family validation: every error names the file, the key and what is expected."""

import json
import re
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


@pytest.mark.parametrize("name", ["moddiv", "modsq", "modmul"])
def test_the_operation_configs_resolve_to_their_family(root, name):
    from tdw.config import load

    wb = load(root / "config" / f"{name}.yaml", str(root / "families"))
    assert wb.family.name == name and [v.name for v in wb.variants] == ["p59_seed0_frac0.5"]
    assert wb.variants[0].epochs[-1] == 3000 and wb.train.train_frac == 0.5


def test_the_default_and_paper_configs_resolve(root):
    from tdw.config import load

    wb = load(root / "config" / "config.yaml", str(root / "families"))
    assert [v.name for v in wb.variants] == ["p113_seed0_frac0.5", "p113_seed1_frac0.5"]
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


def family_copy(tmp_path, root, name="modadd"):
    """A writable copy of a shipped family: (families dir, its family.json path, its spec)."""
    shutil.copytree(root / "families" / name, tmp_path / name)
    path = tmp_path / name / "family.json"
    return tmp_path, path, json.loads(path.read_text())


@pytest.mark.parametrize(
    "params,needles",
    [
        (
            {"treshold": 0.9},
            ["'analyzers.neuron_clusters.params'", "analyzer 'neuron_clusters'", "'treshold'", "threshold (number)"],
        ),
        ({"threshold": "high"}, ["'analyzers.neuron_clusters.params'", "'threshold'", "expected number, not 'high'"]),
    ],
)
def test_bad_analyzer_parameter_in_a_family_file(tmp_path, root, params, needles):
    families, path, spec = family_copy(tmp_path, root)
    spec["analyzers"]["neuron_clusters"]["params"] = params
    path.write_text(json.dumps(spec))
    message = error_of(BASE, str(families))
    for needle in [str(path), *needles]:
        assert needle in message, message


@pytest.mark.parametrize(
    "cfg,needles",
    [
        (
            with_(analyzers={"neuron_clusters": {"treshold": 0.9}}),
            ["cfg.yaml", "'analyzers.neuron_clusters'", "unknown parameter 'treshold'", "threshold (number)"],
        ),
        (
            with_(analyzers={"neuron_clusters": {"threshold": "high"}}),
            ["'analyzers.neuron_clusters'", "expected number, not 'high'"],
        ),
        (with_(analyzers={"attention": {"threshold": 0.5}}), ["'analyzers.attention'", "'threshold'", "no parameters"]),
        (with_(analyzers={"fourier_magic": {}}), ["'analyzers'", "unknown analyzer 'fourier_magic'"]),
        (
            with_(analyzers={"progress_measures": {"key_frequencies": [1, 7]}}),
            ["'analyzers.progress_measures.key_frequencies'", "[1, 7]", "p = 13", "1..6"],
        ),
        (with_(analyzers={"geometry": {"key_frequencies": "last"}}), ["'key_frequencies'", "'last'", "'final' | list[integer]"]),
        (
            with_(figures={"loss_curves": {"width": "big"}}),
            ["cfg.yaml", "'figures.loss_curves'", "'width'", "expected integer, not 'big'"],
        ),
        (with_(figures={"ablations": {"mode": "half"}}), ["'figures.ablations'", "'mode'", "'zero' | 'mean'"]),
    ],
)
def test_bad_analyzer_or_figure_parameter_in_a_config(cfg, needles):
    message = error_of(cfg)
    for needle in needles:
        assert needle in message, message


def test_analyzers_as_a_list_select_and_as_a_mapping_override():
    wb = resolve(with_(analyzers=["neuron_clusters", "geometry"]), "cfg.yaml")
    assert wb.analyzers == ("neuron_clusters", "geometry")
    assert wb.analyzer_params("neuron_clusters") == {"threshold": 0.85}
    assert set(wb.figures) == {"loss_curves", "neuron_clusters", "geometry"}
    cfg = with_(
        analyzers={"progress_measures": {"key_frequencies": [4, 6]}, "neuron_clusters": {"threshold": 0.5}, "geometry": None}
    )
    wb = resolve(cfg, "cfg.yaml")
    assert wb.analyzers == ("progress_measures", "neuron_clusters", "geometry")
    assert wb.analyzer_params("progress_measures") == {"key_frequencies": [4, 6], "key_fraction": 0.3}
    assert wb.analyzer_params("neuron_clusters") == {"threshold": 0.5}
    assert wb.analyzer_params("geometry") == {"key_frequencies": "final", "key_fraction": 0.3, "n_components": 4}
    wb.analyzer_params("neuron_clusters")["threshold"] = 0.1  # a copy: the workbench keeps its own
    assert wb.analyzer_params("neuron_clusters") == {"threshold": 0.5}
    with pytest.raises(ConfigError, match="'attention' is not run by this config"):
        wb.analyzer_params("attention")
    # an analyzer the family offers on request runs only where the config names it
    assert "llc_calibration" not in resolve(with_(), "cfg.yaml").analyzers
    named = resolve(with_(analyzers={"llc": None, "llc_calibration": {"epoch": 10}}), "cfg.yaml")
    assert named.analyzers == ("llc", "llc_calibration") and "llc_calibration" in named.figures
    figure = resolve(with_(figures={"loss_curves": {"width": 500, "log_y": False}}), "cfg.yaml").figures["loss_curves"]
    assert figure["params"] == {"train_color": "#1f77b4", "test_color": "#d62728", "width": 500, "height": 450, "log_y": False}


def test_a_misspelt_parameter_stops_snakemake_before_any_job(tmp_path):
    """``snakemake -n`` on a config with a misspelt analyzer parameter: the message names the
    file, the analyzer and the key, and nothing is run or written."""
    from workflow_runs import run_snakemake

    config = tmp_path / "bad.yaml"
    config.write_text(
        "family: modadd\nsweep: {p: [13], seed: [0]}\ncheckpoints: [0, 5]\nanalyzers: {neuron_clusters: {treshold: 0.9}}\n"
    )
    proc = run_snakemake(tmp_path, config, "-n", target_list=[], timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for needle in (str(config), "'analyzers.neuron_clusters'", "unknown parameter 'treshold'", "threshold (number)"):
        assert needle in out, out[-3000:]
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()
    assert "Job stats" not in out


def test_an_override_reaches_the_artifact(tmp_path):
    """The config's key_frequencies for progress_measures, passed as the workflow passes it
    (``Workbench.analyzer_params``), are the artifact's key frequencies and its recorded params."""
    from handmade import write_caches

    from tdw.analyzers.runner import run_analyzer
    from tdw.io.checkpoint import checkpoint_name, save_checkpoint
    from tdw.io.h5 import load_artifact
    from tdw.models.weights import init_params

    cfg = with_(sweep__p=[71], analyzers={"progress_measures": {"key_frequencies": [35, 14]}})
    wb = resolve(cfg, "cfg.yaml")
    model = wb.family.model_config(71)
    config = {"task": {"operation": "add", "p": 71}, "seed": 0, "architecture": model.to_dict(), "train": {"train_frac": 0.3}}
    ckpt = tmp_path / checkpoint_name(0)
    save_checkpoint(ckpt, {k: v.numpy() for k, v in init_params(model, 0).items()}, {"epoch": 0, "config": config})
    caches = write_caches([ckpt], tmp_path / "cache", spec=wb.family.spec["cache"])
    run_analyzer("progress_measures", wb.analyzer_params("progress_measures"), [ckpt], caches, tmp_path / "pm.h5", {})
    art = load_artifact(tmp_path / "pm.h5")
    assert art["key_frequency"].tolist() == [14, 35]
    assert art["excluded_loss"].shape == (1, 2)
    assert art["attrs"]["params"] == {"key_frequencies": [35, 14], "key_fraction": 0.3}
    with pytest.raises(ValueError, match="analyzer 'progress_measures': unknown parameter 'key_fractoin'"):
        run_analyzer("progress_measures", {"key_fractoin": 0.2}, [ckpt], caches, tmp_path / "x.h5", {})


def write_family(families, name, spec):
    (families / name).mkdir(parents=True, exist_ok=True)
    (families / name / "family.json").write_text(json.dumps(spec))
    return families / name / "family.json"


def test_extends_merges_mappings_replaces_lists_and_null_removes(tmp_path, root):
    families, _, _ = family_copy(tmp_path, root)
    shutil.copytree(root / "families" / "modadd" / "reports", families / "child" / "reports")
    write_family(
        families,
        "child",
        {
            "extends": "modadd",
            "name": "child",
            "architecture": {"d_mlp": 256},
            "probes": {"random": {"kind": "random", "size": 100}},
            "analyzers": {
                "ablations": None,
                "dimensionality": {"probes": ["full"], "params": {"hooks": ["blocks.0.hook_resid_mid"]}},
            },
            "figures": {"ablations": None, "loss_curves": {"params": {"width": 600}}},
        },
    )
    spec = load_family("child", str(families)).spec
    assert spec["architecture"]["d_mlp"] == 256 and spec["architecture"]["d_model"] == 128
    assert spec["probes"]["random"] == {"kind": "random", "size": 100, "seed": 0}  # merged key by key
    assert "ablations" not in spec["analyzers"] and "ablations" not in spec["figures"]
    assert spec["analyzers"]["dimensionality"]["probes"] == ["full"]  # a list replaces the parent's
    assert spec["analyzers"]["dimensionality"]["params"]["hooks"] == ["blocks.0.hook_resid_mid"]
    assert spec["analyzers"]["dimensionality"]["params"]["energy"] == 0.9
    assert spec["figures"]["loss_curves"] == {
        "source": "history",
        "params": {"train_color": "#1f77b4", "test_color": "#d62728", "width": 600, "height": 450, "log_y": True},
    }
    assert "extends" not in spec and load_family("child", str(families)).files == (
        families / "child" / "family.json",
        families / "modadd" / "family.json",
    )


def test_extends_errors_name_the_file(tmp_path, root):
    families = tmp_path
    a = write_family(families, "a", {"extends": "b", "name": "a"})
    write_family(families, "b", {"extends": "a", "name": "b"})
    with pytest.raises(ConfigError) as info:
        load_family("a", str(families))
    assert str(families / "b" / "family.json") in str(info.value) and "a cycle: a -> b -> a" in str(info.value)
    a.write_text(json.dumps({"extends": "nosuch", "name": "a"}))
    with pytest.raises(ConfigError) as info:
        load_family("a", str(families))
    assert str(a) in str(info.value) and "key 'extends': unknown family 'nosuch'" in str(info.value)
    shutil.copytree(root / "families" / "modadd", families / "modadd")
    bad = write_family(
        families, "c", {"extends": "modadd", "name": "c", "analyzers": {"geometry": {"params": {"n_compnents": 2}}}}
    )
    with pytest.raises(ConfigError) as info:
        load_family("c", str(families))
    assert str(bad) in str(info.value) and "'analyzers.geometry.params'" in str(info.value) and "'n_compnents'" in str(info.value)
    bad.write_text(json.dumps({"extends": "modadd", "name": "c", "architecture": {"d_modle": 3}}))
    with pytest.raises(ConfigError) as info:
        load_family("c", str(families))
    assert str(bad) in str(info.value) and "d_modle" in str(info.value)
    bad.write_text(json.dumps({"extends": "modadd", "description": "no name"}))
    with pytest.raises(ConfigError, match="its own 'name'"):
        load_family("c", str(families))


def test_a_changed_family_file_is_read_again(tmp_path, root):
    """The family cache is keyed on the files' path, mtime and size, the parents' included."""
    import os

    families, path, spec = family_copy(tmp_path, root)
    child = write_family(families, "child", {"extends": "modadd", "name": "child"})
    first = load_family("child", str(families))
    assert load_family("child", str(families)) is first  # unchanged: the cached object
    spec["figures"]["loss_curves"]["params"] = {"width": 777}
    path.write_text(json.dumps(spec))
    os.utime(path, ns=(1, 10**18))  # a distinct mtime even on a coarse clock
    assert load_family("child", str(families)).spec["figures"]["loss_curves"]["params"]["width"] == 777
    child.write_text(json.dumps({"extends": "modadd", "name": "child", "task": {"operation": "sub"}}))
    os.utime(child, ns=(1, 10**18 + 1))
    assert load_family("child", str(families)).operation == "sub"


@pytest.mark.parametrize(
    "cfg,needles",
    [
        (
            with_(sweep__p=[100003]),
            ["cfg.yaml", "'sweep.p'", "p = 100003", "needs at least", "MB", "2000 MB the train rule declares"],
        ),
        (
            with_(sweep__p=[401], train__train_frac=0.8),
            ["'sweep.p' / 'train.train_frac'", "p = 401", "about 2,290 MB", "2000 MB"],
        ),
        (with_(sweep__p=[211], sweep__seed=[0, 1, 2, 3], train__train_frac=0.9, batch_seeds=True), ["p = 211", "(4 model(s))"]),
        (
            with_(sweep__p=[3], train__train_frac=0.1),
            ["'train.train_frac'", "p = 3 with train_frac 0.1", "9 pairs has 0 train and 9 test"],
        ),
        (with_(sweep__p=[3], train__train_frac=0.11), ["p = 3 with train_frac 0.11", "0 train and 9 test"]),
        (with_(train__train_frac=1.0), ["'train.train_frac'", "1.0 is greater than or equal to the maximum of 1"]),
    ],
)
def test_variants_that_cannot_train_stop_at_dag_build(cfg, needles):
    message = error_of(cfg)
    for needle in needles:
        assert needle in message, message


def test_sizes_that_fit_resolve():
    resolve(with_(sweep__p=[211], sweep__seed=[0, 1, 2, 3], train__train_frac=0.9), "cfg.yaml")  # apart: one model each
    resolve(with_(sweep__p=[211], sweep__seed=[0, 1, 2], train__train_frac=0.9, batch_seeds=True), "cfg.yaml")
    resolve(with_(sweep__p=[5], train__train_frac=0.05), "cfg.yaml")  # int(0.05 * 25) = 1 train pair


def test_parameter_types():
    """Booleans are not numbers, integers are numbers (made floats), lists check their items."""
    from typing import Literal

    from tdw.params import Param, ParamError, resolve_params

    declared = (
        Param("t", float, 0.5, "a share"),
        Param("n", int, 2, "a count"),
        Param("ks", Literal["final"] | list[int], "final", "keys"),
        Param("on", bool, True, "a switch"),
        Param("names", list[str], ("a", "b"), "names"),
    )
    out = resolve_params(declared, {"t": 1, "ks": [3, 4]}, "x")
    assert out == {"t": 1.0, "n": 2, "ks": [3, 4], "on": True, "names": ["a", "b"]} and isinstance(out["t"], float)
    out["names"].append("c")
    assert resolve_params(declared, {}, "x")["names"] == ["a", "b"]  # defaults are not shared
    for given, needle in (
        ({"t": True}, "'t': expected number, not True"),
        ({"n": 2.5}, "'n': expected integer, not 2.5"),
        ({"on": 1}, "'on': expected boolean, not 1"),
        ({"ks": [3, "4"]}, "expected 'final' | list[integer], not [3, '4']"),
        ({"names": "a"}, "expected list[string], not 'a'"),
    ):
        with pytest.raises(ParamError, match=re.escape(needle)):
            resolve_params(declared, given, "x")
    with pytest.raises(TypeError, match="the default 'x' is not integer"):
        Param("n", int, "x", "a count")


def test_bad_figure_parameter_in_a_family_file(tmp_path, root):
    families, path, spec = family_copy(tmp_path, root)
    spec["figures"]["geometry"]["params"] = {"marker_size": "large"}
    path.write_text(json.dumps(spec))
    message = error_of(BASE, str(families))
    for needle in (str(path), "'figures.geometry.params'", "figure 'geometry'", "'marker_size': expected integer, not 'large'"):
        assert needle in message, message
    spec["figures"]["geometry"] = {"source": "geometry"}
    spec["figures"]["no_such_figure"] = {"source": "history"}
    path.write_text(json.dumps(spec))
    assert "'figures.no_such_figure': unknown figure" in error_of(BASE, str(families))


def test_a_cache_larger_than_a_job_may_hold_stops_at_dag_build(tmp_path, root):
    """Caching every position of the MLP activations and logits of a p = 307 grid (94,249
    rows, about 2 GB kept twice over) exceeds what a cache job is held to; training fits."""
    families, path, spec = family_copy(tmp_path, root)
    everything = {"positions": "all", "dtype": "float32"}
    spec["cache"] |= {"blocks.0.mlp.hook_post": everything, "logits": everything}
    path.write_text(json.dumps(spec))
    message = error_of(with_(sweep__p=[307]), str(families))
    for needle in ("cfg.yaml", "'sweep.p'", "p = 307", "cache of probe 'full' (94249 rows)", "2000 MB a cache job"):
        assert needle in message, message
    resolve(with_(sweep__p=[307], probe="random", analyzers=["attention"]), "cfg.yaml", str(families))  # 2048 rows fit


def test_the_paper_width_clock_pizza_config_resolves(root):
    from tdw.config import load

    wb = load(root / "config" / "clock_pizza_paper.yaml", str(root / "families"))
    names = sorted(v.name for v in wb.variants)
    assert names == sorted([f"p59_seed{s}_wd2_frac0.8{tag}" for s in range(3) for tag in ("", "_attn0")])
    for v in wb.variants:
        cfg = v.model or wb.family.model_config(v.p)
        assert (cfg.d_model, cfg.d_mlp, cfg.n_heads) == (128, 512, 4)
        assert cfg.attention_rate == (0.0 if v.name.endswith("_attn0") else 1.0)
