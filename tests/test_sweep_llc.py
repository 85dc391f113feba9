"""The LLC on the sweep page: the plotted points and the table behind them equal the llc
artifact's mean at the chosen checkpoint, with its std over chains as each seed's error bar;
the checkpoint is the final one or one chosen by epoch, and an epoch the artifact lacks or a
malformed measure is an error naming the file."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from test_sweep_page import sweep_variants

from tdw import analyzers
from tdw.analyzers.runner import run_analyzer
from tdw.families import load_family
from tdw.io.checkpoint import load_weights, read_metadata, save_checkpoint
from tdw.io.h5 import load_artifact
from tdw.models.architecture import ModelConfig
from tdw.models.weights import init_params
from tdw.pages.sweep import build_sweep, variant_values
from tdw.pages.sweep_spec import load_sweep_spec, sweep_file
from tdw.validation import ConfigError

ALL = list(analyzers.REGISTRY)
LLC = {"chains": 3, "draws": 6, "burn_in": 2, "batch_size": 16, "epsilon": 1e-4, "nbeta": 20.0}


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    """Two weight decays x two seeds of synthetic p = 13 variants, each with a real llc artifact
    over its four checkpoints (distinct estimates: the LLC seed differs per variant)."""
    root = tmp_path_factory.mktemp("sweep_llc")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = sweep_variants(root)
        for i, v in enumerate(out.values()):
            ckpts = sorted(v["files"].folder("checkpoints").glob("*.safetensors"))
            _whole_models(ckpts, seed=i)
            art = v["files"].dir / "artifacts" / "llc.h5"
            run_analyzer("llc", LLC | {"seed": i}, ckpts, None, art, {})
            v["artifacts"]["llc"] = art
    finally:
        torch.set_num_threads(threads)
    return out


def _whole_models(ckpts, seed: int) -> None:
    """Synthetic checkpoints hold only W_E: give them the rest of an initialised model."""
    cfg = ModelConfig(**read_metadata(ckpts[0])["config"]["architecture"])
    rest = {k: v.numpy() for k, v in init_params(cfg, seed).items() if k != "embed.W_E"}
    for path in ckpts:
        meta = read_metadata(path)
        save_checkpoint(path, load_weights(path) | rest, {k: meta[k] for k in ("epoch", "config")})


def _page_data(page: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="tdw-data">(.*?)</script>', page, re.S).group(1))


def _spec(tmp_path, measures):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"measures": measures}))
    return load_sweep_spec(path, ["llc", "embedding_frequencies"], ALL)


def test_the_default_sweep_page_plots_the_final_llc_with_the_chain_std(variants):
    family = load_family("modadd")
    spec = load_sweep_spec(sweep_file(family, "default"), family.spec["analyzers"], ALL)
    (m,) = [m for m in spec["measures"] if m["name"] == "final_llc"]
    assert (m["source"], m["dataset"], m["error"], m["at"]) == ("llc", "llc_mean", "llc_std", "final")
    spec = spec | {"measures": [m]}
    data = _page_data(build_sweep(spec, "modadd", "default", variants))
    arts = {n: load_artifact(v["artifacts"]["llc"]) for n, v in variants.items()}
    expected = {n: (float(a["llc_mean"][-1]), float(a["llc_std"][-1])) for n, a in arts.items()}
    assert len({mean for mean, _ in expected.values()}) == 4 and all(np.isfinite(s) for _, s in expected.values())
    # the table behind the plot (the page's CSV download)
    head, *rows = data["tables"][0]
    assert head == ["variant", "train.weight_decay", "seed", "final_llc", "final_llc_error"]
    assert {r[0]: (r[3], r[4]) for r in rows} == expected
    # the plot: one seeds trace per figure, every point the artifact's mean with its chain std as the bar
    seeds = [t for t in data["figures"][1]["data"] if t["name"].endswith("(bars: llc_std)")]
    (trace,) = seeds
    got = dict(zip(trace["text"], zip(trace["y"], trace["error_y"]["array"], strict=True), strict=True))
    assert got == expected
    means = [t for t in data["figures"][1]["data"] if "mean" in t["name"]]
    for wd in (0.1, 1.0):
        at = means[0]["x"].index(wd)
        assert means[0]["y"][at] == pytest.approx(np.mean([expected[f"wd{wd}_seed{s}"][0] for s in (0, 1)]))


def test_a_chosen_checkpoint_is_read_by_its_epoch(variants, tmp_path):
    name, v = next(iter(variants.items()))
    art = load_artifact(v["artifacts"]["llc"])
    epoch = int(art["epoch"][1])
    spec = _spec(tmp_path, [{"artifact": "llc", "dataset": "llc_mean", "error": "llc_std", "at": epoch}])
    (m,) = spec["measures"]
    assert m["name"] == f"llc_llc_mean_epoch{epoch}"
    values = variant_values(spec, v)
    assert values == {m["name"]: pytest.approx(float(art["llc_mean"][1])), f"{m['name']}_error": pytest.approx(art["llc_std"][1])}
    assert art["llc_mean"][1] != art["llc_mean"][-1]
    missing = _spec(tmp_path, [{"artifact": "llc", "dataset": "llc_mean", "at": epoch + 1}])
    with pytest.raises(ValueError, match=rf"llc.h5: dataset 'llc_mean': 'at': no checkpoint of epoch {epoch + 1}"):
        variant_values(missing, v)


@pytest.mark.parametrize(
    ("measure", "message"),
    [
        ({"artifact": "llc", "dataset": "llc_mean", "at": -3}, "key 'at': -3; expected 'final', 'all' or a checkpoint's epoch"),
        ({"artifact": "llc", "dataset": "llc_mean", "at": True}, "key 'at': True"),
        ({"artifact": "llc", "dataset": "llc_mean", "error": 1}, "key 'error': 1; expected the name of a dataset"),
    ],
)
def test_bad_llc_measures_name_the_file_and_key(tmp_path, measure, message):
    with pytest.raises(ConfigError, match="s.json") as err:
        _spec(tmp_path, [measure])
    assert message in str(err.value)
