"""Outputs checked where Snakemake decides what is stale: an existing checkpoint, history,
cache or artifact that is truncated or unreadable is moved aside, so the run regenerates it.

Snakemake counts an output as up to date when it exists and is newer than its inputs; a
truncated file passes that. ``check_outputs`` runs while the workflow is parsed (from
rules/common.smk), before the DAG is built, over the outputs the config plans, and reads a
few bytes per file:

- HDF5 (history, caches, artifacts): the signature, and the end-of-file address the
  superblock records against the file's size (what HDF5 itself checks on opening);
- checkpoints (safetensors): the header parses and the tensors it lists end where the file
  ends (the content hash is checked whenever the weights are read: ``tdw.io.checkpoint``);
- any of them: an empty file, or a folder where a file is expected.

A broken file is renamed ``<name>.broken-<UTC time>`` in its folder: nothing is lost, and the
name is none Snakemake knows, so the output is missing. Snakemake skips a missing file whose
dependents are up to date, so rules/common.smk makes the moved files default targets: their
jobs (and what depends on them) run again; with targets given on the command line, a moved
file is regenerated when one of them needs it. Opening each file with h5py would cost ~0.25 ms
more per file (16 s over 64 variants x 1,000 caches; the check: 0.04 ms) and find no truncation this misses.
A dry run (or a command that runs no job: ``--summary``, ``--lint``, ``--touch``, ...) only
reports: Snakemake reads its own settings (``--forcerun``) after the workflow is parsed, so a
check at parse time cannot add jobs to a dry run's list without moving the file.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

H5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
MAX_HEADER = 100 * 2**20  # a safetensors header longer than this is not one the workbench wrote
# Options after which Snakemake runs no job: the check only reports.
NO_JOBS = {
    "-n", "--dry-run", "--dryrun", "--lint", "-l", "--list-rules", "--list", "--list-target-rules", "--lt",
    "-S", "--summary", "-D", "--detailed-summary", "--dag", "--rulegraph", "--filegraph", "--d3dag",
    "--unlock", "--cleanup-metadata", "--cm", "--delete-all-output", "--delete-temp-output", "--print-compilation",
    "--list-changes", "--lc", "--list-input-changes", "--li", "--list-params-changes", "--lp", "--list-code-changes",
    "-t", "--touch", "--cleanup-shadow", "--conda-create-envs-only", "--containerize", "--archive", "--export-cwl",
}  # fmt: skip
NO_JOBS_FLAGS = "nt"  # grouped short flags that run no job: -n (dry run), -t (touch)


@dataclass(frozen=True)
class Broken:
    """An existing output that cannot be used, and why."""

    path: Path
    reason: str


def runs_jobs(argv: list[str]) -> bool:
    """Whether a Snakemake command line runs jobs (not a dry run, summary, lint, ...). Short
    flags may be grouped (``-np``); targets after ``--`` are not options."""
    for arg in argv[1:]:
        if arg == "--":
            break
        if arg.split("=")[0] in NO_JOBS or (
            arg[:1] == "-" and arg[1:2] != "-" and arg[1:].isalpha() and set(arg[1:]) & set(NO_JOBS_FLAGS)
        ):
            return False
    return True


def _h5_problem(fd: int, size: int) -> str | None:
    head = os.pread(fd, 64, 0)
    if not head.startswith(H5_SIGNATURE):
        return "not an HDF5 file (no HDF5 signature at its start)"
    version = head[8] if len(head) > 8 else -1
    if version in (0, 1):
        width, base_at = head[13], 24 if version == 0 else 28
    elif version in (2, 3):
        width, base_at = head[9], 12
    else:
        return f"an HDF5 superblock of unknown version {version}"
    eof_at = base_at + 2 * width
    if len(head) < eof_at + width:
        return f"truncated: {size} bytes end inside the HDF5 superblock"
    base = int.from_bytes(head[base_at : base_at + width], "little")
    eof = base + int.from_bytes(head[eof_at : eof_at + width], "little")
    if size < eof:
        return f"truncated: {size} bytes, its HDF5 superblock says {eof}"
    return None


def _checkpoint_problem(fd: int, size: int) -> str | None:
    n = int.from_bytes(os.pread(fd, 8, 0), "little")
    if size < 8 or n > MAX_HEADER or size < 8 + n:
        return f"truncated: {size} bytes end inside the safetensors header"
    try:
        header = json.loads(os.pread(fd, n, 8))
        end = 8 + n + max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    except (ValueError, KeyError, TypeError, IndexError) as err:
        return f"an unreadable safetensors header ({err})"
    if size != end:
        return f"truncated: {size} bytes, its safetensors header says {end}"
    return None


CHECKS: dict[str, Callable[[int, int], str | None]] = {".h5": _h5_problem, ".safetensors": _checkpoint_problem}


def file_problem(path: Path, entry: os.DirEntry | None = None) -> str | None:
    """Why an existing output file cannot be used (None: it looks whole). ``entry``: its
    ``os.scandir`` entry, which saves a stat."""
    try:
        if entry.is_dir() if entry is not None else path.is_dir():
            return "a folder where a file is expected"
        size = entry.stat().st_size if entry is not None else path.stat().st_size
        if size == 0:
            return "empty (0 bytes)"
        fd = os.open(path, os.O_RDONLY)
    except OSError as err:
        return f"unreadable ({err.strerror})"
    try:
        return CHECKS[path.suffix](fd, size)
    except OSError as err:
        return f"unreadable ({err.strerror})"
    finally:
        os.close(fd)


def find_broken(files: Iterable[Path], folders: Iterable[Path] = ()) -> list[Broken]:
    """The broken ones among ``files`` that exist, and the ``folders`` (folder outputs) holding a
    broken file. Each folder is listed once, so a missing file costs no stat."""
    by_folder: dict[Path, set[str]] = {}
    for path in files:
        by_folder.setdefault(path.parent, set()).add(path.name)
    broken = []
    for folder, names in by_folder.items():
        try:
            entries = [e for e in os.scandir(folder) if e.name in names]
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if reason := file_problem(folder / entry.name, entry):
                broken.append(Broken(folder / entry.name, reason))
    for folder in folders:
        if folder.is_dir():
            inside = find_broken([p for p in folder.iterdir() if p.suffix in CHECKS])
            if inside:
                broken.append(Broken(folder, f"holds {inside[0].path.name}: {inside[0].reason}"))
    return broken


def move_aside(path: Path, now: float | None = None) -> Path:
    """Rename ``path`` to ``<name>.broken-<UTC time>`` in its folder (never over another file)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    target, n = path.with_name(f"{path.name}.broken-{stamp}"), 1
    while target.exists():
        target, n = path.with_name(f"{path.name}.broken-{stamp}-{n}"), n + 1
    path.rename(target)
    return target


def check_outputs(files: Iterable[Path], folders: Iterable[Path] = (), move: bool = True, log=None) -> list[Broken]:
    """Find broken outputs; with ``move``, move each aside. Prints one line per file (to
    ``log``, default stderr). Returns what was found."""
    log = log or (lambda line: print(line, file=sys.stderr))
    broken = find_broken(files, folders)
    for b in broken:
        if move:
            log(f"integrity: {b.path}: {b.reason}; moved aside to {move_aside(b.path).name}: this run regenerates it")
        else:
            log(
                f"integrity: {b.path}: {b.reason}; a run (not this one) moves it aside to {b.path.name}.broken-<UTC time> and regenerates it"
            )
    return broken


def planned_outputs(runs: list) -> tuple[list[Path], list[Path]]:
    """The files (and, for early stopping, folders) of every variant of ``runs`` (resolved
    configs) that training, the forward pass and the analyzers write: checkpoints, history.h5,
    the caches of the run's probe, the artifacts."""
    from tdw.layout import FamilyLayout

    files: list[Path] = []
    folders: list[Path] = []
    for wb in runs:
        for v in wb.variants:
            layout = FamilyLayout(wb.results, wb.family.name).variant(v.name)
            files.append(layout.history)
            files += [layout.artifact(wb.probe, a) for a in wb.analyzers]
            if not v.is_legacy and (v.train or wb.train).early_stop is not None:
                folders += [layout.folder("checkpoints"), layout.cache_dir(wb.probe)]
                continue
            files += [layout.checkpoint(e) for e in v.epochs]
            files += [layout.cache(wb.probe, e) for e in v.epochs]
    return files, folders


def check_workflow(runs: list, argv: list[str] | None = None) -> list[Broken]:
    """What rules/common.smk calls: the planned outputs of ``runs`` checked, and moved aside
    when the command line runs jobs (``runs_jobs``)."""
    files, folders = planned_outputs(runs)
    return check_outputs(files, folders, move=runs_jobs(sys.argv if argv is None else argv))
