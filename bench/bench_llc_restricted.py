"""Cost per checkpoint of the LLC measures on one p = 113 checkpoint: the full ``llc``, the
weight-restricted ``llc_restricted`` (every head and the MLP: their chains as one stacked
model) and ``susceptibilities`` (the same components plus the full model, with the probe
losses at every draw), each with its defaults unless given, one thread. Without
``--checkpoint`` the family model's initial weights at p = 113 are used (the cost does not
depend on the weights; the estimates then mean nothing). Prints one JSON line per measure.

    .venv/bin/python bench/bench_llc_restricted.py [--checkpoint PATH] [--threads 1] [--repeats 1] [--measures llc,llc_restricted,susceptibilities] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from results_io import add_json_arg, write_result  # noqa: E402

from tdw.analyzers import get  # noqa: E402
from tdw.analyzers.runner import checkpoint_view  # noqa: E402
from tdw.params import resolve_params  # noqa: E402


def init_checkpoint(folder: Path, p: int = 113, frac: float = 0.3) -> Path:
    from tdw.config import load_family
    from tdw.io.checkpoint import save_checkpoint
    from tdw.models.weights import init_params

    cfg = load_family("modadd").model_config(p)
    config = {"task": {"operation": "add", "p": p}, "seed": 0, "architecture": cfg.to_dict(), "train": {"train_frac": frac}}
    path = folder / "checkpoint_epoch_00000.safetensors"
    save_checkpoint(path, {k: v.numpy() for k, v in init_params(cfg, 0).items()}, {"epoch": 0, "config": config})
    return path


def run(name: str, view, params: dict) -> dict:
    analyzer = get(name)
    state = analyzer.prepare(view, np.array([view.epoch]), params)
    t0, c0 = time.perf_counter(), time.process_time()
    out = analyzer.step(view, params, state)
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0, "out": out, "state": state}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=1, help="runs of each; the fastest is kept")
    ap.add_argument("--measures", default="llc,llc_restricted,susceptibilities")
    add_json_arg(ap, "llc_restricted_cost")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(args.checkpoint) if args.checkpoint else init_checkpoint(Path(tmp))
        view = checkpoint_view(ckpt, None)
        view.weights, view.split()  # loaded once, outside the timings
        rows = []
        for name in args.measures.split(","):
            params = resolve_params(get(name).params, {}, "bench")
            runs = [run(name, view, params) for _ in range(args.repeats)]
            best = min(runs, key=lambda r: r["seconds"])
            out = best["out"]
            stacked = params["chains"] * (len(out["llc_mean"]) if name == "llc_restricted" else 1)
            if name == "susceptibilities":
                stacked = params["chains"] * (len(out["susceptibility"]) + 1)
            steps = params["burn_in"] + params["draws"] * params["steps_between_draws"]
            row = {
                "measure": name,
                "components": 1 if name == "llc" else stacked // params["chains"],
                "chains per component": params["chains"],
                "stacked chains": stacked,
                "steps": steps,
                "batch": params["batch_size"],
                "seconds": round(best["seconds"], 2),
                "CPU s": round(best["cpu_seconds"], 2),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        columns = list(rows[0])
        notes = (
            f"p = {view.p} ({'initial weights' if not args.checkpoint else args.checkpoint}), {len(view.split()[0])} training rows, "
            f"{args.threads} torch thread(s), the fastest of {args.repeats}; each measure's defaults (susceptibilities' components "
            "include the full model's chains, which its definition needs). One analyzer step = one checkpoint."
        )
        write_result(
            args.json, "Cost per checkpoint of the LLC measures (p = 113)", columns, [list(r.values()) for r in rows], notes
        )


if __name__ == "__main__":
    main()
