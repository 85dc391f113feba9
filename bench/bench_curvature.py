"""Cost per checkpoint of the ``sharpness`` and ``interventions`` analyzers on the modadd
family's model (randomly initialised checkpoints at p, the family's train fraction), with
their declared defaults, through ``run_analyzer``; and the time of one Hessian-vector
product of the training loss in float64 (what ``sharpness`` uses) and float32.

    .venv/bin/python bench/bench_curvature.py [--p 113] [--checkpoints 2] [--threads 1] [--train-frac 0.3]
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

from tdw.analyzers.curvature import flat_training_loss, hessian_vector_product  # noqa: E402
from tdw.analyzers.runner import checkpoint_view, run_analyzer  # noqa: E402
from tdw.config import load_family  # noqa: E402
from tdw.io.checkpoint import save_checkpoint  # noqa: E402
from tdw.io.h5 import load_artifact  # noqa: E402
from tdw.models.weights import init_params  # noqa: E402


def write_checkpoints(root: Path, p: int, n: int, train_frac: float) -> list[Path]:
    cfg = load_family("modadd").model_config(p)
    config = {"task": {"operation": "add", "p": p}, "seed": 0, "architecture": cfg.to_dict(), "train": {"train_frac": train_frac}}
    paths = []
    for e in range(n):
        paths.append(root / f"checkpoint_epoch_{e:05d}.safetensors")
        save_checkpoint(paths[-1], {k: v.numpy() for k, v in init_params(cfg, e).items()}, {"epoch": e, "config": config})
    return paths


def hvp_ms(path: Path, dtype: str, repeats: int = 5) -> float:
    """Milliseconds per Hessian-vector product (the fastest of ``repeats``, after one warm-up)."""
    flat = flat_training_loss(checkpoint_view(path, None), "cpu", dtype)
    hvp = hessian_vector_product(flat.loss, flat.center)
    v = np.random.default_rng(0).standard_normal(hvp.dim)
    hvp.matvec(v)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        hvp.matvec(v)
        best = min(best, time.perf_counter() - t)
    return 1e3 * best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--p", type=int, default=113)
    ap.add_argument("--checkpoints", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-frac", type=float, default=0.3)
    add_json_arg(ap, "curvature_cost")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows, record = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_checkpoints(Path(tmp), args.p, args.checkpoints, args.train_frac)
        dim = sum(int(np.prod(v.shape)) for v in checkpoint_view(paths[0], None).weights.values())
        for dtype in ("float64", "float32"):
            record[f"hvp_ms_{dtype}"] = ms = round(hvp_ms(paths[0], dtype), 1)
            rows.append([f"one Hessian-vector product, {dtype}", ms, None, None])
        for name in ("sharpness", "interventions"):
            out = Path(tmp) / f"{name}.h5"
            t = time.perf_counter()
            run_analyzer(name, {}, paths, None, out, {})
            per = (time.perf_counter() - t) / args.checkpoints
            calls = int(np.mean(load_artifact(out)["hvp_calls"])) if name == "sharpness" else None
            record[f"{name}_s_per_checkpoint"] = round(per, 2)
            rows.append([f"`{name}` (defaults) per checkpoint", None, round(per, 2), calls])
    print(json.dumps({"p": args.p, "parameters": dim, "threads": args.threads} | record))
    if args.json:
        write_result(
            args.json,
            f"Sharpness and interventions: cost per checkpoint (p = {args.p}, {dim:,} parameters)",
            ["what", "ms", "s / checkpoint", "Hessian-vector products"],
            rows,
            f"modadd's model at p = {args.p}, train fraction {args.train_frac} ({round(args.train_frac * args.p**2)} training rows), "
            f"{args.threads} torch thread(s), CPU, randomly initialised checkpoints ({args.checkpoints}, the mean per checkpoint). "
            "sharpness: k = 3 Lanczos eigenvalues (tol 1e-4) + 10 Hutchinson probes, every product in float64; "
            "interventions: 8 pruning fractions on both splits + 5 noise scales x 8 antithetic pairs, float64. "
            "A float32 product is shown for comparison only; the analyzer uses float64.",
        )


if __name__ == "__main__":
    main()
