"""Checkpoints: weights in safetensors, with config, epoch, provenance and a content hash in
its metadata.

The content hash (header key ``content_sha256``, also in metadata.json's checkpoint table) is
the SHA-256 of the tensors in the order of their names: for each one, its name (UTF-8), a NUL
byte, its numpy dtype string (``<f4``), a NUL byte, its shape as comma-separated integers, a
NUL byte, then its bytes in C order. It depends on the tensors alone, not on how safetensors
lays them out. Every read of the weights (``load_weights``, ``load_torch``) recomputes it and
refuses a file whose tensors no longer hash to what its header records (``ContentHashError``).
The trainer's snapshots (optimizer state, any dtype) are written and read the same way
(``save_tensors``, ``load_tensors``).

Loading uses ``safetensors.numpy`` (no torch import) unless torch tensors are asked for, so
analysis jobs that only read weights stay light.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from tdw.io.atomic import atomic_path
from tdw.layout import checkpoint_name  # noqa: F401  (the file name is part of the results layout)

FORMAT = "tdw-checkpoint/1"
HASH_KEY = "content_sha256"
REGENERATE = (
    "delete it (or the variant's checkpoints) and rerun snakemake: the train (or legacy import) job writes it again, "
    "resuming from the variant's train state where that is intact"
)


class CorruptFileError(RuntimeError):
    """A result file that cannot be read; the message names it."""


class ContentHashError(CorruptFileError):
    """A checkpoint whose tensors do not hash to the content hash recorded when it was written."""


def content_hash(weights: Mapping[str, np.ndarray]) -> str:
    """SHA-256 (hex) of the tensors in name order (see the module docstring)."""
    digest = hashlib.sha256()
    for name in sorted(weights):
        array = np.ascontiguousarray(weights[name])
        digest.update(f"{name}\0{array.dtype.str}\0{','.join(map(str, array.shape))}\0".encode())
        digest.update(array.tobytes())  # C order: the contiguous array's own bytes
    return digest.hexdigest()


def save_tensors(path: str | os.PathLike, tensors: Mapping[str, np.ndarray], meta: dict[str, str]) -> str:
    """Write tensors of any dtype atomically, with ``meta`` (strings) and the content hash in
    the header (checkpoints, and the trainer's snapshots). Returns the content hash."""
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    digest = content_hash(arrays)
    with atomic_path(path) as tmp:
        save_file(arrays, str(tmp), metadata=meta | {HASH_KEY: digest})
    return digest


def save_checkpoint(path: str | os.PathLike, weights: dict[str, np.ndarray], meta: dict) -> str:
    """Write weights (as float32) atomically; ``meta`` (epoch, config, provenance, ...) goes into
    the safetensors header as JSON strings, with the content hash. Returns the content hash."""
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}
    header = {"format": FORMAT} | {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    return save_tensors(path, arrays, header)


def _unreadable(path: str | os.PathLike, err: Exception) -> CorruptFileError:
    return CorruptFileError(f"{path}: not a readable safetensors checkpoint ({err}); {REGENERATE}")


def read_metadata(path: str | os.PathLike) -> dict:
    """The header metadata, JSON values decoded (the content hash stays a string). Reads the
    header only: the tensors are verified when they are loaded."""
    try:
        with safe_open(str(path), framework="numpy") as fh:
            raw = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise _unreadable(path, err) from err
    out = {}
    for key, value in raw.items():
        try:
            out[key] = value if key == HASH_KEY else json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def recorded_hash(path: str | os.PathLike) -> str:
    """The content hash a checkpoint's header records (header only; ``ContentHashError`` if none)."""
    recorded = read_metadata(path).get(HASH_KEY)
    if not isinstance(recorded, str):
        raise ContentHashError(f"{path}: the header records no {HASH_KEY} (not written by this workbench); {REGENERATE}")
    return recorded


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """All tensors of a file written by ``save_tensors`` and its header metadata (strings),
    verified against the header's content hash. A truncated or unreadable file raises
    ``CorruptFileError``, one whose tensors changed since it was written ``ContentHashError``;
    both name the file and how to regenerate it."""
    try:
        with safe_open(str(path), framework="numpy") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise _unreadable(path, err) from err
    recorded = meta.get(HASH_KEY)
    if recorded is None:
        raise ContentHashError(f"{path}: the header records no {HASH_KEY} (not written by this workbench); {REGENERATE}")
    actual = content_hash(tensors)
    if actual != recorded:
        raise ContentHashError(
            f"{path}: content hash mismatch: the header records {HASH_KEY} {recorded}, the tensors hash to {actual} "
            f"(the file changed after it was written); {REGENERATE}"
        )
    return tensors, meta


def load_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All tensors of a checkpoint as numpy arrays, verified (``load_tensors``)."""
    return load_tensors(path)[0]


def is_intact(path: str | os.PathLike) -> bool:
    """Whether a checkpoint is whole and its tensors hash to its recorded content hash."""
    try:
        load_weights(path)
    except CorruptFileError:
        return False
    return True


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
    """Weights as float32 torch tensors, verified like ``load_weights``."""
    import torch

    return {k: torch.from_numpy(v) for k, v in load_weights(path).items()}
