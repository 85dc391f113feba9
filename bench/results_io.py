"""Bench result files: each bench script's `--json NAME` writes bench/results/NAME.json, which
bench/render.py turns into docs/BENCHMARKS.md.

A result file holds one table and where it came from:

    {"name": "train_speed", "title": "Training speed: the paper's model",
     "command": ".venv/bin/python bench/bench_train.py --epochs 100",
     "commit": "6c64907", "date": "2026-12-07", "machine": {"cores": 2, "load": "1.4"},
     "columns": ["path", "ms / epoch"], "rows": [["fast path", 50.9], ["hooked forward", 209.3]],
     "notes": "what was measured, the target, anything unusual"}

`rows` are lists matching `columns` (numbers as numbers, text as text, null for not
measured); `machine.cores` is required, `machine.load` (the load average while it ran, as
text) and other machine keys are shown where present.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
REQUIRED = ("name", "title", "command", "commit", "date", "machine", "columns", "rows", "notes")

sys.path.insert(0, str(ROOT / "src"))

from tdw.io.atomic import write_json  # noqa: E402


def add_json_arg(ap: argparse.ArgumentParser, default: str) -> None:
    """The `--json NAME` option every bench script shares."""
    ap.add_argument(
        "--json", metavar="NAME", nargs="?", const=default, help=f"write bench/results/NAME.json (default name: {default})"
    )


def this_command(argv: list[str] | None = None) -> str:
    """The command line that ran this script, `--json` left out, as README writes it."""
    argv = list(sys.argv if argv is None else argv)
    kept, skip = [], False
    for arg in argv[1:]:
        if skip:
            skip = False
            if not arg.startswith("-"):
                continue
        if arg == "--json":
            skip = True
            continue
        if arg.startswith("--json="):
            continue
        kept.append(arg)
    script = os.path.relpath(Path(argv[0]).resolve(), ROOT)
    return shlex.join([".venv/bin/python", script, *kept])


def commit() -> str:
    """The short commit of the checkout measured (with "+dirty" when it has uncommitted changes)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True)
    return head + ("+dirty" if dirty.stdout.strip() else "")


# The checkout as the bench started: the code measured, even if the tree changes while it runs.
COMMIT_AT_START = commit()


def machine() -> dict:
    """Cores and the load average (1 and 15 minutes) when the result is written."""
    one, _, fifteen = os.getloadavg()
    return {"cores": os.cpu_count(), "load": f"{one:.1f} (15 min: {fifteen:.1f})"}


def write_result(
    name: str, title: str, columns: list[str], rows: list[list], notes: str, results: Path = RESULTS, **extra
) -> Path:
    """Write bench/results/NAME.json (atomically) and return its path."""
    for i, row in enumerate(rows):
        if len(row) != len(columns):
            raise ValueError(f"result {name!r}: row {i} has {len(row)} values for {len(columns)} columns {columns}")
    result = {
        "name": name,
        "title": title,
        "command": this_command(),
        "commit": COMMIT_AT_START,
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "columns": columns,
        "rows": rows,
        "notes": notes,
    } | extra
    path = Path(results) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, result)
    print(f"wrote {path}", file=sys.stderr)
    return path


def flat(result: dict, prefix: str = "") -> dict:
    """A nested result as one level of keys (`parts.backward`), lists of numbers as text."""
    out = {}
    for key, value in result.items():
        if isinstance(value, dict):
            out |= flat(value, f"{prefix}{key}.")
        elif isinstance(value, (list, tuple)):
            out[prefix + key] = ", ".join(str(v) for v in value)
        else:
            out[prefix + key] = value
    return out


def figure_rows(result: dict) -> tuple[list[str], list[list]]:
    """Columns and rows of one result dict: a row per figure."""
    return ["figure", "value"], [[k, v] for k, v in flat(result).items()]


def record_rows(records: list[dict]) -> tuple[list[str], list[list]]:
    """Columns and rows of a list of result dicts: a row per dict, a column per key (in first-seen order)."""
    records = [flat(r) for r in records]
    columns = list(dict.fromkeys(k for r in records for k in r))
    return columns, [[r.get(c) for c in columns] for r in records]
