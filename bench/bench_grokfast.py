"""A small grokking comparison with and without the Grokfast filter: one model trained by the
workbench's training step (``tdw.train.state.TrainState``: stacked AdamW, warm-up, optional
filter), full batch, until the test loss falls below a target or an epoch or time cap is
reached. Prints one JSON line per run: epochs to the target (null if not reached), the test
loss reached, ms/epoch.

    .venv/bin/python bench/bench_grokfast.py [--p 53] [--train-frac 0.3] [--weight-decay 1.0]
        [--alpha 0.98] [--lamb 2.0] [--target 0.1] [--max-epochs 30000] [--max-seconds 240] [--runs off,ema]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tdw.config import TrainConfig  # noqa: E402
from tdw.models.architecture import ModelConfig  # noqa: E402
from tdw.models.weights import init_params  # noqa: E402
from tdw.train.state import TrainState  # noqa: E402
from tdw.train.trainer import stacked_cross_entropy, stacked_logits  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import seed_tensors  # noqa: E402
from results_io import add_json_arg, record_rows, write_result  # noqa: E402


def run(cfg: ModelConfig, tc: TrainConfig, seed: int, args: argparse.Namespace) -> dict:
    """Train until test loss < target (checked every ``--test-every`` epochs) or a cap."""
    state = TrainState([init_params(cfg, seed)], [tc])
    x_tr, y_tr, x_te, y_te = (t[seed:] for t in seed_tensors(cfg.p, tc.train_frac, seed + 1, torch.device("cpu")))
    t0, reached, test, best, epoch = time.perf_counter(), None, float("nan"), float("inf"), 0
    for epoch in range(args.max_epochs + 1):
        losses = stacked_cross_entropy(stacked_logits(state.params, cfg, x_tr), y_tr)
        if epoch % args.test_every == 0:
            with torch.no_grad():
                test = stacked_cross_entropy(stacked_logits(state.params, cfg, x_te), y_te).item()
            best = min(best, test)
            if test < args.target:
                reached = epoch
                break
            if time.perf_counter() - t0 > args.max_seconds:
                break
        state.step(losses, epoch)
    seconds = time.perf_counter() - t0
    return {
        "grokfast": tc.grokfast,
        "epochs_run": epoch,
        "epochs_to_target": reached,
        "target": args.target,
        "test_loss": test,
        "min_test_loss": best,
        "train_loss": losses.item(),
        "seconds": round(seconds, 1),
        "ms_per_epoch": round(1000 * seconds / max(epoch, 1), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--p", type=int, default=53)
    ap.add_argument("--train-frac", type=float, default=0.3)
    ap.add_argument("--weight-decay", type=float, default=1.0)
    ap.add_argument("--alpha", type=float, default=0.98)
    ap.add_argument("--lamb", type=float, default=2.0)
    ap.add_argument("--target", type=float, default=0.1)
    ap.add_argument("--test-every", type=int, default=10)
    ap.add_argument("--max-epochs", type=int, default=30000)
    ap.add_argument("--max-seconds", type=float, default=240.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", default="off,ema", help="comma-separated: off, ema")
    add_json_arg(ap, "grokfast_runs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = ModelConfig(p=args.p)
    runs = []
    for name in args.runs.split(","):
        grokfast = {"kind": "ema", "alpha": args.alpha, "lamb": args.lamb} if name == "ema" else None
        tc = TrainConfig(train_frac=args.train_frac, weight_decay=args.weight_decay, grokfast=grokfast)
        runs.append({"run": name, "p": args.p, "train_frac": args.train_frac, "weight_decay": args.weight_decay})
        runs[-1] |= run(cfg, tc, args.seed, args)
        print(json.dumps(runs[-1]), flush=True)
    if args.json:
        notes = (
            f"Seed {args.seed}, each run to test loss {args.target} or its caps ({args.max_epochs} epochs, {args.max_seconds} s)."
        )
        write_result(args.json, "Grokfast against none, to a target test loss", *record_rows(runs), notes)


if __name__ == "__main__":
    main()
