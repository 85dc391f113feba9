"""Reading and writing the workbench's HDF5 files (caches, artifacts, histories): every dataset
carries a ``dims`` attribute naming its axes, and every file is also a netCDF-4 file, so
``xarray.open_dataset(path, engine="h5netcdf")`` opens it with those axes as named dimensions.
Unreadable files raise an error naming the file.

netCDF-4 names an axis with an HDF5 dimension scale. A 1-D dataset named like its own axis
(``epoch``, ``frequency``, ``hook``) is that axis's coordinate variable; an axis with no such
dataset gets a dimension-only scale of its name (netCDF's "dimension but not a variable"),
which holds the axis index 0..n-1 and a ``dims`` attribute, so that h5py readers see a truthful
index there. Each axis name has one length per file. netCDF has no bool type: bool arrays are
stored as int8 with ``dtype="bool"`` (xarray's convention, which decodes them back) and
``read_dataset`` returns them as bool. Strings are variable-length UTF-8.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

import h5py
import numpy as np

from tdw.io.atomic import atomic_path
from tdw.io.checkpoint import CorruptFileError

NOT_A_VARIABLE = b"This is a netCDF dimension but not a netCDF variable."
NETCDF_ATTRS = ("_NCProperties", "_nc3_strict")  # netCDF's own file attributes, not the workbench's
COMPRESS_ABOVE = 4096  # elements; smaller datasets are stored plain


@contextlib.contextmanager
def open_h5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Open for reading; a missing, truncated or corrupt file raises ``CorruptFileError``."""
    try:
        fh = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise CorruptFileError(f"{path}: not a readable HDF5 file ({err}); delete it and rerun to regenerate it") from err
    with fh:
        yield fh


def _stored(array: np.ndarray) -> tuple[np.ndarray, dict]:
    """The array in a netCDF-4 type, and the attributes that say how to read it back."""
    if array.dtype == bool:
        return array.astype(np.int8), {"dtype": "bool"}
    if array.dtype.kind == "S":
        return np.char.decode(array, "utf-8").astype(object), {}
    if array.dtype.kind == "U":
        return array.astype(object), {}
    return array, {}


def dimension_sizes(path: str | os.PathLike, datasets: dict[str, tuple[np.ndarray, tuple[str, ...]]]) -> dict[str, int]:
    """``{dim: length}`` in order of first use; refuses a name with two lengths, and a dataset
    named like a dimension that is not 1-D along it (netCDF reads that name as the coordinate)."""
    sizes: dict[str, int] = {}
    first: dict[str, str] = {}
    for name, (array, dims) in datasets.items():
        for dim, size in zip(dims, array.shape, strict=True):
            if sizes.setdefault(dim, size) != size:
                raise ValueError(
                    f"{path}: dimension {dim!r} has length {sizes[dim]} in dataset {first[dim]!r} and {size} in "
                    f"{name!r}; give the axes of different lengths different names"
                )
            first.setdefault(dim, name)
    for name, (_, dims) in datasets.items():
        if name in sizes and dims != (name,):
            raise ValueError(
                f"{path}: dataset {name!r} has dims {' '.join(dims)!r} but {name!r} names an axis of this file: "
                "a dataset named like an axis must be that axis's 1-D coordinate; rename it"
            )
    return sizes


def _create(fh: h5py.File, name: str, array: np.ndarray, compress: bool) -> h5py.Dataset:
    array, attrs = _stored(array)
    kwargs = {"compression": "gzip", "compression_opts": 1, "shuffle": True} if compress and array.size > COMPRESS_ABOVE else {}
    if array.dtype == object:
        kwargs["dtype"] = h5py.string_dtype()
    ds = fh.create_dataset(name, data=array, track_order=True, **kwargs)
    ds.attrs.update(attrs)
    return ds


def write_h5(path: str | os.PathLike, datasets: dict[str, tuple[np.ndarray, str]], attrs: dict, compress: bool = False) -> None:
    """Write ``{name: (array, "dim0 dim1 ...")}`` atomically, with a dimension scale per axis;
    attrs that are not scalars or strings are stored as JSON."""
    arrays = {}
    for name, (array, dims) in datasets.items():
        array = np.asarray(array)
        if array.ndim != len(dims.split()):
            raise ValueError(f"dataset {name}: dims {dims!r} do not match shape {array.shape}")
        arrays[name] = (array, tuple(dims.split()))
    sizes = dimension_sizes(path, arrays)
    # Creation in name order keeps h5py's iteration order (by name) with creation order tracked,
    # which netCDF-4 asks for.
    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=True) as fh:
        created = {}
        for name in sorted(set(arrays) | set(sizes)):
            if name in arrays:
                created[name] = _create(fh, name, arrays[name][0], compress)
            else:  # an axis without a coordinate: its index
                created[name] = _create(fh, name, np.arange(sizes[name], dtype=np.int64), compress)
            created[name].attrs["dims"] = " ".join(arrays[name][1]) if name in arrays else name
        for dimid, (dim, size) in enumerate(sizes.items()):
            created[dim].make_scale(dim if dim in arrays else NOT_A_VARIABLE + f"{size:10}".encode())
            created[dim].attrs["_Netcdf4Dimid"] = np.int32(dimid)
        for name, (_, axes) in arrays.items():
            if axes != (name,):
                for axis, dim in enumerate(axes):
                    created[name].dims[axis].attach_scale(created[dim])
        nc_properties = f"version=2,h5py={h5py.__version__},hdf5={h5py.version.hdf5_version}"
        fh.attrs["_NCProperties"] = np.array(nc_properties, dtype=h5py.string_dtype("ascii", len(nc_properties)))
        for key in sorted(attrs):
            fh.attrs[key] = _attr(attrs[key])


def _attr(value: object) -> object:
    """A netCDF-valid attribute value: numbers and strings as they are, bools as int8 0 / 1,
    anything else as JSON."""
    if isinstance(value, bool | np.bool_):
        return np.int8(value)
    return value if isinstance(value, str | int | float | np.number) else json.dumps(value)


def read_dataset(ds: h5py.Dataset) -> np.ndarray:
    """A dataset's values as they were given to ``write_h5``: bools as bool, strings as bytes."""
    value = ds[()]
    if ds.attrs.get("dtype") == "bool":
        return np.asarray(value).astype(bool)[()]
    if h5py.check_string_dtype(ds.dtype) is not None and ds.dtype.kind == "O":
        return np.asarray(value, dtype="S")[()]
    return value


def is_index_scale(ds: h5py.Dataset) -> bool:
    """Whether a dataset is the index of an axis without a coordinate (no dataset of ``write_h5``'s input)."""
    return NOT_A_VARIABLE in ds.attrs.get("NAME", b"")


def read_attrs(fh: h5py.File) -> dict:
    """File attributes, JSON strings decoded (netCDF's own attributes left out)."""
    out = {}
    for key, value in fh.attrs.items():
        if key in NETCDF_ATTRS:
            continue
        if isinstance(value, str) and value[:1] in "[{":
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        out[key] = value
    return out


def load_artifact(path: str | os.PathLike) -> dict[str, Any]:
    """An artifact as ``{name: array}`` plus ``attrs`` (a notebook one-liner)."""
    with open_h5(path) as fh:
        return {k: read_dataset(fh[k]) for k in fh} | {"attrs": read_attrs(fh)}
