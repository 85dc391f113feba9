"""The ε × nβ calibration as an analyzer: each cell of its artifact is the llc analyzer's own
estimate of the chosen checkpoint; its figure draws exactly the artifact's traces and grid,
with diverged chains red and their cells marked; bad grids are refused when the config
resolves."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from test_llc import checkpoints, one_thread, params  # noqa: F401 (module fixtures)

from tdw.analyzers import llc as llc_analyzer
from tdw.analyzers.runner import checkpoint_view, run_analyzer
from tdw.config import ConfigError, resolve
from tdw.figures import llc_calibration
from tdw.io.h5 import load_artifact
from tdw.params import resolve_params

GRID = {"epsilons": [1e-4, 1.0], "nbetas": ["n", 20.0], "chains": 2, "draws": 6, "burn_in": 0, "batch_size": 18}


@pytest.fixture(scope="module")
def artifact(checkpoints, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("calibration") / "llc_calibration.h5"
    run_analyzer("llc_calibration", GRID | {"epoch": 0}, checkpoints, None, out, {})
    return load_artifact(out)


def test_each_cell_is_the_llc_estimate_of_the_chosen_checkpoint(artifact, checkpoints):  # noqa: F811
    assert int(artifact["checkpoint_epoch"]) == 0 and list(artifact["epsilon"]) == [1e-4, 1.0]
    assert artifact["loss_trace"].shape == (2, 2, 2, 6) and artifact["diverged"].dtype == bool
    view = checkpoint_view(checkpoints[0], None)
    for i, eps in enumerate(GRID["epsilons"]):
        for j, nb in enumerate(GRID["nbetas"]):
            one, s = llc_analyzer.estimate(view, params(epsilon=eps, nbeta=nb, chains=2, draws=6, burn_in=0, batch_size=18))
            np.testing.assert_array_equal(artifact["llc"][i, j], one.llc)
            np.testing.assert_array_equal(artifact["loss_trace"][i, j], one.loss_trace)
            np.testing.assert_array_equal(artifact["diverged"][i, j], one.diverged)
            assert artifact["nbeta_value"][i, j] == s.nbeta
    assert artifact["diverged"][1].all() and not artifact["diverged"][0].any()  # ε = 1 blows up; 1e-4 does not


def test_an_epoch_without_a_checkpoint_is_named(checkpoints, tmp_path):  # noqa: F811
    with pytest.raises(ValueError, match=r"llc_calibration: epoch 7: no such checkpoint; the run's epochs: \[0, 300\]"):
        run_analyzer("llc_calibration", GRID | {"epoch": 7}, checkpoints, None, tmp_path / "x.h5", {})
    assert not (tmp_path / "x.h5").exists()


def test_figure_draws_the_artifact(artifact):
    fig = llc_calibration.build({"artifact": artifact}, resolve_params(llc_calibration.PARAMS, {}, "t"), "calibration")
    (heat,) = [t for t in fig.data if t.type == "heatmap"]
    np.testing.assert_array_equal(np.asarray(heat.z, dtype=float), artifact["llc_mean"])
    assert list(heat.x) == ["n", "20.0"] and list(heat.y) == ["0.0001", "1"]
    lines = [t for t in fig.data if t.type == "scatter" and t.mode == "lines"]
    assert len(lines) == 2 * 2 * 2 * 2  # cells x chains x (loss, distance)
    k = 0
    for i in range(2):
        for j in range(2):
            for c in range(2):
                loss, dist = lines[k], lines[k + 1]
                np.testing.assert_array_equal(loss.y, artifact["loss_trace"][i, j, c])
                np.testing.assert_array_equal(dist.y, artifact["distance_trace"][i, j, c])
                assert loss.line.color == ("#d62728" if artifact["diverged"][i, j, c] else "#1f77b4")
                k += 2
    (marks,) = [t for t in fig.data if t.type == "scatter" and t.mode == "markers"]
    assert list(zip(marks.x, marks.y, strict=True)) == [("n", "1"), ("20.0", "1")]  # the ε = 1 row diverged
    assert "2 diverged" in heat.text[1][0] and "diverged" not in heat.text[0][0]


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("epsilons", [], "expected a non-empty list"),
        ("epsilons", [1e-5, 2.0], "2.0: expected 0 < value <= 1"),
        ("nbetas", [0.0], "0.0: expected a finite number > 0"),
        ("chains", 0, "1 <= value <= 1024"),
        ("epoch", "last", "expected 'final' | integer"),
    ],
)
def test_bad_grids_are_refused_when_the_config_resolves(key, value, says):
    config = {"family": "modadd", "sweep": {"p": [13], "seed": [0]}, "analyzers": {"llc_calibration": {key: value}}}
    with pytest.raises(ConfigError) as info:
        resolve(config, "cfg.yaml")
    message = str(info.value)
    assert "cfg.yaml" in message and "analyzer 'llc_calibration'" in message and f"parameter {key!r}" in message
    assert says in message, message


@pytest.mark.slow
def test_calibration_runs_through_the_workflow(root, tmp_path):
    """The analyzer in the DAG on the tiny config (p = 13, the final of three checkpoints) and
    its figure rendered from the artifact."""
    from workflow_runs import run_snakemake

    from tdw.layout import VariantLayout

    files = VariantLayout(tmp_path / "results", "modadd", "p13_seed0_frac0.5")
    targets = [str(files.artifact("full", "llc_calibration")), str(files.figure("llc_calibration", "html"))]
    config = ["--config", f"results={tmp_path / 'results'}"]
    tiny = yaml.safe_load((root / "tests/configs/tiny.yaml").read_text())
    path = tmp_path / "calibrate.yaml"  # the family offers it on request: the config names it
    path.write_text(yaml.safe_dump(tiny | {"analyzers": ["embedding_frequencies", "llc_calibration"]}))
    proc = run_snakemake(tmp_path, path, "--cores", "1", *config, target_list=targets)
    assert proc.returncode == 0, proc.stderr[-3000:]
    art = load_artifact(files.artifact("full", "llc_calibration"))
    assert int(art["checkpoint_epoch"]) == 10 and list(art["epoch"]) == [0, 5, 10]
    assert art["llc_mean"].shape == (3, 2) and art["loss_trace"].shape == (3, 2, 2, 50)
    assert art["attrs"]["params"]["epsilons"] == [1e-5, 3e-5, 1e-4]
    assert files.figure("llc_calibration", "html").stat().st_size > 10_000
