"""Training one variant with the paper's recipe, resumable and deterministic on CPU.

Recipe: full batch (one AdamW step per epoch), lr warm-up ``lr * min(step / warmup, 1)``,
cross-entropy on the last position with log-softmax in float64. Epoch e's checkpoint and
losses belong to the model after e optimizer steps (epoch 0 is the initialisation).

Resume: ``train_state/`` beside the outputs (not a Snakemake output, so it survives the
deletion of outputs before a rerun) holds every checkpoint written so far and a snapshot of
the full optimizer state at the latest checkpoint epoch. Checkpoint outputs are hard links
into it. A rerun with the same training key continues from the snapshot and ends with
bit-identical weights (CPU); a different key (architecture, recipe or training code
changed) starts again from epoch 0.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from tdw import data
from tdw.architecture import ModelConfig
from tdw.atomic import atomic_path, link_or_copy, write_json
from tdw.checkpoint import checkpoint_name, is_complete, save_checkpoint
from tdw.config import TrainConfig, Variant
from tdw.history import write_history
from tdw.model import init_params, last_logits
from tdw.provenance import provenance


@dataclass
class TrainJob:
    family: str
    operation: str
    model: ModelConfig
    train: TrainConfig
    variant: Variant
    out_dir: Path
    code_hash: str = ""

    def run_config(self) -> dict:
        """The variant's full description, written to config.json and into every checkpoint."""
        return {
            "family": self.family,
            "variant": self.variant.name,
            "task": {"operation": self.operation, "p": self.variant.p},
            "seed": self.variant.seed,
            "architecture": self.model.to_dict(),
            "train": self.train.to_dict() | {"train_frac": self.variant.train_frac},
            "checkpoint_epochs": list(self.variant.epochs),
        }

    def key(self) -> str:
        """What the training trajectory depends on (not the schedule): resume only within it."""
        cfg = self.run_config()
        cfg.pop("checkpoint_epochs")
        cfg.pop("variant")
        blob = json.dumps(cfg, sort_keys=True) + self.code_hash
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cross_entropy_last(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of last-position logits [batch, vocab] in float64."""
    logprobs = logits.to(torch.float64).log_softmax(-1)
    return -logprobs.gather(1, labels[:, None]).mean()


class _State:
    """Parameters, AdamW and loss history; saved to and restored from one safetensors file."""

    def __init__(self, params: dict[str, torch.Tensor], train: TrainConfig):
        self.params = {k: v.clone().requires_grad_(True) for k, v in params.items()}
        self.opt = torch.optim.AdamW(
            list(self.params.values()), lr=train.lr, betas=train.betas, eps=train.eps, weight_decay=train.weight_decay
        )
        self.train_loss: list[float] = []
        self.test_loss: list[float] = []
        self.test_epoch: list[int] = []
        self.epoch = 0

    def save(self, path: Path, key: str) -> None:
        tensors = {f"param/{k}": v.detach().cpu() for k, v in self.params.items()}
        for name, p in self.params.items():
            st = self.opt.state.get(p, {})
            for slot in ("exp_avg", "exp_avg_sq"):
                if slot in st:
                    tensors[f"{slot}/{name}"] = st[slot].cpu()
        step = int(next(iter(self.opt.state.values()))["step"]) if self.opt.state else 0
        tensors["train_loss"] = torch.tensor(self.train_loss, dtype=torch.float64)
        tensors["test_loss"] = torch.tensor(self.test_loss, dtype=torch.float64)
        tensors["test_epoch"] = torch.tensor(self.test_epoch, dtype=torch.int64)
        meta = {"epoch": str(self.epoch), "step": str(step), "key": key}
        with atomic_path(path) as tmp:
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)

    def load(self, path: Path, device: torch.device) -> None:
        tensors = load_file(str(path))
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(tensors[f"param/{name}"])
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata()
        step = int(meta["step"])
        if step:
            for name, p in self.params.items():
                self.opt.state[p] = {
                    "step": torch.tensor(float(step)),
                    "exp_avg": tensors[f"exp_avg/{name}"].to(device),
                    "exp_avg_sq": tensors[f"exp_avg_sq/{name}"].to(device),
                }
        self.train_loss = tensors["train_loss"].tolist()
        self.test_loss = tensors["test_loss"].tolist()
        self.test_epoch = tensors["test_epoch"].tolist()
        self.epoch = int(meta["epoch"])


def _prepare_state_dir(state_dir: Path, key: str) -> dict | None:
    """Keep ``state_dir`` if it belongs to this training key, else empty it. Returns the
    snapshot's metadata, or None if training starts from scratch."""
    key_file = state_dir / "key.json"
    if key_file.exists() and json.loads(key_file.read_text()).get("key") == key:
        snap = state_dir / "snapshot.safetensors"
        if snap.exists():
            from safetensors import safe_open

            with safe_open(str(snap), framework="pt") as fh:
                return fh.metadata()
        return None
    shutil.rmtree(state_dir, ignore_errors=True)
    (state_dir / "checkpoints").mkdir(parents=True)
    write_json(key_file, {"key": key})
    return None


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# Below this many training rows a second thread costs more in synchronisation than it
# gains, and on a busy machine far more (measured: p = 31 took 410 ms/epoch on 2 threads
# against 37 ms on 1 while other jobs ran).
MIN_ROWS_PER_EXTRA_THREAD = 2048


def train_variant(job: TrainJob, threads: int = 2, progress_seconds: float = 5.0) -> dict:
    """Train ``job.variant`` and write checkpoints, history.h5, metadata.json, config.json."""
    t_start = time.perf_counter()
    n_train = int(job.variant.train_frac * job.variant.p**2)
    threads = max(1, min(threads, 1 + n_train // MIN_ROWS_PER_EXTRA_THREAD))
    torch.set_num_threads(threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    v, cfg, tc = job.variant, job.model, job.train
    out, state_dir = job.out_dir, job.out_dir / "train_state"
    key = job.key()
    meta_run = job.run_config()
    snap_meta = _prepare_state_dir(state_dir, key)
    store = state_dir / "checkpoints"
    schedule = set(v.epochs)
    last_epoch = max(v.epochs)

    state = _State({k: t.to(device) for k, t in init_params(cfg, v.seed).items()}, tc)
    start = 0
    if snap_meta is not None:
        snap_epoch = int(snap_meta["epoch"])
        have_all_before = all(is_complete(store / checkpoint_name(e)) for e in v.epochs if e <= snap_epoch)
        if have_all_before and snap_epoch <= last_epoch:
            state.load(state_dir / "snapshot.safetensors", device)
            start = snap_epoch
            _log(f"[train {v.name}] resuming from the snapshot at epoch {start}")
        else:
            _log(f"[train {v.name}] snapshot at epoch {snap_epoch} does not cover the schedule; starting at epoch 0")
    resumed_from = start

    train_idx, test_idx = data.split(v.p, v.train_frac, v.seed)
    as_t = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
    x_train, y_train = as_t(data.tokens(v.p, train_idx)), as_t(data.labels(v.p, train_idx, job.operation))
    x_test, y_test = as_t(data.tokens(v.p, test_idx)), as_t(data.labels(v.p, test_idx, job.operation))
    prov = provenance()
    ckpt_meta = {"family": job.family, "variant": v.name, "config": meta_run, "provenance": prov}

    t_loop, t_last_log = time.perf_counter(), time.perf_counter()
    for epoch in range(start, last_epoch + 1):
        state.epoch = epoch
        if epoch in schedule:
            weights = {k: t.detach().cpu().numpy() for k, t in state.params.items()}
            save_checkpoint(store / checkpoint_name(epoch), weights, ckpt_meta | {"epoch": epoch})
            if epoch < last_epoch:
                state.save(state_dir / "snapshot.safetensors", key)
        loss = cross_entropy_last(last_logits(state.params, cfg, x_train), y_train)
        state.train_loss.append(loss.item())
        if epoch % tc.test_loss_every == 0 or epoch == last_epoch:
            with torch.no_grad():
                state.test_loss.append(cross_entropy_last(last_logits(state.params, cfg, x_test), y_test).item())
            state.test_epoch.append(epoch)
        if time.perf_counter() - t_last_log > progress_seconds or epoch == last_epoch:
            rate = (epoch - start + 1) / (time.perf_counter() - t_loop)
            test = state.test_loss[-1] if state.test_loss else float("nan")
            _log(
                f"[train {v.name}] epoch {epoch}/{last_epoch} train {state.train_loss[-1]:.3e} test {test:.3e} {rate:.1f} epochs/s"
            )
            t_last_log = time.perf_counter()
        if epoch == last_epoch:
            break
        for group in state.opt.param_groups:
            group["lr"] = tc.lr * (min(epoch / tc.warmup_steps, 1.0) if tc.warmup_steps else 1.0)
        loss.backward()
        state.opt.step()
        state.opt.zero_grad(set_to_none=True)
    t_train = time.perf_counter() - t_loop

    ckpt_dir = out / "checkpoints"
    for e in v.epochs:
        link_or_copy(store / checkpoint_name(e), ckpt_dir / checkpoint_name(e))
    write_history(
        out / "history.h5",
        np.array(state.train_loss),
        np.arange(len(state.train_loss)),
        np.array(state.test_loss),
        np.array(state.test_epoch),
        {"variant": v.name, "provenance": json.dumps(prov)},
    )
    summary = {
        "family": job.family,
        "variant": v.name,
        "source": "trained",
        "checkpoints": [{"index": i, "epoch": e, "file": f"checkpoints/{checkpoint_name(e)}"} for i, e in enumerate(v.epochs)],
        "final": {"epoch": last_epoch, "train_loss": state.train_loss[-1], "test_loss": state.test_loss[-1]},
        "timings": {
            "train_seconds": t_train,
            "epochs_trained": last_epoch - resumed_from,
            "ms_per_epoch": 1000 * t_train / max(last_epoch - resumed_from, 1),
            "resumed_from_epoch": resumed_from,
            "total_seconds": time.perf_counter() - t_start,
            "device": str(device),
            "threads": threads,
        },
        "provenance": prov,
    }
    write_json(out / "config.json", meta_run)
    write_json(out / "metadata.json", summary)
    return summary
