"""How a job declares a variant's per-checkpoint files without listing them all.

Snakemake 9.27 matches every input path of every job against every output pattern whose
constant prefix it shares, then against each output of the matching rule in turn: with a
train rule of N checkpoint outputs and a forward-pass rule of N cache outputs, a job listing
N inputs costs O(N^2) pattern matches, and each analyzer job of the variant pays it again
(1,001 checkpoints: 22,000 lookups, 11 million matches, 12 s of a 12 s dry run). So the rules
keep one output per checkpoint (any file is a target of its own), and the jobs reading them
declare one file standing for all, declared first so that Snakemake finds it at once: the
variant's metadata.json (which lists the checkpoints) for the checkpoints, the last epoch's
cache for the caches of a probe. Snakemake's own checks then see:

- a job that reruns: its dependents rerun, as before;
- a file changed after the job that wrote it: not seen through the stand-in, so each reading
  job carries ``changed`` as a param: the files newer than the job's last output (Snakemake
  touches a job's outputs in declaration order as it ends), a value that changes when such a
  file appears and stays until the job writing them runs again;
- a missing file: the default target requests the first missing checkpoint and cache of each
  variant once their job has run (a missing output reruns the job that writes them all).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path


def _mtime_ns(path: Path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return None


def newer_than(paths: Iterable[Path], reference: Path) -> list[str]:
    """Names of the existing ``paths`` modified after ``reference`` (none while ``reference``
    does not exist): with ``reference`` the last output of the job writing them all, the files
    changed since that job ended."""
    since = _mtime_ns(reference)
    if since is None:
        return []
    return [Path(p).name for p in paths if (m := _mtime_ns(Path(p))) is not None and m > since]


def latest(*paths: str | os.PathLike) -> Path:
    """The one of ``paths`` modified last (the first when none exists)."""
    return max((Path(p) for p in paths), key=lambda p: _mtime_ns(p) or -1)


def epoch_files(folder: str | os.PathLike, name: Callable[[int], str], epochs: Iterable[int]) -> list[str]:
    """``folder/name(epoch)`` per epoch, as strings (pathlib per file is a third of the rule
    declaration time with 20,000 checkpoints)."""
    base = os.fspath(folder)
    return [os.path.join(base, name(e)) for e in epochs]


def first_missing(paths: Iterable[Path]) -> list[Path]:
    """The first of ``paths`` that does not exist, as a list of one (or none)."""
    return next(([Path(p)] for p in paths if not os.path.exists(p)), [])
