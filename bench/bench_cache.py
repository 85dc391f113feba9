"""Forward pass plus cache write for one p = 113 checkpoint (full grid), as the cache job
does it (model built once, then per checkpoint: load, run_with_cache, write HDF5).

    .venv/bin/python bench/bench_cache.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

t_import = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
from results_io import add_json_arg, figure_rows, write_result  # noqa: E402

from tdw.cache.forward import cache_checkpoints  # noqa: E402
from tdw.config import Variant, load_family  # noqa: E402
from tdw.io.checkpoint import save_checkpoint  # noqa: E402
from tdw.models.weights import init_params  # noqa: E402

IMPORT_S = time.perf_counter() - t_import


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    add_json_arg(ap, "cache_write")
    args = ap.parse_args()
    torch.set_num_threads(1)  # as the cache job with threads: 1
    root = Path(__file__).resolve().parents[1]
    family = load_family("modadd", str(root / "families"))
    variant = Variant("bench", 113, 0, 0.3, tuple(range(args.repeats)))
    cfg = family.model_config(113)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpts, outs = [], []
        for i in range(args.repeats):
            weights = {k: v.numpy() for k, v in init_params(cfg, i).items()}
            ckpts.append(tmp / f"ck{i}.safetensors")
            outs.append(tmp / f"epoch_{i:05d}.h5")
            save_checkpoint(ckpts[-1], weights, {"epoch": i, "config": {"task": {"p": 113}}})
        t0 = time.perf_counter()
        seconds = cache_checkpoints(family, variant, "full", ckpts, outs)
        total = time.perf_counter() - t0
        size = outs[0].stat().st_size
    result = {
        "import_s": round(IMPORT_S, 2),
        "per_checkpoint_s": [round(s, 3) for s in seconds],
        "mean_after_first_s": round(sum(seconds[1:]) / max(len(seconds) - 1, 1), 3),
        "job_total_s": round(total, 2),
        "cache_mb": round(size / 1e6, 2),
    }
    print(json.dumps(result))
    if args.json:
        notes = "Full grid of p = 113, the hooks the family keeps, gzip-compressed HDF5 written atomically; seconds and MB."
        write_result(args.json, "Forward pass and cache write, one p = 113 checkpoint", *figure_rows(result), notes)


if __name__ == "__main__":
    main()
