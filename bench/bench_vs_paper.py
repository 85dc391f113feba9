"""The workbench's training step against the paper's (``bench/paper_reference.py``), side by
side in one process: p = 113, 30 % train, full batch, train and test loss every epoch. The
paths run one epoch each in turn (so a busy machine slows them alike), on 1 and on 2 threads;
the figure per path is the median wall time of its epochs.

Paths: the paper's step as published (test loss with autograd recording), the same with the
test loss under no_grad, the workbench's default forward (``tdw.models.fastpath.last_logits``)
and ``train.fast_path: tables`` (``tdw.models.fastpath.build_tables``), both with the
trainer's float64 loss and stacked AdamW.

    .venv/bin/python bench/bench_vs_paper.py [--epochs 20] [--threads 1 2] [--json train_vs_paper]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from paper_reference import PaperTraining, PaperTransformer  # noqa: E402
from results_io import add_json_arg, write_result  # noqa: E402

from tdw.config import TrainConfig  # noqa: E402
from tdw.models.architecture import ModelConfig  # noqa: E402
from tdw.models.fastpath import stacked_cross_entropy, stacked_logits, stacked_table_logits, stacked_tables  # noqa: E402
from tdw.models.weights import init_params  # noqa: E402
from tdw.tasks import modular as data  # noqa: E402
from tdw.train.memory import keep_freed_memory  # noqa: E402
from tdw.train.state import TrainState  # noqa: E402


def workbench_step(cfg: ModelConfig, tc: TrainConfig, tensors: tuple[torch.Tensor, ...]):
    """One epoch of the workbench's trainer loop (tdw.train.trainer) for one model."""
    state = TrainState([init_params(cfg, 0)], [tc])
    x_tr, y_tr, x_te, y_te = (t[None] for t in tensors)
    epoch = [0]

    def step() -> tuple[float, float]:
        tables = stacked_tables(state.params, cfg) if tc.fast_path == "tables" else None

        def logits(x: torch.Tensor) -> torch.Tensor:
            return stacked_logits(state.params, cfg, x) if tables is None else stacked_table_logits(tables, cfg, x)

        losses = stacked_cross_entropy(logits(x_tr), y_tr)
        with torch.no_grad():
            test = stacked_cross_entropy(logits(x_te), y_te).tolist()
        train = losses.tolist()
        state.step(losses, epoch[0])
        epoch[0] += 1
        return train[0], test[0]

    return step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    add_json_arg(ap, "train_vs_paper")
    ap.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="keep freed large blocks in the heap (tdw.train.memory, as training with the tables does) for every path",
    )
    args = ap.parse_args()
    if args.keep_freed_memory:
        keep_freed_memory()
    p = 113
    cfg = ModelConfig(p=p)
    train_idx, test_idx = data.split(p, 0.3, 0)
    tensors = tuple(
        torch.from_numpy(f(p, idx))
        for idx, f in ((train_idx, data.tokens), (train_idx, data.labels), (test_idx, data.tokens), (test_idx, data.labels))
    )
    rows, loads, out = [], [], {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        steps = {
            "the paper's step (test loss with autograd recording, as published)": PaperTraining(
                PaperTransformer(p + 1), tensors
            ).step,
            "the paper's step, test loss under no_grad": PaperTraining(PaperTransformer(p + 1), tensors, test_no_grad=True).step,
            "workbench, default forward": workbench_step(cfg, TrainConfig(), tensors),
            "workbench, train.fast_path: tables": workbench_step(cfg, TrainConfig(fast_path="tables"), tensors),
        }
        times: dict[str, list[float]] = {k: [] for k in steps}
        for i in range(args.warmup + args.epochs):
            for name, step in steps.items():
                t0 = time.perf_counter()
                step()
                if i >= args.warmup:
                    times[name].append(time.perf_counter() - t0)
        loads.append(f"{os.getloadavg()[0]:.1f}")
        ms = {k: 1000 * statistics.median(v) for k, v in times.items()}
        paper = ms[next(iter(ms))]
        for name, value in ms.items():
            rows.append([name, threads, round(value, 1), round(paper / value, 2)])
        out[threads] = {k: round(v, 1) for k, v in ms.items()}
        print(json.dumps({"threads": threads, "ms_per_epoch": out[threads], "load": loads[-1]}), flush=True)
    if args.json:
        notes = (
            f"p = 113, 30 % train (3,830 pairs), full batch, train and test loss (8,939 pairs) every epoch, float64 "
            f"log-softmax, AdamW lr 1e-3 wd 1 betas (0.9, 0.98), warm-up 10 steps; torch {torch.__version__} CPU. The "
            "paper's step is bench/paper_reference.py, written from the published recipe (all positions through "
            "attention, MLP and unembedding, einsums, causal mask); the published loop computes the test loss with "
            "autograd recording, the second row turns that off. The paths take one epoch each in turn in one process, "
            f"{args.epochs} epochs after {args.warmup} warm-up epochs; each figure is the median wall time per epoch; the last "
            f"column is the paper's step's time over the path's. Freed large blocks kept in the heap (tdw.train.memory, what "
            f"training with the tables sets; process-wide, so for every path): {'yes' if args.keep_freed_memory else 'no'}. "
            f"Load (1 min) after each thread count: {', '.join(loads)}."
        )
        write_result(
            args.json,
            "Training speed against the paper's step" + ("" if args.keep_freed_memory else ", the allocator's default"),
            ["path", "threads", "ms / epoch", "vs the paper's step"],
            rows,
            notes,
        )


if __name__ == "__main__":
    main()
