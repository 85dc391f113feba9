"""The shared forward pass: one ``run_with_cache`` per checkpoint over a probe, written to
HDF5 with TransformerLens hook names as dataset names.

Only what the family's ``cache`` section asks for is kept (hook, positions, dtype), so a
p = 113 checkpoint's cache stays a few MB. ``logits`` (the model output, which has no hook)
is cached under that name. Like every workbench HDF5 file, a cache opens in xarray with its
axes (``batch``, ``head``, ``d_model``, ...) as named dimensions (``tdw.io.h5``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from tdw.io.checkpoint import load_torch, read_metadata
from tdw.io.h5 import write_h5
from tdw.io.provenance import provenance
from tdw.models.build import build_model
from tdw.models.hooks import LEAF_DIMS, LOGITS, PER_QUERY
from tdw.progress import Progress
from tdw.tasks import modular as data
from tdw.workbench import Family, Variant

if TYPE_CHECKING:
    from transformer_lens.HookedRootModule import HookedRootModule

DTYPES = {"float16": np.float16, "float32": np.float32}
BATCH = 16384  # rows per forward pass; bounds memory for large probes


def hook_dims(name: str, positions: str) -> str:
    """Axis names of a cached hook (TransformerLens conventions)."""
    leaf = name.rsplit(".", 1)[-1]
    per_pos = LEAF_DIMS.get(leaf, "d_model")
    if leaf in PER_QUERY:
        return "batch " + (per_pos.replace("head", "head query_pos") if positions == "all" else per_pos)
    return "batch " + ("pos " if positions == "all" else "") + per_pos


def _select(name: str, tensor: torch.Tensor, positions: str) -> torch.Tensor:
    if positions == "all":
        return tensor
    if name.endswith(PER_QUERY):
        return tensor[:, :, -1]  # [batch, head, query_pos, key_pos] -> the `=` query
    return tensor[:, -1]


def forward_cache(model: HookedRootModule, tokens: torch.Tensor, spec: dict) -> dict[str, np.ndarray]:
    """Run the hooked model (``tdw.models.build``) over ``tokens`` [batch, n_ctx] and keep what ``spec`` asks for."""
    hooks = [h for h in spec if h != LOGITS]
    out: dict[str, list[np.ndarray]] = {name: [] for name in spec}
    with torch.no_grad():
        for start in range(0, len(tokens), BATCH):
            logits, cache = model.run_with_cache(tokens[start : start + BATCH], names_filter=hooks)
            cache = dict(cache.items()) | {LOGITS: logits}
            for name, want in spec.items():
                kept = _select(name, cache[name], want["positions"])
                out[name].append(kept.cpu().numpy().astype(DTYPES[want["dtype"]]))
    return {name: np.concatenate(parts) for name, parts in out.items()}


def probe_rows(family: Family, variant: Variant, n_ctx: int, probe_spec: dict) -> tuple[torch.Tensor, dict]:
    """The probe's input tokens and the datasets that identify its rows: ``pair_index`` for the
    grid tasks; ``tokens`` and ``length`` for a sequence task (``tdw.tasks.sequence``)."""
    from tdw.tasks import sequence

    if family.operation == sequence.OPERATION:
        tokens, lengths = sequence.probe_tokens(variant.p, n_ctx, probe_spec, family.spec, family.root)
        rows = {"tokens": (tokens.astype(np.int32), "batch pos"), "length": (lengths.astype(np.int32), "batch")}
        return torch.from_numpy(tokens), rows
    index = data.probe_indices(variant.p, probe_spec, variant.train_frac, variant.split_seed, family.operation)
    return torch.from_numpy(data.tokens(variant.p, index)), {"pair_index": (index.astype(np.int32), "batch")}


def cache_checkpoints(family: Family, variant: Variant, probe: str, checkpoints: list[Path], outputs: list[Path]) -> list[float]:
    """Write one cache file per checkpoint; returns seconds spent per checkpoint. Runs on as
    many threads as torch has: the entry point sets them."""
    cfg = variant.model or family.model_config(variant.p)
    probe_spec = family.spec["probes"][probe]
    tokens, rows = probe_rows(family, variant, cfg.n_ctx, probe_spec)
    model = build_model(cfg)
    spec = family.spec["cache"]
    prov = provenance()
    seconds = []
    progress = Progress(len(checkpoints), f"forward_cache {variant.name} {probe}")
    for ckpt, out in zip(checkpoints, outputs, strict=True):
        t0 = time.perf_counter()
        model.load_state_dict(load_torch(ckpt), strict=False)
        arrays = forward_cache(model, tokens, spec)
        datasets = dict(rows)
        datasets |= {name: (arr, hook_dims(name, spec[name]["positions"])) for name, arr in arrays.items()}
        attrs = {
            "family": family.name,
            "variant": variant.name,
            "p": variant.p,
            "epoch": int(read_metadata(ckpt)["epoch"]),
            "checkpoint": str(ckpt),
            "probe": probe,
            "probe_spec": probe_spec,
            "hooks": spec,
            "provenance": prov,
        }
        write_h5(out, datasets, attrs, compress=True)
        seconds.append(time.perf_counter() - t0)
        progress.step()
    return seconds
