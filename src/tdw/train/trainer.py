"""Training variants with the paper's recipe, resumable and deterministic on CPU.

Recipe: full batch (one AdamW step per epoch), lr warm-up ``lr * min(step / warmup, 1)``,
cross-entropy on the last position with log-softmax in float64. Epoch e's checkpoint and
losses belong to the model after e optimizer steps (epoch 0 is the initialisation).

Resume: the variant's train state (``VariantLayout.train_state``; not a Snakemake output,
so it survives the deletion of outputs before a rerun) holds every checkpoint written so
far and a snapshot of the full optimizer state at the latest checkpoint epoch. Checkpoint
outputs are hard links into it. A rerun with the same training key continues from the snapshot and ends with
bit-identical weights (CPU); a different key (architecture, recipe or training code
changed) starts again from epoch 0.

Variants whose tensors have the same shapes can train together in one process
(``train_variants``): parameters stacked on a leading axis, the forward run per slice (or
vmapped), one elementwise AdamW with each variant's own lr, weight decay, betas, eps and
warm-up (``tdw.train.optim``), and each variant's optional Grokfast gradient filter
(``tdw.train.grokfast``). Each variant's files are the same as when it trains alone
(bit-identical on the CPU, tested).
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

from tdw.io.atomic import write_json
from tdw.io.checkpoint import is_intact, load_tensors, save_checkpoint, save_tensors
from tdw.io.provenance import provenance
from tdw.io.variant import History, write_variant_files
from tdw.layout import VariantLayout, checkpoint_name
from tdw.models.architecture import ModelConfig
from tdw.models.fastpath import last_logits
from tdw.models.weights import init_params
from tdw.tasks import modular as data
from tdw.train.early_stop import Stopper, snapshot_stop
from tdw.train.grokfast import GradFilter
from tdw.train.optim import AdamWHyper, StackedAdamW
from tdw.train.stacking import stack_key
from tdw.workbench import TrainConfig, Variant
from tdw.workflow.joblog import Progress


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
        """The variant's full description, written to config.json and into every checkpoint."""
        config = {
            "family": self.family,
            "variant": self.variant.name,
            "task": self._task(),
            "seed": self.variant.seed,
            "data_seed": self.variant.data_seed,
            "architecture": self.model.to_dict(),
            "train": self.train.to_dict() | {"train_frac": self.variant.train_frac},
            "checkpoint_epochs": list(self.variant.epochs),
        }
        return config | ({"recipe": self.recipe} if self.recipe is not None else {})

    def _task(self) -> dict:
        """The task as config.json records it (a sequence task has no pair grid: operation and vocabulary)."""
        if self.recipe is not None:
            return {"operation": self.operation, "p": self.variant.p}
        return data.Task(self.operation, self.variant.p, self.relabel).to_config()

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


class _State:
    """Parameters of S variants stacked on a leading axis, one AdamW over them with each
    variant's hyperparameters (``tdw.train.optim``; Adam and its decoupled weight decay are
    elementwise, so this is S independent optimizers), each variant's Grokfast filter, and
    each variant's loss history. Snapshots are per variant and unstacked."""

    def __init__(self, params: list[dict[str, torch.Tensor]], trains: list[TrainConfig]):
        self.params = {k: torch.stack([p[k] for p in params]).requires_grad_(True) for k in params[0]}
        self.trains = trains
        hypers = [AdamWHyper(t.lr, tuple(t.betas), t.eps, t.weight_decay) for t in trains]
        self.opt = StackedAdamW(self.params, hypers)
        self.filter = GradFilter([t.grokfast for t in trains])
        n = len(params)
        self.train_loss: list[list[float]] = [[] for _ in range(n)]
        self.test_loss: list[list[float]] = [[] for _ in range(n)]
        self.test_epoch: list[int] = []
        self.epoch = 0
        self.stopper = Stopper([t.early_stop for t in trains])

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


def scheduled_lr(train: TrainConfig, epoch: int) -> float:
    """The lr of the step after epoch ``epoch``: linear warm-up from 0 over ``warmup_steps``."""
    return train.lr * (min(epoch / train.warmup_steps, 1.0) if train.warmup_steps else 1.0)


def stacked_logits(
    params: dict[str, torch.Tensor], cfg: ModelConfig, tokens: torch.Tensor, vectorize: bool | None = None
) -> torch.Tensor:
    """Last-position logits [S, batch, d_vocab_out] of S stacked models on their own tokens
    [S, batch, 3].

    ``vectorize`` (default: on CUDA) runs the S models as one ``torch.func.vmap`` call: few
    large kernels, but batched matmuls round differently from single ones. Otherwise each
    model runs on its slice with exactly the kernels of a single run, so stacked training on
    the CPU is bit-identical to training one variant at a time.
    """
    if vectorize is None:
        vectorize = tokens.is_cuda
    if vectorize and tokens.shape[0] > 1:
        return torch.func.vmap(lambda p, x: last_logits(p, cfg, x))(params, tokens)
    return torch.stack([last_logits({k: v[i] for k, v in params.items()}, cfg, tokens[i]) for i in range(tokens.shape[0])])


def stacked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-model mean cross-entropy [S] of logits [S, batch, vocab], in float64."""
    logprobs = logits.to(torch.float64).log_softmax(-1)
    return -logprobs.gather(-1, labels[..., None]).squeeze(-1).mean(-1)


def _prepare_state_dir(layout: VariantLayout, key: str, config: dict | None = None) -> dict | None:
    """Keep the variant's train state if it belongs to this training key, else empty it.
    Returns the snapshot's metadata, or None if training starts from scratch. The key file
    also records the variant's definition (``config``), so a run not finished yet is known
    by what it trains (``tdw.workflow.identity``)."""
    if layout.state_key.exists() and json.loads(layout.state_key.read_text()).get("key") == key:
        if layout.snapshot.exists():
            from safetensors import safe_open

            with safe_open(str(layout.snapshot), framework="pt") as fh:
                return fh.metadata()
        return None
    shutil.rmtree(layout.train_state, ignore_errors=True)
    layout.state_checkpoints.mkdir(parents=True)
    write_json(layout.state_key, {"key": key} | ({"config": config} if config is not None else {}))
    return None


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# Below this many training rows a second thread costs more in synchronisation than it
# gains, and on a busy machine far more (measured: p = 31 took 410 ms/epoch on 2 threads
# against 37 ms on 1 while other jobs ran).
MIN_ROWS_PER_EXTRA_THREAD = 2048


def training_threads(jobs: list[TrainJob], available: int) -> int:
    """Threads worth giving torch to train ``jobs`` together, at most ``available``: one, plus
    one per ``MIN_ROWS_PER_EXTRA_THREAD`` training rows. The entry point sets them
    (``torch.set_num_threads`` is process-wide)."""
    v0 = jobs[0].variant
    n_train = len(jobs) * int(v0.train_frac * v0.p**2)
    return max(1, min(available, 1 + n_train // MIN_ROWS_PER_EXTRA_THREAD))


def _shared(job: TrainJob) -> tuple:
    """What variants trained together must share: the shapes of their tensors (task, model,
    train fraction), the schedule, and the layout of the Grokfast filter's state. Seeds, data
    seeds, lr, weight decay, betas, eps, warm-up and the filter's alpha and lamb may differ."""
    v = job.variant
    return (job.family, *stack_key(job.operation, job.model, v.p, v.train_frac, v.epochs, job.train))


def _check_batchable(jobs: list[TrainJob]) -> None:
    for job in jobs[1:]:
        if _shared(job) != _shared(jobs[0]):
            raise ValueError(
                f"variants {jobs[0].variant.name} and {job.variant.name} differ in more than the seeds and the "
                "optimizer's or Grokfast's strengths (task, model, train fraction, schedule, test-loss spacing or "
                "Grokfast kind/window): train them apart"
            )


def split_seed(variant: Variant) -> int:
    """The seed of the variant's train/test split (its data seed; by default its seed)."""
    return variant.data_seed


def _resume_epoch(jobs: list[TrainJob], snaps: list[dict | None]) -> int:
    """The epoch every variant can resume from (0: start over)."""
    if any(s is None for s in snaps) or len({s["epoch"] for s in snaps}) != 1:
        return 0
    epoch = int(snaps[0]["epoch"])
    for job, snap in zip(jobs, snaps, strict=True):
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


def _split_tensors(jobs: list[TrainJob], device: torch.device) -> tuple[torch.Tensor, ...]:
    """Stacked train/test tokens [S, batch, 3] and labels [S, batch]."""
    parts: list[list[np.ndarray]] = [[], [], [], []]
    for job in jobs:
        v = job.variant
        train_idx, test_idx = data.split(v.p, v.train_frac, split_seed(v), job.operation)
        for i, (idx, fn) in enumerate(((train_idx, data.tokens), (train_idx, None), (test_idx, data.tokens), (test_idx, None))):
            parts[i].append(fn(v.p, idx) if fn else data.labels(v.p, idx, job.operation))
    return tuple(torch.from_numpy(np.stack(p)).to(device) for p in parts)


def train_variant(job: TrainJob, progress_seconds: float = 5.0) -> dict:
    """Train one variant (see ``train_variants``)."""
    return train_variants([job], progress_seconds)[0]


def train_variants(jobs: list[TrainJob], progress_seconds: float = 5.0, vectorize: bool | None = None) -> list[dict]:
    """Train variants that share their tensors' shapes (``_shared``) in one process, stacked,
    and write each one's files (``tdw.io.variant.write_variant_files``), as training it alone does.
    ``vectorize``: see ``stacked_logits``. Runs on as many threads as torch has (see
    ``training_threads``). A family's minibatch recipe trains in ``tdw.train.sequence``."""
    if jobs[0].recipe is not None:
        from tdw.train.sequence import train_minibatch

        return train_minibatch(jobs, progress_seconds)
    _check_batchable(jobs)
    t_start = time.perf_counter()
    v0, cfg, tc = jobs[0].variant, jobs[0].model, jobs[0].train
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    names = ", ".join(j.variant.name for j in jobs)
    keys = [job.key() for job in jobs]
    snaps = [_prepare_state_dir(job.layout, key, job.run_config()) for job, key in zip(jobs, keys, strict=True)]
    stores = [job.layout.state_checkpoints for job in jobs]
    schedule, last_epoch = set(v0.epochs), max(v0.epochs)

    state = _State(
        [{k: t.to(device) for k, t in init_params(cfg, j.variant.seed).items()} for j in jobs], [j.train for j in jobs]
    )
    start = _resume_epoch(jobs, snaps)
    if start:
        state.load([job.layout.snapshot for job in jobs], device)
        _log(f"[train {names}] resuming from the snapshot at epoch {start}")
    elif any(snaps):
        _log(f"[train {names}] snapshots do not cover the schedule; starting at epoch 0")

    x_train, y_train, x_test, y_test = _split_tensors(jobs, device)
    prov = provenance()
    ckpt_meta = [{"family": j.family, "variant": j.variant.name, "config": j.run_config(), "provenance": prov} for j in jobs]
    t_loop = time.perf_counter()
    progress = Progress(last_epoch - start + 1, f"train {names}", "epoch", progress_seconds, first=start)
    for epoch in range(start, last_epoch + 1):
        state.epoch = epoch
        if epoch in schedule:
            for i, job in enumerate(jobs):
                if state.stopper.active(i):
                    save_checkpoint(stores[i] / checkpoint_name(epoch), state.weights(i), ckpt_meta[i] | {"epoch": epoch})
                # also at the last epoch: a longer schedule later continues from here (and, for a
                # stopped model of a stack, so that every snapshot of the stack is of one epoch)
                state.save(i, job.layout.snapshot, keys[i])
        losses = stacked_cross_entropy(stacked_logits(state.params, cfg, x_train, vectorize), y_train)  # [S]
        test = [None] * len(jobs)
        if epoch % tc.test_loss_every == 0 or epoch == last_epoch:
            with torch.no_grad():
                test = stacked_cross_entropy(stacked_logits(state.params, cfg, x_test, vectorize), y_test).tolist()
            state.test_epoch.append(epoch)
        for i, value in enumerate(losses.tolist()):
            state.record(i, epoch, value, test[i])
        worst = max(s[-1] for s in state.train_loss), max(s[-1] for s in state.test_loss)
        progress.step(f"train {worst[0]:.3e} test {worst[1]:.3e} (worst of {len(jobs)})")
        if epoch == last_epoch or state.stopper.all_stopped():
            break
        state.step(losses, epoch)
    timings = {
        "train_seconds": time.perf_counter() - t_loop,
        "epochs_trained": epoch - start,
        "resumed_from_epoch": start,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "trained_together": [j.variant.name for j in jobs],
        "vectorized": bool(vectorize if vectorize is not None else device.type == "cuda") and len(jobs) > 1,
    }
    timings["ms_per_epoch"] = 1000 * timings["train_seconds"] / max(epoch - start, 1)
    return [_finish(job, state, i, stores[i], timings, prov, t_start) for i, job in enumerate(jobs)]


def _finish(job: TrainJob, state: _State, i: int, store: Path, timings: dict, prov: dict, t_start: float) -> dict:
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
    )
    timings = timings | {"total_seconds": time.perf_counter() - t_start}
    final = max(v.epochs) if stop is None or stop["stop_epoch"] is None else stop["stop_epoch"]
    fields = {"source": "trained", "final_epoch": final, "timings": timings, "provenance": prov}
    if stop is not None:
        fields["early_stop"] = stop
    checkpoints = {e: store / checkpoint_name(e) for e in v.epochs if e <= final}
    return write_variant_files(job.layout, job.run_config(), history, checkpoints, fields)
