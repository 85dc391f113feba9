"""The devinterp grokking example (timaeus-research/devinterp, examples/grokking.ipynb) against
the workbench's run of config/devinterp_grokking.yaml (family modadd_mlp_devinterp).

Reads the run's history.h5, its llc artifact and its checkpoints (full train and test split loss
and accuracy at every checkpoint, by the training fast path) and records: the final train/test
loss and accuracy, the first checkpoint step at which test accuracy reaches 0.9 and 0.99, and the
LLC curve's start, peak (value and step) and final values, with the Pearson correlation of the LLC
with the test loss over the checkpoints (the notebook says the LLC "tracks the test loss").

``--reference`` also runs the example's own training loop here on the CPU, as the notebook
writes it (pairs in Python ``set`` order, ``random.seed`` split, modules created in its order
after ``torch.manual_seed``, ``torch.optim.Adam(weight_decay=2e-4)``, ``next(iter(DataLoader(...,
shuffle=True)))`` per step): the same random streams as the published run, so its numbers can be
set beside the published ones; the workbench's LLC (same settings as the config) is then
measured on its 101 checkpoints too. About 5 minutes of one CPU core.

    .venv/bin/python bench/bench_devinterp_grokking.py --reference --json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
from pathlib import Path

import numpy as np
import torch
from results_io import ROOT, add_json_arg, write_result

sys.path.insert(0, str(ROOT / "src"))

from tdw.analyzers import llc as llc_analyzer  # noqa: E402
from tdw.io.checkpoint import load_weights  # noqa: E402
from tdw.io.h5 import load_artifact  # noqa: E402
from tdw.io.history import read_history  # noqa: E402
from tdw.models.architecture import ModelConfig  # noqa: E402
from tdw.models.fastpath import mlp_logits, stacked_cross_entropy, stacked_logits  # noqa: E402
from tdw.tasks import modular  # noqa: E402

RUNS = ROOT / "results" / "modadd_mlp_devinterp"
VARIANT = "p53_seed{seed}_wd0.0002_frac0.4_lr0.005_warmup0_betas0.9-0.999"
NOTEBOOK = "timaeus-research/devinterp examples/grokking.ipynb (stored copy at commit 2558dd00f2628da60d5bb053efcb66f26bfab145)"
# The notebook's training cell (its tqdm line at step 25,000): the published numbers.
PUBLISHED = {"train_loss": 0.0137, "train_acc": 1.0, "test_loss": 0.0395, "test_acc": 1.0}


def split_metrics(params: dict, cfg: ModelConfig, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        logits = mlp_logits({k: torch.as_tensor(v) for k, v in params.items()}, cfg, x)
        loss = torch.nn.functional.cross_entropy(logits.double(), y).item()
        return loss, (logits.argmax(-1) == y).double().mean().item()


def curve_summary(steps: np.ndarray, test_acc: np.ndarray, test_loss: np.ndarray, llc: np.ndarray) -> dict:
    def first(threshold: float) -> int | None:
        hit = np.nonzero(test_acc >= threshold)[0]
        return int(steps[hit[0]]) if len(hit) else None

    peak = int(np.nanargmax(llc))
    return {
        "test_acc_0.9_step": first(0.9),
        "test_acc_0.99_step": first(0.99),
        "llc_start": float(llc[0]),
        "llc_peak": float(llc[peak]),
        "llc_peak_step": int(steps[peak]),
        "llc_final": float(llc[-1]),
        "llc_test_loss_corr": float(np.corrcoef(llc, test_loss)[0, 1]),
    }


def workbench_run(run: Path) -> dict:
    config = json.loads((run / "config.json").read_text())
    cfg = ModelConfig(**config["architecture"])
    p, frac, seed = cfg.p, config["train"]["train_frac"], config.get("data_seed", config["seed"])
    train, test = modular.split(p, frac, seed)
    data = {
        name: (torch.from_numpy(modular.tokens(p, idx)), torch.from_numpy(modular.labels(p, idx)))
        for name, idx in (("train", train), ("test", test))
    }
    llc = load_artifact(run / "artifacts" / "full" / "llc.h5")
    steps = np.asarray(llc["epoch"])
    rows = {k: [] for k in ("train_loss", "train_acc", "test_loss", "test_acc")}
    for step in steps:
        w = load_weights(run / "checkpoints" / f"checkpoint_epoch_{int(step):05d}.safetensors")
        for name in ("train", "test"):
            loss, acc = split_metrics(w, cfg, *data[name])
            rows[f"{name}_loss"].append(loss)
            rows[f"{name}_acc"].append(acc)
    curves = {k: np.array(v) for k, v in rows.items()}
    values = np.asarray(llc["llc"])[:, 0] if np.isnan(llc["llc_mean"]).all() else np.asarray(llc["llc_mean"])
    history = read_history(run / "history.h5")
    out = {k: float(v[-1]) for k, v in curves.items()} | curve_summary(steps, curves["test_acc"], curves["test_loss"], values)
    out["history_final_test_loss"] = float(history["test_loss"][-1])
    out["curves"] = {
        "step": steps.tolist(),
        "llc": np.round(values, 3).tolist(),
        "test_acc": np.round(curves["test_acc"], 4).tolist(),
    }
    return out


def reference_run(llc_params: dict, seed: int = 0, steps: int = 25000, every: int = 250) -> dict:
    """The example's training loop with its random streams, then the workbench's LLC of its checkpoints."""
    from torch import nn
    from torch.utils.data import DataLoader

    from tdw.analyzers.sgld import estimate_llc

    p, d, m = 53, 12, 48
    torch.manual_seed(seed)
    pairs = list({(a, b) for a in range(p) for b in range(p)})  # the notebook's get_all_pairs: a set
    rows = [(torch.tensor([a, b]), torch.tensor((a + b) % p)) for a, b in pairs]
    order = list(range(len(rows)))
    random.seed(seed)
    random.shuffle(order)
    cut = int(0.4 * len(rows))
    train_rows = [rows[i] for i in order[:cut]]
    embedding, right, left = nn.Embedding(p, d), nn.Linear(d, m), nn.Linear(d, m)  # the notebook's creation order
    out_map = nn.Linear(m, p, bias=False)
    modules = nn.ModuleList([embedding, right, left, out_map])

    def forward(x: torch.Tensor) -> torch.Tensor:
        return out_map(nn.functional.gelu(left(embedding(x[..., 0])) + right(embedding(x[..., 1]))))

    opt = torch.optim.Adam(modules.parameters(), weight_decay=2e-4, lr=5e-3)
    loader = DataLoader(train_rows, batch_size=128, shuffle=True)
    cfg = ModelConfig(
        p=p, d_model=d, d_mlp=m, n_heads=1, act="gelu", unembed_equals=False, model="mlp", input_bias="per_operand", init="torch"
    )
    xs = {
        k: torch.stack([torch.cat([rows[i][0], torch.tensor([p])]) for i in idx])
        for k, idx in (("train", order[:cut]), ("test", order[cut:]))
    }
    ys = {k: torch.stack([rows[i][1] for i in idx]) for k, idx in (("train", order[:cut]), ("test", order[cut:]))}

    def snapshot() -> dict[str, torch.Tensor]:
        return {
            "embed.W_E": embedding.weight.detach().clone(),
            "mlp.W_in": torch.cat([left.weight.T, right.weight.T], 0).detach().clone(),
            "mlp.b_in_a": left.bias.detach().clone(),
            "mlp.b_in_b": right.bias.detach().clone(),
            "unembed.W_U": out_map.weight.T.detach().clone(),
        }

    checkpoints = [(0, snapshot())]
    for i in range(steps):
        x, y = next(iter(loader))
        opt.zero_grad()
        nn.functional.cross_entropy(forward(x), y).backward()
        opt.step()
        if (i + 1) % every == 0:
            checkpoints.append((i + 1, snapshot()))
    settings = llc_analyzer.settings(llc_params, cut)
    x_tr, y_tr = xs["train"], ys["train"]

    def loss(params: dict, rows_at):
        x, y = (x_tr, y_tr) if rows_at is None else (x_tr[rows_at], y_tr[rows_at])
        chains = next(iter(params.values())).shape[0]
        return stacked_cross_entropy(stacked_logits(params, cfg, x.expand(chains, -1, -1), vectorize=True), y.expand(chains, -1))

    curves = {k: [] for k in ("train_loss", "train_acc", "test_loss", "test_acc", "llc")}
    for _, w in checkpoints:
        for name in ("train", "test"):
            loss_value, acc = split_metrics(w, cfg, xs[name], ys[name])
            curves[f"{name}_loss"].append(loss_value)
            curves[f"{name}_acc"].append(acc)
        est = estimate_llc(loss, w, cut, settings, blowup=float(llc_params["divergence_rise"] or math.log(p)))
        curves["llc"].append(est.llc_mean)
    arrays = {k: np.array(v) for k, v in curves.items()}
    step_axis = np.array([s for s, _ in checkpoints])
    out = {k: float(arrays[k][-1]) for k in ("train_loss", "train_acc", "test_loss", "test_acc")}
    out |= curve_summary(step_axis, arrays["test_acc"], arrays["test_loss"], arrays["llc"])
    out["curves"] = {
        "step": step_axis.tolist(),
        "llc": np.round(arrays["llc"], 3).tolist(),
        "test_acc": np.round(arrays["test_acc"], 4).tolist(),
    }
    return out


ROWS = [
    ("final train loss", "train_loss"),
    ("final train accuracy", "train_acc"),
    ("final test loss", "test_loss"),
    ("final test accuracy", "test_acc"),
    ("first step with test accuracy >= 0.9", "test_acc_0.9_step"),
    ("first step with test accuracy >= 0.99", "test_acc_0.99_step"),
    ("LLC at step 0", "llc_start"),
    ("LLC peak", "llc_peak"),
    ("LLC peak step", "llc_peak_step"),
    ("LLC at step 25,000", "llc_final"),
    ("corr(LLC, test loss) over checkpoints", "llc_test_loss_corr"),
]


def rounded(value):
    return round(value, 4) if isinstance(value, float) else value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3], help="the config's seeds whose runs are read")
    ap.add_argument("--reference", action="store_true", help="also run the example's own loop here (about 5 min)")
    ap.add_argument(
        "--reference-file", type=Path, help="keep the reference run's numbers in this JSON file: read if present, else written"
    )
    ap.add_argument("--reference-only", action="store_true", help="run the reference (into --reference-file) and stop")
    add_json_arg(ap, "devinterp_grokking")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from tdw.config import load

    llc_params = load(str(ROOT / "config" / "devinterp_grokking.yaml"), str(ROOT / "families")).analyzer_params("llc")
    ref: dict = {}
    if args.reference and args.reference_file and args.reference_file.exists():
        ref = json.loads(args.reference_file.read_text())
    elif args.reference:
        ref = reference_run(llc_params)
        if args.reference_file:
            args.reference_file.write_text(json.dumps(ref))
    if args.reference_only:
        return
    runs = {seed: RUNS / VARIANT.format(seed=seed) for seed in args.seeds}
    ours = {seed: workbench_run(run) for seed, run in runs.items()}
    columns = [
        "quantity",
        *(f"workbench, seed {seed}" for seed in ours),
        "example's loop re-run here (CPU)",
        "published (notebook)",
    ]
    rows = [
        [label, *(rounded(o.get(key)) for o in ours.values()), rounded(ref.get(key)), PUBLISHED.get(key)] for label, key in ROWS
    ]
    summary = {f"seed {k}": {n: v for n, v in o.items() if n != "curves"} for k, o in ours.items()}
    print(json.dumps(summary | {"reference": {k: v for k, v in ref.items() if k != "curves"}}, indent=1))
    if args.json:
        notes = (
            f"Published numbers: {NOTEBOOK}, the training cell's output at step 25,000 (tqdm: train_loss=0.0137, "
            "train_acc=1.0000, val_loss=0.0395, val_acc=1.0000; devinterp 1.2.0, Colab T4 GPU). The notebook prints no "
            "grokking step and no LLC numbers: its plots show test accuracy rising long after train accuracy is perfect, and "
            "its text says the LLC 'first increases during memorization and then decreases ~smoothly afterward, flattening "
            "out after the model is done grokking' and 'tracks the test loss pretty well'. Its SGLD: lr 3e-3, nbeta 2.0, "
            "localization 5, 500 draws, no burn-in (devinterp's default), batches of 128 training pairs, one chain per "
            "checkpoint (num_chains=1 in the per-checkpoint call of the script copies of the notebook read here; its plot "
            "titles print the variable num_chains = 2, the chain count of its epsilon-beta sweep). "
            "Workbench run: config/devinterp_grokking.yaml (its own seeded batches and row-major split: different random "
            "streams from the notebook's); losses and accuracies on the full train/test splits from the checkpoints (every "
            "250 steps); LLC from the llc artifact (one chain of 500 draws). The example's loop re-run here: the notebook's "
            "training code path with its random streams on this CPU (torch " + torch.__version__ + "), the workbench's "
            "LLC with the same settings on its checkpoints. Reading: the example's loop re-run here ends on the published "
            "numbers to the printed digits, and groks at step ~18,250 (test accuracy 0.9; 0.99 at 18,500). The "
            "workbench's recipe on its own streams (same model, initialisation, optimizer and batch size; tested equal to "
            "the example's loop on the same batches) memorises on every seed; seeds 3 and 2 grok (test accuracy 0.9 at "
            "steps 18,750 and 23,000; final test loss 0.047 and 0.055 against the published 0.0395), seeds 0 and 1 have "
            "not by step 25,000 (test loss ~20), which the notebook warns of ('not all seeds show grokking within the "
            "first 100 checkpoints'). In every run the LLC rises from ~14 to ~48-50 by step 3,000-3,500 while the model "
            "memorises, then falls: to ~23-24 at step 25,000 where the run grokked (the reference 23.3, seeds 3 and 2 "
            "23.8 and 24.0), to ~43 where it has not; the LLC tracks the test loss (r = 0.96-0.98). Load: "
            + os.popen("uptime").read().strip()
        )
        write_result(
            "devinterp_grokking",
            "The devinterp grokking example: workbench run, the example re-run, and the published numbers",
            columns,
            rows,
            notes,
            curves={f"workbench seed {k}": o["curves"] for k, o in ours.items()} | {"reference": ref.get("curves")},
        )


if __name__ == "__main__":
    main()
