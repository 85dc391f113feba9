"""Benchmark: every analyzer of the modadd family over a p = 113 variant with 400 checkpoints.

Checkpoints are synthesised from the legacy fixture's final weights: checkpoint i of n is
w_final + (1 - i / (n - 1)) * noise (fixed seed, noise at the scale of each tensor), at
epochs spread over the fixture's 5000-epoch history, which is reused as history.h5. Caches
are built once (not timed against the target); then each analyzer runs in its own process
with one BLAS thread (as its Snakemake job would) and reports wall and CPU seconds and peak
RSS (VmHWM); artifact sizes are summed.

    python bench/bench_analyzers.py --out /tmp/tdw_bench [--checkpoints 400] [--jobs 2] [--reuse]
                                    [--analyzers NAME ...]

``--analyzers`` times only the named ones (the family's on-request analyzers included).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from results_io import add_json_arg, write_result  # noqa: E402

from tdw.cache.forward import cache_checkpoints  # noqa: E402
from tdw.config import Variant, load_family  # noqa: E402
from tdw.io.checkpoint import checkpoint_name, load_weights, read_metadata, save_checkpoint  # noqa: E402
from tdw.train.legacy import import_variant  # noqa: E402

# What Snakemake sets for a job with ``threads: 1`` (rules/analyze.smk)
THREADS = dict.fromkeys(["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"], "1")
LEGACY = ROOT.parent / "shared" / "fixtures" / "legacy" / "mod_addition_no_wd.pth"

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {src!r})
from pathlib import Path
from tdw.analyzers.runner import run_analyzer
args = json.loads(sys.argv[1])
t0 = time.perf_counter()
run_analyzer(args["name"], args["params"], [Path(p) for p in args["ckpts"]], [Path(p) for p in args["caches"]],
             Path(args["out"]), {{}}, history=Path(args["history"]))
# VmHWM (peak RSS of this process image; ru_maxrss would inherit the parent's across exec)
hwm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"seconds": time.perf_counter() - t0, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_mb": hwm / 1024}}))
"""


def synthesise(out: Path, n: int) -> tuple[list[Path], Path]:
    family = load_family("modadd", str(ROOT / "families"))
    legacy = out / "legacy"
    import_variant(LEGACY, family, Variant("bench", 113, 0, 0.3, (4999,), str(LEGACY)), legacy)
    final_path = legacy / "checkpoints" / checkpoint_name(4999)
    final, meta = load_weights(final_path), read_metadata(final_path)
    rng = np.random.default_rng(0)
    noise = {k: rng.normal(0, float(v.std()) + 1e-3, v.shape) for k, v in final.items()}
    epochs = np.unique(np.linspace(0, 4999, n).round().astype(int))
    paths = []
    for i, e in enumerate(epochs):
        t = i / (len(epochs) - 1)
        path = out / "checkpoints" / checkpoint_name(int(e))
        save_checkpoint(path, {k: final[k] + (1 - t) * noise[k] for k in final}, {"epoch": int(e), "config": meta["config"]})
        paths.append(path)
    shutil.copy(legacy / "history.h5", out / "history.h5")
    return paths, family


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("/tmp/tdw_bench"))
    ap.add_argument("--checkpoints", type=int, default=400)
    ap.add_argument("--jobs", type=int, default=2, help="analyzer jobs at a time (the machine's cores)")
    ap.add_argument("--reuse", action="store_true", help="keep checkpoints and caches already under --out")
    ap.add_argument("--analyzers", nargs="+", metavar="NAME", help="time only these analyzers of the family (default: all)")
    add_json_arg(ap, "analyzers_400")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.reuse:
        family = load_family("modadd", str(ROOT / "families"))
        ckpts = sorted((args.out / "checkpoints").glob("*.safetensors"))
    else:
        ckpts, family = synthesise(args.out, args.checkpoints)
    caches = [args.out / "cache" / c.with_suffix(".h5").name for c in ckpts]
    if not args.reuse:
        torch.set_num_threads(2)
        cache_checkpoints(family, Variant("bench", 113, 0, 0.3, ()), "full", ckpts, caches)
    print(f"{len(ckpts)} checkpoints and caches: {time.perf_counter() - t0:.1f} s", flush=True)
    t1 = time.perf_counter()
    names = args.analyzers or list(family.spec["analyzers"])
    unknown = sorted(set(names) - set(family.spec["analyzers"]))
    if unknown:
        raise SystemExit(f"--analyzers: {unknown} are not offered by modadd; it offers {sorted(family.spec['analyzers'])}")
    with ThreadPoolExecutor(args.jobs) as pool:  # like `snakemake --cores N` over the analyze jobs
        futures = {name: pool.submit(run_one, name, family, ckpts, caches, args.out) for name in names}
        rows = [(name, f.result()) for name, f in futures.items()]
    makespan = time.perf_counter() - t1
    for name, st in rows:
        print(
            f"{name:24s} {st['seconds']:8.1f} s  cpu {st['cpu_s']:7.1f} s  peak {st['peak_mb']:6.0f} MB  "
            f"artifact {st['artifact_mb']:6.1f} MB"
        )
    total_s, cpu = sum(s["seconds"] for _, s in rows), sum(s["cpu_s"] for _, s in rows)
    peak, total_mb = max(s["peak_mb"] for _, s in rows), sum(s["artifact_mb"] for _, s in rows)
    print(f"{'sum over jobs':24s} {total_s:8.1f} s  cpu {cpu:7.1f} s  peak {peak:6.0f} MB  artifacts {total_mb:6.1f} MB")
    print(f"all analyzers, {args.jobs} job(s) at a time: {makespan:.1f} s wall; load average {os.getloadavg()}")
    if args.json:
        columns = ["analyzer", "wall s", "CPU s", "ms / checkpoint", "peak RSS MB", "artifact MB"]
        table = [
            [
                n,
                round(s["seconds"], 1),
                round(s["cpu_s"], 1),
                round(1000 * s["seconds"] / len(ckpts), 1),
                round(s["peak_mb"]),
                round(s["artifact_mb"], 1),
            ]
            for n, s in rows
        ]
        table += [["sum over jobs", round(total_s, 1), round(cpu, 1), None, round(peak), round(total_mb, 1)]]
        table += [[f"all, {args.jobs} jobs at a time", round(makespan, 1), None, None, round(peak), round(total_mb, 1)]]
        which = f"The modadd analyzers {', '.join(names)}" if args.analyzers else "Every modadd analyzer"
        notes = f"{which} over {len(ckpts)} checkpoints (p = 113), each in its own process with one BLAS thread."
        write_result(args.json, f"{which} over {len(ckpts)} checkpoints (p = 113)", columns, table, notes)


def run_one(name: str, family, ckpts: list[Path], caches: list[Path], out_dir: Path) -> dict:
    """One analyzer in its own process with one BLAS thread; its stats and artifact size."""
    out = out_dir / "artifacts" / f"{name}.h5"
    payload = {
        "name": name,
        "params": family.spec["analyzers"][name].get("params", {}),
        "out": str(out),
        "ckpts": [str(c) for c in ckpts],
        "caches": [str(c) for c in caches],
        "history": str(out_dir / "history.h5"),
    }
    res = subprocess.run(
        [sys.executable, "-c", CHILD.format(src=str(ROOT / "src")), json.dumps(payload)],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | THREADS,
    )
    return json.loads(res.stdout.strip().splitlines()[-1]) | {"artifact_mb": out.stat().st_size / 2**20}


if __name__ == "__main__":
    main()
