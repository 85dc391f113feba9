"""Artifacts and training histories as tables, for pandas, R or a spreadsheet.

Every dataset of a workbench HDF5 file names its axes (the ``dims`` attribute). Datasets over
the same axes become one tidy CSV table: one row per element, a column per axis and a column
per dataset. An axis with a coordinate dataset of its own name (``epoch``, ``frequency``,
``hook``) gets that dataset's values, any other axis its index. Scalars, the file's
attributes (analyzer, parameters, probe, provenance) and what wrote the tables go to
``meta.json``. ``--format json`` writes one JSON file instead: every dataset with its dims and
values as nested lists.

    python -m tdw.pages.tables ARTIFACT.h5 --out tables                 # paths: README, tdw.layout
    python -m tdw.pages.tables HISTORY.h5 --out tables --format json

Outputs are written whole or not at all (a temporary folder or file, then a rename) and an
existing output is kept unless ``--force`` replaces it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from tdw.io.atomic import write_text
from tdw.io.checkpoint import CorruptFileError
from tdw.io.h5 import open_h5, read_attrs
from tdw.io.provenance import provenance


class TablesError(ValueError):
    """Input that cannot be exported; the message names the file and what is wrong."""


Datasets = dict[str, tuple[np.ndarray, tuple[str, ...]]]
CHUNK = 100_000  # rows converted to text at a time


def read_datasets(path: Path, only: list[str] | None = None) -> tuple[Datasets, dict]:
    """``({name: (array, dims)}, file attributes)``; ``only`` keeps those datasets (and the
    coordinates of their axes)."""
    with open_h5(path) as fh:
        names = list(fh)
        if only:
            unknown = sorted(set(only) - set(names))
            if unknown:
                raise TablesError(f"{path}: no dataset(s) {unknown}; the file has {sorted(names)}")
        out: Datasets = {}
        for name in names:
            ds = fh[name]
            if "dims" not in ds.attrs:
                raise TablesError(f"{path}: dataset {name!r} has no 'dims' attribute: not a workbench artifact or history")
            dims = tuple(str(ds.attrs["dims"]).split())
            if len(dims) != ds.ndim:
                raise TablesError(f"{path}: dataset {name!r} has dims {dims} for shape {ds.shape}")
            out[name] = (ds[()], dims)
        attrs = read_attrs(fh)
    if only:
        axes = {d for n in only for d in out[n][1]}
        out = {n: v for n, v in out.items() if n in only or (n in axes and v[1] == (n,))}
    return out, attrs


def _coordinate(datasets: Datasets, dim: str, size: int, path: Path) -> np.ndarray:
    if dim in datasets and datasets[dim][1] == (dim,):
        values = datasets[dim][0]
        if len(values) != size:
            raise TablesError(f"{path}: coordinate {dim!r} has {len(values)} values, an axis {dim!r} has {size}")
        return values
    return np.arange(size)


def _text(column: np.ndarray) -> list[str]:
    """Values as text: floats in the shortest form that reads back to the same value of
    their own precision, bytes decoded."""
    if column.dtype.kind == "S":
        return [v.decode() for v in column]
    return [str(v) for v in column]


class Table:
    """Datasets over the same axes as one table: a column per axis (its coordinate values or
    its index), then a column per dataset; rows in C order (the last axis varies fastest)."""

    def __init__(self, dims: tuple[str, ...], coords: list[np.ndarray], data: dict[str, np.ndarray]):
        self.dims, self.coords, self.data = dims, coords, data
        self.shape = tuple(len(c) for c in coords)
        self.columns = list(dims) + list(data)
        self.rows = int(np.prod(self.shape))

    def chunk(self, start: int, stop: int) -> list[np.ndarray]:
        """The columns of rows ``start`` to ``stop``."""
        index = np.unravel_index(np.arange(start, min(stop, self.rows)), self.shape)
        return [c[i] for c, i in zip(self.coords, index, strict=True)] + [a.reshape(-1)[start:stop] for a in self.data.values()]


def tables(path: Path, datasets: Datasets) -> dict[tuple[str, ...], Table]:
    """A ``Table`` for every group of non-scalar datasets over the same axes."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for name, (_, dims) in datasets.items():
        if dims and dims != (name,):
            groups.setdefault(dims, []).append(name)
    for name, (_, dims) in datasets.items():  # a 1-D dataset along an axis with no other data
        if dims == (name,) and not any(name in g for g in groups):
            groups.setdefault(dims, [])
    out = {}
    for dims, names in groups.items():
        shape = datasets[names[0]][0].shape if names else datasets[dims[0]][0].shape
        for n in names:
            if datasets[n][0].shape != shape:
                raise TablesError(f"{path}: datasets {names[0]!r} and {n!r} share dims {dims} but not a shape")
        coords = [_coordinate(datasets, d, shape[k], path) for k, d in enumerate(dims)]
        out[dims] = Table(dims, coords, {n: datasets[n][0] for n in names})
    return out


def _json_safe(value):
    if isinstance(value, np.ndarray):  # whole arrays at once: nested lists of Python values
        if value.dtype.kind == "S":
            return np.char.decode(value).tolist()
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            out = value.astype(object)
            out[np.isnan(value)], out[np.isposinf(value)], out[np.isneginf(value)] = None, "inf", "-inf"
            return out.tolist()
        return value.tolist()
    if isinstance(value, bytes | np.bytes_):
        return value.decode()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None if np.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _replace_dir(built: Path, target: Path) -> None:
    """Move a fully written folder onto ``target`` (an existing one is removed only after)."""
    old = None
    if target.exists():
        old = target.with_name(f".old-{target.name}.{os.getpid()}")
        os.replace(target, old)
    os.replace(built, target)
    if old is not None:
        shutil.rmtree(old)


def export_csv(path: Path, out: Path, only: list[str] | None = None, force: bool = False) -> list[Path]:
    """Write ``out/<file stem>/<dims>.csv`` per group of datasets and ``meta.json``; returns them."""
    path, target = Path(path), Path(out) / Path(path).stem
    if target.exists() and not force:
        raise TablesError(f"{target}: exists; pass --force to replace it")
    datasets, attrs = read_datasets(path, only)
    groups = tables(path, datasets)
    target.parent.mkdir(parents=True, exist_ok=True)
    built = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}.", dir=target.parent))
    try:
        files = {}
        for dims, table in groups.items():
            name = "__".join(dims) + ".csv"
            with open(built / name, "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(table.columns)
                for start in range(0, table.rows, CHUNK):  # bounded memory for large artifacts
                    writer.writerows(zip(*(_text(c) for c in table.chunk(start, start + CHUNK)), strict=True))
            files[name] = {"dims": list(dims), "columns": table.columns, "rows": table.rows}
        meta = {
            "source": str(path.resolve()),
            "attrs": _json_safe(attrs),
            "scalars": {n: _json_safe(a) for n, (a, dims) in datasets.items() if not dims},
            "tables": files,
            "exported_by": provenance(),
        }
        (built / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        os.chmod(built, 0o755)
        _replace_dir(built, target)
    finally:
        shutil.rmtree(built, ignore_errors=True)
    return [target / n for n in files] + [target / "meta.json"]


def export_json(path: Path, out: Path, only: list[str] | None = None, force: bool = False) -> list[Path]:
    """Write ``out/<file stem>.json``: attributes, and every dataset with its dims and values."""
    path, target = Path(path), Path(out) / f"{Path(path).stem}.json"
    if target.exists() and not force:
        raise TablesError(f"{target}: exists; pass --force to replace it")
    datasets, attrs = read_datasets(path, only)
    doc = {
        "source": str(path.resolve()),
        "attrs": _json_safe(attrs),
        "datasets": {n: {"dims": list(d), "dtype": str(a.dtype), "data": _json_safe(a)} for n, (a, d) in datasets.items()},
        "exported_by": provenance(),
    }
    write_text(target, json.dumps(doc, allow_nan=False) + "\n")
    return [target]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tdw.pages.tables", description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path, help="analyzer artifacts or variant histories (HDF5)")
    ap.add_argument("--out", type=Path, required=True, help="folder for the tables")
    ap.add_argument("--format", choices=["csv", "json"], default="csv")
    ap.add_argument("--datasets", help="comma-separated dataset names to export (default: all)")
    ap.add_argument("--force", action="store_true", help="replace existing outputs")
    args = ap.parse_args(argv)
    only = [d.strip() for d in args.datasets.split(",")] if args.datasets else None
    export = export_csv if args.format == "csv" else export_json
    try:
        for path in args.files:
            for written in export(path, args.out, only, args.force):
                print(written)
    except (TablesError, CorruptFileError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
