"""What both trainers share (full batch, ``tdw.train.trainer``; minibatch, ``tdw.train.sequence``):
the job, the stacked training state with its optimizer, filter and loss history, the resumable
train state on disk (``VariantLayout.train_state``: checkpoints written so far and a snapshot at
the latest one), and the finishing write of a variant's files."""

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

from tdw.io.atomic import write_json
from tdw.io.checkpoint import is_intact, load_tensors, save_tensors
from tdw.io.variant import History, variant_config, write_variant_files
from tdw.layout import VariantLayout, checkpoint_name
from tdw.models.architecture import ModelConfig
from tdw.train.early_stop import Stopper, snapshot_stop
from tdw.train.grokfast import GradFilter
from tdw.train.optim import AdamWHyper, StackedAdamW
from tdw.train.tracking import Tracker
from tdw.workbench import TrainConfig, Variant


@dataclass
class TrainJob:
    family: str
    operation: str
    model: ModelConfig
    train: TrainConfig
    variant: Variant
    out_dir: Path
    code_hash: str = ""
    relabel: str | None = None  # the family's relabelling of the tokens for the analyzers (recorded in the task)
    recipe: dict | None = None  # the family's training recipe where it is not full batch (tdw.train.sequence)

    @classmethod
    def from_params(cls, run: dict, out_dir: Path, code_hash: str) -> TrainJob:
        """From the workflow's ``params.run`` (rules/common.smk: train_params)."""
        v = run["variant"]
        return cls(
            family=run["family"],
            operation=run["operation"],
            model=ModelConfig(**run["model"]),
            train=TrainConfig(**(run["train"] | {"betas": tuple(run["train"]["betas"])})),
            variant=Variant(v["name"], v["p"], v["seed"], v["train_frac"], tuple(v["epochs"]), data_seed=v.get("data_seed")),
            out_dir=Path(out_dir),
            code_hash=code_hash,
            relabel=run.get("relabel"),
            recipe=run.get("recipe"),
        )

    @property
    def layout(self) -> VariantLayout:
        return VariantLayout.at(self.out_dir)

    def run_config(self) -> dict:
        """The variant's full description, written to config.json and into every checkpoint
        (``tdw.io.variant.variant_config`` of the job's parameters)."""
        v = self.variant
        variant = {"name": v.name, "p": v.p, "seed": v.seed, "train_frac": v.train_frac, "epochs": list(v.epochs)}
        run = {
            "family": self.family,
            "operation": self.operation,
            "model": self.model.to_dict(),
            "train": self.train.to_dict(),
            "variant": variant | {"data_seed": v.split_seed},
        }
        extra = {"relabel": self.relabel} if self.relabel else {}
        return variant_config(run | extra | ({"recipe": self.recipe} if self.recipe is not None else {}))

    def key(self) -> str:
        """What the training trajectory depends on (not the schedule): resume only within it."""
        cfg = self.run_config()
        cfg.pop("checkpoint_epochs")
        cfg.pop("variant")
        if cfg["data_seed"] == cfg["seed"]:  # the split follows the seed: the key from before data seeds existed
            cfg.pop("data_seed")
        cfg["train"].pop("early_stop", None)  # like the schedule, it ends the trajectory without changing it
        blob = json.dumps(cfg, sort_keys=True) + self.code_hash
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class TrainState:
    """Parameters of S variants stacked on a leading axis, one AdamW over them with each
    variant's hyperparameters (``tdw.train.optim``; Adam and its decoupled weight decay are
    elementwise, so this is S independent optimizers), each variant's Grokfast filter, and
    each variant's loss history. Snapshots are per variant and unstacked."""

    def __init__(self, params: list[dict[str, torch.Tensor]], trains: list[TrainConfig]):
        self.params = {k: torch.stack([p[k] for p in params]).requires_grad_(True) for k in params[0]}
        self.trains = trains
        hypers = [AdamWHyper(t.lr, (t.betas[0], t.betas[1]), t.eps, t.weight_decay, t.weight_decay_mode == "l2") for t in trains]
        self.opt = StackedAdamW(self.params, hypers)
        self.filter = GradFilter([t.grokfast for t in trains])
        n = len(params)
        self.train_loss: list[list[float]] = [[] for _ in range(n)]
        self.test_loss: list[list[float]] = [[] for _ in range(n)]
        self.test_epoch: list[int] = []
        self.epoch = 0
        self.stopper = Stopper([t.early_stop for t in trains])
        self.tracker: Tracker | None = None  # measures between checkpoints (tdw.train.tracking), set by the trainer

    def step(self, losses: torch.Tensor, epoch: int) -> dict[str, torch.Tensor]:
        """One optimizer step after epoch ``epoch`` on the per-model losses [S]; returns the
        gradients stepped on (after the Grokfast filter). A stopped model steps with lr 0:
        its weights stay as they were at its stop."""
        names = list(self.params)
        # each model's gradient is that of its own loss
        grads = dict(zip(names, torch.autograd.grad(losses.sum(), [self.params[k] for k in names]), strict=True))
        grads = self.filter(grads)
        lrs = [scheduled_lr(t, epoch) if self.stopper.active(i) else 0.0 for i, t in enumerate(self.trains)]
        self.opt.step(grads, lrs)
        return grads

    def record(self, i: int, epoch: int, train: float, test: float | None) -> None:
        """Model i's losses at ``epoch`` (``test``: None where not tested), unless it has stopped."""
        if not self.stopper.active(i):
            return
        self.train_loss[i].append(train)
        if test is not None:
            self.test_loss[i].append(test)
            self.stopper.update(i, epoch, test)

    def weights(self, i: int) -> dict[str, np.ndarray]:
        return {k: t[i].detach().cpu().numpy() for k, t in self.params.items()}

    def save(self, i: int, path: Path, key: str) -> None:
        """Variant i's parameters, AdamW moments, filter state and history up to (not including) ``epoch``."""
        tensors = {f"param/{k}": v[i].detach().cpu() for k, v in self.params.items()}
        tensors |= {k: v.cpu() for k, v in (self.opt.slot_state(i) | self.filter.slot_state(i)).items()}
        tensors["train_loss"] = torch.tensor(self.train_loss[i], dtype=torch.float64)
        tensors["test_loss"] = torch.tensor(self.test_loss[i], dtype=torch.float64)
        tensors["test_epoch"] = torch.tensor(self.test_epoch[: len(self.test_loss[i])], dtype=torch.int64)
        if self.tracker is not None:
            tensors |= {k: torch.from_numpy(v) for k, v in self.tracker.state(i).items()}
        meta = {"epoch": str(self.epoch), "step": str(self.opt.step_count), "key": key}
        if self.trains[i].early_stop is not None:  # a stopped model's snapshot: frozen weights, history to its stop
            meta["stopped"] = str(self.stopper.stopped[i] if self.stopper.stopped[i] is not None else "")
        save_tensors(path, {k: v.contiguous().numpy() for k, v in tensors.items()}, meta)

    def load(self, paths: list[Path], device: torch.device) -> None:
        """Restore every variant from its snapshot (all taken at the same epoch)."""
        loaded = [load_tensors(p) for p in paths]
        snaps = [{k: torch.from_numpy(v) for k, v in tensors.items()} for tensors, _ in loaded]
        meta = loaded[0][1]
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(torch.stack([s[f"param/{name}"] for s in snaps]))
        self.opt.load_slots(snaps, int(meta["step"]), device)
        self.filter.load_slots(snaps, device)
        self.train_loss = [s["train_loss"].tolist() for s in snaps]
        self.test_loss = [s["test_loss"].tolist() for s in snaps]
        self.test_epoch = max((s["test_epoch"].tolist() for s in snaps), key=len)
        self.epoch = int(meta["epoch"])
        for i, s in enumerate(snaps):
            self.stopper.replay(i, s["test_epoch"].tolist(), self.test_loss[i])

    def load_tracking(self, paths: list[Path]) -> None:
        """Restore the tracked series from the snapshots (after ``load``)."""
        if self.tracker is not None:
            self.tracker.load([load_tensors(p)[0] for p in paths])


def scheduled_lr(train: TrainConfig, epoch: int) -> float:
    """The lr of the step after epoch ``epoch``: linear warm-up from 0 over ``warmup_steps``."""
    return train.lr * (min(epoch / train.warmup_steps, 1.0) if train.warmup_steps else 1.0)


def prepare_state_dir(layout: VariantLayout, key: str, config: dict | None = None) -> dict | None:
    """Keep the variant's train state if it belongs to this training key, else empty it.
    Returns the snapshot's metadata, or None if training starts from scratch (also when the
    snapshot cannot be read). The key file also records the variant's definition
    (``config``), so a run not finished yet is known by what it trains
    (``tdw.workflow.identity``)."""
    if layout.state_key.exists() and json.loads(layout.state_key.read_text()).get("key") == key:
        if layout.snapshot.exists():
            from safetensors import safe_open

            try:
                with safe_open(str(layout.snapshot), framework="pt") as fh:
                    return fh.metadata()
            except Exception:  # a snapshot whose header is unreadable: start over (its checkpoints are checked too)
                return None
        return None
    shutil.rmtree(layout.train_state, ignore_errors=True)
    layout.state_checkpoints.mkdir(parents=True)
    write_json(layout.state_key, {"key": key} | ({"config": config} if config is not None else {}))
    return None


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def resume_epoch(jobs: list[TrainJob], snaps: list[dict | None]) -> int:
    """The epoch every variant can resume from (0: start over)."""
    found = [s for s in snaps if s is not None]
    if len(found) != len(snaps) or len({s["epoch"] for s in found}) != 1:
        return 0
    epoch = int(found[0]["epoch"])
    for job, snap in zip(jobs, found, strict=True):
        store = job.layout.state_checkpoints
        if not is_intact(job.layout.snapshot):
            return 0
        stopped = _stop_agrees(job, snap)
        if stopped is False:
            return 0
        last = epoch if stopped is None else min(epoch, stopped)
        if epoch > max(job.variant.epochs) or not all(
            is_intact(store / checkpoint_name(e)) for e in job.variant.epochs if e <= last
        ):
            return 0
    return epoch


def _stop_agrees(job: TrainJob, snap: dict) -> int | None | bool:
    """``snapshot_stop`` of the job's snapshot under its rule."""
    return snapshot_stop(job.layout.snapshot, job.train.early_stop, snap.get("stopped") or None)


def finish_variant(job: TrainJob, state: TrainState, i: int, store: Path, timings: dict, prov: dict, t_start: float) -> dict:
    """Link the checkpoints into place and write history.h5, config.json, metadata.json."""
    v = job.variant
    attrs = {"variant": v.name, "provenance": json.dumps(prov)}
    stop = state.stopper.record(i, v.epochs)
    if stop is not None:
        attrs |= {"stop_reason": stop["reason"]} | ({} if stop["stop_epoch"] is None else {"stop_epoch": stop["stop_epoch"]})
    history = History(
        np.array(state.train_loss[i]),
        np.arange(len(state.train_loss[i])),
        np.array(state.test_loss[i]),
        np.array(state.test_epoch[: len(state.test_loss[i])]),
        attrs,
        state.tracker.datasets(i, len(state.train_loss[i]) - 1) if state.tracker is not None else {},
    )
    timings = timings | {"total_seconds": time.perf_counter() - t_start}
    final = max(v.epochs) if stop is None or stop["stop_epoch"] is None else stop["stop_epoch"]
    fields = {"source": "trained", "final_epoch": final, "timings": timings, "provenance": prov}
    if stop is not None:
        fields["early_stop"] = stop
    checkpoints = {e: store / checkpoint_name(e) for e in v.epochs if e <= final}
    return write_variant_files(job.layout, job.run_config(), history, checkpoints, fields)
