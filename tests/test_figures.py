"""Every figure built from real analyzer artifacts (the hand-written Fourier model of
tests/handmade.py over three checkpoints, plus a weights-only run): plotted values equal
the artifact's arrays, frames cover the checkpoints shown, axes are titled."""

from __future__ import annotations

import json

import numpy as np
import pytest
from handmade import J, fourier_weights, run_config, write_caches, write_run

from tdw.analyzers.runner import run_analyzer
from tdw.config import load_family
from tdw.figures import REGISTRY, builder, frames_builder
from tdw.figures.views import build_view
from tdw.io.h5 import load_artifact
from tdw.io.history import write_history

P, KEYS, EPOCHS = 23, (3, 7), (0, 10, 20)
ANALYZER_PARAMS = {"transitions": {"window": 3}}
FIGURE_SOURCES = (
    "neuron_activations",
    "neuron_clusters",
    "progress_measures",
    "attention",
    "dimensionality",
    "transitions",
    "geometry",
    "ablations",
    "weight_norms",
)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("figures")
    ckpts = write_run(out, P, KEYS, epochs=EPOCHS)
    caches = write_caches(ckpts, out / "cache")
    e = np.arange(21)
    write_history(out / "history.h5", np.exp(-e / 3), e, np.r_[np.linspace(1, 3, 8), np.logspace(0.5, -5, 13)], e, {})
    family = load_family("modadd").spec["analyzers"] | {"weight_norms": {}}
    result = {}
    for name in FIGURE_SOURCES:
        params = family[name].get("params", {}) | ANALYZER_PARAMS.get(name, {})
        run_analyzer(name, params, ckpts, caches, out / f"{name}.h5", {}, history=out / "history.h5")
        result[name] = load_artifact(out / f"{name}.h5")
    return result


def figure_params(name: str) -> dict:
    family = "test_only_tiny" if name == "weight_norms" else "modadd"
    return load_family(family).spec["figures"][name]["params"]


def make(name: str, art: dict, **params):
    data = {"artifact": art}
    p = figure_params(name) | params
    fig = builder(name)(data, p, name)
    hook = frames_builder(name)
    return fig, (hook(data, p) if hook else None)


def axis_titles(fig) -> list[str]:
    return [fig.layout[k].title.text for k in fig.layout if k.startswith(("xaxis", "yaxis")) and fig.layout[k].title.text]


def test_every_registered_figure_is_offered_and_in_the_reports():
    for family in ("modadd", "modsub", "modadd_2layer", "test_only_tiny", "induction"):
        spec = load_family(family).spec
        raw = json.loads((load_family(family).root / "reports" / "default.json").read_text())["views"]
        views = [v if isinstance(v, str) else v["figure"] for v in raw]
        for name, fig in spec["figures"].items():
            assert name in REGISTRY and name in views
            assert fig["source"] == "history" or fig["source"] in spec["analyzers"]
        offered = {f["source"] for f in spec["figures"].values()}
        assert set(spec["analyzers"]) <= offered, family


def test_optional_views_drop_out_where_the_artifact_is_missing():
    """The default reports list every view as optional: a config running only some
    analyzers gets those views; a non-optional missing view is still an error."""
    from tdw.config import ConfigError
    from tdw.pages.report_spec import load_report_spec

    family = load_family("modadd")
    figures = {
        k: v for k, v in family.spec["figures"].items() if v["source"] in ("history", "embedding_frequencies", "neuron_clusters")
    }
    spec = load_report_spec(family.root / "reports" / "default.json", figures, family.spec["figures"])
    assert [v["figure"] for v in spec["views"]] == ["loss_curves", "embedding_frequencies", "neuron_clusters"]
    with pytest.raises(ConfigError, match="embedding_frequencies"):
        load_report_spec(
            family.root / "reports" / "default.json", {"loss_curves": figures["loss_curves"]}, family.spec["figures"]
        )


def test_neuron_activations(artifacts):
    art = artifacts["neuron_activations"]
    fig, fr = make("neuron_activations", art, neuron=1)
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), art["grid"][-1, 1].astype(np.float64))
    np.testing.assert_array_equal(np.asarray(fig.data[1].z), np.abs(art["fourier"][-1, 1].astype(np.float64)))
    assert fig.data[0].zmid == 0 and fig.data[0].zmin == -fig.data[0].zmax
    assert f"neuron {int(art['neuron'][1])}" in fig.layout.annotations[0].text
    assert fr.epochs == list(EPOCHS) and len(fr.updates) == 3
    np.testing.assert_allclose(fr.updates[0]["z"][0], art["grid"][0, 1], rtol=1e-3, atol=1e-6)
    assert {"a", "b"} <= set(axis_titles(fig))
    _, fewer = make("neuron_activations", art, max_frames=2)
    assert fewer.epochs == [0, 20]
    default, _ = make("neuron_activations", art)  # neuron null: the most varying final grid
    spread = art["grid"][-1].astype(np.float64).reshape(len(art["neuron"]), -1).std(1)
    np.testing.assert_array_equal(np.asarray(default.data[0].z), art["grid"][-1, spread.argmax()].astype(np.float64))


def test_neuron_activations_axes_of_modadd_are_tokens(artifacts):
    fig, _ = make("neuron_activations", artifacts["neuron_activations"], neuron=1)
    assert (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text) == ("b", "a")
    assert (fig.layout.xaxis2.title.text, fig.layout.yaxis2.title.text) == (
        "component of b (2k-1 cos k, 2k sin k)",
        "component of a",
    )
    assert fig.data[0].hovertemplate == "a %{y}, b %{x}<br>activation %{z:.3f}<extra></extra>"
    assert fig.data[0].customdata is None


def test_neuron_activations_axes_of_modmul_are_in_log_space(tmp_path):
    """a * b mod 23 relabelled by discrete log (g = 5): the grid's axes are the exponents i, j
    of a = 5^i, b = 5^j, so they say so, and each cell's hover data is its two tokens."""
    from tdw.io.checkpoint import save_checkpoint
    from tdw.tasks.modular import Task

    config = run_config(P, KEYS, operation="mul")
    config["task"]["relabel"] = "discrete_log"
    ckpt = tmp_path / "checkpoint_epoch_00000.safetensors"
    save_checkpoint(ckpt, fourier_weights(P, KEYS), {"epoch": 0, "config": config})
    run_analyzer("neuron_activations", {}, [ckpt], write_caches([ckpt], tmp_path / "cache"), tmp_path / "na.h5", {})
    art = load_artifact(tmp_path / "na.h5")
    fig, _ = make("neuron_activations", art, neuron=0)
    assert fig.layout.xaxis.title.text == "j = log_5 b (b = 5^j)" and fig.layout.yaxis.title.text == "i = log_5 a (a = 5^i)"
    assert fig.layout.xaxis2.title.text.startswith("component of log_5 b")
    assert fig.layout.yaxis2.title.text == "component of log_5 a"
    assert "a = 5^i = %{customdata[0]}" in fig.data[0].hovertemplate
    assert "b = 5^j = %{customdata[1]}" in fig.data[0].hovertemplate
    powers = [pow(5, i, P) for i in range(P - 1)]  # the tokens of exponents 0..21, independently
    assert Task("mul", P, "discrete_log").group.tokens.tolist() == powers
    cells = np.asarray(fig.data[0].customdata)  # [i, j, (a, b)]
    assert cells.shape == (P - 1, P - 1, 2)
    assert cells[3, 7].tolist() == [powers[3], powers[7]] and cells[21, 0].tolist() == [powers[21], 1]
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), art["grid"][-1, 0].astype(np.float64))


def test_neuron_clusters(artifacts):
    art = artifacts["neuron_clusters"]
    fig, fr = make("neuron_clusters", art)
    d_mlp = art["fve"].shape[1]
    sizes = [np.asarray(t.y) for t in fig.data[1:]]
    np.testing.assert_array_equal(np.sum(sizes, axis=0), np.full(len(EPOCHS), d_mlp))
    names = [t.name for t in fig.data[1:]]
    assert names == ["k = 3", "k = 7", "other k", "none"]
    np.testing.assert_array_equal(sizes[0][-1], J)  # the construction puts J neurons on each key
    z = np.asarray(fig.data[0].z)  # [frequency, sorted neuron]
    np.testing.assert_array_equal(np.sort(z, axis=1), np.sort(art["fve"][-1].T, axis=1))
    assert z[2, :J].min() > 0.85  # frequency 3's neurons come first
    assert fr.epochs == list(EPOCHS) and fig.layout.legend.x > 1
    assert {"epoch", "neurons", "frequency k"} <= set(axis_titles(fig))


def test_progress_figures(artifacts):
    art = artifacts["progress_measures"]
    fig, fr = make("progress_losses", art)
    assert fr is None and [t.name for t in fig.data] == ["train", "test", "restricted", "excluded"]
    for trace, key in zip(fig.data, ("train_loss", "test_loss", "restricted_loss", "excluded_loss_all"), strict=True):
        np.testing.assert_array_equal(trace.y, art[key])
    assert fig.layout.yaxis.type == "log" and fig.layout.xaxis.title.text == "epoch"
    fig, _ = make("progress_weights", art)
    np.testing.assert_array_equal(fig.data[0].y, art["gini_embed"])
    np.testing.assert_array_equal(fig.data[1].y, art["gini_unembed"])
    np.testing.assert_array_equal(fig.data[2].y, art["total_sum_sq_weights"])
    assert {"Gini coefficient", "sum of squares", "epoch"} <= set(axis_titles(fig))


def test_attention(artifacts):
    art = artifacts["attention"]
    fig, fr = make("attention", art)
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), art["mean_pattern"][-1])
    for h, trace in enumerate(fig.data[1:]):
        np.testing.assert_array_equal(trace.y, art["pos0_minus_pos1"][:, h])
    assert len(fig.data) == 1 + art["mean_pattern"].shape[1]
    assert fr.epochs == list(EPOCHS) and fr.traces == [0]
    np.testing.assert_allclose(fr.updates[0]["z"][0], art["mean_pattern"][0], rtol=1e-3)
    assert {"source position", "epoch"} <= set(axis_titles(fig))


def test_dimensionality(artifacts):
    art = artifacts["dimensionality"]
    fig, _ = make("dimensionality", art)
    n_hooks = len(art["hook"])
    assert len(fig.data) == 2 * n_hooks
    np.testing.assert_array_equal(fig.data[0].y, art["participation_ratio"][:, 0])
    np.testing.assert_array_equal(fig.data[n_hooks + 1].y, art["effective_rank"][:, 1])
    assert fig.data[0].name == art["hook"][0].decode()


def test_transitions(artifacts):
    art = artifacts["transitions"]
    fig, _ = make("transitions", art)
    np.testing.assert_allclose(fig.data[0].y, np.log10(art["total_sum_sq_weights"]))
    np.testing.assert_array_equal(fig.data[1].y, art["gini_embed"])
    bands = [s for s in fig.layout.shapes if s.type == "rect"]
    found = [
        (b.decode(), lo, hi) for b, lo, hi in zip(art["boundary"], art["boundary_lo"], art["boundary_hi"], strict=True) if lo >= 0
    ]
    assert found, "the handmade history groks: boundaries expected"
    for name, lo, hi in found:
        assert any(s.name == name and (s.x0, s.x1) == (lo, hi) for s in bands)
    assert len(bands) == 2 * (len(found) + len(art["jump_lo"]))  # one per panel


def test_geometry(artifacts):
    art = artifacts["geometry"]
    fig, fr = make("geometry", art)
    keys = len(art["key_frequency"])
    assert sorted(art["key_frequency"].tolist()) == list(KEYS) and len(fig.data) == 2 * keys
    np.testing.assert_array_equal(fig.data[0].x, art["embed_circle"][-1, 0, :, 0])
    np.testing.assert_array_equal(fig.data[keys].y, art["neuron_circle"][-1, 0, :, 1])
    assert fr.epochs == list(EPOCHS) and len(fr.updates[0]["x"]) == 2 * keys
    radius = np.hypot(fig.data[0].x, fig.data[0].y)
    assert radius.std() < 1e-6 * radius.mean()  # the handmade embedding is an exact circle


def test_ablations(artifacts):
    art = artifacts["ablations"]
    fig, fr = make("ablations", art)
    groups = [g.decode() for g in art["group"]]
    m, s = [x.decode() for x in art["mode"]].index("mean"), [x.decode() for x in art["subset"]].index("test")
    np.testing.assert_array_equal(fig.data[0].y, art["loss_change"][-1, :, m, s])
    assert list(fig.data[0].x) == [g.replace("_", " ") for g in groups]
    assert fig.data[0].y[groups.index("cluster_3")] > 0  # removing a key cluster hurts
    np.testing.assert_array_equal(fig.data[1].y, art["n_dead"])
    assert fr.epochs == list(EPOCHS)
    assert {"loss change", "epoch"} <= set(axis_titles(fig))


def test_weight_norms(artifacts):
    art = artifacts["weight_norms"]
    fig, _ = make("weight_norms", art)
    names = [n.decode() for n in art["parameter"]]
    assert [t.name for t in fig.data[:-1]] == names
    i = names.index("embed.W_E")
    np.testing.assert_array_equal(fig.data[i].y, art["norm"][:, i])
    np.testing.assert_allclose(fig.data[-1].y, (art["norm"] ** 2).sum(1))
    assert fig.layout.yaxis.type == "log"


def test_views_serialise(artifacts):
    """Each view goes through the report's payload path (JSON, frame mapping)."""
    for name, source in (("neuron_activations", "neuron_activations"), ("geometry", "geometry"), ("ablations", "ablations")):
        view = build_view(name, {"artifact": artifacts[source]}, figure_params(name), name)
        payload = view.payload(list(EPOCHS))
        assert payload["frame_of"] == [0, 1, 2]
        json.dumps(payload)
