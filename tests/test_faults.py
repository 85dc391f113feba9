"""Faults: a sweep killed with SIGKILL (Snakemake and every job it started) and rerun ends
equal to an uninterrupted run; a second invocation on the same results tree is refused by
Snakemake's lock while the first finishes correctly."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from workflow_runs import (
    LOCKED,
    ROOT,
    compare_trees,
    result_files,
    run_snakemake,
    snakemake_cmd,
    snapshot_epoch,
    targets,
    wait_for,
    write_config,
)

from tdw.layout import RESULTS, FamilyLayout, VariantLayout

pytestmark = pytest.mark.slow

# Long enough (~2 s of training for p = 11) to be killed in the middle of it: the kill comes
# once the state of epoch 20 is saved, 180 epochs before training ends.
EPOCHS = [0, 20, 40, 200]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run every faulty run must equal."""
    workdir = tmp_path_factory.mktemp("reference")
    config = write_config(workdir, [11, 13], [0], EPOCHS)
    done = run_snakemake(workdir, config, "--cores", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    return workdir


def start(workdir: Path, config: Path, *options: str) -> subprocess.Popen:
    """Snakemake in its own session, so that it and its jobs can be killed together."""
    cmd = snakemake_cmd(workdir, config, *options)
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def test_sigkill_mid_sweep_then_rerun_equals_uninterrupted(reference, tmp_path):
    config = write_config(tmp_path, [11, 13], [0], EPOCHS)
    variant = VariantLayout(tmp_path / RESULTS, "modadd", "p11_seed0_frac0.5").dir
    proc = start(tmp_path, config, "--cores", "2")
    # Kill once training has saved its state at epoch 20 (checkpoints 0 and 20 written, not 40, 200).
    wait_for(lambda: snapshot_epoch(variant) >= 20, 60, "training to save its state at epoch 20", interval=0.01)
    os.killpg(proc.pid, signal.SIGSTOP)  # freeze everything at once, then find and kill it all
    pids = [proc.pid, *descendants(proc.pid)]
    os.killpg(proc.pid, signal.SIGKILL)
    for pid in pids:  # any job that left the process group
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)
    assert not VariantLayout.at(variant).metadata.exists(), "killed too late"
    killed_at = snapshot_epoch(variant)
    assert 20 <= killed_at < 200
    assert list((tmp_path / ".snakemake" / "locks").iterdir()), "a killed run leaves its locks"

    # The stale lock refuses the rerun, with the way out in the message ...
    refused = run_snakemake(tmp_path, config, "--cores", "2")
    assert refused.returncode != 0 and LOCKED in refused.stderr and "--unlock" in refused.stderr
    # ... --unlock removes it, and the rerun (rerun-incomplete, training resumed from its
    # snapshot) ends with the uninterrupted run's numbers and no temporary files left.
    unlock = run_snakemake(tmp_path, config, "--unlock")
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    rerun = run_snakemake(tmp_path, config, "--cores", "2")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert (
        f"resuming from the snapshot at epoch {killed_at}"
        in (tmp_path / FamilyLayout(RESULTS, "modadd").log("train", "p11_seed0_frac0.5")).read_text()
    )
    assert len(result_files(tmp_path)) == 2 * (len(EPOCHS) * 2 + 1)
    assert compare_trees(reference, tmp_path) == []
    assert not list((tmp_path / "results").rglob(".tmp-*"))


def test_second_invocation_is_refused_while_first_finishes(reference, tmp_path):
    config = write_config(tmp_path, [11, 13], [0], EPOCHS)
    first = start(tmp_path, config, "--cores", "2")
    locks = tmp_path / ".snakemake" / "locks"
    wait_for(lambda: locks.is_dir() and any(locks.iterdir()), 60, "the first invocation to take its lock")
    # Suspend the first invocation (as Ctrl-Z would) while it holds its lock, so that the
    # second one meets it mid-run however fast this machine is; resume it afterwards.
    os.killpg(first.pid, signal.SIGSTOP)
    try:
        assert not all((tmp_path / t).exists() for t in targets(config)), "the first invocation finished before it was suspended"
        second = run_snakemake(tmp_path, config, "--cores", "2")
        assert first.poll() is None, "the first invocation ended before the second was refused"
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    assert second.returncode != 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert LOCKED in second.stderr

    out, _ = first.communicate(timeout=120)
    assert first.returncode == 0, out[-2000:]
    assert all((tmp_path / t).exists() for t in targets(config))
    assert compare_trees(reference, tmp_path) == []
    assert not locks.exists() or not any(locks.iterdir()), "the first invocation released its lock"
