"""A config given with --configfile means exactly what it says: the embedded default
(config/config.yaml) applies only when none is given, and --config overrides apply to
either. Dry runs of the real workflow in a scratch working directory that also holds a copy
of the default config (where a `configfile:` directive relative to the working directory
would find it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from workflow_runs import ROOT, SNAKEMAKE, job_counts

pytestmark = pytest.mark.slow


def dry_run(workdir: Path, *options: str) -> tuple[dict[str, int], set[str], str]:
    """Rule -> job count, the variants that any job is scheduled for, and the output."""
    cmd = [SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir), "--dry-run", *options]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    return job_counts(text), set(re.findall(r"wildcards:[^\n]*?\bvariant=([\w.-]+)", text)), text


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    (work / "config").mkdir(parents=True)
    shutil.copy(ROOT / "config" / "config.yaml", work / "config" / "config.yaml")
    return work


def sweep_only_p(workdir: Path) -> Path:
    path = workdir / "sweep.yaml"
    path.write_text(yaml.safe_dump({"family": "modadd", "sweep": {"p": [13]}, "checkpoints": [0, 5]}))
    return path


def test_legacy_config_imports_and_trains_nothing(workdir, legacy_dir):
    # config/legacy.yaml names its files relative to the working directory (../shared/...);
    # they are inspected while the DAG is built, so the working directory links the real ones.
    legacy = yaml.safe_load((ROOT / "config" / "legacy.yaml").read_text())["legacy"]
    for entry in legacy:
        path = workdir / entry["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(legacy_dir / Path(entry["path"]).name)
    jobs, variants, _ = dry_run(workdir, "--configfile", str(ROOT / "config" / "legacy.yaml"))
    assert variants == {"legacy_no_wd", "legacy_low_precision"}
    assert not any(rule.startswith("train") for rule in jobs), jobs
    assert jobs["import_legacy_legacy_no_wd"] == 1 and jobs["import_legacy_legacy_low_precision"] == 1, jobs


def test_a_config_sweeping_only_p_gets_the_default_seed(workdir):
    jobs, variants, _ = dry_run(workdir, "--configfile", str(sweep_only_p(workdir)))
    assert variants == {"p13_seed0"} and jobs["train"] == 1, (jobs, variants)


def test_config_overrides_apply_to_the_default_and_to_a_given_config(workdir):
    jobs, variants, _ = dry_run(workdir, "--config", "batch_seeds=True", "--", "all")
    assert variants == {"p113_seed0_frac0.5", "p113_seed1_frac0.5"}  # the default config's sweep
    assert jobs["train_batch_p113_frac0_5_seeds0_1"] == 1 and "train" not in jobs, jobs
    _, variants, text = dry_run(workdir, "--configfile", str(sweep_only_p(workdir)), "--config", "results=elsewhere", "--", "all")
    assert variants == {"p13_seed0"}
    assert "elsewhere/modadd/p13_seed0/metadata.json" in text and "results/modadd" not in text
