"""Logging for workflow jobs: output goes to the rule's log file, which ends with a
``TIMING`` line (JSON) giving the seconds of useful compute, for overhead benchmarks."""

from __future__ import annotations

import contextlib
import json
import time
import traceback
from collections.abc import Iterator


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
