"""Shared test setup: import the package from this checkout, and paths tests use."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
LEGACY = ROOT.parent / "shared" / "fixtures" / "legacy"
# The name tests/slurm/start.sh gives the single-node test cluster in /etc/slurm/slurm.conf.
TEST_CLUSTER = "localcluster"


def _test_cluster_installed() -> bool:
    """The SLURM plugin, the client tools and the test cluster's own configuration are all
    here (never true on a machine whose SLURM belongs to a real cluster)."""
    conf = Path("/etc/slurm/slurm.conf")
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None or shutil.which("sinfo") is None:
        return False
    if os.geteuid() != 0 or not conf.is_file():
        return False
    return re.search(rf"^ClusterName={TEST_CLUSTER}\s*$", conf.read_text(), re.MULTILINE) is not None


@pytest.fixture(scope="session", autouse=True)
def test_cluster_answers() -> None:
    """Where the test cluster is installed, make sure its controller runs for the whole
    session: with the SLURM plugin installed every `snakemake` start asks the controller for
    its configuration and, when none answers, waits about 9 s (docs/CLUSTER.md). The SLURM
    tests start it anyway; starting it first keeps that wait out of every other test."""
    if _test_cluster_installed():
        subprocess.run(["bash", str(ROOT / "tests" / "slurm" / "start.sh")], capture_output=True, timeout=600)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def legacy_dir() -> Path:
    if not LEGACY.exists():
        pytest.skip(f"legacy fixtures not found at {LEGACY}")
    return LEGACY


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (no browser download)."""
    import shutil

    playwright = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("browser tests need Debian's chromium")
    with playwright.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def synthetic_variant(tmp_path_factory) -> Path:
    """A p = 13 variant with 6 checkpoints (history, metadata, embedding artifact)."""
    from tdw.train.synthetic import make_variant

    return make_variant(tmp_path_factory.mktemp("variants"), p=13, n_checkpoints=6, n_epochs=100)


@pytest.fixture
def one_thread():
    """Training runs on torch's thread count, which the entry point sets; these runs use one,
    so that runs compared bit for bit do the same arithmetic."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
