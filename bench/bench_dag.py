"""DAG build time with many checkpoints per variant: dry runs (``snakemake -n``) of one
variant with up to 20,001 checkpoints and of 64 variants x 1,001 checkpoints (family modadd,
p = 5, a checkpoint every epoch), and the no-op rerun of a finished 64 x 1,001 sweep.

Cases (``--cases``):
  dry<N>        1 variant x N+1 checkpoints (epochs 0..N), every analyzer, the default target
  grid_dry      64 variants (seeds 0..63) x 1,001 checkpoints, every analyzer, the default target
  grid_noop     64 variants x 1,001 checkpoints with one analyzer (embedding_frequencies): a
                real run of each variant's artifact (64 train jobs of 1,001 checkpoints; the
                analyzer reads no caches), then the same invocation again (nothing to do);
                figures and reports are left out (a browser per variant adds minutes of work,
                no DAG width). Not with batch_seeds: Snakemake records a job's params once per
                output, and one job of 64 x 1,001 outputs whose params hold 64 schedules
                would write 64,064 records of 0.4 MB

With ``--baseline COMMIT`` every case also runs with that commit's workflow (a clone under
--out), side by side in the same invocation. The result goes to bench/results/dag_scale.json.

    .venv/bin/python bench/bench_dag.py --baseline 6c64907
    .venv/bin/python bench/bench_dag.py --cases dry1000 dry2000 --timeout 120
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_overhead import ANALYZER, PROBE, ROOT, SNAKEMAKE, _write_config  # noqa: E402
from results_io import write_result  # noqa: E402

P = 5
GRID_VARIANTS = 64
GRID_CHECKPOINTS = 1001


def clone(commit: str, out: Path) -> Path:
    """A clone of this repository at ``commit`` (its Snakefile imports its own src)."""
    src = out / f"src_{commit}"
    if not src.exists():
        subprocess.run(["git", "clone", "-q", str(ROOT), str(src)], check=True)
        subprocess.run(["git", "checkout", "-q", commit], cwd=src, check=True)
    return src


def invoke(root: Path, workdir: Path, config: Path, options: list[str], targets: list[str], timeout: float) -> tuple:
    """(wall seconds, output) of one Snakemake invocation with ``root``'s workflow; (None, "") past ``timeout``."""
    cmd = [SNAKEMAKE, "--snakefile", str(root / "Snakefile"), "--directory", str(workdir), "--configfile", str(config)]
    cmd += ["--cores", "2", "--quiet", "rules", *options, "--", *targets]
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, ""
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[-len(targets) - 4 :])} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return seconds, done.stdout + done.stderr


def single_config(workdir: Path, epochs: int) -> Path:
    config = _write_config(workdir / "single.yaml", {"p": [P], "seed": [0]}, epochs + 1)
    return config


def grid_config(workdir: Path, analyzers: list[str] | None = None) -> Path:
    """The 64-seed sweep; with ``analyzers``, only those and no reports."""
    config = _write_config(workdir / "grid.yaml", {"p": [P], "seed": list(range(GRID_VARIANTS))}, GRID_CHECKPOINTS)
    if analyzers:
        text = config.read_text() + f"analyzers: {json.dumps(analyzers)}\nreports: []\n"
        config.write_text(text)
    return config


def artifacts(n: int) -> list[str]:
    return [f"results/modadd/p{P}_seed{s}/artifacts/{PROBE}/{ANALYZER}.h5" for s in range(n)]


def dry(root: Path, workdir: Path, config: Path, timeout: float) -> float | None:
    return invoke(root, workdir, config, ["--dry-run"], [], timeout)[0]


def noop(root: Path, workdir: Path, timeout: float) -> tuple[float | None, float | None]:
    """(full run, no-op rerun) seconds of the 64-variant sweep's artifacts."""
    shutil.rmtree(workdir, ignore_errors=True)
    config = grid_config(workdir, [ANALYZER])
    targets = artifacts(GRID_VARIANTS)
    full, _ = invoke(root, workdir, config, [], targets, timeout)
    again, text = invoke(root, workdir, config, [], targets, timeout)
    if again is not None and "Nothing to be done" not in text:
        raise AssertionError(f"{root}: the rerun had work to do:\n{text[-3000:]}")
    return full, again


def measure(case: str, root: Path, out: Path, timeout: float) -> dict:
    workdir = out / f"{root.name}_{case}"
    if case.startswith("dry") and case[3:].isdigit():
        workdir.mkdir(parents=True, exist_ok=True)
        n = int(case[3:])
        return {"case": f"1 variant x {n + 1:,} checkpoints", "dry": dry(root, workdir, single_config(workdir, n), timeout)}
    if case == "grid_dry":
        workdir.mkdir(parents=True, exist_ok=True)
        label = f"{GRID_VARIANTS} variants x {GRID_CHECKPOINTS:,} checkpoints"
        return {"case": label, "dry": dry(root, workdir, grid_config(workdir), timeout)}
    if case == "grid_noop":
        full, again = noop(root, workdir, timeout)
        shutil.rmtree(workdir / "results", ignore_errors=True)
        label = f"{GRID_VARIANTS} variants x {GRID_CHECKPOINTS:,} checkpoints, one analyzer, artifacts"
        return {"case": label, "full": full, "noop": again}
    raise SystemExit(f"unknown case {case!r}: dry<N>, grid_dry or grid_noop")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=["dry1000", "dry2000", "dry20000", "grid_dry", "grid_noop"])
    parser.add_argument("--baseline", help="a commit to measure side by side (cloned under --out)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per dry run (default %(default)s)")
    parser.add_argument("--run-timeout", type=float, default=3600, help="seconds per real run (default %(default)s)")
    parser.add_argument(
        "--baseline-cases",
        nargs="+",
        default=["dry1000", "dry2000", "dry20000", "grid_dry"],
        help="the cases also measured with --baseline (default: the dry runs; the baseline's real 64-variant "
        "run takes as long, and its DAG build alone longer than the dry-run timeout)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "dag")
    parser.add_argument("--result", type=Path, default=ROOT / "bench" / "results" / "dag_scale.json")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    roots = {"after": ROOT} | ({"before": clone(args.baseline, args.out)} if args.baseline else {})
    rows = []
    for case in args.cases:
        sides = {s: r for s, r in roots.items() if s == "after" or case in args.baseline_cases}
        got = {
            side: measure(case, root, args.out, args.run_timeout if case == "grid_noop" else args.timeout)
            for side, root in sides.items()
        }
        rows.append(got)
        print(json.dumps(got), file=sys.stderr)
    record(args, rows)
    return 0


def record(args: argparse.Namespace, rows: list[dict]) -> None:
    """bench/results/dag_scale.json: a row per case, before and after side by side."""
    sides = ["before", "after"] if args.baseline else ["after"]

    def cell(row: dict, side: str, key: str) -> float | None:
        value = row.get(side, {}).get(key)
        return round(value, 1) if value is not None else None

    columns = ["case"] + [f"{what} {side} (s)" for what in ("dry run", "full run", "no-op rerun") for side in sides]
    table = [[row["after"]["case"]] + [cell(row, side, key) for key in ("dry", "full", "noop") for side in sides] for row in rows]
    notes = (
        f"modadd, p = {P}, a checkpoint every epoch. Dry runs: the default target with every analyzer; "
        f"null: not done within {args.timeout:.0f} s, or not measured. The no-op rerun repeats a finished run of "
        f"the sweep's {ANALYZER} artifacts (64 train jobs). Before: commit {args.baseline}; after: the commit recorded."
    )
    write_result("dag_scale", "DAG build with many checkpoints", columns, table, notes, results=args.result.parent)


if __name__ == "__main__":
    sys.exit(main())
