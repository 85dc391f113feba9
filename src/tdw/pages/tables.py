"""Artifacts and training histories as tables, for pandas, R or a spreadsheet.

A workbench HDF5 file opens in xarray with its axes as named dimensions (``tdw.io.h5``).
Variables over the same dimensions become one tidy CSV table (``Dataset.to_dataframe``): one
row per element, a column per axis and a column per dataset. An axis with a coordinate
(``epoch``, ``frequency``, ``hook``) gets its values, any other axis its index. Scalars, the
file's attributes (analyzer, parameters, probe, provenance) and what wrote the tables go to
``meta.json``. ``--format json`` writes one JSON file instead: every dataset with its dims and
values as nested lists.

    python -m tdw tables ARTIFACT.h5 --out tables                 # paths: README, tdw.layout
    python -m tdw tables HISTORY.h5 --out tables --format json

Outputs are written whole or not at all (a temporary folder or file, then a rename) and an
existing output is kept unless ``--force`` replaces it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import xarray as xr

from tdw.io.atomic import write_text
from tdw.io.checkpoint import CorruptFileError
from tdw.io.h5 import dimension_sizes, is_index_scale, open_h5, read_attrs, read_dataset
from tdw.io.provenance import provenance


class TablesError(ValueError):
    """Input that cannot be exported; the message names the file and what is wrong."""


CHUNK = 100_000  # rows converted to text at a time (at least one index of the leading axis)


def _names(path: Path, fh) -> list[str]:
    """The file's datasets in file order (axis indices left out), each checked for ``dims``."""
    names = [n for n in fh if not is_index_scale(fh[n])]
    for name in names:
        ds = fh[name]
        if "dims" not in ds.attrs:
            raise TablesError(f"{path}: dataset {name!r} has no 'dims' attribute: not a workbench artifact or history")
        if len(str(ds.attrs["dims"]).split()) != ds.ndim:
            raise TablesError(f"{path}: dataset {name!r} has dims {tuple(str(ds.attrs['dims']).split())} for shape {ds.shape}")
    return names


def _from_dims_attrs(path: Path, fh, names: list[str]) -> xr.Dataset:
    """A file written before the axes were dimension scales, built from its ``dims`` attributes."""
    variables = {}
    for name in names:
        values = read_dataset(fh[name])
        variables[name] = (values, tuple(str(fh[name].attrs["dims"]).split()))
    try:
        dimension_sizes(path, variables)  # what netCDF cannot name, xarray cannot either
    except ValueError as err:
        raise TablesError(f"{err}; rerun the workflow to rewrite the file") from err
    decoded = {
        name: (dims, np.char.decode(values) if values.dtype.kind == "S" else values) for name, (values, dims) in variables.items()
    }
    coords = {n: decoded.pop(n) for n in list(decoded) if decoded[n][0] == (n,)}
    return xr.Dataset(decoded, coords)


@contextlib.contextmanager
def open_tables(path: Path, only: list[str] | None = None) -> Iterator[tuple[xr.Dataset, list[str], dict]]:
    """``(dataset, names, file attributes)``: the file in xarray and the names to export;
    ``only`` keeps those datasets (and the coordinates of their axes)."""
    with open_h5(path) as fh:
        names = _names(path, fh)
        attrs = read_attrs(fh)
        scaled = all(fh[n].ndim == 0 or "DIMENSION_LIST" in fh[n].attrs or "CLASS" in fh[n].attrs for n in names)
        ds = None if scaled else _from_dims_attrs(path, fh, names)
    if ds is None:
        try:  # lazily: a table reads its slices from the file as it writes them
            ds = xr.open_dataset(path, engine="h5netcdf", cache=False)
        except (ValueError, OSError) as err:
            raise TablesError(f"{path}: xarray cannot open it ({err})") from err
    with ds:
        if only:
            unknown = sorted(set(only) - set(names))
            if unknown:
                raise TablesError(f"{path}: no dataset(s) {unknown}; the file has {sorted(names)}")
            axes = {d for n in only for d in ds[n].dims}
            names = [n for n in names if n in only or (n in axes and ds[n].dims == (n,))]
        yield ds, names, attrs


def groups(ds: xr.Dataset, names: list[str]) -> dict[tuple[str, ...], list[str]]:
    """``{dims: names}``: the non-scalar datasets over each set of axes, in file order; a
    coordinate that no other dataset uses is a table of its own."""
    out: dict[tuple[str, ...], list[str]] = {}
    for name in names:
        dims = tuple(str(d) for d in ds[name].dims)
        if dims and dims != (name,):
            out.setdefault(dims, []).append(name)
    for name in names:
        if ds[name].dims == (name,) and not any(name in g for g in out):
            out.setdefault((name,), [])
    return out


def write_table(fh, ds: xr.Dataset, dims: tuple[str, ...], names: list[str]) -> int:
    """One table as CSV, rows in C order (the last axis varies fastest), converted to text in
    slices of the leading axis to bound memory; returns the number of rows. The table's arrays
    are read whole first: slices of a compressed dataset would decompress its chunks again and
    again."""
    table = ds[names or list(dims)].load()
    sizes = [ds.sizes[d] for d in dims]
    rows = int(np.prod(sizes))
    step = max(1, CHUNK // max(1, rows // max(sizes[0], 1)))
    for start in range(0, max(sizes[0], 1), step):
        part = table.isel({dims[0]: slice(start, start + step)}).to_dataframe(dim_order=list(dims))
        # The axes as plain columns: pandas writes a MultiIndex through a tuple per row, 3x slower.
        part.reset_index().to_csv(fh, header=start == 0, index=False, na_rep="nan", lineterminator="\r\n")
    return rows


def _json_safe(value):
    if isinstance(value, np.ndarray):  # whole arrays at once: nested lists of Python values
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


def _dtype(values: np.ndarray) -> str:
    """The dtype as written: strings (UTF-8 in the file) by their fixed-length bytes type."""
    if values.dtype.kind in "OU":
        return str(np.char.encode(values.astype(str), "utf-8").dtype)
    return str(values.dtype)


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
    with open_tables(path, only) as (ds, names, attrs):
        target.parent.mkdir(parents=True, exist_ok=True)
        built = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}.", dir=target.parent))
        try:
            files = {}
            for dims, members in groups(ds, names).items():
                name = "__".join(dims) + ".csv"
                with open(built / name, "w", newline="") as fh:
                    rows = write_table(fh, ds, dims, members)
                files[name] = {"dims": list(dims), "columns": [*dims, *members], "rows": rows}
            meta = {
                "source": str(path.resolve()),
                "attrs": _json_safe(attrs),
                "scalars": {n: _json_safe(ds[n].values) for n in names if not ds[n].dims},
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
    with open_tables(path, only) as (ds, names, attrs):
        datasets = {n: ds[n].values for n in names}
        doc = {
            "source": str(path.resolve()),
            "attrs": _json_safe(attrs),
            "datasets": {n: {"dims": list(ds[n].dims), "dtype": _dtype(a), "data": _json_safe(a)} for n, a in datasets.items()},
            "exported_by": provenance(),
        }
    write_text(target, json.dumps(doc, allow_nan=False) + "\n")
    return [target]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tdw tables", description=__doc__.split("\n\n")[0])
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
