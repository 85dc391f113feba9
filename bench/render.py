"""Render docs/BENCHMARKS.md from the bench result files bench/results/*.json (their format:
bench/results_io.py). Every number in the document comes from one of those files.

    .venv/bin/python bench/render.py            # write docs/BENCHMARKS.md
    .venv/bin/python bench/render.py --check    # exit 1, naming the first differing line, if it is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "BENCHMARKS.md"
REQUIRED = ("name", "title", "command", "commit", "date", "machine", "columns", "rows", "notes")

# The document's sections and the results in each, in order; a result file not listed here
# goes under "Other results".
SECTIONS = [
    (
        "Training",
        [
            "train_speed",
            "train_vs_paper",
            "train_vs_paper_plain",
            "train_epoch_parts",
            "train_parts_tables",
            "train_stacked_seeds",
            "train_stacked_hyper",
            "grokfast_cost",
            "tracking_cost",
        ],
    ),
    ("Forward pass and cache", ["cache_write"]),
    ("The default config's whole pipeline", ["pipeline_default"]),
    ("Analyzers", ["analyzers_400", "cka_essential_400", "curvature_cost", "tables_csv"]),
    ("Views", ["views_synthetic", "views_static_session", "views_real", "views_real_per_view", "render_jobs"]),
    (
        "Workflow overhead",
        [
            "overhead_p113",
            "overhead_p5",
            "overhead_p5_loaded",
            "dag_64",
            "dag_scale",
            "dag_scale_main",
            "overhead_grid_p5",
            "overhead_grid_p59",
            "overhead_grid_p59_dry",
        ],
    ),
    ("The local learning coefficient", ["llc_vs_devinterp", "llc_restricted_cost", "devinterp_grokking"]),
]

HEADER = """# Benchmarks

Speed, memory and overhead of the workbench, each with the command that reproduces it, the
commit measured, the date and the machine. Scientific results of runs (which configs grok,
clock vs pizza, key frequencies, the LLC over training) are in `docs/RESULTS.md`.

This file is generated: every table comes from a file `bench/results/<name>.json` that a
bench script writes (`--json NAME`; the format is in `bench/results_io.py`). After a bench
run, regenerate it with

    .venv/bin/python bench/render.py

and `tests/test_docs.py` fails when this file and the result files disagree. Results marked
"recorded" were measured by the same scripts in earlier sessions and entered from their
output. The development machine has 2 CPU cores shared with other sessions, so its load is
given with each result; where a claim is a ratio, both sides were measured in the same run.
No GPU was lent to the sessions that measured these, so all numbers are CPU. For the day one
is: `bench/bench_gpu.py` trains 1 and 8 stacked p = 113 variants, runs the LLC on one
checkpoint and the forward pass of 100 checkpoints, and writes its table with `--json gpu`.
"""


def load_results(results: Path = RESULTS) -> dict[str, dict]:
    """Every result file, by name, checked for the keys the renderer needs."""
    out = {}
    for path in sorted(Path(results).glob("*.json")):
        data = json.loads(path.read_text())
        missing = [k for k in REQUIRED if k not in data]
        if missing:
            raise ValueError(f"{path}: missing keys {missing} (expected {list(REQUIRED)})")
        if data["name"] != path.stem:
            raise ValueError(f"{path}: key 'name' is {data['name']!r}, expected the file's name {path.stem!r}")
        if "cores" not in data["machine"]:
            raise ValueError(f"{path}: key 'machine' has no 'cores': {data['machine']!r}")
        for i, row in enumerate(data["rows"]):
            if len(row) != len(data["columns"]):
                raise ValueError(f"{path}: key 'rows.{i}' has {len(row)} values, expected {len(data['columns'])}")
        out[path.stem] = data
    return out


def cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(columns: list[str], rows: list[list]) -> list[str]:
    numeric = [
        all(isinstance(r[i], (int, float)) and not isinstance(r[i], bool) for r in rows if r[i] is not None)
        for i in range(len(columns))
    ]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    return lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


def section(result: dict) -> list[str]:
    m = result["machine"]
    where = f"{m['cores']} cores" + "".join(f", {k} {v}" for k, v in m.items() if k != "cores")
    lines = [f"### {result['title']}", "", "```text", *result["command"].splitlines(), "```", ""]
    lines += [f"Commit `{result['commit']}`, {result['date']}, {where}.", ""]
    lines += table(result["columns"], result["rows"]) + [""]
    lines += [f"![{image}]({image})" for image in result.get("images", [])]
    lines += [""] if result.get("images") else []
    return lines + [textwrap.fill(" ".join(result["notes"].split()), width=100, break_on_hyphens=False), ""]


def render(results: Path = RESULTS) -> str:
    found = load_results(results)
    lines = [HEADER]
    listed = set()
    sections = [*SECTIONS, ("Other results", sorted(set(found) - {n for _, names in SECTIONS for n in names}))]
    for heading, names in sections:
        present = [n for n in names if n in found]
        listed.update(present)
        if present:
            lines += [f"## {heading}", ""]
            for name in present:
                lines += section(found[name])
    return "\n".join(lines).rstrip() + "\n"


def first_difference(expected: str, actual: str) -> str | None:
    """None when equal, else the first differing line of the two texts, numbered."""
    a, b = expected.splitlines(), actual.splitlines()
    for n, (x, y) in enumerate(zip(a, b, strict=False), 1):
        if x != y:
            return f"line {n}: rendered {x!r}, file has {y!r}"
    if len(a) != len(b):
        n = min(len(a), len(b)) + 1
        return f"line {n}: rendered has {len(a)} lines, file has {len(b)}"
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with docs/BENCHMARKS.md instead of writing it")
    args = ap.parse_args()
    text = render()
    if args.check:
        diff = first_difference(text, DOC.read_text()) if DOC.exists() else "docs/BENCHMARKS.md does not exist"
        if diff:
            print(f"docs/BENCHMARKS.md is out of date with bench/results/ ({diff}); run .venv/bin/python bench/render.py")
            return 1
        return 0
    sys.path.insert(0, str(ROOT / "src"))
    from tdw.io.atomic import write_text

    write_text(DOC, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
