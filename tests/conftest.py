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
