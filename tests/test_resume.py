"""Kill -9 the training process mid-run; the next snakemake call resumes from the last
snapshot and ends with weights bit-identical to an uninterrupted run (CPU)."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import yaml
from workflow_runs import snapshot_epoch

from tdw.io.checkpoint import load_weights
from tdw.io.variant import read_metadata_json
from tdw.layout import RESULTS, FamilyLayout, VariantLayout

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
CONFIG = {
    "family": "modadd",
    "sweep": {"p": [31], "seed": [3]},
    "train": {"train_frac": 0.4},
    "checkpoints": [{"from": 0, "to": 2000, "every": 250}],
}
FILES = VariantLayout(RESULTS, "modadd", "p31_seed3_frac0.4")  # relative to the working directory
VARIANT = str(FILES.dir)
TARGET = str(FILES.metadata)

pytestmark = pytest.mark.slow


def start(workdir: Path) -> subprocess.Popen:
    (workdir / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--configfile", "config.yaml", "--cores", "2", TARGET]
    return subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def training_process(parent: psutil.Process) -> psutil.Process | None:
    for child in parent.children(recursive=True):
        try:
            if any(arg.endswith("train.py") for arg in child.cmdline()):
                return child
        except psutil.NoSuchProcess:
            continue
    return None


def test_kill_and_resume_gives_identical_weights(tmp_path):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    clean.mkdir()
    killed.mkdir()
    uninterrupted = start(clean)  # alongside the run to be killed: each trains on one core
    proc = start(killed)
    deadline = time.time() + 300
    while snapshot_epoch(killed / VARIANT) < 750 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    victim = training_process(psutil.Process(proc.pid))
    assert victim is not None, "training finished before it could be killed; lengthen the schedule"
    victim.kill()
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, out
    killed_at = snapshot_epoch(killed / VARIANT)
    assert 750 <= killed_at < 2000
    assert not (killed / TARGET).exists()
    out, _ = uninterrupted.communicate(timeout=600)
    assert uninterrupted.returncode == 0, out

    resumed = start(killed)
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out
    log = (killed / FamilyLayout(RESULTS, "modadd").log("train", "p31_seed3_frac0.4")).read_text()
    assert f"resuming from the snapshot at epoch {killed_at}" in log
    meta = read_metadata_json(killed / TARGET)
    assert meta["timings"]["resumed_from_epoch"] == killed_at

    for epoch in range(0, 2001, 250):
        name = FILES.checkpoint(epoch)
        a, b = load_weights(clean / name), load_weights(killed / name)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name} {key}")
    from tdw.io.history import read_history

    ha = read_history(clean / FILES.history)
    hb = read_history(killed / FILES.history)
    for key in ha:
        np.testing.assert_array_equal(ha[key], hb[key])
