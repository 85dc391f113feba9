"""Safetensors checkpoints and HDF5 files: round trips, metadata, corrupt files, atomicity."""

import numpy as np
import pytest

from tdw.io.atomic import atomic_path
from tdw.io.checkpoint import CorruptFileError, is_complete, load_weights, read_metadata, save_checkpoint
from tdw.io.h5 import open_h5, write_h5


def test_safetensors_round_trip_with_metadata(tmp_path):
    rng = np.random.default_rng(0)
    weights = {"embed.W_E": rng.normal(size=(14, 8)).astype(np.float32), "mlp.b_in": np.zeros(5, np.float32)}
    meta = {"epoch": 120, "config": {"task": {"p": 13}, "seed": 4}, "provenance": {"git_commit": "abc"}}
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, weights, meta)
    back = load_weights(path)
    assert set(back) == set(weights)
    for k in weights:
        np.testing.assert_array_equal(back[k], weights[k])
    got = read_metadata(path)
    assert got["epoch"] == 120 and got["config"]["seed"] == 4 and got["format"] == "tdw-checkpoint/1"
    assert got["provenance"]["git_commit"] == "abc"


def test_truncated_checkpoint_raises_error_naming_the_file(tmp_path):
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, {"w": np.ones((64, 64), np.float32)}, {"epoch": 1})
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CorruptFileError, match=str(path)):
        load_weights(path)


def test_is_complete_detects_truncated_data(tmp_path):
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, {"w": np.ones((64, 64), np.float32)}, {"epoch": 1})
    assert is_complete(path)
    path.write_bytes(path.read_bytes()[:-100])  # header intact, data short
    assert not is_complete(path)
    assert not is_complete(tmp_path / "missing.safetensors")


def test_corrupt_h5_raises_error_naming_the_file(tmp_path):
    path = tmp_path / "c.h5"
    write_h5(path, {"x": (np.arange(10.0), "batch")}, {"epoch": 3})
    path.write_bytes(b"garbage" + path.read_bytes()[100:])
    with pytest.raises(CorruptFileError, match=str(path)):
        with open_h5(path):
            pass


def test_h5_datasets_carry_dims(tmp_path):
    path = tmp_path / "c.h5"
    write_h5(path, {"x": (np.zeros((3, 4)), "batch d_model")}, {"hooks": {"a": 1}})
    with open_h5(path) as fh:
        assert fh["x"].attrs["dims"] == "batch d_model"
    with pytest.raises(ValueError, match="dims"):
        write_h5(path, {"x": (np.zeros((3, 4)), "batch")}, {})


def test_failed_write_leaves_previous_file_and_no_partial(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old result")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old result"
    assert list(tmp_path.iterdir()) == [path]


def test_atomic_writes_follow_the_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "ck.safetensors", {"w": np.ones(3, np.float32)}, {"epoch": 0})
    finally:
        os.umask(old)
    assert (tmp_path / "ck.safetensors").stat().st_mode & 0o777 == 0o644
