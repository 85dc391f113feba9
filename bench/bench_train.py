"""Training speed of the paper's model (p = 113, 30 % train, full batch, test loss every
epoch): the workbench's fast path against the full hooked forward (all positions), side by
side in one process; with ``--seeds S``, also S seeds trained as one stacked model (the
``batch_seeds`` mode), one kernel per seed ("loop", the CPU default) and as one vmapped
call ("vmap", the CUDA default), against one seed in the same process. The stacked models
have per-model hyperparameters (lr and weight decay differ by seed), as variants of a
hyperparameter sweep that share shapes. With ``--grokfast ema|ma``, also the cost of the
Grokfast filter (EMA: alpha 0.98, lamb 2; MA: window 100, lamb 5) on one model. With
``--profile``, where one model's epoch goes: train forward, its float64 loss, backward,
optimizer step, test forward, test loss, in CPU time (less exposed to a busy machine than
wall time).

    .venv/bin/python bench/bench_train.py [--epochs 100] [--threads 2] [--device cpu|cuda] [--seeds 8] [--grokfast ema] [--profile]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from results_io import add_json_arg, figure_rows, write_result  # noqa: E402

from tdw.config import TrainConfig  # noqa: E402
from tdw.models.architecture import ModelConfig  # noqa: E402
from tdw.models.hooked import HookedModAdd  # noqa: E402
from tdw.models.weights import init_params  # noqa: E402
from tdw.tasks import modular as data  # noqa: E402
from tdw.train.grokfast import GradFilter  # noqa: E402
from tdw.train.state import TrainState  # noqa: E402
from tdw.train.trainer import stacked_cross_entropy, stacked_logits  # noqa: E402

GROKFAST = {"ema": {"kind": "ema", "alpha": 0.98, "lamb": 2.0}, "ma": {"kind": "ma", "window": 100, "lamb": 5.0}}


def epoch_time(forward, params: list[dict], tc: TrainConfig | list[TrainConfig], tensors, epochs: int, warmup: int = 5) -> float:
    """Seconds per epoch of S stacked models: train loss (with grad), test loss (no grad),
    one AdamW step (and the Grokfast filter where the recipe has one)."""
    state = TrainState(params, tc if isinstance(tc, list) else [tc] * len(params))
    x_tr, y_tr, x_te, y_te = tensors
    sync = torch.cuda.synchronize if x_tr.is_cuda else (lambda: None)
    for i in range(warmup + epochs):
        if i == warmup:
            sync()
            t0 = time.perf_counter()
        losses = stacked_cross_entropy(forward(state.params, x_tr), y_tr)
        with torch.no_grad():
            stacked_cross_entropy(forward(state.params, x_te), y_te).tolist()
        state.step(losses, i)
    sync()
    return (time.perf_counter() - t0) / epochs


def epoch_parts(params: dict, cfg: ModelConfig, tc: TrainConfig, tensors, epochs: int, warmup: int = 5) -> dict[str, float]:
    """CPU milliseconds per epoch of each part of one model's epoch (CPU only: no sync)."""
    from tdw.train.trainer import scheduled_lr

    state = TrainState([params], [tc])
    x_tr, y_tr, x_te, y_te = tensors
    names = list(state.params)
    parts = dict.fromkeys(("train_forward", "train_loss_f64", "backward", "optimizer", "test_forward", "test_loss_f64"), 0.0)
    for i in range(warmup + epochs):
        t = [time.process_time()]
        logits = stacked_logits(state.params, cfg, x_tr)
        t.append(time.process_time())
        losses = stacked_cross_entropy(logits, y_tr)
        t.append(time.process_time())
        grads = dict(zip(names, torch.autograd.grad(losses.sum(), [state.params[k] for k in names]), strict=True))
        t.append(time.process_time())
        state.opt.step(state.filter(grads), [scheduled_lr(tc, i)])
        t.append(time.process_time())
        with torch.no_grad():
            test_logits = stacked_logits(state.params, cfg, x_te)
            t.append(time.process_time())
            stacked_cross_entropy(test_logits, y_te).tolist()
            t.append(time.process_time())
        if i >= warmup:
            for k, a, b in zip(parts, t[:-1], t[1:], strict=True):
                parts[k] += b - a
    out = {k: round(1000 * v / epochs, 2) for k, v in parts.items()}
    return out | {"total": round(sum(out.values()), 2)}


def filter_time(params: list[dict], spec: dict, calls: int) -> float:
    """Seconds per call of the Grokfast filter alone on gradients of the models' shapes, after
    the moving average's window has filled: less exposed to a busy machine than the
    difference of two epoch times."""
    grads = {k: torch.randn_like(torch.stack([p[k] for p in params])) for k in params[0]}
    gf = GradFilter([spec] * len(params))
    for _ in range(spec.get("window", 1)):
        gf(grads)
    t0 = time.perf_counter()
    for _ in range(calls):
        gf(grads)
    return (time.perf_counter() - t0) / calls


def seed_tensors(p: int, train_frac: float, seeds: int, dev: torch.device) -> tuple[torch.Tensor, ...]:
    """Train tokens, train labels, test tokens, test labels of seeds 0..S-1 (each its own
    split, all of one size), stacked on a leading axis."""
    splits = [data.split(p, train_frac, seed) for seed in range(seeds)]
    return tuple(
        torch.stack([torch.from_numpy(f(p, s[part])) for s in splits]).to(dev)
        for part, f in ((0, data.tokens), (0, data.labels), (1, data.tokens), (1, data.labels))
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seeds", type=int, default=1, help="also time this many seeds trained as one stacked model")
    ap.add_argument("--skip-full", action="store_true", help="do not time the full hooked forward")
    ap.add_argument("--grokfast", choices=sorted(GROKFAST), help="also time one model with this Grokfast filter")
    ap.add_argument("--profile", action="store_true", help="also split one model's epoch into its parts (CPU time)")
    add_json_arg(ap, "train_speed")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg, tc = ModelConfig(p=113), TrainConfig(train_frac=0.3)
    dev = torch.device(args.device)
    seeds = max(args.seeds, 1)
    params = [{k: v.to(dev) for k, v in init_params(cfg, seed).items()} for seed in range(seeds)]
    tensors = seed_tensors(cfg.p, tc.train_frac, seeds, dev)
    one = tuple(t[:1] for t in tensors)  # a stack of one model
    model = HookedModAdd(cfg).to(dev)

    def full(p, x):  # every position through attention, MLP and unembed, then the last one
        return torch.func.functional_call(model, {k: v[0] for k, v in p.items()}, (x[0],))[None, :, -1]

    def fast(p, x):
        return stacked_logits(p, cfg, x)

    t_fast = epoch_time(fast, params[:1], tc, one, args.epochs)
    result = {"device": str(dev), "threads": args.threads, "fast_ms_per_epoch": round(1000 * t_fast, 2)}
    if args.grokfast:
        gf = TrainConfig(train_frac=0.3, grokfast=GROKFAST[args.grokfast])
        # the moving average applies once its window is full: time the epochs after that
        t_gf = epoch_time(fast, params[:1], gf, one, args.epochs, warmup=max(5, gf.grokfast.get("window", 0)))
        result[f"grokfast_{args.grokfast}_ms_per_epoch"] = round(1000 * t_gf, 2)
        result[f"grokfast_{args.grokfast}_extra_ms"] = round(1000 * (t_gf - t_fast), 2)
        result[f"grokfast_{args.grokfast}_filter_only_ms"] = round(1000 * filter_time(params[:1], gf.grokfast, args.epochs), 3)
    if args.profile:
        result["cpu_ms_per_epoch_parts"] = epoch_parts(params[0], cfg, tc, one, args.epochs)
    if args.seeds > 1:
        sweep = [TrainConfig(train_frac=0.3, lr=1e-3 * (1 + i / 8), weight_decay=0.5 + i / 8) for i in range(seeds)]
        for mode, vectorize in (("loop", False), ("vmap", True)):
            t = epoch_time(lambda p, x, v=vectorize: stacked_logits(p, cfg, x, vectorize=v), params, sweep, tensors, args.epochs)
            result[f"{args.seeds}_seeds_{mode}_ms_per_epoch"] = round(1000 * t, 2)
            result[f"{args.seeds}_seeds_{mode}_vs_one"] = round(t / t_fast, 2)
    if not args.skip_full:
        t_full = epoch_time(full, params[:1], tc, one, max(args.epochs // 5, 10))
        result["full_forward_ms_per_epoch"] = round(1000 * t_full, 2)
        result["speedup"] = round(t_full / t_fast, 2)
    print(json.dumps(result))
    if args.json:
        notes = "p = 113, 30 % train, full batch, train and test loss every epoch; milliseconds per epoch, CPU milliseconds for the parts."
        write_result(args.json, "Training speed: the paper's model", *figure_rows(result), notes)


if __name__ == "__main__":
    main()
