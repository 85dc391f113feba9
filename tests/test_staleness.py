"""Only what is stale re-runs, and content decides: checked on a copy of the checkout (so
that package modules can be edited as a researcher would) with dry runs after a real run."""

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tdw.io.variant import read_metadata_json
from tdw.layout import RESULTS, FamilyLayout, VariantLayout

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
CONFIG = {
    "family": "modadd",
    "sweep": {"p": [13], "seed": [0]},
    "train": {"train_frac": 0.5},
    "checkpoints": [0, 5, 10],
    "analyzers": ["embedding_frequencies", "attention"],
}

pytestmark = pytest.mark.slow


def snakemake(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        [SNAKEMAKE, "--configfile", "config.yaml", *args], cwd=repo, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout + proc.stderr


def plan(repo: Path) -> dict[str, int]:
    """Rule -> job count of a dry run ({} when nothing is to be done)."""
    import re

    text = snakemake(repo, "-n", "--quiet", "rules")
    if "Nothing to be done" in text or "Job stats" not in text:
        return {}
    table = text[text.index("Job stats") :].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A copy of the checkout with results of the tiny config."""
    repo = tmp_path_factory.mktemp("checkout")
    for name in ("Snakefile", "rules", "workflow", "families", "profiles", "src", "envs"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, repo / name)
    (repo / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    snakemake(repo, "--cores", "2")
    assert plan(repo) == {}
    return repo


@contextlib.contextmanager
def edited(path: Path, line: str = "\n# an edit\n"):
    """``path`` with a line appended, as a researcher's edit; restored afterwards."""
    original = path.read_text()
    path.write_text(original + line)
    try:
        yield
    finally:
        path.write_text(original)


def set_config(repo: Path, **changes) -> None:
    (repo / "config.yaml").write_text(yaml.safe_dump(CONFIG | changes))


def test_touching_everything_reruns_nothing(repo):
    for path in repo.rglob("*"):
        if path.is_file() and ".snakemake" not in path.parts and "results" not in path.parts:
            os.utime(path)
    assert plan(repo) == {}


def test_editing_an_analyzer_reruns_it_and_its_views_only(repo):
    with edited(repo / "src/tdw/analyzers/attention.py"):
        jobs = plan(repo)
        assert jobs.get("analyze") == 1, jobs
        assert set(jobs) <= {"analyze", "render", "static_modadd", "report", "compare", "all"}, jobs
    assert plan(repo) == {}


def test_editing_render_code_reruns_renders_only(repo):
    with edited(repo / "src/tdw/figures/loss_curves.py"):
        jobs = plan(repo)
        assert jobs.get("render", 0) >= 1 and set(jobs) <= {"render", "static_modadd", "report", "compare", "all"}, jobs


def test_adding_a_seed_trains_only_the_new_variant(repo):
    set_config(repo, sweep={"p": [13], "seed": [0, 1]})
    try:
        jobs = plan(repo)
        assert jobs["train"] == 1 and jobs["analyze"] == 2, jobs  # the new variant's, nothing of seed 0
        assert jobs.get("forward_cache_trained") == 1, jobs
    finally:
        set_config(repo)


def test_adding_checkpoint_epochs_resumes_training(repo):
    """A longer schedule re-runs training, which continues from the state kept at the old
    last epoch (10) instead of starting over; the old checkpoints are unchanged."""
    from tdw.io.checkpoint import load_weights

    files = VariantLayout(repo / RESULTS, "modadd", "p13_seed0_frac0.5")
    ck10 = files.checkpoint(10)
    old = load_weights(ck10)
    set_config(repo, checkpoints=[0, 5, 10, 15])
    try:
        # the new checkpoint is the missing output that schedules training (Snakemake skips its
        # params check for a job some of whose outputs have no metadata yet)
        snakemake(repo, "--cores", "2", str(files.checkpoint(15).relative_to(repo)))
        log = (repo / FamilyLayout(RESULTS, "modadd").log("train", "p13_seed0_frac0.5")).read_text()
        assert "resuming from the snapshot at epoch 10" in log
        meta = read_metadata_json(files.metadata)
        assert [c["epoch"] for c in meta["checkpoints"]] == [0, 5, 10, 15]
        assert meta["timings"]["resumed_from_epoch"] == 10
        new = load_weights(ck10)  # rewritten (its header records the new schedule), same weights
        for key in old:
            assert (new[key] == old[key]).all(), key
    finally:
        set_config(repo)
