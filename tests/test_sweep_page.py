"""The sweep page's numbers from hand-made histories whose answers are known: threshold
crossings, swept axes from config.json fields, grouping with seeds as spread; sweep files
checked with errors naming the file and key; the parent family's sweep files apply."""

import json

import numpy as np
import pytest

from tdw import analyzers
from tdw.families import FAMILIES_DIR, load_family
from tdw.io.h5 import write_h5
from tdw.io.variant import read_metadata_json, read_variant_config
from tdw.layout import VariantLayout
from tdw.pages import sweep_data as sd
from tdw.pages.sweep import build_sweep, measure_table, variant_values
from tdw.pages.sweep_spec import load_sweep_spec, sweep_file, sweep_names
from tdw.train.synthetic import make_variant
from tdw.validation import ConfigError

ALL = list(analyzers.REGISTRY)


def test_first_below_is_the_first_epoch_under_the_threshold():
    epochs = np.arange(100)
    loss = np.where(epochs < 37, 1.0, 0.05)
    loss[60] = 0.5  # a later rise does not move the first crossing
    assert sd.first_below(epochs, loss, 0.1) == 37
    assert sd.first_below(epochs * 10, loss, 0.1) == 370  # the epoch, not the index
    assert sd.first_below(epochs, np.full(100, 0.1), 0.1) is None  # "below" is strict
    assert sd.first_below(epochs, np.ones(100), 0.1) is None


def test_history_measures_never_invent_a_number():
    t = np.arange(50)
    history = {"train_epoch": t, "train_loss": np.where(t < 12, 3.0, 0.01), "test_epoch": t, "test_loss": np.full(50, 4.0)}
    out = sd.history_measures(history, {"train_loss": 0.01, "test_loss": 4.0}, 0.1, 0.1)
    assert out == {
        "epochs_to_memorise": 12,
        "epochs_to_generalise": None,
        "generalisation_gap": None,
        "final_train_loss": 0.01,
        "final_test_loss": 4.0,
    }
    history["test_loss"] = np.where(t < 40, 4.0, 0.05)
    assert sd.history_measures(history, {"train_loss": 0.01, "test_loss": 0.05}, 0.1, 0.1)["generalisation_gap"] == 28


def _config(seed, wd, lr=1e-3, p=13):
    return {
        "task": {"p": p},
        "seed": seed,
        "train": {"weight_decay": wd, "lr": lr, "betas": [0.9, 0.98]},
        "architecture": {"d_model": 8},
    }


def test_axes_are_the_fields_that_differ_and_seeds_are_not_axes():
    fields = {f"v{i}": sd.sweep_fields(_config(s, wd)) for i, (s, wd) in enumerate([(0, 0.1), (1, 0.1), (0, 1.0), (1, 1.0)])}
    assert fields["v0"]["train.betas"] == (0.9, 0.98)
    assert sd.swept_axes(fields) == ["train.weight_decay"]
    assert sd.spread_fields(fields) == ["seed"]  # the data seed equals the seed: no column of its own
    fields["v0"]["data_seed"] = 5
    assert sd.swept_axes(fields) == ["train.weight_decay"]
    assert sd.spread_fields(fields) == ["seed", "data_seed"]
    fields["v3"]["train.lr"] = 3e-3
    assert sd.swept_axes(fields) == ["train.lr", "train.weight_decay"]
    for f, p in zip(fields.values(), (11, 13, 11, 13), strict=True):
        f["task.p"], f["architecture.p"], f["architecture.d_vocab"] = p, p, p + 1
    assert sd.swept_axes(fields) == ["task.p", "train.lr", "train.weight_decay"]  # architecture.p follows task.p
    for f, p in zip(fields.values(), (11, 11, 13, 13), strict=True):
        f["task.p"] = p  # now in lockstep with the weight decay: one axis, the first
    assert sd.swept_axes(fields) == ["task.p", "train.lr", "architecture.p"]
    legacy = {"a": sd.sweep_fields(_config(0, 1.0)), "b": sd.sweep_fields({"task": {"p": 13}, "seed": 0, "train": {}})}
    # a field one variant lacks differs; its train fields all change together: the first is the axis
    assert sd.swept_axes(legacy) == ["train.betas"]


def test_two_weight_decays_by_two_seeds_give_two_points_with_their_spread():
    configs = {"a": (0, 0.1), "b": (1, 0.1), "c": (0, 1.0), "d": (1, 1.0), "e": (2, 1.0)}
    fields = {n: sd.sweep_fields(_config(s, wd)) for n, (s, wd) in configs.items()}
    values = {"a": 100.0, "b": 140.0, "c": 30.0, "d": None, "e": 50.0}
    points = sd.grouped(fields, values, sd.swept_axes(fields))
    assert [p["key"] for p in points] == [(0.1,), (1.0,)]
    assert (points[0]["mean"], points[0]["min"], points[0]["max"], points[0]["reached"], points[0]["n"]) == (
        120.0,
        100.0,
        140.0,
        2,
        2,
    )
    assert points[1]["variants"] == ["c", "d", "e"]
    assert (points[1]["mean"], points[1]["min"], points[1]["max"], points[1]["reached"], points[1]["n"]) == (
        40.0,
        30.0,
        50.0,
        2,
        3,
    )
    none = sd.grouped(fields, dict.fromkeys(values), ["train.weight_decay"])
    assert none[1]["mean"] is None and none[1]["reached"] == 0


def test_artifact_values_final_whole_and_reduced():
    arr = np.array([[0, 1, 1], [2, 0, 3]])
    assert sd.artifact_value(arr, "epoch neuron", "final", "nonzero", "x") == 2.0
    assert sd.artifact_value(arr, "epoch neuron", "final", "sum", "x") == 5.0
    assert sd.artifact_value(np.array([3, 7]), "key_frequency", "all", "count", "x") == 2.0
    assert sd.artifact_value(np.array([1.0, np.nan]), "epoch", "final", None, "x") is None
    with pytest.raises(ValueError, match="f.h5: 3 values"):
        sd.artifact_value(arr, "epoch neuron", "final", None, "f.h5")
    with pytest.raises(ValueError, match="needs an epoch axis first"):
        sd.artifact_value(np.array([3, 7]), "key_frequency", "final", "count", "x")


def _spec(tmp_path, spec):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(spec))
    return path


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"measures": ["epochs_to_grok"]}, "key 'measures.0': unknown measure 'epochs_to_grok'"),
        ({"measures": []}, "key 'measures': expected a non-empty list"),
        ({"measures": ["final_test_loss"], "colour": 1}, "expected an object with keys among"),
        ({"measures": ["final_test_loss"], "thresholds": {"memorise": -1}}, "key 'thresholds.memorise': -1"),
        ({"measures": ["final_test_loss"], "thresholds": {"grok": 1}}, "key 'thresholds'"),
        ({"measures": [{"artifact": "nope", "dataset": "x"}]}, "unknown analyzer 'nope'"),
        ({"measures": [{"artifact": "transitions", "dataset": "x", "at": "first"}]}, "key 'at': 'first'"),
        ({"measures": [{"artifact": "transitions", "dataset": "x", "reduce": "median"}]}, "key 'reduce': 'median'"),
        ({"measures": ["cleanup_start"]}, "'cleanup_start'): reads the artifact of analyzer 'transitions'"),
        ({"measures": ["final_test_loss", "final_test_loss"]}, "a second measure named 'final_test_loss'"),
    ],
)
def test_bad_sweep_files_name_the_file_and_key(tmp_path, spec, message):
    path = _spec(tmp_path, spec)
    with pytest.raises(ConfigError, match="s.json") as err:
        load_sweep_spec(path, ["embedding_frequencies"], ALL)
    assert message in str(err.value)


def test_optional_measures_whose_artifact_is_not_produced_are_left_out(tmp_path):
    path = _spec(tmp_path, {"measures": ["final_test_loss", {"name": "cleanup_start", "optional": True}]})
    assert [m["name"] for m in load_sweep_spec(path, [], ALL)["measures"]] == ["final_test_loss"]
    assert [m["name"] for m in load_sweep_spec(path, ["transitions"], ALL)["measures"]] == ["final_test_loss", "cleanup_start"]
    assert load_sweep_spec(path, [], ALL)["thresholds"] == {"memorise": 0.1, "generalise": 0.1}


def test_families_that_extend_modadd_use_its_sweep_files():
    for name in ("modadd", "modsub", "modadd_2layer"):
        family = load_family(name)
        assert "default" in sweep_names(family)
        assert sweep_file(family, "default").parent.parent.name == "modadd"
        spec = load_sweep_spec(sweep_file(family, "default"), family.spec["analyzers"], ALL)
        assert {"epochs_to_generalise", "cleanup_start", "final_sum_sq_weights", "cluster_count"} <= {
            m["name"] for m in spec["measures"]
        }
    with pytest.raises(ConfigError, match="no nope.json in"):
        sweep_file(load_family("modsub"), "nope")


def sweep_variants(root, decays=(0.1, 1.0), seeds=(0, 1)):
    """Synthetic variants with edited config.json train values: weight decay x seed."""
    out = {}
    for wd in decays:
        for seed in seeds:
            files = VariantLayout.at(make_variant(root, p=13, n_checkpoints=4, n_epochs=60, name=f"wd{wd}_seed{seed}"))
            config = json.loads(files.config.read_text())
            config["seed"], config["train"]["weight_decay"] = seed, wd
            files.config.write_text(json.dumps(config))
            out[files.dir.name] = {
                "config": read_variant_config(files.config),
                "history": files.history,
                "metadata": read_metadata_json(files.metadata),
                "artifacts": {"embedding_frequencies": files.artifact("full", "embedding_frequencies")},
                "files": files,
            }
    return out


def test_variant_values_read_the_history_and_the_artifacts(tmp_path):
    from tdw.io.history import read_history

    variants = sweep_variants(tmp_path, decays=(0.1,), seeds=(0,))
    v = variants["wd0.1_seed0"]
    art = v["files"].artifact("full", "transitions")
    write_h5(
        art,
        {
            "epoch": (np.array([0, 20, 40, 60]), "epoch"),
            "total_sum_sq_weights": (np.array([5.0, 4.0, 3.0, 2.5]), "epoch"),
            "boundary": (np.array([b"memorisation_end", b"cleanup_start", b"cleanup_end"]), "boundary"),
            "boundary_epoch": (np.array([10.5, 33.0, np.nan]), "boundary"),
            "boundary_lo": (np.array([0, 20, -1]), "boundary"),
            "boundary_hi": (np.array([20, 40, -1]), "boundary"),
        },
        {"analyzer": "transitions"},
    )
    v["artifacts"]["transitions"] = art
    measures = ["epochs_to_memorise", "cleanup_start", "cleanup_end"]
    measures += [{"artifact": "transitions", "dataset": "total_sum_sq_weights", "name": "ssq"}]
    measures += [{"artifact": "embedding_frequencies", "dataset": "key_frequencies", "at": "all", "reduce": "count", "name": "k"}]
    spec = load_sweep_spec(_spec(tmp_path, {"measures": measures}), ["transitions", "embedding_frequencies"], ALL)
    values = variant_values(spec, v)
    h = read_history(v["history"])
    expected_mem = int(h["train_epoch"][np.argmax(h["train_loss"] < 0.1)])
    assert values == {
        "epochs_to_memorise": expected_mem,
        "cleanup_start": 33.0,
        "cleanup_start_lo": 20,
        "cleanup_start_hi": 40,
        "cleanup_end": None,
        "cleanup_end_lo": None,
        "cleanup_end_hi": None,
        "ssq": 2.5,
        "k": 2.0,  # make_variant's key frequencies (2, 5)
    }
    fields = {"wd0.1_seed0": sd.sweep_fields(v["config"])}
    rows = measure_table(spec["measures"][2], [], fields, {"wd0.1_seed0": values})
    assert rows == [
        ["variant", "seed", "cleanup_end", "cleanup_end_lo", "cleanup_end_hi"],
        ["wd0.1_seed0", 0, "not reached", None, None],
    ]


def test_page_escapes_text_from_files(tmp_path):
    variants = sweep_variants(tmp_path, decays=(0.1, 1.0), seeds=(0,))
    spec = load_sweep_spec(_spec(tmp_path, {"title": "<script>alert(1)</script>", "measures": ["final_test_loss"]}), [], ALL)
    page = build_sweep(spec, "modadd", "default", variants)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script>") == 2  # plotly.js and the page's own script; data sit in JSON elements


@pytest.mark.slow
def test_workflow_builds_the_sweep_page_over_two_primes_and_two_seeds(tmp_path):
    """A tiny real run: the default target includes the page, one job over all variants,
    whose axis is the swept prime and whose numbers are the variants' own."""
    import re

    from workflow_runs import job_counts, run_snakemake, write_config

    from tdw.io.history import read_history
    from tdw.layout import RESULTS, FamilyLayout

    config = write_config(tmp_path, primes=[11, 13], seeds=[0, 1], analyzers=["embedding_frequencies", "transitions"])
    page = FamilyLayout(RESULTS, "modadd").sweep("default")
    dry = run_snakemake(tmp_path, config, "-n", target_list=[])
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert job_counts(dry.stdout)["sweep_page"] == 1 and str(page) in dry.stdout
    run = run_snakemake(tmp_path, config, "--cores", "2", target_list=[str(page)])
    assert run.returncode == 0, run.stderr[-3000:]
    text = (tmp_path / page).read_text()
    assert "swept: task.p;" in text
    data = json.loads(re.search(r'<script type="application/json" id="tdw-data">(.*?)</script>', text, re.S)[1])
    tables = {t[0][-3] if t[0][-1].endswith("_hi") else t[0][-1]: t for t in data["tables"]}
    assert tables["final_test_loss"][0] == ["variant", "task.p", "seed", "final_test_loss"]
    for row in tables["final_test_loss"][1:]:
        meta = read_metadata_json(tmp_path / RESULTS / "modadd" / row[0] / "metadata.json")
        p, seed = map(int, re.fullmatch(r"p(\d+)_seed(\d+)_frac0.5", row[0]).groups())
        assert row[1:] == [p, seed, meta["final"]["test_loss"]]
    for row in tables["epochs_to_memorise"][1:]:
        h = read_history(tmp_path / RESULTS / "modadd" / row[0] / "history.h5")
        assert row[-1] == (sd.first_below(h["train_epoch"], h["train_loss"], 0.1) or "not reached")
    assert "cleanup_start" in tables and "final_sum_sq_weights" in tables  # transitions ran
    assert "cluster_count" not in tables  # optional: neuron_clusters did not run
    assert [r[0] for r in tables["final_test_loss"][1:]] == [
        "p11_seed0_frac0.5",
        "p11_seed1_frac0.5",
        "p13_seed0_frac0.5",
        "p13_seed1_frac0.5",
    ]


@pytest.mark.slow
def test_a_measure_whose_artifact_the_config_does_not_produce_stops_the_dag(tmp_path):
    from test_report_workflow import snakemake, workflow_copy

    wf = workflow_copy(tmp_path)
    spec = {"measures": ["final_test_loss", {"artifact": "neuron_clusters", "dataset": "cluster", "reduce": "nonzero"}]}
    (wf / "families/modadd/sweeps/default.json").write_text(json.dumps(spec))
    (wf / "tests/configs/tiny.yaml").write_text(
        (wf / "tests/configs/tiny.yaml").read_text() + "analyzers: [embedding_frequencies, transitions]\n"
    )
    bad = snakemake(wf, "-n")
    assert bad.returncode != 0
    assert (
        "families/modadd/sweeps/default.json: key 'measures.1' ('neuron_clusters_cluster_final_nonzero'): "
        "reads the artifact of analyzer 'neuron_clusters', which this config does not produce"
    ) in bad.stderr + bad.stdout
    spec["measures"][1]["optional"] = True
    (wf / "families/modadd/sweeps/default.json").write_text(json.dumps(spec))
    ok = snakemake(wf, "-n")
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert "rule sweep_page:" in ok.stdout


def test_with_two_axes_each_plot_has_one_line_per_value_of_the_other():
    from tdw.pages.sweep import measure_figure

    combos = [(p, wd, s) for p in (11, 13) for wd in (0.1, 1.0) for s in (0, 1)]
    fields = {f"p{p}_wd{wd}_s{s}": sd.sweep_fields(_config(s, wd, p=p)) for p, wd, s in combos}
    values = {n: {"m": 10.0 * p + 100 * wd + s} for n, (p, wd, s) in zip(fields, combos, strict=True)}
    axes = sd.swept_axes(fields)
    assert axes == ["task.p", "train.weight_decay"]
    fig = measure_figure({"name": "m", "label": "m", "source": "history"}, "train.weight_decay", axes, fields, values)
    names = [t.name for t in fig.data]
    assert names == [
        "task.p=11: seeds",
        "task.p=11: mean (bars: min to max)",
        "task.p=13: seeds",
        "task.p=13: mean (bars: min to max)",
    ]
    mean13 = fig.data[3]
    assert list(mean13.x) == [0.1, 1.0] and list(mean13.y) == pytest.approx([140.5, 230.5])
    assert list(mean13.error_y.array) == pytest.approx([0.5, 0.5]) and list(mean13.error_y.arrayminus) == pytest.approx(
        [0.5, 0.5]
    )


def test_every_family_has_a_default_sweep_page_whose_measures_it_makes():
    """Each shipped family (addition, the other operations, the MLP, the sequence family) has
    a default sweep file, and every measure it declares reads an analyzer the family runs."""
    names = sorted(p.parent.name for p in FAMILIES_DIR.glob("*/family.json") if not p.parent.name.startswith("test_"))
    assert {"modadd", "modmul", "moddiv", "modsq", "modadd_mlp", "induction"} <= set(names)
    for name in names:
        family = load_family(name)
        spec = load_sweep_spec(sweep_file(family, "default"), family.spec["analyzers"], ALL)
        path = sweep_file(family, "default")
        declared = [m if isinstance(m, str) else m["name"] for m in json.loads(path.read_text())["measures"]]
        if name == "induction":  # its own file: every measure it declares is one the family makes
            assert [m["name"] for m in spec["measures"]] == declared
            assert {"best_induction_score", "final_icl_score", "cleanup_start"} <= set(declared)
