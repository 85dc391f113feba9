"""The minibatch recipe of the sequence families: a fresh seeded batch every step.

Step s trains on ``tdw.tasks.sequence.batch(p, n_ctx, batch_size, data_seed, s)``, a pure
function of (data seed, step), so the schedule counts steps (a checkpoint "epoch" is a step)
and a run resumed from its snapshot draws the same batches and ends bit-identical (CPU). The
loss is the mean next-token cross-entropy over every position (log-softmax in float64); the
test loss is the same on a fixed evaluation batch of ``eval_size`` sequences. Optimizer,
warm-up, snapshots, checkpoints, history and provenance are the full-batch trainer's
(``tdw.train.trainer``).
"""

from __future__ import annotations

import functools
import time

import torch

from tdw.io.checkpoint import save_checkpoint
from tdw.io.provenance import provenance
from tdw.layout import checkpoint_name
from tdw.models.architecture import ModelConfig
from tdw.models.weights import init_params
from tdw.progress import Progress
from tdw.tasks import sequence as task
from tdw.train.state import TrainState, finish_variant, log, prepare_state_dir, resume_epoch

RECIPE = task.RECIPE


@functools.lru_cache(maxsize=4)
def _module(cfg: ModelConfig) -> torch.nn.Module:
    from tdw.models.hooked import HookedModAdd

    return HookedModAdd(cfg)


def sequence_logits(params: dict[str, torch.Tensor], cfg: ModelConfig, tokens: torch.Tensor) -> torch.Tensor:
    """Logits at every position [batch, n_ctx, d_vocab_out] of the hooked model on ``params``
    (one module per architecture, its own parameters never used)."""
    return torch.func.functional_call(_module(cfg), params, (tokens,), strict=False)


def next_token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of predicting token t + 1 at position t, every position, in float64."""
    logprobs = logits[:, :-1].to(torch.float64).log_softmax(-1)
    return -logprobs.gather(-1, tokens[:, 1:, None]).mean()


def train_minibatch(jobs: list, progress_seconds: float = 5.0) -> list[dict]:
    """Train one variant with the minibatch recipe and write its files as the full-batch
    trainer does (``tdw.train.finish_variant``)."""
    if len(jobs) != 1:
        raise ValueError(f"the {RECIPE} recipe trains one variant at a time; got {[j.variant.name for j in jobs]}")
    job = jobs[0]
    t_start = time.perf_counter()
    v, cfg, recipe = job.variant, job.model, task.recipe_values(job.recipe)
    key = job.key()
    snap = prepare_state_dir(job.layout, key, job.run_config())
    store, last = job.layout.state_checkpoints, max(v.epochs)
    state = TrainState([init_params(cfg, v.seed)], [job.train])
    start = resume_epoch(jobs, [snap])
    if start:
        state.load([job.layout.snapshot], torch.device("cpu"))
        log(f"[train {v.name}] resuming from the snapshot at step {start}")

    def draw(step: int, size: int, stream: int) -> torch.Tensor:
        return torch.from_numpy(task.batch(v.p, cfg.n_ctx, size, v.split_seed, step, recipe["segment_min"], stream))

    held_out = draw(0, recipe["eval_size"], task.EVAL)
    meta = {"family": job.family, "variant": v.name, "config": job.run_config(), "provenance": provenance()}
    t_loop = time.perf_counter()
    progress = Progress(last - start + 1, f"train {v.name}", "step", progress_seconds, first=start)
    for step in range(start, last + 1):
        state.epoch = step
        params = {k: t[0] for k, t in state.params.items()}
        if step in v.epochs:
            save_checkpoint(store / checkpoint_name(step), state.weights(0), meta | {"epoch": step})
            state.save(0, job.layout.snapshot, key)
        tokens = draw(step, recipe["batch_size"], task.TRAIN)
        loss = next_token_loss(sequence_logits(params, cfg, tokens), tokens)
        state.train_loss[0].append(loss.item())
        if step % job.train.test_loss_every == 0 or step == last:
            with torch.no_grad():
                state.test_loss[0].append(next_token_loss(sequence_logits(params, cfg, held_out), held_out).item())
            state.test_epoch.append(step)
        progress.step(f"train {state.train_loss[0][-1]:.3e} test {state.test_loss[0][-1]:.3e}")
        if step == last:
            break
        state.step(loss[None], step)
    timings = _timings(time.perf_counter() - t_loop, start, last, v.name)
    return [finish_variant(job, state, 0, store, timings, meta["provenance"], t_start)]


def _timings(seconds: float, start: int, last: int, name: str) -> dict:
    """The timings of metadata.json, with the full-batch trainer's keys (an epoch is a step)."""
    return {
        "train_seconds": seconds,
        "epochs_trained": last - start,
        "resumed_from_epoch": start,
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "trained_together": [name],
        "vectorized": False,
        "ms_per_epoch": 1000 * seconds / max(last - start, 1),
    }
