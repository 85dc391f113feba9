"""The runs the dashboard launches: each in its own process group (Snakemake and every job it
starts), its output read by a thread so a follower can stop between lines, stopped as a group
(SIGTERM, then SIGKILL after a grace period) and always reaped, by owner (the browser session
and tab that launched it) or all at once when the dashboard shuts down."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

GRACE_S = 5.0  # how long a run has to stop after SIGTERM before its group gets SIGKILL
TICK_S = 1.0  # a follower hears from its run at least this often, output or not


class Run:
    """One launched command, the leader of its own process group (``pgid == pid``)."""

    def __init__(self, cmd: list[str], cwd: str | os.PathLike, owner: object = None):
        self.owner = owner
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True
        )
        self.pgid = self.proc.pid
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, name=f"run-{self.pgid}-output", daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None  # stdout=PIPE
        for line in self.proc.stdout:
            self._lines.put(line.rstrip())
        self.proc.stdout.close()
        self._lines.put(None)

    def follow(self, lines: list[str], tick: float = TICK_S) -> Iterator[list[str]]:
        """Append the run's output to ``lines`` as it comes, yielding ``lines`` after new output
        and at least every ``tick`` seconds, until the output ends."""
        while True:
            try:
                line = self._lines.get(timeout=tick)
            except queue.Empty:
                yield lines
                continue
            if line is None:
                return
            lines.append(line)
            while not self._lines.empty() and (line := self._lines.get()) is not None:
                lines.append(line)
            yield lines
            if line is None:
                return

    def wait(self) -> int:
        """The exit code, once the run has ended (the leader reaped)."""
        return self.proc.wait()

    def stop(self, grace: float = GRACE_S) -> int:
        """Stop the whole process group: SIGTERM, then SIGKILL for whatever is left after
        ``grace`` seconds (or what outlived its leader); the leader is reaped either way."""
        if self.proc.poll() is None:
            _signal_group(self.pgid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                _signal_group(self.pgid, signal.SIGKILL)  # the leader, unreaped, still holds the group id
                self.proc.wait()
        # Jobs that outlived their leader keep the group id alive, so it names them and nothing else.
        _signal_group(self.pgid, signal.SIGKILL)
        return self.proc.returncode


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass  # the group has no process left


class Runs:
    """The dashboard's launched runs, by owner."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: set[Run] = set()

    def start(self, cmd: list[str], cwd: str | os.PathLike, owner: object = None) -> Run:
        run = Run(cmd, Path(cwd), owner)
        with self._lock:
            self._runs.add(run)
        return run

    def stop(self, run: Run, grace: float = GRACE_S) -> int:
        try:
            return run.stop(grace)
        finally:
            with self._lock:
                self._runs.discard(run)

    def running(self, owner: object = None) -> list[Run]:
        """The runs not yet stopped or ended: of ``owner``, or all with no owner given."""
        with self._lock:
            return [r for r in self._runs if owner is None or r.owner == owner]

    def stop_owner(self, owner: object, grace: float = GRACE_S) -> int:
        """Stop every run of ``owner``; how many there were."""
        runs = self.running(owner)
        for run in runs:
            self.stop(run, grace)
        return len(runs)

    def stop_all(self, grace: float = GRACE_S) -> int:
        """Stop every run (the dashboard is shutting down): SIGTERM to every group at once,
        then each is waited for."""
        runs = self.running()
        for run in runs:
            if run.proc.poll() is None:
                _signal_group(run.pgid, signal.SIGTERM)
        for run in runs:
            self.stop(run, grace)
        return len(runs)


RUNS = Runs()  # the runs of this dashboard process
