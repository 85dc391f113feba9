"""What produced an output: the workbench's git commit, package versions, host and time."""

from __future__ import annotations

import datetime
import functools
import importlib.metadata
import platform
import subprocess
from pathlib import Path

PACKAGES = ("tdw", "torch", "transformer-lens", "numpy", "h5py", "safetensors", "snakemake", "plotly", "kaleido")
REPO = Path(__file__).resolve().parents[3]


def git_commit() -> str:
    """HEAD of the workbench checkout, with ``+dirty`` if tracked files differ; ``unknown``
    outside a git checkout. Asked anew each time (~7 ms): the checkout changes under a
    long-running process such as the dashboard."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


@functools.cache  # read once per process: the versions of the code it has loaded
def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def provenance() -> dict:
    return {
        "git_commit": git_commit(),
        "packages": package_versions(),
        "host": platform.node(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
