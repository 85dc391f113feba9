"""Running the real workflow from tests: small sweep configs in a temporary working
directory, the Snakemake command line, and numeric comparison of two results trees.

Every run uses ``--directory``: results, logs and ``.snakemake/`` (locks, incomplete
markers) land in the test's folder, while the workflow profile ``profiles/default`` is
still found next to the Snakefile.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import yaml
from safetensors import safe_open
from safetensors.numpy import load_file

from tdw.layout import RESULTS, FamilyLayout, VariantLayout

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
FAMILY = "modadd"
PROBE = "full"
ANALYZER = "embedding_frequencies"
# Snakemake's answer to a run whose files another run has locked (or a killed run left locked).
LOCKED = "Directory cannot be locked"


def write_config(
    workdir: Path, primes: list[int], seeds: list[int], epochs: list | None = None, legacy=None, analyzers=None
) -> Path:
    """A sweep config in ``workdir``; ``legacy`` is a list of legacy entries (dicts);
    ``analyzers`` restricts the family's analyzers."""
    config = {
        "family": FAMILY,
        "sweep": {"p": primes, "seed": seeds},
        "train": {"train_frac": 0.5},
        "checkpoints": epochs or [0, 5, 10],
    }
    if legacy:
        config["legacy"] = legacy
    if analyzers:
        config["analyzers"] = analyzers
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "sweep.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def variant_epochs(config_path: Path) -> dict[str, list[int]]:
    """Variant name -> checkpoint epochs, as the workflow resolves them."""
    from tdw.config import resolve_runs

    config = yaml.safe_load(config_path.read_text())
    return {v.name: list(v.epochs) for wb in resolve_runs(config, str(config_path)) for v in wb.variants}


def targets(config_path: Path) -> list[str]:
    """Per variant: its analyzer artifact and every checkpoint's forward-pass cache (figures
    and reports are left out: they start a browser per job and add nothing here)."""
    out = []
    for variant, epochs in variant_epochs(config_path).items():
        files = VariantLayout(RESULTS, FAMILY, variant)
        out.append(str(files.artifact(PROBE, ANALYZER)))
        out += [str(files.cache(PROBE, e)) for e in epochs]
    return out


def snakemake_cmd(workdir: Path, config_path: Path, *options: str, target_list: list[str] | None = None) -> list[str]:
    """The command line: options first, then ``--`` and the targets (``--configfile`` and
    ``--set-threads`` take several values and would swallow targets written after them)."""
    return [
        SNAKEMAKE,
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(config_path),
        # One training thread in every run, so that runs compare bit for bit.
        "--set-threads",
        "train=1",
        *options,
        "--",
        *(target_list if target_list is not None else targets(config_path)),
    ]


def run_snakemake(workdir: Path, config_path: Path, *options: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run Snakemake to completion (from the checkout, so ``--profile profiles/...`` resolves)."""
    cmd = snakemake_cmd(workdir, config_path, *options, target_list=kwargs.pop("target_list", None))
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, **kwargs)


def result_files(workdir: Path) -> list[Path]:
    """Checkpoints, caches and artifacts under ``workdir/results``, relative to ``workdir``."""
    found: list[Path] = []
    for v in FamilyLayout(workdir / RESULTS, FAMILY).variants():
        found += v.folder("checkpoints").glob("*.safetensors")
        found += v.folder("cache").glob("*/*.h5")
        found += v.folder("artifacts").glob("*/*.h5")
    return sorted(p.relative_to(workdir) for p in found)


def _h5_arrays(path: Path) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as fh:
        fh.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return arrays


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a checkpoint (safetensors) or dataset of an HDF5 file."""
    return load_file(str(path)) if path.suffix == ".safetensors" else _h5_arrays(path)


def compare_trees(a: Path, b: Path) -> list[str]:
    """Differences between the results under two working directories: missing files, and
    tensors that are not bitwise equal (same machine, same code, one thread each). Metadata
    (provenance, timings) is not compared. Returns an empty list when they agree."""
    files_a, files_b = result_files(a), result_files(b)
    problems = [f"only in {a}: {f}" for f in sorted(set(files_a) - set(files_b))]
    problems += [f"only in {b}: {f}" for f in sorted(set(files_b) - set(files_a))]
    for rel in sorted(set(files_a) & set(files_b)):
        xa, xb = load_arrays(a / rel), load_arrays(b / rel)
        if set(xa) != set(xb):
            problems.append(f"{rel}: tensors differ: {sorted(set(xa) ^ set(xb))}")
            continue
        for name in sorted(xa):
            if xa[name].shape != xb[name].shape or not np.array_equal(xa[name], xb[name]):
                problems.append(f"{rel}:{name}: values differ")
    return problems


def job_counts(output: str) -> dict[str, int]:
    """Rule -> job count from the last "Job stats" table Snakemake printed."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "Job stats:"]
    if not starts:
        return counts
    for line in lines[starts[-1] + 3 :]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def mtimes(workdir: Path, prefix: str) -> dict[str, int]:
    """mtime_ns of every result file whose relative path starts with ``prefix``."""
    return {str(p): (workdir / p).stat().st_mtime_ns for p in result_files(workdir) if str(p).startswith(prefix)}


def snapshot_epoch(variant_dir: Path) -> int:
    """The epoch of a variant's training snapshot, -1 while there is none."""
    try:
        with safe_open(str(VariantLayout.at(variant_dir).snapshot), framework="numpy") as fh:
            return int(fh.metadata()["epoch"])
    except Exception:  # not written yet, or being replaced
        return -1


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
