"""The minibatch recipe of the grid tasks: step s trains on a seeded batch of the training split.

Step s's batch is ``tdw.tasks.modular.minibatch_rows(n_train, batch_size, data_seed, s)``, a pure
function of (data seed, step), so the schedule counts steps (a checkpoint "epoch" is a step) and a
run resumed from its snapshot draws the same batches and ends bit-identical (CPU). The loss is the
full-batch trainer's: cross-entropy at the last position, log-softmax in float64
(``stacked_cross_entropy`` of the fast path); the train loss recorded at step s is that batch's,
the test loss the full test split's every ``test_loss_every`` steps. Optimizer (AdamW, or Adam
with coupled L2 decay), warm-up, snapshots, checkpoints, history and provenance are the full-batch
trainer's (``tdw.train.state``).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from tdw.io.checkpoint import save_checkpoint
from tdw.io.provenance import provenance
from tdw.layout import checkpoint_name
from tdw.models.fastpath import stacked_cross_entropy, stacked_logits
from tdw.models.weights import init_params
from tdw.progress import Progress
from tdw.tasks import modular as data
from tdw.train.state import TrainJob, TrainState, finish_variant, log, prepare_state_dir, resume_epoch


def train_minibatch(jobs: list[TrainJob], progress_seconds: float = 5.0) -> list[dict]:
    """Train one variant of a grid task with the minibatch recipe and write its files as the
    full-batch trainer does (``tdw.train.state.finish_variant``)."""
    if len(jobs) != 1:
        raise ValueError(f"the {data.MINIBATCH} recipe trains one variant at a time; got {[j.variant.name for j in jobs]}")
    job = jobs[0]
    t_start = time.perf_counter()
    v, cfg = job.variant, job.model
    recipe = data.minibatch_values(job.recipe or {})
    key = job.key()
    snap = prepare_state_dir(job.layout, key, job.run_config())
    store, last = job.layout.state_checkpoints, max(v.epochs)
    state = TrainState([init_params(cfg, v.seed)], [job.train])
    start = resume_epoch(jobs, [snap])
    if start:
        state.load([job.layout.snapshot], torch.device("cpu"))
        log(f"[train {v.name}] resuming from the snapshot at step {start}")

    train_idx, test_idx = data.split(v.p, v.train_frac, v.split_seed, job.operation)
    x_train = torch.from_numpy(data.tokens(v.p, train_idx))
    y_train = torch.from_numpy(data.labels(v.p, train_idx, job.operation))
    x_test = torch.from_numpy(data.tokens(v.p, test_idx))[None]
    y_test = torch.from_numpy(data.labels(v.p, test_idx, job.operation))[None]
    prov = provenance()
    meta = {"family": job.family, "variant": v.name, "config": job.run_config(), "provenance": prov}
    t_loop = time.perf_counter()
    progress = Progress(last - start + 1, f"train {v.name}", "step", progress_seconds, first=start)
    for step in range(start, last + 1):
        state.epoch = step
        if step in v.epochs:
            save_checkpoint(store / checkpoint_name(step), state.weights(0), meta | {"epoch": step})
            state.save(0, job.layout.snapshot, key)
        rows = torch.from_numpy(data.minibatch_rows(len(train_idx), recipe["batch_size"], v.split_seed, step))
        loss = stacked_cross_entropy(stacked_logits(state.params, cfg, x_train[rows][None]), y_train[rows][None])  # [1]
        state.train_loss[0].append(loss.item())
        if step % job.train.test_loss_every == 0 or step == last:
            with torch.no_grad():
                state.test_loss[0].append(stacked_cross_entropy(stacked_logits(state.params, cfg, x_test), y_test).item())
            state.test_epoch.append(step)
        progress.step(f"train {state.train_loss[0][-1]:.3e} test {state.test_loss[0][-1]:.3e}")
        if step == last:
            break
        state.step(loss, step)
    seconds = time.perf_counter() - t_loop
    timings = {
        "train_seconds": seconds,
        "epochs_trained": last - start,
        "resumed_from_epoch": start,
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "trained_together": [v.name],
        "vectorized": False,
        "ms_per_epoch": 1000 * seconds / max(last - start, 1),
    }
    return [finish_variant(job, state, 0, store, timings, prov, t_start)]


def training_rows(job: TrainJob, steps: int) -> np.ndarray:
    """The training-split positions [steps, batch] that steps 0 .. steps - 1 train on."""
    v, recipe = job.variant, data.minibatch_values(job.recipe or {})
    n = len(data.split(v.p, v.train_frac, v.split_seed, job.operation)[0])
    return np.stack([data.minibatch_rows(n, recipe["batch_size"], v.split_seed, s) for s in range(steps)])
