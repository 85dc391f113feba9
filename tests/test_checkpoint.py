"""Safetensors checkpoints and HDF5 files: round trips, metadata, content hashes verified by
every reader, corrupt files, atomicity."""

import re
import shutil

import numpy as np
import pytest

from tdw.io.atomic import atomic_path
from tdw.io.checkpoint import (
    ContentHashError,
    CorruptFileError,
    content_hash,
    is_complete,
    is_intact,
    load_tensors,
    load_torch,
    load_weights,
    read_metadata,
    save_checkpoint,
)
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


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real p = 13 run (the default architecture, ~0.8 MB per checkpoint), epochs 0, 2 and 3."""
    from tdw.config import TrainConfig, Variant
    from tdw.layout import VariantLayout
    from tdw.models.architecture import ModelConfig
    from tdw.train.trainer import TrainJob, train_variant

    variant = Variant("p13_seed0", 13, 0, 0.5, (0, 2, 3))
    files = VariantLayout(tmp_path_factory.mktemp("trained") / "results", "modadd", variant.name)
    job = TrainJob("modadd", "add", ModelConfig(p=13), TrainConfig(train_frac=0.5), variant, files.dir)
    return job, train_variant(job)


def overwrite_data(path, n=8000, offset=1000):
    """Overwrite ``n`` bytes of a checkpoint's tensor data with 0x7f (float32 3.4e38), same size."""
    raw = bytearray(path.read_bytes())
    start = 8 + int.from_bytes(raw[:8], "little") + offset
    raw[start : start + n] = b"\x7f" * n
    size = path.stat().st_size
    path.write_bytes(bytes(raw))
    assert path.stat().st_size == size


def mismatch(path):
    """The message every reader gives for ``path`` after ``overwrite_data``."""
    recorded = read_metadata(path)["content_sha256"]
    return (
        rf"{re.escape(str(path))}: content hash mismatch: the header records content_sha256 {recorded}, "
        r"the tensors hash to [0-9a-f]{64} \(the file changed after it was written\); delete it .* and rerun snakemake"
    )


def test_the_table_header_and_tensors_agree_on_the_hash(trained):
    job, meta = trained
    for entry in meta["checkpoints"]:
        path = job.layout.dir / entry["file"]
        assert entry["content_sha256"] == read_metadata(path)["content_sha256"] == content_hash(load_weights(path))
        assert re.fullmatch(r"[0-9a-f]{64}", entry["content_sha256"]) and is_intact(path)
    assert len({e["content_sha256"] for e in meta["checkpoints"]}) == 3


def _readers(tmp_path):
    """Every way the workbench reads a checkpoint's weights, as a call on its path."""
    from tdw.analyzers.runner import checkpoint_view, run_analyzer
    from tdw.cache.forward import cache_checkpoints
    from tdw.config import Variant, load_family

    family, variant = load_family("modadd"), Variant("p13_seed0", 13, 0, 0.5, (3,))
    llc = {"chains": 1, "draws": 1, "burn_in": 0, "batch_size": 16}
    return {
        "load_weights": load_weights,
        "load_torch": load_torch,
        "analyzer view": lambda path: checkpoint_view(path, None).weights,
        "analyzer run": lambda path: run_analyzer("weight_norms", {}, [path], None, tmp_path / "norms.h5", {}),
        "llc": lambda path: run_analyzer("llc", llc, [path], None, tmp_path / "llc.h5", {}),
        "forward pass": lambda path: cache_checkpoints(family, variant, "full", [path], [tmp_path / "cache.h5"]),
    }


def test_every_reader_refuses_a_checkpoint_overwritten_in_place(trained, tmp_path):
    job, _ = trained
    path = tmp_path / "checkpoint_epoch_00003.safetensors"
    shutil.copyfile(job.layout.checkpoint(3), path)
    readers = _readers(tmp_path)
    readers["forward pass"](path)  # untouched, it reads (and the forward pass writes its cache)
    assert (tmp_path / "cache.h5").exists()
    (tmp_path / "cache.h5").unlink()
    overwrite_data(path)
    assert is_complete(path)  # the same size: only the hash tells
    assert not is_intact(path)
    for read in readers.values():
        with pytest.raises(ContentHashError, match=mismatch(path)):
            read(path)
    assert not any(tmp_path.glob("*.h5"))  # nothing was written from the corrupt weights


def test_a_checkpoint_without_a_hash_is_refused(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "ck.safetensors"
    save_file({"w": np.ones(3, np.float32)}, str(path), metadata={"epoch": "0"})
    with pytest.raises(ContentHashError, match=rf"{re.escape(str(path))}: the header records no content_sha256"):
        load_weights(path)


def test_resume_retrains_past_a_corrupt_state_checkpoint(trained, tmp_path):
    """The train state's checkpoint (a hard link of the output), then its snapshot, overwritten
    in place: a rerun does not resume from the snapshot but trains again, to the same checkpoints."""
    from dataclasses import replace

    from tdw.train.trainer import train_variant

    job, first = trained
    copy = replace(job, out_dir=tmp_path / "results" / "modadd" / job.variant.name)
    shutil.copytree(job.layout.dir, copy.out_dir)  # copies: the fixture's files stay intact
    again = train_variant(copy)
    assert again["timings"]["resumed_from_epoch"] == 3  # an intact train state resumes
    overwrite_data(copy.layout.state_checkpoints / "checkpoint_epoch_00002.safetensors", n=2000)
    copy.layout.checkpoint(2).unlink()
    again = train_variant(copy)
    assert again["timings"]["resumed_from_epoch"] == 0
    assert [c["content_sha256"] for c in again["checkpoints"]] == [c["content_sha256"] for c in first["checkpoints"]]
    assert all(is_intact(copy.layout.checkpoint(e)) for e in (0, 2, 3))
    overwrite_data(copy.layout.snapshot, n=2000)  # the optimizer state changed in place: not resumed from
    again = train_variant(copy)
    assert again["timings"]["resumed_from_epoch"] == 0
    assert [c["content_sha256"] for c in again["checkpoints"]] == [c["content_sha256"] for c in first["checkpoints"]]
    tensors, meta = load_tensors(copy.layout.snapshot)  # the snapshot carries its own hash, of every dtype
    assert meta["content_sha256"] == content_hash(tensors) and tensors["test_epoch"].dtype == np.int64
