"""One LLC estimate of a p = 113 checkpoint, the workbench's ``llc`` analyzer against devinterp
2.0.1's ``llc`` in one run, with the same hyperparameters (the analyzer's defaults unless
given), the same model and the same training split. Prints one JSON line per estimator:
wall and CPU seconds (the fastest of ``--repeats`` alternating runs), mean and std over
chains, and the speed-ups.

    .venv/bin/python bench/bench_llc.py [--checkpoint results/modadd/p113_seed0_frac0.5/checkpoints/checkpoint_epoch_00600.safetensors]
        [--threads 2] [--ref-threads 2] [--noise-ahead auto|on|off] [--repeats 1] [--chains 4] [--draws 100] [--burn-in 50] [--batch-size 128] [--eps 3e-5] [--gamma 1000] [--nbeta n]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from llc_devinterp import devinterp_llc  # noqa: E402
from results_io import add_json_arg, record_rows, write_result  # noqa: E402

from tdw.analyzers import llc  # noqa: E402
from tdw.analyzers.runner import checkpoint_view  # noqa: E402
from tdw.params import resolve_params  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="results/modadd/p113_seed0_frac0.5/checkpoints/checkpoint_epoch_00600.safetensors")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ref-threads", type=int, help="threads for devinterp (default: --threads)")
    ap.add_argument(
        "--noise-ahead",
        choices=("auto", "on", "off"),
        default="auto",
        help="draw the SGLD noise in a second thread (auto: when --threads > 1)",
    )
    ap.add_argument("--repeats", type=int, default=1, help="runs of each, alternating; the fastest of each is kept")
    ap.add_argument("--chains", type=int)
    ap.add_argument("--draws", type=int)
    ap.add_argument("--burn-in", type=int)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--eps", type=float)
    ap.add_argument("--gamma", type=float)
    ap.add_argument("--nbeta")
    add_json_arg(ap, "llc_vs_devinterp")
    args = ap.parse_args()
    ref_threads = args.ref_threads or args.threads
    given = {
        k: v
        for k, v in {
            "chains": args.chains,
            "draws": args.draws,
            "burn_in": args.burn_in,
            "batch_size": args.batch_size,
            "epsilon": args.eps,
            "gamma": args.gamma,
            "nbeta": args.nbeta if args.nbeta in (None, "n", "batch") else float(args.nbeta),
        }.items()
        if v is not None
    }
    params = resolve_params(llc.PARAMS, given, "bench_llc")
    view = checkpoint_view(Path(args.checkpoint), None)
    view.weights, view.split()  # loaded once, outside both timings
    t_ours, t_ref, c_ours, c_ref = [], [], [], []
    for _ in range(args.repeats):  # alternating, so that both see the same load
        torch.set_num_threads(args.threads)
        t0, c0 = time.perf_counter(), time.process_time()
        ours, s = llc.estimate(view, params, noise_ahead={"auto": None, "on": True, "off": False}[args.noise_ahead])
        t_ours.append(time.perf_counter() - t0)
        c_ours.append(time.process_time() - c0)
        torch.set_num_threads(ref_threads)
        t0, c0 = time.perf_counter(), time.process_time()
        ref = devinterp_llc(view.model, view.weights, view.split()[0], view.operation, s)
        t_ref.append(time.perf_counter() - t0)
        c_ref.append(time.process_time() - c0)
    t_ours, t_ref, c_ours, c_ref = (min(t) for t in (t_ours, t_ref, c_ours, c_ref))
    common = {"checkpoint": args.checkpoint, "p": view.p, "threads": args.threads, "noise_ahead": args.noise_ahead}
    common |= {"params": params, "nbeta": s.nbeta}
    rows = [
        {
            "estimator": "workbench",
            "seconds": t_ours,
            "cpu_seconds": c_ours,
            "llc_mean": ours.llc_mean,
            "llc_std": ours.llc_std,
            "diverged": int(ours.diverged.sum()),
        },
        {
            "estimator": "devinterp",
            "threads": ref_threads,
            "seconds": t_ref,
            "cpu_seconds": c_ref,
            "llc_mean": float(np.mean(ref["llc"])),
            "llc_std": float(np.std(ref["llc"], ddof=1)),
        },
    ]
    for row in rows:
        print(json.dumps(common | row))
    print(json.dumps({"speedup": t_ref / t_ours, "cpu_speedup": c_ref / c_ours}))
    if args.json:
        notes = f"The fastest of {args.repeats} alternating runs of each; wall ratio {t_ref / t_ours:.2f}, CPU ratio {c_ref / c_ours:.2f}."
        title = "LLC of one checkpoint: workbench and devinterp side by side"
        write_result(
            args.json, title, *record_rows([{"threads": args.threads} | r for r in rows]), notes, params=common["params"]
        )


if __name__ == "__main__":
    main()
