"""Checkpoints: weights in safetensors, with config, epoch and provenance in its metadata.

Loading uses ``safetensors.numpy`` (no torch import) unless torch tensors are asked for, so
analysis jobs that only read weights stay light.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from tdw.io.atomic import atomic_path
from tdw.layout import checkpoint_name  # noqa: F401  (the file name is part of the results layout)

FORMAT = "tdw-checkpoint/1"


class CorruptFileError(RuntimeError):
    """A result file that cannot be read; the message names it."""


def save_checkpoint(path: str | os.PathLike, weights: dict[str, np.ndarray], meta: dict) -> None:
    """Write weights atomically; ``meta`` (epoch, config, provenance, ...) goes into the
    safetensors header as JSON strings."""
    header = {"format": FORMAT} | {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}
    with atomic_path(path) as tmp:
        save_file(arrays, str(tmp), metadata=header)


def read_metadata(path: str | os.PathLike) -> dict:
    """The header metadata, JSON values decoded."""
    try:
        with safe_open(str(path), framework="numpy") as fh:
            raw = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise CorruptFileError(f"{path}: not a readable safetensors checkpoint ({err}); delete it and rerun") from err
    out = {}
    for key, value in raw.items():
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def load_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All tensors of a checkpoint as numpy arrays; a truncated or corrupt file raises
    ``CorruptFileError`` naming it."""
    try:
        with safe_open(str(path), framework="numpy") as fh:
            return {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise CorruptFileError(f"{path}: not a readable safetensors checkpoint ({err}); delete it and rerun") from err


def is_complete(path: str | os.PathLike) -> bool:
    """Whether a safetensors file is whole: its header parses and the file is exactly as long
    as the header says (a truncated copy fails this without reading the tensors)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(n))
        ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"]
        return path.stat().st_size == 8 + n + max(ends, default=0)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def load_torch(path: str | os.PathLike) -> dict:
    """Weights as float32 torch tensors."""
    import torch

    return {k: torch.from_numpy(v.copy()) for k, v in load_weights(path).items()}
