"""Kill -9 the training process mid-run; the next snakemake call resumes from the last
snapshot and ends with weights bit-identical to an uninterrupted run (CPU)."""

import json
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

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
CONFIG = {
    "family": "modadd",
    "sweep": {"p": [31], "seed": [3]},
    "train": {"train_frac": 0.4},
    "checkpoints": [{"from": 0, "to": 3000, "every": 250}],
}
VARIANT = "results/modadd/p31_seed3"
TARGET = f"{VARIANT}/metadata.json"

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
    assert start(clean).wait(timeout=600) == 0

    proc = start(killed)
    deadline = time.time() + 300
    while snapshot_epoch(killed / VARIANT) < 1000 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    victim = training_process(psutil.Process(proc.pid))
    assert victim is not None, "training finished before it could be killed; lengthen the schedule"
    victim.kill()
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, out
    killed_at = snapshot_epoch(killed / VARIANT)
    assert 1000 <= killed_at < 3000
    assert not (killed / TARGET).exists()

    resumed = start(killed)
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out
    log = (killed / "logs/modadd/train/p31_seed3.log").read_text()
    assert f"resuming from the snapshot at epoch {killed_at}" in log
    meta = json.loads((killed / TARGET).read_text())
    assert meta["timings"]["resumed_from_epoch"] == killed_at

    for epoch in range(0, 3001, 250):
        name = f"results/modadd/p31_seed3/checkpoints/checkpoint_epoch_{epoch:05d}.safetensors"
        a, b = load_weights(clean / name), load_weights(killed / name)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name} {key}")
    from tdw.io.history import read_history

    ha = read_history(clean / "results/modadd/p31_seed3/history.h5")
    hb = read_history(killed / "results/modadd/p31_seed3/history.h5")
    for key in ha:
        np.testing.assert_array_equal(ha[key], hb[key])
