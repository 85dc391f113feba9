"""Benchmark: the ``lmc`` analyzer's cost per checkpoint on the modadd model at p = 113
(d_model 128, 4 heads, d_mlp 512; the full grid of 12,769 pairs split 30 / 70), one thread, as
its Snakemake job runs. The checkpoints are drawn by the model's initialisation (the cost does
not depend on the values): a variant of ``--checkpoints`` checkpoints and a partner variant at
the same epochs. Times the analyzer with and without the partner, and apart the weight
matching of one pair and one line's forward passes.

    .venv/bin/python bench/bench_lmc.py [--checkpoints 4] [--points 11] [--threads 1]
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

from tdw.analyzers import lmc, rebasin  # noqa: E402
from tdw.analyzers.runner import checkpoint_view, run_analyzer  # noqa: E402
from tdw.io.checkpoint import save_checkpoint  # noqa: E402
from tdw.layout import VariantLayout  # noqa: E402
from tdw.models.architecture import ModelConfig  # noqa: E402
from tdw.models.weights import init_params  # noqa: E402

P = 113


def write_variant(root: Path, name: str, seed: int, epochs: list[int], cfg: ModelConfig) -> list[Path]:
    config = {
        "family": "modadd",
        "variant": name,
        "task": {"operation": "add", "p": P},
        "seed": seed,
        "architecture": cfg.to_dict(),
        "train": {"train_frac": 0.3},
    }
    paths = []
    for i, epoch in enumerate(epochs):
        weights = {k: v.numpy() for k, v in init_params(cfg, 1000 * seed + i).items()}
        paths.append(VariantLayout(root, "modadd", name).checkpoint(epoch))
        save_checkpoint(paths[-1], weights, {"epoch": epoch, "config": config})
    return paths


def fastest(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoints", type=int, default=4)
    ap.add_argument("--points", type=int, default=11)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    add_json_arg(ap, "lmc_cost")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = ModelConfig(p=P)
    epochs = [100 * i for i in range(args.checkpoints)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ckpts = write_variant(root, "a", 0, epochs, cfg)
        write_variant(root, "b", 1, epochs, cfg)
        n = len(ckpts)
        rows = []
        for partner in ("", "b"):
            seconds = fastest(
                lambda partner=partner: run_analyzer(
                    "lmc", {"points": args.points, "partner": partner}, ckpts, None, root / "x.h5", {}
                ),
                args.repeats,
            )
            what = "analyzer, previous + partner" if partner else "analyzer, previous checkpoint only"
            rows.append([what, n, seconds, seconds / n])
        view = checkpoint_view(ckpts[1], None)
        w_a, w_b = checkpoint_view(ckpts[0], None).weights, view.weights
        rows.append(
            ["weight matching of one pair", 1, t := fastest(lambda: rebasin.match_weights(w_a, w_b, cfg), args.repeats), t]
        )
        split = lmc.split_rows(view)
        alphas = np.linspace(0, 1, args.points)
        t = fastest(lambda: lmc.line_metrics(w_a, w_b, cfg, split, alphas), args.repeats)
        rows.append([f"one line ({args.points} forwards of {P * P} rows)", 1, t, t])
    for row in rows:
        print(json.dumps(dict(zip(["what", "checkpoints", "seconds", "seconds per checkpoint"], row, strict=True))))
    if args.json:
        notes = (
            f"p = {P}, {args.points} points per line, {args.threads} thread(s), CPU; the fastest of {args.repeats} runs. "
            "Per checkpoint the analyzer matches and draws two lines (naive and matched) per pair; the first checkpoint "
            "has no predecessor, so the analyzer's per-checkpoint time averages n - 1 previous pairs over n checkpoints."
        )
        write_result(
            args.json,
            "lmc: cost per checkpoint at p = 113",
            ["what", "checkpoints", "seconds", "seconds per checkpoint"],
            [[r[0], r[1], round(r[2], 3), round(r[3], 3)] for r in rows],
            notes,
        )


if __name__ == "__main__":
    main()
