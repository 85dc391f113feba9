"""Do two commits compute the same numbers? Runs every ``tests/configs/*.yaml`` config with
each commit's workflow (one clone per commit, this checkout's Snakemake) and compares every
checkpoint tensor and every HDF5 dataset (histories, caches, artifacts) of the two results
trees. Datasets only one side has are listed apart (e.g. dimension scales added by a format
change); values that differ are listed with their largest absolute difference.

    .venv/bin/python bench/compare_commits.py BASE NEW [--out /tmp/tdw_compare] [--configs tiny,tiny_modsub]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def run_configs(commit: str, out: Path, names: list[str] | None) -> Path:
    """Clone ``commit`` into ``out/src`` and run its tiny configs into ``out/<config>``."""
    src = out / "src"
    if not src.exists():
        subprocess.run(["git", "clone", "-q", str(ROOT), str(src)], check=True)
    subprocess.run(["git", "checkout", "-q", commit], cwd=src, check=True)
    for cfg in sorted((src / "tests" / "configs").glob("*.yaml")):
        if names and cfg.stem not in names:
            continue
        cmd = [SNAKEMAKE, "-s", str(src / "Snakefile"), "--directory", str(out / cfg.stem), "--configfile", str(cfg)]
        done = subprocess.run([*cmd, "--cores", "2", "-q"], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{commit}: {cfg.name} failed:\n{done.stderr[-3000:]}")
    return out


def _arrays(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".safetensors":
        return load_file(str(path))
    with h5py.File(path, "r") as fh:
        return {k: fh[k][()] for k in fh if isinstance(fh[k], h5py.Dataset)}


def compare(a: Path, b: Path) -> tuple[int, int, list[str], list[str]]:
    """(files, arrays compared, value differences, arrays on one side only)."""
    files = arrays = 0
    differ: list[str] = []
    one_side: list[str] = []
    for fa in sorted([*a.rglob("results/**/*.h5"), *a.rglob("results/**/checkpoints/*.safetensors")]):
        rel = fa.relative_to(a)
        fb = b / rel
        if not fb.exists():
            one_side.append(f"{rel}: only in the base")
            continue
        files += 1
        xa, xb = _arrays(fa), _arrays(fb)
        one_side += [f"{rel}: {k} only in the new" for k in sorted(set(xb) - set(xa))]
        one_side += [f"{rel}: {k} only in the base" for k in sorted(set(xa) - set(xb))]
        for k in sorted(set(xa) & set(xb)):
            arrays += 1
            x, y = np.asarray(xa[k]), np.asarray(xb[k])
            if x.dtype.kind in "SOU" or y.dtype.kind in "SOU":
                same = np.array_equal(x.astype(str), y.astype(str))
                gap = "text"
            else:
                same = x.shape == y.shape and np.array_equal(x, y, equal_nan=True)
                gap = np.nanmax(np.abs(x.astype(float) - y.astype(float))) if x.shape == y.shape and x.size else "shape"
            if not same:
                differ.append(f"{rel}: {k} differs (largest difference {gap})")
    return files, arrays, differ, one_side


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("--out", default="/tmp/tdw_compare")
    ap.add_argument("--configs", default="", help="comma-separated config names (default: all)")
    args = ap.parse_args()
    names = [n for n in args.configs.split(",") if n] or None
    out = Path(args.out)
    base = run_configs(args.base, out / "base", names)
    new = run_configs(args.new, out / "new", names)
    for run in sorted(p.name for p in base.iterdir() if p.name != "src"):
        files, arrays, differ, one_side = compare(base / run, new / run)
        print(f"{run}: {files} files, {arrays} arrays compared; {len(differ)} differ; {len(one_side)} on one side only")
        for line in differ + one_side:
            print("   ", line)


if __name__ == "__main__":
    main()
