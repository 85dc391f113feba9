"""The check of existing outputs at DAG build (tdw.workflow.integrity) on real files: a
truncated HDF5 file and checkpoint, an empty file, a folder where a file is expected, and a
rerun of a finished workflow that regenerates a truncated artifact and cache."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from tdw.io.checkpoint import is_intact, save_checkpoint
from tdw.io.h5 import open_h5, write_h5
from tdw.workflow import integrity


@pytest.fixture
def files(tmp_path):
    """An intact HDF5 file and checkpoint, each with a truncated copy, an empty file and a folder."""
    h5, ck = tmp_path / "good.h5", tmp_path / "good.safetensors"
    write_h5(h5, {"x": (np.arange(5000.0), "batch")}, {"epoch": 3})
    save_checkpoint(ck, {"w": np.ones((64, 64), np.float32)}, {"epoch": 3})
    (tmp_path / "short.h5").write_bytes(h5.read_bytes()[:-100])
    (tmp_path / "short.safetensors").write_bytes(ck.read_bytes()[:-100])
    (tmp_path / "header.safetensors").write_bytes(ck.read_bytes()[:50])
    (tmp_path / "empty.h5").write_bytes(b"")
    (tmp_path / "folder.h5").mkdir()
    (tmp_path / "text.h5").write_text("not hdf5 at all")
    return tmp_path


def test_each_kind_of_broken_file_is_found_with_its_reason(files):
    h5_size = (files / "good.h5").stat().st_size
    ck_size = (files / "good.safetensors").stat().st_size
    names = ["good.h5", "good.safetensors", "short.h5", "short.safetensors", "header.safetensors", "empty.h5", "folder.h5"]
    found = integrity.find_broken([files / n for n in names + ["text.h5", "missing.h5"]])
    assert {b.path.name: b.reason for b in found} == {
        "short.h5": f"truncated: {h5_size - 100} bytes, its HDF5 superblock says {h5_size}",
        "short.safetensors": f"truncated: {ck_size - 100} bytes, its safetensors header says {ck_size}",
        "header.safetensors": "truncated: 50 bytes end inside the safetensors header",
        "empty.h5": "empty (0 bytes)",
        "folder.h5": "a folder where a file is expected",
        "text.h5": "not an HDF5 file (no HDF5 signature at its start)",
    }
    with pytest.raises(Exception, match="short.h5"):  # what the check spares a later job
        with open_h5(files / "short.h5"):
            pass


def test_broken_files_are_moved_aside_and_reported(files):
    lines = []
    found = integrity.check_outputs([files / "short.h5", files / "good.h5", files / "folder.h5"], log=lines.append)
    assert [b.path.name for b in found] == ["short.h5", "folder.h5"]
    assert not (files / "short.h5").exists() and (files / "good.h5").exists() and not (files / "folder.h5").exists()
    moved = sorted(p.name for p in files.glob("*.broken-*"))
    assert [re.sub(r"\d{8}T\d{6}Z", "T", m) for m in moved] == ["folder.h5.broken-T", "short.h5.broken-T"]
    assert re.fullmatch(
        rf"integrity: {files}/short.h5: truncated: .*; moved aside to short.h5.broken-\d{{8}}T\d{{6}}Z: this run regenerates it",
        lines[0],
    )
    assert len(lines) == 2


def test_a_dry_run_moves_nothing(files):
    lines = []
    found = integrity.check_outputs([files / "short.safetensors"], move=False, log=lines.append)
    assert len(found) == 1 and (files / "short.safetensors").exists() and not list(files.glob("*.broken-*"))
    assert lines == [
        f"integrity: {files}/short.safetensors: {found[0].reason}; a run (not this one) moves it aside to "
        "short.safetensors.broken-<UTC time> and regenerates it"
    ]


def test_a_folder_output_holding_a_broken_file_is_moved_as_a_whole(files):
    folder = files / "checkpoints"
    folder.mkdir()
    shutil.copyfile(files / "good.safetensors", folder / "a.safetensors")
    shutil.copyfile(files / "short.safetensors", folder / "b.safetensors")
    (found,) = integrity.check_outputs([], [folder], log=lambda line: None)
    assert found.path == folder and found.reason.startswith("holds b.safetensors: truncated")
    assert not folder.exists() and len(list(files.glob("checkpoints.broken-*/*.safetensors"))) == 2


def test_moving_aside_never_replaces_an_earlier_copy(tmp_path):
    for _ in range(2):
        (tmp_path / "a.h5").write_text("x")
        integrity.move_aside(tmp_path / "a.h5", now=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5.broken-19700101T000000Z", "a.h5.broken-19700101T000000Z-1"]


@pytest.mark.parametrize(
    "argv, runs",
    [
        (["snakemake", "--cores", "2"], True),
        (["snakemake", "-n"], False),
        (["snakemake", "-np", "--cores", "1"], False),
        (["snakemake", "--dry-run"], False),
        (["snakemake", "--summary"], False),
        (["snakemake", "--lint"], False),
        (["snakemake", "-j4", "-p"], True),
        (["snakemake", "-pt"], False),
        (["snakemake", "--cores", "1", "--", "-n"], True),
    ],
)
def test_which_command_lines_run_jobs(argv, runs):
    assert integrity.runs_jobs(argv) is runs


def test_planned_outputs_follow_the_config(tmp_path):
    from tdw.config import resolve

    (wb,) = [resolve({"family": "modadd", "sweep": {"p": [7], "seed": [0]}, "checkpoints": [0, 5], "results": str(tmp_path)})]
    files, folders = integrity.planned_outputs([wb])
    rel = sorted(str(p.relative_to(tmp_path / "modadd" / "p7_seed0")) for p in files)
    assert (
        "history.h5" in rel
        and "checkpoints/checkpoint_epoch_00005.safetensors" in rel
        and f"cache/{wb.probe}/epoch_00000.h5" in rel
    )
    assert f"artifacts/{wb.probe}/embedding_frequencies.h5" in rel and folders == []


@pytest.mark.slow
def test_a_rerun_regenerates_truncated_outputs_and_a_deleted_history(tmp_path):
    """A finished tiny run; its artifact and one cache truncated: a dry run names them and moves
    nothing, the run moves them aside and regenerates exactly them and what depends on them, and
    the figure renders again. A deleted history.h5 reruns training, which resumes at the end."""
    import h5py
    from workflow_runs import job_counts, run_snakemake, targets, write_config

    from tdw.io.variant import read_metadata_json
    from tdw.layout import RESULTS, VariantLayout

    config = write_config(tmp_path, [7], [0], epochs=[0, 5, 10], analyzers=["embedding_frequencies"])
    files = VariantLayout(RESULTS, "modadd", "p7_seed0_frac0.5")
    wanted = targets(config) + [str(files.figure(f, "html")) for f in ("embedding_frequencies", "loss_curves")]

    def snakemake(*options):
        proc = run_snakemake(tmp_path, config, *options, target_list=wanted)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
        return proc.stdout + proc.stderr

    snakemake("--cores", "2")
    artifact, cache, figure = (
        tmp_path / p
        for p in (
            files.artifact("full", "embedding_frequencies"),
            files.cache("full", 5),
            files.figure("embedding_frequencies", "html"),
        )
    )
    sizes = {}
    for path in (artifact, cache):
        sizes[path] = path.stat().st_size
        path.write_bytes(path.read_bytes()[: sizes[path] // 2])
    before = figure.stat().st_mtime_ns

    dry = snakemake("-n", "--cores", "2")
    for path in (artifact, cache):
        assert f"integrity: {path.relative_to(tmp_path)}: truncated: {sizes[path] // 2} bytes" in dry
    assert "a run (not this one) moves it aside" in dry and not list(tmp_path.rglob("*.broken-*"))

    out = snakemake("--cores", "2")
    assert out.count("moved aside to") == 2
    assert job_counts(out) == {"forward_cache_trained": 1, "analyze": 1, "render": 1}
    for path in (artifact, cache):
        (aside,) = path.parent.glob(f"{path.name}.broken-*")
        assert aside.stat().st_size == sizes[path] // 2  # kept as it was found
        with h5py.File(path, "r"):
            pass
    assert figure.stat().st_mtime_ns > before and "Nothing to be done" in snakemake("-n", "--cores", "2")

    (tmp_path / files.history).unlink()
    # Snakemake alone skips a missing file whose dependents are up to date: the default target lists it
    assert snakemake("--cores", "2").count("Nothing to be done") == 1
    plan = run_snakemake(tmp_path, config, "-n", "--cores", "2", target_list=[])
    assert job_counts(plan.stdout + plan.stderr).get("train") == 1, plan.stdout[-3000:]
    proc = run_snakemake(tmp_path, config, "--cores", "2", target_list=[str(files.history)])
    assert job_counts(proc.stdout + proc.stderr) == {"train": 1}, proc.stderr[-3000:]
    timings = read_metadata_json(tmp_path / files.metadata)["timings"]
    assert timings["resumed_from_epoch"] == 10 and timings["epochs_trained"] == 0  # the history came from the train state
    with h5py.File(tmp_path / files.history, "r") as fh:
        assert fh["train_loss"].shape == (11,)

    # A truncated checkpoint (its train-state copy is the same file): moved aside, trained again from epoch 0.
    ckpt = tmp_path / files.checkpoint(5)
    recorded = read_metadata_json(tmp_path / files.metadata)["checkpoints"][1]["content_sha256"]
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    proc = run_snakemake(tmp_path, config, "--cores", "2", target_list=[str(files.checkpoint(5))])
    assert job_counts(proc.stdout + proc.stderr) == {"train": 1}, proc.stderr[-3000:]
    assert f"integrity: {files.checkpoint(5)}: truncated: 1000 bytes" in proc.stderr
    assert read_metadata_json(tmp_path / files.metadata)["timings"]["resumed_from_epoch"] == 0
    assert read_metadata_json(tmp_path / files.metadata)["checkpoints"][1]["content_sha256"] == recorded
    assert is_intact(ckpt) and len(list(ckpt.parent.glob("*.broken-*"))) == 1
