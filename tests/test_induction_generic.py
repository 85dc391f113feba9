"""The generic analyzers on the induction family: dimensionality of activations kept at every
position measures the valid (sequence, position) rows only (a rank-3 residual stream with
full-rank junk on the padding measures rank 3, with the participation ratio of an independent
SVD); the analyzers whose maths needs the grid tasks (attention from the `=` query, geometry)
stop a family or a config that asks for them at DAG build, naming the file, the key and what
measures it instead."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tdw.analyzers.runner import run_analyzer
from tdw.config import ConfigError, load
from tdw.families import load_family
from tdw.io.checkpoint import save_checkpoint
from tdw.io.h5 import load_artifact, write_h5
from tdw.layout import VariantLayout

ROOT = Path(__file__).resolve().parents[1]
V, N, D = 7, 10, 12
ARCH = {"p": V, "n_layers": 2, "d_model": D, "n_heads": 2, "d_mlp": 4, "n_ctx": N, "attn_only": True, "unembed_equals": False}
HOOK, LAST = "blocks.1.hook_resid_post", "blocks.0.hook_attn_out"


def _run(tmp: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    """One checkpoint and a sequence cache: 20 rows, the last 8 padded after 6 tokens; HOOK at
    every position (valid rows in a 3-dimensional subspace, padding full-rank junk), LAST at
    the last position only."""
    rng = np.random.default_rng(0)
    lengths = np.array([N] * 12 + [6] * 8)
    valid = np.arange(N)[None] < lengths[:, None]
    basis = np.linalg.qr(rng.normal(size=(D, 3)))[0].T  # [3, D] orthonormal
    act = rng.normal(0, 50, (20, N, D))  # the padding positions' junk
    act[valid] = (rng.normal(size=(int(valid.sum()), 3)) * [3.0, 2.0, 1.0]) @ basis
    last = rng.normal(size=(20, D))
    weights = {"embed.W_E": np.zeros((V + 1, D), np.float32)}
    config = {"architecture": ARCH, "task": {"operation": "induction"}, "seed": 0}
    ckpt = VariantLayout.at(tmp).checkpoint(5)
    save_checkpoint(ckpt, weights, {"epoch": 5, "config": config})
    datasets = {
        "tokens": (rng.integers(0, V, (20, N)).astype(np.int32), "batch pos"),
        "length": (lengths.astype(np.int32), "batch"),
        HOOK: (act.astype(np.float32), "batch pos d_model"),
        LAST: (last.astype(np.float32), "batch d_model"),
    }
    write_h5(tmp / "cache.h5", datasets, {})
    run_analyzer("dimensionality", {"hooks": [HOOK, LAST]}, [ckpt], [tmp / "cache.h5"], tmp / "dim.h5", {})
    return load_artifact(tmp / "dim.h5"), act[valid].astype(np.float32).astype(np.float64), last.astype(np.float32)


def _participation(x: np.ndarray) -> float:
    s = np.linalg.svd(x - x.mean(0), compute_uv=False)
    return float((s**2).sum() ** 2 / (s**4).sum())


def test_dimensionality_of_sequence_activations_counts_valid_positions_only(tmp_path):
    art, rows, last = _run(tmp_path)
    assert [h.decode() for h in art["hook"]] == [HOOK, LAST]
    assert art["energy_rank"][0, 0] <= 3 and art["participation_ratio"][0, 0] == pytest.approx(_participation(rows), rel=1e-6)
    assert 1.5 < art["participation_ratio"][0, 0] < 3.0  # padding junk (std 50, rank 12) would dominate it
    # a hook kept at the last position: the rows are the 20 sequences
    assert art["participation_ratio"][0, 1] == pytest.approx(_participation(last.astype(np.float64)), rel=1e-6)


def test_the_family_offers_ablations_and_dimensionality_and_reads_what_its_cache_keeps():
    family = load_family("induction", str(ROOT / "families"))
    assert {"ablations", "dimensionality"} <= set(family.spec["analyzers"])
    assert not {"attention", "geometry"} & set(family.spec["analyzers"])
    for hook in family.spec["analyzers"]["dimensionality"]["params"]["hooks"]:
        assert family.spec["cache"][hook]["positions"] == "all"


def _families(tmp_path: Path) -> Path:
    for name in ("induction", "modadd"):
        shutil.copytree(ROOT / "families" / name, tmp_path / "families" / name)
    load_family.cache_clear()
    return tmp_path / "families"


@pytest.mark.parametrize(
    ("name", "instead"),
    [("attention", "'induction' analyzer's mean_pattern"), ("geometry", "random token sequences have no group")],
)
def test_grid_analyzers_are_refused_at_dag_build(tmp_path, name, instead):
    families = _families(tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text(
        json.dumps({"family": "induction", "sweep": {"p": [11], "seed": [0]}, "checkpoints": [0, 5], "analyzers": [name]})
    )
    with pytest.raises(ConfigError, match=rf"c.yaml: key 'analyzers.{name}': family 'induction' does not offer it: .*{instead}"):
        load(config, str(families))
    path = families / "induction" / "family.json"
    spec = json.loads(path.read_text())
    spec["analyzers"][name] = {}
    path.write_text(json.dumps(spec))
    load_family.cache_clear()
    with pytest.raises(ConfigError, match=rf"{path}: key 'analyzers.{name}': .* not 'induction'.*; on 'induction': .*{instead}"):
        load_family("induction", str(families))
    load_family.cache_clear()
