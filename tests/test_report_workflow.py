"""The report rule in a real (tiny) workflow: an edited report file rebuilds that report
only; a bad report file stops the workflow before any job, naming the problem."""

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tdw.layout import RESULTS, VariantLayout

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
REPORT = str(VariantLayout(RESULTS, "modadd", "p13_seed0_frac0.5").report("default"))


def workflow_copy(tmp: Path) -> Path:
    """The workflow in a scratch folder, so edits to its family files stay there."""
    for name in ("Snakefile", "rules", "workflow", "families", "src", "config", "envs", "profiles", "tests/configs"):
        src, dst = ROOT / name, tmp / name
        if not src.exists():
            continue
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
    return tmp


def snakemake(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, *args, "--cores", "2", "--configfile", "tests/configs/tiny.yaml"]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def job_counts(stdout: str) -> dict[str, int]:
    """The first 'Job stats' table of a snakemake run."""
    table = stdout.split("Job stats:")[1].split("total")[0]
    return {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.mark.slow
def test_edited_report_file_rebuilds_only_that_report(tmp_path):
    wf = workflow_copy(tmp_path)
    run = snakemake(wf, REPORT)
    assert run.returncode == 0, run.stderr[-3000:]
    spec_file = wf / "families/modadd/reports/default.json"
    spec = json.loads(spec_file.read_text())
    spec["views"] = [{"figure": "embedding_frequencies", "params": {"colorscale": "Magma"}}, "loss_curves"]
    spec_file.write_text(json.dumps(spec))
    dry = snakemake(wf, "-n", REPORT)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert job_counts(dry.stdout) == {"report": 1}, dry.stdout
    run = snakemake(wf, REPORT)
    assert run.returncode == 0, run.stderr[-3000:]
    assert '"Magma"' in (wf / REPORT).read_text()
    # Snakemake's own report carries the interactive report, under its category.
    smk = snakemake(wf, REPORT, "--report", "smk.zip")
    assert smk.returncode == 0, smk.stderr[-3000:]
    with zipfile.ZipFile(wf / "smk.zip") as z:
        names = z.namelist()
        assert any(n.endswith("/default.html") for n in names), names
        assert "Reports" in z.read(next(n for n in names if n.endswith("/report.html"))).decode()

    spec_file.write_text(json.dumps({"views": ["loss_curves", "attention_patterns"]}))
    bad = snakemake(wf, "-n", REPORT)
    assert bad.returncode != 0
    assert "'views.1' ('attention_patterns'): unknown view" in bad.stderr + bad.stdout
