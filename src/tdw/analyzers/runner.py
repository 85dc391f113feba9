"""Running one analyzer over a variant's checkpoints, streaming, into one artifact file."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tdw import analyzers
from tdw.analyzers.base import Analyzer, CheckpointView, GroupView, on_group, supports, unsupported
from tdw.io.checkpoint import read_metadata
from tdw.io.h5 import (
    load_artifact,  # noqa: F401 (the notebook one-liner, also offered here)
    write_h5,
)
from tdw.io.provenance import provenance
from tdw.models.architecture import ModelConfig
from tdw.params import resolve_params
from tdw.progress import Progress


def checkpoint_view(ckpt: Path, cache: Path | None, history: Path | None = None) -> CheckpointView:
    """A lazy view of one checkpoint (weights and cache load on first use)."""
    meta = read_metadata(ckpt)
    model = ModelConfig(**meta["config"]["architecture"])
    return CheckpointView(
        epoch=int(meta["epoch"]), model=model, checkpoint=ckpt, cache=cache, config=meta["config"], history=history
    )


def check_view(analyzer: Analyzer, view: CheckpointView | GroupView) -> None:
    """Refuse inputs an analyzer cannot use, with a message that says what to change."""
    if not supports(analyzer, view.task_config):
        task = view.task_config
        raise ValueError(f"analyzer {analyzer.name!r}: {unsupported(analyzer, task)}; {view.checkpoint} has task {task}")
    if view.model.model not in analyzer.models:
        raise ValueError(
            f"analyzer {analyzer.name!r} supports models {list(analyzer.models)}; {view.checkpoint} is {view.model.model!r}"
        )
    if analyzer.needs_full_grid and view.cache is not None and not view.is_full_grid:
        raise ValueError(
            f"analyzer {analyzer.name!r} needs the full (a, b) grid ({view.p**2} inputs in row-major order); "
            f"{view.cache} holds {len(view.pair_index)} rows: use a probe of kind 'grid'"
        )
    if analyzer.needs_history and (view.history is None or not Path(view.history).exists()):
        raise ValueError(f"analyzer {analyzer.name!r} needs the variant's history.h5; got {view.history}")


def run_analyzer(
    name: str,
    params: dict,
    checkpoints: list[Path],
    caches: list[Path] | None,
    out: Path,
    attrs: dict,
    history: Path | None = None,
) -> float:
    """Step through checkpoints one at a time (memory stays at one checkpoint's data, plus
    the state ``prepare`` derives from the final one), combine, write ``out`` atomically.
    ``params``: overrides of the analyzer's declared parameters (checked; the artifact's
    ``params`` attribute records all of them, defaults included). Returns the seconds spent."""
    t0 = time.perf_counter()
    analyzer = analyzers.get(name)
    params = resolve_params(analyzer.params, params, f"analyzer {name!r}")
    if analyzer.reads and not caches:
        raise ValueError(f"analyzer {name!r} reads {list(analyzer.reads)}: give the checkpoints' caches")
    per_checkpoint: list[Path | None] = list(caches) if caches else [None] * len(checkpoints)
    # an on_group analyzer reads each checkpoint on its task's group (tdw.analyzers.base.GroupView)
    views = (on_group(analyzer, checkpoint_view(c, h, history)) for c, h in zip(checkpoints, per_checkpoint, strict=True))
    final = on_group(analyzer, checkpoint_view(checkpoints[-1], per_checkpoint[-1], history))
    check_view(analyzer, final)
    epochs = np.array([int(read_metadata(c)["epoch"]) for c in checkpoints])
    state = analyzer.prepare(final, epochs, params)
    del final
    steps = []
    progress = Progress(len(checkpoints), f"analyze {name}")
    for view in views:
        check_view(analyzer, view)
        steps.append(analyzer.step(view, params, state))
        view.drop_activations()
        progress.step()
    datasets = analyzer.finalize(epochs, steps, params, state)
    last = checkpoint_view(checkpoints[-1], None)
    meta_attrs = attrs | {
        "analyzer": name,
        "params": params,
        "description": analyzer.description,
        "p": last.p,
        "provenance": provenance(),
    }
    group = on_group(analyzer, last)
    if isinstance(group, GroupView):  # axes a, b, token and residue are group elements: say which tokens they are
        meta_attrs["group"] = {"order": group.p, "relabel": group.group.relabel, "tokens": group.group.tokens.tolist()}
    write_h5(out, datasets, meta_attrs, compress=True)
    return time.perf_counter() - t0
