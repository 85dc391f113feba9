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

import time
from typing import Any

import numpy as np
import torch

from tdw.io.checkpoint import save_checkpoint
from tdw.io.provenance import provenance
from tdw.layout import checkpoint_name
from tdw.models.architecture import ModelConfig
from tdw.models.fastpath import Tables, stacked_cross_entropy, stacked_logits, stacked_table_logits, stacked_tables
from tdw.models.weights import init_params
from tdw.progress import Progress
from tdw.tasks import modular as data
from tdw.train.stacking import stack_key
from tdw.train.state import TrainJob, TrainState, finish_variant, log, prepare_state_dir, resume_epoch
from tdw.workbench import Variant

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
    return variant.split_seed


def _split_tensors(jobs: list[TrainJob], device: torch.device) -> tuple[torch.Tensor, ...]:
    """Stacked train/test tokens [S, batch, 3] and labels [S, batch]."""
    parts: list[list[np.ndarray]] = [[], [], [], []]
    for job in jobs:
        v = job.variant
        train_idx, test_idx = data.split(v.p, v.train_frac, split_seed(v), job.operation)
        for i, (idx, fn) in enumerate(((train_idx, data.tokens), (train_idx, None), (test_idx, data.tokens), (test_idx, None))):
            parts[i].append(fn(v.p, idx) if fn else data.labels(v.p, idx, job.operation))
    return tuple(torch.from_numpy(np.stack(p)).to(device) for p in parts)


def _logits(
    state: TrainState, cfg: ModelConfig, tokens: torch.Tensor, vectorize: bool | None, tables: list[Tables] | None
) -> torch.Tensor:
    """The stack's last-position logits: the default forward, or from the step's tables
    (``train.fast_path: tables``)."""
    if tables is None:
        return stacked_logits(state.params, cfg, tokens, vectorize)
    return stacked_table_logits(tables, cfg, tokens)


def train_variant(job: TrainJob, progress_seconds: float = 5.0) -> dict:
    """Train one variant (see ``train_variants``)."""
    return train_variants([job], progress_seconds)[0]


def train_variants(jobs: list[TrainJob], progress_seconds: float = 5.0, vectorize: bool | None = None) -> list[dict]:
    """Train variants that share their tensors' shapes (``_shared``) in one process, stacked,
    and write each one's files (``tdw.io.variant.write_variant_files``), as training it alone does.
    ``vectorize``: see ``stacked_logits``. Runs on as many threads as torch has (see
    ``training_threads``). A family's minibatch recipe trains in ``tdw.train.sequence`` (the
    sequence task) or ``tdw.train.minibatch`` (the grid tasks)."""
    if jobs[0].recipe is not None:
        from tdw.tasks.sequence import OPERATION

        if jobs[0].operation == OPERATION:
            from tdw.train.sequence import train_minibatch
        else:
            from tdw.train.minibatch import train_minibatch

        return train_minibatch(jobs, progress_seconds)
    _check_batchable(jobs)
    if jobs[0].train.fast_path == "tables":  # its step allocates large tensors: keep them for reuse
        from tdw.train.memory import keep_freed_memory

        keep_freed_memory()
    t_start = time.perf_counter()
    v0, cfg, tc = jobs[0].variant, jobs[0].model, jobs[0].train
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    names = ", ".join(j.variant.name for j in jobs)
    keys = [job.key() for job in jobs]
    snaps = [prepare_state_dir(job.layout, key, job.run_config()) for job, key in zip(jobs, keys, strict=True)]
    stores = [job.layout.state_checkpoints for job in jobs]
    schedule, last_epoch = set(v0.epochs), max(v0.epochs)

    state = TrainState(
        [{k: t.to(device) for k, t in init_params(cfg, j.variant.seed).items()} for j in jobs], [j.train for j in jobs]
    )
    if tc.tracking is not None:
        from tdw.train.tracking import Tracker

        state.tracker = Tracker(tc.tracking, cfg, v0.p, list(state.params), len(jobs))
    start = resume_epoch(jobs, snaps)
    if start:
        state.load([job.layout.snapshot for job in jobs], device)
        log(f"[train {names}] resuming from the snapshot at epoch {start}")
    elif any(snaps):
        log(f"[train {names}] snapshots do not cover the schedule; starting at epoch 0")

    x_train, y_train, x_test, y_test = _split_tensors(jobs, device)
    if state.tracker is not None and start:
        state.load_tracking([job.layout.snapshot for job in jobs])
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
        tables = stacked_tables(state.params, cfg) if tc.fast_path == "tables" else None  # for train and test
        losses = stacked_cross_entropy(_logits(state, cfg, x_train, vectorize, tables), y_train)  # [S]
        test = [None] * len(jobs)
        if epoch % tc.test_loss_every == 0 or epoch == last_epoch:
            with torch.no_grad():
                test = stacked_cross_entropy(_logits(state, cfg, x_test, vectorize, tables), y_test).tolist()
            state.test_epoch.append(epoch)
        for i, value in enumerate(losses.tolist()):
            state.record(i, epoch, value, test[i])
        worst = max(s[-1] for s in state.train_loss), max(s[-1] for s in state.test_loss)
        progress.step(f"train {worst[0]:.3e} test {worst[1]:.3e} (worst of {len(jobs)})")
        if epoch == last_epoch or state.stopper.all_stopped():
            break
        tracker = state.tracker if state.tracker is not None and state.tracker.due(epoch) else None
        if tracker is not None:
            tracker.before_step(epoch, state.params)
        grads = state.step(losses, epoch)
        if tracker is not None:
            tracker.after_step(grads, state.params)
    timings: dict[str, Any] = {
        "train_seconds": time.perf_counter() - t_loop,
        "epochs_trained": epoch - start,
        "resumed_from_epoch": start,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "trained_together": [j.variant.name for j in jobs],
        "vectorized": bool(vectorize if vectorize is not None else device.type == "cuda") and len(jobs) > 1,
    }
    timings["ms_per_epoch"] = 1000 * timings["train_seconds"] / max(epoch - start, 1)
    return [finish_variant(job, state, i, stores[i], timings, prov, t_start) for i, job in enumerate(jobs)]
