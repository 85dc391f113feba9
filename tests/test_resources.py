"""The training-memory estimate (``tdw.workflow.resources``) of the MLP model against the peak
resident set size of real trainings: each in a fresh process (two epochs, one thread), whose
``VmHWM`` (the high-water RSS of its own address space) at the end is the measured peak; not
``ru_maxrss``, which Linux carries across exec from the process that spawned it (the test
process, over 1 GB late in the suite). The estimate must be within 25 % of it."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tdw.config import load_family
from tdw.models.architecture import ModelConfig
from tdw.tasks.modular import split
from tdw.workflow.resources import n_parameters, train_memory_mb

ROOT = Path(__file__).resolve().parents[1]
# Within this factor of the measured peak either way.
FACTOR = 1.25

TRAIN_AND_MEASURE = """
import json, sys, tempfile
from dataclasses import replace
from pathlib import Path
import torch
torch.set_num_threads(1)
from tdw.config import TrainConfig, Variant, load_family
from tdw.train.trainer import TrainJob, train_variant
p, frac, d_mlp = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
cfg = replace(load_family("modadd_mlp", sys.argv[4]).model_config(p), d_mlp=d_mlp)
with tempfile.TemporaryDirectory() as d:
    variant = Variant("m", p, 0, frac, (0, 1))
    train_variant(TrainJob("modadd_mlp", "add", cfg, TrainConfig(train_frac=frac), variant, Path(d) / "m"))
hwm = [line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:")]
print(json.dumps(int(hwm[0].split()[1]) / 1024))
"""


def mlp_config(p: int, d_mlp: int) -> ModelConfig:
    return replace(load_family("modadd_mlp", str(ROOT / "families")).model_config(p), d_mlp=d_mlp)


def measured_peak_mb(p: int, train_frac: float, d_mlp: int) -> float:
    args = [sys.executable, "-c", TRAIN_AND_MEASURE, str(p), str(train_frac), str(d_mlp), str(ROOT / "families")]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(ROOT / "src")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def check_estimate(p: int, train_frac: float, d_mlp: int) -> None:
    cfg = mlp_config(p, d_mlp)
    train, test = split(p, train_frac, 0)
    estimate = train_memory_mb(cfg, len(train), len(test))
    peak = measured_peak_mb(p, train_frac, d_mlp)
    assert peak / FACTOR < estimate < peak * FACTOR, (p, train_frac, d_mlp, estimate, peak)


def test_mlp_parameter_count_is_its_weights():
    """The count the estimate uses equals the MLP's weight shapes, for both ways of combining
    the embeddings."""
    from tdw.models.weights import mlp_param_shapes

    for combine in ("concat", "sum"):
        cfg = replace(mlp_config(23, 96), embed_combine=combine)
        assert n_parameters(cfg) == sum(math.prod(s) for s in mlp_param_shapes(cfg).values())


def test_mlp_estimate_is_near_the_measured_peak():
    """p = 211, 90 % of the pairs in training: the logits dominate the activations."""
    check_estimate(211, 0.9, 128)


@pytest.mark.slow
def test_wide_mlp_estimate_is_near_the_measured_peak():
    """d_mlp 2048: the hidden layer dominates the activations."""
    check_estimate(211, 0.9, 2048)
