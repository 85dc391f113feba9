"""Where one epoch of the workbench's training goes, for the default forward and for
``train.fast_path: tables`` side by side (p = 113, 30 % train, full batch, test loss every
epoch, one model): the step's tables (tables path only), train forward, its float64 loss,
backward, optimizer step, test forward, test loss, in CPU time per epoch (less exposed to a
busy machine than wall time). The two paths take one epoch each in turn.

    .venv/bin/python bench/bench_train_parts.py [--epochs 30] [--threads 1] [--json train_parts_tables]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from results_io import add_json_arg, write_result  # noqa: E402

from tdw.config import TrainConfig  # noqa: E402
from tdw.models.architecture import ModelConfig  # noqa: E402
from tdw.models.fastpath import stacked_cross_entropy, stacked_logits, stacked_table_logits, stacked_tables  # noqa: E402
from tdw.models.weights import init_params  # noqa: E402
from tdw.tasks import modular as data  # noqa: E402
from tdw.train.memory import keep_freed_memory  # noqa: E402
from tdw.train.state import TrainState, scheduled_lr  # noqa: E402

PARTS = ("tables", "train_forward", "train_loss_f64", "backward", "optimizer", "test_forward", "test_loss_f64")
LABELS = {
    "tables": "the step's tables (built once, for train and test)",
    "train_forward": "train forward (3,830 rows)",
    "train_loss_f64": "train loss (float64 log-softmax)",
    "backward": "backward",
    "optimizer": "optimizer step (stacked AdamW, one model)",
    "test_forward": "test forward (8,939 rows, no grad)",
    "test_loss_f64": "test loss (float64 log-softmax)",
}


def epoch(state: TrainState, cfg: ModelConfig, tc: TrainConfig, tensors, i: int, acc: dict[str, float] | None) -> None:
    """One epoch, adding each part's CPU seconds to ``acc``."""
    x_tr, y_tr, x_te, y_te = tensors
    names = list(state.params)
    t = [time.process_time()]
    tables = stacked_tables(state.params, cfg) if tc.fast_path == "tables" else None
    t.append(time.process_time())

    def logits(x: torch.Tensor) -> torch.Tensor:
        return stacked_logits(state.params, cfg, x) if tables is None else stacked_table_logits(tables, cfg, x)

    out = logits(x_tr)
    t.append(time.process_time())
    losses = stacked_cross_entropy(out, y_tr)
    t.append(time.process_time())
    grads = dict(zip(names, torch.autograd.grad(losses.sum(), [state.params[k] for k in names]), strict=True))
    t.append(time.process_time())
    state.opt.step(state.filter(grads), [scheduled_lr(tc, i)])
    t.append(time.process_time())
    with torch.no_grad():
        test = logits(x_te)
        t.append(time.process_time())
        stacked_cross_entropy(test, y_te).tolist()
        t.append(time.process_time())
    if acc is not None:
        for k, a, b in zip(PARTS, t[:-1], t[1:], strict=True):
            acc[k] += b - a


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    add_json_arg(ap, "train_parts_tables")
    ap.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="keep freed large blocks in the heap (tdw.train.memory, as training with the tables does) for every path",
    )
    args = ap.parse_args()
    if args.keep_freed_memory:
        keep_freed_memory()
    torch.set_num_threads(args.threads)
    p, cfg = 113, ModelConfig(p=113)
    train_idx, test_idx = data.split(p, 0.3, 0)
    tensors = tuple(
        torch.from_numpy(f(p, idx))[None]
        for idx, f in ((train_idx, data.tokens), (train_idx, data.labels), (test_idx, data.tokens), (test_idx, data.labels))
    )
    paths = {"default": TrainConfig(), "tables": TrainConfig(fast_path="tables")}
    states = {k: TrainState([init_params(cfg, 0)], [tc]) for k, tc in paths.items()}
    acc = {k: dict.fromkeys(PARTS, 0.0) for k in paths}
    for i in range(args.warmup + args.epochs):
        for k, tc in paths.items():
            epoch(states[k], cfg, tc, tensors, i, acc[k] if i >= args.warmup else None)
    ms = {k: {part: 1000 * v / args.epochs for part, v in a.items()} for k, a in acc.items()}
    totals = {k: sum(v.values()) for k, v in ms.items()}
    print(json.dumps({"cpu_ms_per_epoch": ms, "totals": totals, "load": os.getloadavg()[0]}))
    if args.json:
        rows = [[LABELS[part], round(ms["default"][part], 1), round(ms["tables"][part], 1)] for part in PARTS]
        rows.append(["total", round(totals["default"], 1), round(totals["tables"], 1)])
        notes = (
            f"CPU time per part of one model's epoch (p = 113, 30 % train, full batch, test loss every epoch, "
            f"{args.threads} thread(s), {args.epochs} epochs after {args.warmup}), the two paths one epoch each in turn. With the "
            "tables a row costs about 70k multiply-adds (13 gathered rows of 632 values: 12 of the attention, one constant; "
            "then relu(pre) (W_out W_U), 512 x 114 padded to 120) against 162k; the [rows, 512] x [512, 120] product and its backward are most of what is left. "
            f"Freed large blocks kept in the heap (tdw.train.memory; both paths): {'yes' if args.keep_freed_memory else 'no'}."
        )
        write_result(
            args.json, "Where one epoch goes: default and tables", ["part", "default CPU ms", "tables CPU ms"], rows, notes
        )


if __name__ == "__main__":
    main()
