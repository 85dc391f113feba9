"""Benchmark: the cost of tracking measures during training (``train.tracking``) on the default
config's setting (modadd, p = 113, half the pairs in training, its two seeds trained as one
stack), through the real trainer: runs with tracking off and on alternate, each timing its
training loop (``metadata.json`` timings), and the medians are compared.

    python bench/bench_tracking.py [--epochs 100] [--repeats 3] [--every 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402
from results_io import add_json_arg, write_result  # noqa: E402

from tdw.config import TrainConfig, Variant, load_family  # noqa: E402
from tdw.train.trainer import TrainJob, train_variants  # noqa: E402

HOOKS = ["blocks.0.hook_resid_post", "blocks.0.mlp.hook_post"]


def run(out: Path, epochs: int, tracking: dict | None) -> float:
    """ms per epoch of the training loop of the default config's two seeds, stacked."""
    family = load_family("modadd", str(ROOT / "families"))
    tc = TrainConfig(train_frac=0.5, tracking=tracking)
    jobs = [
        TrainJob("modadd", "add", family.model_config(113), tc, Variant(f"p113_seed{s}", 113, s, 0.5, (0, epochs)), out / str(s))
        for s in (0, 1)
    ]
    train_variants(jobs, progress_seconds=1e9)
    meta = json.loads((out / "0" / "metadata.json").read_text())
    shutil.rmtree(out)
    return float(meta["timings"]["ms_per_epoch"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    add_json_arg(ap, "tracking_cost")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tracking = {"every": args.every, "hooks": HOOKS}
    times: dict[str, list[float]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for mode in ("off", "on") if r % 2 == 0 else ("on", "off"):
                times[mode].append(run(Path(tmp) / f"{mode}{r}", args.epochs, tracking if mode == "on" else None))
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    result = {"off_ms": round(off, 1), "on_ms": round(on, 1), "overhead_pct": round(100 * (on - off) / off, 1), "runs": times}
    print(json.dumps(result))
    if args.json:
        rows = [
            ["tracking off", round(off, 1), None],
            [
                f"tracking every {args.every} epochs (all four measures, {len(HOOKS)} hooks, 256 probe rows)",
                round(on, 1),
                result["overhead_pct"],
            ],
        ]
        notes = (
            f"The default config's setting (modadd, p = 113, 50 % train, two seeds as one stack, train and test loss every epoch), "
            f"{args.epochs} epochs per run through the trainer, {args.threads} threads; runs with tracking off and on alternate "
            f"({args.repeats} each) and the medians are shown (every run: {json.dumps(times)}). Tracked: gradient norm, weight "
            f"norm and relative update per parameter, and the five dimensionality metrics of {', '.join(HOOKS)}. "
            "Target: at most 10 % at every 5 epochs. A run with tracking off is the trainer without it: its weights and "
            "history are unchanged (tests/test_tracking.py)."
        )
        write_result(args.json, "Tracking during training: cost", ["run", "ms / epoch (2 models)", "overhead (%)"], rows, notes)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
