"""Shared test setup: import the package from this checkout, and paths tests use."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
LEGACY = ROOT.parent / "shared" / "fixtures" / "legacy"


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
    from tdw.synthetic import make_variant

    return make_variant(tmp_path_factory.mktemp("variants"), p=13, n_checkpoints=6, n_epochs=100)
