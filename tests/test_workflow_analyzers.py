"""Adding an analyzer needs no pipeline change: the test-only family ``test_only_tiny``
offers ``weight_norms`` (one module plus one registry line) next to a cache-reading and a
history-reading analyzer, and a tiny Snakemake run builds their artifacts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tdw.io.h5 import load_artifact
from tdw.layout import VariantLayout

SNAKEMAKE = Path(sys.executable).with_name("snakemake")


@pytest.mark.slow
def test_new_analyzer_runs_through_workflow(root, tmp_path):
    if not SNAKEMAKE.exists():
        pytest.skip("snakemake not installed next to this python")
    results = tmp_path / "results"
    files = VariantLayout(results, "test_only_tiny", "p13_seed0_frac0.5")
    targets = [str(files.artifact("full", a)) for a in ("weight_norms", "neuron_clusters", "transitions")]
    cmd = [str(SNAKEMAKE), "--cores", "1", "--configfile", "tests/configs/tiny_test_only_tiny.yaml"]
    cmd += ["--config", f"results={results}", "--", *targets]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    norms = load_artifact(files.artifact("full", "weight_norms"))
    assert list(norms["epoch"]) == [0, 5, 10, 15, 20]
    np.testing.assert_allclose(norms["total_sum_sq"], (norms["norm"] ** 2).sum(1))
    assert load_artifact(files.artifact("full", "neuron_clusters"))["fve"].shape == (5, 64, 6)
    assert load_artifact(files.artifact("full", "transitions"))["boundary"].shape == (3,)
