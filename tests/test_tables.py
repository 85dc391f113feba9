"""Artifacts and histories as CSV and JSON tables (``python -m tdw tables``): checked against a
hand-built artifact with known values, a real analyzer artifact and history, and bad input."""

import csv
import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from tdw.io.checkpoint import CorruptFileError
from tdw.io.h5 import load_artifact, write_h5
from tdw.layout import VariantLayout
from tdw.pages.tables import TablesError, export_csv, export_json

EPOCHS = np.array([0, 10, 25])
HOOKS = np.array([b"blocks.0.hook_resid_mid", b"blocks.0.mlp.hook_post"])
FREQS = np.array([1, 2, 3, 4])


ATTRS = {"analyzer": "handmade", "params": {"energy": 0.9}, "p": 13}


def handmade(rank, fve) -> dict:
    return {
        "epoch": (EPOCHS, "epoch"),
        "hook": (HOOKS, "hook"),
        "frequency": (FREQS, "frequency"),
        "rank": (rank, "epoch hook"),
        "fve": (fve, "epoch neuron frequency"),
        "centred": (np.array(True), ""),
    }


@pytest.fixture
def artifact(tmp_path):
    rank = np.array([[1.5, 2.25], [3.0, 4.125], [0.1, np.nan]])
    fve = (np.arange(3 * 2 * 4, dtype=np.float32) / 7).reshape(3, 2, 4)  # 1/7 is not exact in float32
    path = tmp_path / "art.h5"
    write_h5(path, handmade(rank, fve), ATTRS)
    return path, rank, fve


def read_csv(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def test_csv_tables_hold_every_value_with_its_coordinates(artifact, tmp_path):
    path, rank, fve = artifact
    written = export_csv(path, tmp_path / "out")
    names = sorted(p.name for p in written)
    assert names == ["epoch__hook.csv", "epoch__neuron__frequency.csv", "meta.json"]
    header, rows = read_csv(tmp_path / "out/art/epoch__hook.csv")
    assert header == ["epoch", "hook", "rank"]
    expected = [[str(EPOCHS[i]), HOOKS[j].decode(), str(rank[i, j])] for i in range(3) for j in range(2)]
    assert rows == expected
    assert rows[-1][2] == "nan" and rows[0][2] == "1.5"
    header, rows = read_csv(tmp_path / "out/art/epoch__neuron__frequency.csv")
    assert header == ["epoch", "neuron", "frequency", "fve"]
    assert len(rows) == fve.size
    for e, n, f, v in rows:  # neuron has no coordinate: its index; float32 values read back exactly
        i, k = list(EPOCHS).index(int(e)), list(FREQS).index(int(f))
        assert np.float32(v) == fve[i, int(n), k]
    assert max(len(r[3]) for r in rows) <= 11  # shortest float32 form, not the float64 expansion
    meta = json.loads((tmp_path / "out/art/meta.json").read_text())
    assert meta["attrs"] == {"analyzer": "handmade", "params": {"energy": 0.9}, "p": 13}
    assert meta["scalars"] == {"centred": True}
    assert meta["tables"]["epoch__hook.csv"] == {"dims": ["epoch", "hook"], "columns": ["epoch", "hook", "rank"], "rows": 6}
    assert meta["source"] == str(path.resolve()) and "git_commit" in meta["exported_by"]


def test_json_holds_every_dataset(artifact, tmp_path):
    path, rank, fve = artifact
    (out,) = export_json(path, tmp_path / "out")
    doc = json.loads(out.read_text())
    data = doc["datasets"]
    assert data["rank"]["dims"] == ["epoch", "hook"] and data["rank"]["data"][2][1] is None  # NaN as null
    np.testing.assert_array_equal(np.array(data["rank"]["data"][:2]), rank[:2])
    np.testing.assert_array_equal(np.array(data["fve"]["data"], dtype=np.float32), fve)
    assert data["hook"]["data"] == [h.decode() for h in HOOKS] and data["centred"]["data"] is True
    assert doc["attrs"]["params"] == {"energy": 0.9}


def test_real_artifact_and_history(synthetic_variant, tmp_path):
    art = VariantLayout.at(synthetic_variant).artifact("full", "embedding_frequencies")
    written = export_csv(art, tmp_path, only=["frequency_norm"])
    arrays = load_artifact(art)
    table = [p for p in written if p.suffix == ".csv"]
    assert len(table) == 1
    header, rows = read_csv(table[0])
    dims = h5py.File(art)["frequency_norm"].attrs["dims"].split()
    assert header == [*dims, "frequency_norm"]
    values = np.array([float(r[-1]) for r in rows]).reshape(arrays["frequency_norm"].shape)
    np.testing.assert_array_equal(values.astype(arrays["frequency_norm"].dtype), arrays["frequency_norm"])
    assert [int(r[0]) for r in rows[:: values.shape[1]]] == list(arrays[dims[0]])  # the epoch column
    history = VariantLayout.at(synthetic_variant).history
    export_csv(history, tmp_path)
    header, rows = read_csv(tmp_path / "history/train_epoch.csv")
    h = load_artifact(history)
    assert header == ["train_epoch", "train_loss"] and len(rows) == len(h["train_loss"])
    np.testing.assert_array_equal([float(r[1]) for r in rows], h["train_loss"])


def test_bad_input_is_named_and_nothing_is_lost(artifact, tmp_path):
    path, _, _ = artifact
    out = tmp_path / "out"
    export_csv(path, out)
    before = (out / "art/epoch__hook.csv").read_text()
    with pytest.raises(TablesError, match="exists; pass --force"):
        export_csv(path, out)
    with pytest.raises(TablesError, match=r"no dataset\(s\) \['nope'\]"):
        export_csv(path, tmp_path / "other", only=["nope"])
    assert (out / "art/epoch__hook.csv").read_text() == before
    export_csv(path, out, only=["rank"], force=True)  # replaced whole
    assert sorted(p.name for p in (out / "art").iterdir()) == ["epoch__hook.csv", "meta.json"]
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(CorruptFileError, match="junk.h5"):
        export_csv(junk, out)
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as fh:
        fh["x"] = np.arange(3)
    with pytest.raises(TablesError, match="plain.h5: dataset 'x' has no 'dims'"):
        export_json(plain, out)
    assert sorted(p.name for p in out.iterdir()) == ["art"]  # no partial or temporary output


def test_command_line(artifact, tmp_path):
    path, _, _ = artifact
    cmd = [sys.executable, "-m", "tdw.pages.tables", str(path), "--out", str(tmp_path / "t"), "--format", "json"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(tmp_path / "t/art.json")]
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 2 and "art.json: exists; pass --force" in again.stderr


def test_tables_written_in_chunks_are_the_same(artifact, tmp_path, monkeypatch):
    import tdw.pages.tables

    path, _, _ = artifact
    export_csv(path, tmp_path / "whole")
    monkeypatch.setattr(tdw.pages.tables, "CHUNK", 5)  # 24 rows of fve in 5 chunks, the last one short
    export_csv(path, tmp_path / "chunks")
    for name in ("epoch__hook.csv", "epoch__neuron__frequency.csv"):
        assert (tmp_path / "chunks/art" / name).read_text() == (tmp_path / "whole/art" / name).read_text()


def test_files_without_dimension_scales_give_the_same_tables(artifact, tmp_path):
    """A file from before the axes were dimension scales (plain h5py, ``dims`` attributes only)."""
    path, rank, fve = artifact
    old = tmp_path / "old" / "art.h5"
    old.parent.mkdir()
    with h5py.File(old, "w") as fh:
        for name, (array, dims) in handmade(rank, fve).items():
            fh.create_dataset(name, data=array).attrs["dims"] = dims
        for key, value in ATTRS.items():
            fh.attrs[key] = json.dumps(value) if isinstance(value, dict) else value
    for export in (export_csv, export_json):
        new_files, old_files = export(path, tmp_path / "new_out"), export(old, tmp_path / "old_out")
        assert [p.name for p in new_files] == [p.name for p in old_files]
        for a, b in zip(new_files, old_files, strict=True):
            if a.suffix == ".csv":
                assert a.read_text() == b.read_text()
            else:
                doc_a, doc_b = json.loads(a.read_text()), json.loads(b.read_text())
                assert doc_a.pop("source") != doc_b.pop("source")
                assert doc_a.pop("exported_by")["git_commit"] == doc_b.pop("exported_by")["git_commit"]
                assert doc_a == doc_b
    with h5py.File(old, "a") as fh:
        fh.create_dataset("hook_count", data=np.zeros(3)).attrs["dims"] = "hook"  # 3 hooks here, 2 in 'hook'
    with pytest.raises(TablesError, match=r"dimension 'hook' has length 2 in dataset 'hook' and 3 in 'hook_count'"):
        export_csv(old, tmp_path / "bad")
