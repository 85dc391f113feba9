"""Progress and logs of long jobs, a ground utility any layer may use: a workflow job's output
goes to its rule's log file (``job_log``), which reports the progress of long loops
(``Progress``) and ends with a ``TIMING`` line (JSON) giving the seconds of useful compute,
for overhead benchmarks."""

from __future__ import annotations

import contextlib
import json
import sys
import time
import traceback
from collections.abc import Iterator

PROGRESS_SECONDS = 5.0  # how often loops over checkpoints or epochs report in a job's log


@contextlib.contextmanager
def job_log(path: str, job: str) -> Iterator[None]:
    t0 = time.perf_counter()
    with open(path, "w") as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
        try:
            yield
        except BaseException:
            traceback.print_exc()  # into the rule's log, not only the executor's
            raise
        print("TIMING " + json.dumps({"job": job, "compute_s": round(time.perf_counter() - t0, 4)}), flush=True)


def duration(seconds: float) -> str:
    """A short human duration: '42 s', '12.5 min', '3.1 h'."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def _rate(per_s: float) -> str:
    return f"{per_s:.0f}" if per_s >= 100 else f"{per_s:.3g}"


class Progress:
    """Progress of a loop over ``total`` items, printed to stderr (the job's log) every
    ``every_s`` seconds and at the last item: '[label] <unit> 3 of 40, 2.1 <unit>s/s, 18 s
    left'. ``first``: the number shown for the first item (training counts
    epochs from the one it resumes at)."""

    def __init__(self, total: int, label: str, unit: str = "checkpoint", every_s: float | None = None, first: int = 1):
        self.total, self.label, self.unit, self.first = total, label, unit, first
        self.every_s = PROGRESS_SECONDS if every_s is None else every_s
        self.done = 0
        self.t0 = self.last = time.perf_counter()

    def step(self, detail: str = "") -> None:
        """One item done; ``detail`` (e.g. the current losses) goes into the line."""
        self.done += 1
        now = time.perf_counter()
        if now - self.last < self.every_s and self.done < self.total:
            return
        self.last = now
        rate = self.done / max(now - self.t0, 1e-9)
        left = (self.total - self.done) / rate
        where = f"{self.unit} {self.first + self.done - 1} of {self.first + self.total - 1}"
        print(
            f"[{self.label}] {where}{', ' + detail if detail else ''}, {_rate(rate)} {self.unit}s/s, {duration(left)} left",
            file=sys.stderr,
            flush=True,
        )
