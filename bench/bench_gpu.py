"""Benchmark for a machine with CUDA (runs on the CPU too, for a check): the paper's setting
(modadd, p = 113, 30 % train, full batch, test loss every epoch) through the workbench's own
code paths, on the device each uses:

1. training 1 and 8 stacked variants (seeds 0..7) for ``--epochs`` epochs with the trainer
   (``train_variants``, vectorised on CUDA): ms per epoch of the training loop;
2. the LLC (``tdw.analyzers.llc.estimate``, the llc analyzer's defaults unless given) on the
   last checkpoint of the one-variant run: seconds;
3. the forward pass of ``--checkpoints`` checkpoints (a run checkpointed every epoch) into the
   full-grid cache (``tdw.cache.forward.cache_checkpoints``): seconds in all and per checkpoint.

    python bench/bench_gpu.py [--epochs 200] [--checkpoints 100] [--json gpu]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402
from results_io import add_json_arg, write_result  # noqa: E402

from tdw.analyzers.base import CheckpointView  # noqa: E402
from tdw.analyzers.llc import PARAMS as LLC_PARAMS  # noqa: E402
from tdw.analyzers.llc import estimate  # noqa: E402
from tdw.cache.forward import cache_checkpoints  # noqa: E402
from tdw.config import TrainConfig, Variant, load_family  # noqa: E402
from tdw.io.checkpoint import read_metadata  # noqa: E402
from tdw.layout import checkpoint_name  # noqa: E402
from tdw.train.trainer import TrainJob, train_variants  # noqa: E402

P, FRAC = 113, 0.3


def jobs(family, n: int, epochs: tuple[int, ...], out: Path) -> list[TrainJob]:
    tc = TrainConfig(train_frac=FRAC)
    return [
        TrainJob("modadd", "add", family.model_config(P), tc, Variant(f"p{P}_seed{s}", P, s, FRAC, epochs), out / f"seed{s}")
        for s in range(n)
    ]


def ms_per_epoch(out: Path) -> float:
    return float(json.loads((out / "metadata.json").read_text())["timings"]["ms_per_epoch"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--stack", type=int, default=8)
    ap.add_argument("--checkpoints", type=int, default=100)
    ap.add_argument("--llc-draws", type=int, default=None, help="draws per chain (default: the llc analyzer's)")
    add_json_arg(ap, "gpu")
    args = ap.parse_args()
    family = load_family("modadd", str(ROOT / "families"))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or platform.machine()
    rows: list[list] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        schedule = (0, args.epochs)
        train_variants(jobs(family, 1, schedule, out / "one"), progress_seconds=1e9)
        one = ms_per_epoch(out / "one" / "seed0")
        rows.append(["train 1 variant", "ms / epoch", round(one, 2), device])
        train_variants(jobs(family, args.stack, schedule, out / "stack"), progress_seconds=1e9)
        stacked = ms_per_epoch(out / "stack" / "seed0")
        rows.append([f"train {args.stack} stacked variants", "ms / epoch (all together)", round(stacked, 2), device])
        rows.append([f"train {args.stack} stacked variants", "ms / epoch per variant", round(stacked / args.stack, 2), device])

        ckpt = out / "one" / "seed0" / "checkpoints" / checkpoint_name(args.epochs)
        view = CheckpointView(args.epochs, family.model_config(P), ckpt, config=read_metadata(ckpt)["config"])
        params = {p.name: p.default for p in LLC_PARAMS} | ({"draws": args.llc_draws} if args.llc_draws else {})
        t0 = time.perf_counter()
        est, _ = estimate(view, params)
        llc_s = time.perf_counter() - t0
        rows.append(
            [f"LLC of one checkpoint ({params['chains']} chains x {params['draws']} draws)", "s", round(llc_s, 2), device]
        )

        n = args.checkpoints
        dense = jobs(family, 1, tuple(range(n)), out / "dense")
        train_variants(dense, progress_seconds=1e9)
        store = out / "dense" / "seed0" / "checkpoints"
        ckpts = [store / checkpoint_name(e) for e in range(n)]
        caches = [out / "cache" / f"epoch_{e:05d}.h5" for e in range(n)]
        caches[0].parent.mkdir()
        t0 = time.perf_counter()
        cache_checkpoints(family, dense[0].variant, "full", ckpts, caches)
        fwd = time.perf_counter() - t0
        forward_device = "cpu"  # the forward-pass rule builds its model on the CPU
        rows.append([f"forward pass of {n} checkpoints (full grid, {P * P:,} rows)", "s", round(fwd, 2), forward_device])
        rows.append(
            [f"forward pass of {n} checkpoints (full grid, {P * P:,} rows)", "s / checkpoint", round(fwd / n, 3), forward_device]
        )
    print(json.dumps({"device": name, "rows": rows, "llc_mean": est.llc_mean}))
    if args.json:
        notes = (
            f"{name}; modadd at p = {P}, {int(FRAC * 100)} % train, full batch, train and test loss every epoch, the "
            f"workbench's trainer ({args.epochs} epochs; the stack vectorised on CUDA, looped on the CPU), the llc "
            "analyzer's estimate with its defaults, and the forward-pass rule's cache writer (compressed HDF5). "
            f"The LLC came out at {est.llc_mean:.2f}."
        )
        write_result(args.json, f"The paper's setting on {device.upper()}", ["what", "unit", "value", "device"], rows, notes)


if __name__ == "__main__":
    main()
