"""Running one analyzer over a variant's checkpoints, streaming, into one artifact file."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tdw import analyzers
from tdw.analyzers.base import CheckpointView
from tdw.architecture import ModelConfig
from tdw.checkpoint import read_metadata
from tdw.h5io import write_h5
from tdw.provenance import provenance


def run_analyzer(
    name: str,
    params: dict,
    checkpoints: list[Path],
    caches: list[Path] | None,
    out: Path,
    attrs: dict,
) -> float:
    """Step through checkpoints one at a time (memory stays at one checkpoint's data),
    combine, write ``out`` atomically. Returns the seconds spent."""
    t0 = time.perf_counter()
    analyzer = analyzers.get(name)
    epochs, steps = [], []
    for i, ckpt in enumerate(checkpoints):
        meta = read_metadata(ckpt)
        model = ModelConfig(**meta["config"]["architecture"])
        p = model.p
        view = CheckpointView(epoch=int(meta["epoch"]), model=model, checkpoint=ckpt, cache=caches[i] if caches else None)
        if analyzer.needs_full_grid and view.cache is not None:
            n = len(view.activation(analyzer.reads[0]))
            if n != p * p:
                raise ValueError(
                    f"analyzer {name!r} needs the full (a, b) grid ({p * p} inputs); "
                    f"{view.cache} holds {n}: use a probe of kind 'grid'"
                )
        steps.append(analyzer.step(view, params))
        epochs.append(view.epoch)
    datasets = analyzer.finalize(np.array(epochs), steps, params)
    meta_attrs = attrs | {
        "analyzer": name,
        "params": params,
        "description": analyzer.description,
        "p": p,
        "provenance": provenance(),
    }
    write_h5(out, datasets, meta_attrs)
    return time.perf_counter() - t0


def load_artifact(path: str | Path) -> dict[str, np.ndarray]:
    """An artifact as ``{name: array}`` plus ``attrs`` (a notebook one-liner)."""
    from tdw.h5io import open_h5, read_attrs

    with open_h5(path) as fh:
        return {k: fh[k][()] for k in fh} | {"attrs": read_attrs(fh)}
