"""Reading and writing the workbench's HDF5 files (caches, artifacts): every dataset carries
a ``dims`` attribute naming its axes; unreadable files raise an error naming the file."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator

import h5py
import numpy as np

from tdw.io.atomic import atomic_path
from tdw.io.checkpoint import CorruptFileError


@contextlib.contextmanager
def open_h5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Open for reading; a missing, truncated or corrupt file raises ``CorruptFileError``."""
    try:
        fh = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise CorruptFileError(f"{path}: not a readable HDF5 file ({err}); delete it and rerun to regenerate it") from err
    with fh:
        yield fh


def write_h5(path: str | os.PathLike, datasets: dict[str, tuple[np.ndarray, str]], attrs: dict, compress: bool = False) -> None:
    """Write ``{name: (array, "dim0 dim1 ...")}`` atomically; attrs that are not scalars or
    strings are stored as JSON."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        for name, (array, dims) in datasets.items():
            array = np.asarray(array)
            if array.ndim != len(dims.split()):
                raise ValueError(f"dataset {name}: dims {dims!r} do not match shape {array.shape}")
            kwargs = {"compression": "gzip", "compression_opts": 1, "shuffle": True} if compress and array.size > 4096 else {}
            fh.create_dataset(name, data=array, **kwargs).attrs["dims"] = dims
        for key, value in attrs.items():
            fh.attrs[key] = value if isinstance(value, (str, int, float, np.number)) else json.dumps(value)


def read_attrs(fh: h5py.File) -> dict:
    """File attributes, JSON strings decoded."""
    out = {}
    for key, value in fh.attrs.items():
        if isinstance(value, str) and value[:1] in "[{":
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        out[key] = value
    return out
