"""What verifying files costs: a p = 113 checkpoint written and read with its content hash
against the same without (safetensors alone, as before hashes were recorded), one checkpoint
and 200; and the check of existing outputs at DAG build (tdw.workflow.integrity) over a
results tree of V variants x N checkpoints (a checkpoint and a cache each, plus history and
artifacts), against listing the same folders.

    .venv/bin/python bench/bench_checksum.py [--variants 64] [--checkpoints 1000] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
from results_io import write_result  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

from tdw.io.atomic import atomic_path  # noqa: E402
from tdw.io.checkpoint import content_hash, load_weights, save_checkpoint  # noqa: E402
from tdw.io.h5 import write_h5  # noqa: E402
from tdw.io.provenance import provenance  # noqa: E402
from tdw.models.architecture import ModelConfig  # noqa: E402
from tdw.models.weights import init_params  # noqa: E402
from tdw.workflow import integrity  # noqa: E402


def _plain_save(path: Path, weights: dict, meta: dict) -> None:
    """The write without a hash (what save_checkpoint did before: atomic, fsynced)."""
    header = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    with atomic_path(path) as tmp:
        save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}, str(tmp), metadata=header)


def _plain_load(path: Path) -> dict:
    with safe_open(str(path), framework="numpy") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}


def checkpoint_io(tmp: Path, n: int, repeats: int = 3) -> dict[str, list[float]]:
    """Best of ``repeats`` seconds to write and to read ``n`` checkpoints, without and with the hash."""
    weights = {k: v.numpy() for k, v in init_params(ModelConfig(p=113), 0).items()}
    meta = {"epoch": 0, "config": {"task": {"p": 113}}, "provenance": provenance()}
    paths = [tmp / f"ck{i}.safetensors" for i in range(n)]
    ways = {"plain": (_plain_save, _plain_load), "hashed": (save_checkpoint, load_weights)}
    out = {label: [float("inf"), float("inf")] for label in ways}
    for _ in range(repeats):  # the two alternate, so load on the machine falls on both
        for label, (save, load) in ways.items():
            t0 = time.perf_counter()
            for p in paths:
                save(p, weights, meta)
            t1 = time.perf_counter()
            for p in paths:
                load(p)
            t2 = time.perf_counter()
            out[label] = [min(out[label][0], t1 - t0), min(out[label][1], t2 - t1)]
    out["size_mb"] = [paths[0].stat().st_size / 1e6]
    t0 = time.perf_counter()
    for _ in range(20):
        content_hash(weights)
    out["hash_only"] = [(time.perf_counter() - t0) / 20]
    return out


def make_tree(root: Path, variants: int, checkpoints: int) -> list:
    """A results tree whose files have the real headers (a checkpoint's config and provenance,
    an HDF5 superblock) and little data: the check reads only the first bytes."""
    from tdw.config import resolve

    config = {"family": "modadd", "sweep": {"p": [113], "seed": list(range(variants))}, "checkpoints": list(range(checkpoints))}
    wb = resolve(config | {"results": str(root)})
    ck, h5 = root / "ck.safetensors", root / "c.h5"
    run_config = {"family": "modadd", "task": {"operation": "add", "p": 113}, "architecture": ModelConfig(p=113).to_dict()}
    save_checkpoint(ck, {"w": np.ones(16, np.float32)}, {"epoch": 0, "config": run_config, "provenance": provenance()})
    write_h5(h5, {"x": (np.arange(16.0), "batch")}, {"epoch": 0, "provenance": provenance()})
    files, _ = integrity.planned_outputs([wb])
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ck if path.suffix == ".safetensors" else h5, path)
    return [wb]


def dag_check(root: Path, variants: int, checkpoints: int) -> dict[str, float]:
    runs = make_tree(root, variants, checkpoints)
    files, folders = integrity.planned_outputs(runs)
    os.sync()
    t0 = time.perf_counter()
    listed = sum(len(os.listdir(d)) for d in {p.parent for p in files})
    t1 = time.perf_counter()
    broken = integrity.find_broken(files, folders)
    t2 = time.perf_counter()
    assert not broken and listed >= len(files)
    return {"files": len(files), "list_s": t1 - t0, "check_s": t2 - t1}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", type=int, default=64)
    ap.add_argument("--checkpoints", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = checkpoint_io(Path(tmp), 1, repeats=20)
    with tempfile.TemporaryDirectory() as tmp:
        many = checkpoint_io(Path(tmp), 200)
    with tempfile.TemporaryDirectory() as tmp:
        dag = dag_check(Path(tmp), args.variants, args.checkpoints)

    def ms(seconds: float) -> float:
        return round(1000 * seconds, 1)

    rows = [
        [f"write 1 p = 113 checkpoint ({one['size_mb'][0]:.2f} MB)", ms(one["plain"][0]), ms(one["hashed"][0])],
        ["read 1 p = 113 checkpoint", ms(one["plain"][1]), ms(one["hashed"][1])],
        ["the content hash alone, 1 checkpoint (mean of 20)", None, ms(one["hash_only"][0])],
        ["write 200 p = 113 checkpoints", ms(many["plain"][0]), ms(many["hashed"][0])],
        ["read 200 p = 113 checkpoints", ms(many["plain"][1]), ms(many["hashed"][1])],
        [
            f"DAG-build check, {args.variants} variants x {args.checkpoints} checkpoints ({dag['files']} files); "
            "without: listing their folders",
            ms(dag["list_s"]),
            ms(dag["check_s"]),
        ],
    ]
    notes = (
        "Write (atomic, fsynced) and read: best of 20 (one) or 3 (200) runs; 'without' is the same code less the hash. "
        "The DAG-build check reads each file's first bytes (page cache warm: the tree was just written)."
    )
    title = "Content hashes of checkpoints, and the output check at DAG build"
    write_result("checkpoint_hash", title, ["case", "without (ms)", "with (ms)"], rows, notes, results=args.out)


if __name__ == "__main__":
    main()
