"""Workflow overhead: what the DAG, the scheduler and per-job process start-up cost,
for sweeps of n variants x 200 checkpoints: with p = 5 (the default) the work is tiny and
the numbers show the machinery alone; with ``--p 113`` (the paper's modulus) they show its
share in a sweep a researcher would run.

For each sweep size it times a dry run (DAG build), a full run with one core (so that the
wall time is the sum of its parts), and a no-op rerun. The full run's wall time splits into
  compute     the seconds each job spent in workbench code (the TIMING line of its log),
  start-up    each job's wall time (Snakemake's benchmark file) minus its compute: process
              start, imports, reading the job's inputs list,
  scheduling  the rest of the invocation: DAG build, job selection, output checks.
Overhead is (start-up + scheduling) / wall.

    python bench/bench_overhead.py                        # 1, 8, 32 variants; full runs of 1 and 8
    python bench/bench_overhead.py --full 1 8 32 --keep   # also run 32 in full, keep the results
    python bench/bench_overhead.py --p 113 --variants 1 8  # the paper's modulus
    python bench/bench_overhead.py --grid                 # 4 x 4 x 4 sweep (64 variants x 50 checkpoints)
    python bench/bench_overhead.py --grid --full 64       # ... also in full, and the no-op rerun
    python bench/bench_overhead.py --grid --full 64 --p 59 --every 20   # a sweep's size of work: 1,000 epochs each

``--grid`` sweeps weight decay, train fraction and seed (4 values each) at p = 5 with 50
checkpoints per variant: the DAG of a sweep of three parameters (64 train, forward-cache and
analyzer jobs, 3,200 caches).

Results go to bench/out/ (ignored by git); the table and the plot to docs/.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml
from results_io import add_json_arg, record_rows, write_result

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
P = 5
CHECKPOINTS = 200
PROBE, ANALYZER = "full", "embedding_frequencies"


def _write_config(path: Path, sweep: dict, checkpoints: int, every: int = 1) -> Path:
    """A modadd config over ``sweep`` with checkpoints at epochs 0, every, .., (checkpoints - 1) * every."""
    config = {
        "family": "modadd",
        "sweep": sweep,
        "train": {"train_frac": 0.5},
        "checkpoints": [{"from": 0, "to": (checkpoints - 1) * every, "every": every}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def write_sweep(workdir: Path, n: int, p: int) -> Path:
    return _write_config(workdir / "sweep.yaml", {"p": [p], "seed": list(range(n))}, CHECKPOINTS)


GRID = {"weight_decay": [0.1, 0.3, 1.0, 3.0], "train_frac": [0.3, 0.4, 0.5, 0.6]}
GRID_CHECKPOINTS = 50


def write_grid(workdir: Path, p: int, every: int = 1) -> Path:
    """The 4 x 4 x 4 sweep: weight decay x train fraction x seed, a checkpoint every ``every`` epochs."""
    return _write_config(workdir / "grid.yaml", {"p": [p], "seed": [0, 1, 2, 3], **GRID}, GRID_CHECKPOINTS, every)


def config_targets(config: Path) -> list[str]:
    """The artifact and every cache of each variant the config resolves to."""
    sys.path.insert(0, str(ROOT / "src"))
    from tdw.config import load

    wb = load(config, str(ROOT / "families"))
    out = []
    for v in wb.variants:
        base = f"results/modadd/{v.name}"
        out.append(f"{base}/artifacts/{PROBE}/{ANALYZER}.h5")
        out += [f"{base}/cache/{PROBE}/epoch_{e:05d}.h5" for e in v.epochs]
    return out


def targets(n: int, p: int) -> list[str]:
    """Checkpoints, caches and artifacts of every variant: the per-checkpoint part of the
    workflow (figures and reports add one job per variant and figure, no DAG width)."""
    out = []
    for seed in range(n):
        base = f"results/modadd/p{p}_seed{seed}_frac0.5"  # the config's train fraction, not the family's
        out.append(f"{base}/artifacts/{PROBE}/{ANALYZER}.h5")
        out += [f"{base}/cache/{PROBE}/epoch_{e:05d}.h5" for e in range(CHECKPOINTS)]
    return out


def cpu_seconds() -> float:
    """User + system CPU seconds of this process's finished children (load-independent,
    unlike wall time on a shared machine)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def snakemake_cpu(workdir: Path, config: Path, wanted: list[str], *options: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one invocation."""
    before = cpu_seconds()
    wall, _ = snakemake(workdir, config, wanted, *options)
    return wall, cpu_seconds() - before


def snakemake(workdir: Path, config: Path, wanted: list[str], *options: str) -> tuple[float, str]:
    cmd = [SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir), "--configfile", str(config)]
    cmd += ["--set-threads", "train=1", "--cores", "1", *options, "--", *wanted]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"snakemake failed ({' '.join(options)}):\n{done.stderr[-3000:]}")
    return seconds, done.stdout + done.stderr


def job_times(workdir: Path) -> tuple[int, float, float]:
    """(jobs, sum of job wall seconds, sum of compute seconds) from benchmark files and logs."""
    walls = [float(f.read_text().splitlines()[1].split("\t")[0]) for f in workdir.glob("results/logs/modadd/*/*.bench.tsv")]
    compute = 0.0
    for log in workdir.glob("results/logs/modadd/*/*.log"):
        lines = [ln for ln in log.read_text().splitlines() if ln.startswith("TIMING ")]
        compute += json.loads(lines[-1][len("TIMING ") :])["compute_s"]
    return len(walls), sum(walls), compute


def measure(n: int, p: int, full: bool, out: Path, keep: bool, grid: bool = False, every: int = 1) -> dict:
    workdir = out / (f"p{p}_grid" + (f"_every{every}" if every > 1 else "") if grid else f"p{p}_n{n}")
    shutil.rmtree(workdir, ignore_errors=True)
    config = write_grid(workdir, p, every) if grid else write_sweep(workdir, n, p)
    wanted = config_targets(config) if grid else targets(n, p)
    checkpoints = GRID_CHECKPOINTS if grid else CHECKPOINTS
    row: dict = {"p": p, "variants": n, "checkpoints": checkpoints, "every": every, "files": len(wanted) + n * (checkpoints + 3)}
    dry = [snakemake_cpu(workdir, config, wanted, "--dry-run") for _ in range(2)]
    row["dry_run_s"], row["dry_run_cpu_s"] = min(d[0] for d in dry), min(d[1] for d in dry)
    print(f"n={n}: dry run {row['dry_run_s']:.1f} s ({row['dry_run_cpu_s']:.1f} CPU s)", file=sys.stderr)
    if full:
        row["full_run_s"], _ = snakemake(workdir, config, wanted)
        row["jobs"], job_wall, compute = job_times(workdir)
        row["compute_s"] = compute
        row["startup_s"] = job_wall - compute
        row["scheduling_s"] = row["full_run_s"] - job_wall
        row["overhead_share"] = (row["startup_s"] + row["scheduling_s"]) / row["full_run_s"]
        before = cpu_seconds()
        row["noop_rerun_s"], noop = snakemake(workdir, config, wanted)
        row["noop_rerun_cpu_s"] = cpu_seconds() - before
        assert "Nothing to be done" in noop, noop[-2000:]
        print(f"n={n}: full {row['full_run_s']:.1f} s, no-op {row['noop_rerun_s']:.1f} s", file=sys.stderr)
    if not keep:
        shutil.rmtree(workdir / "results", ignore_errors=True)
    return row


def table(rows: list[dict]) -> str:
    head = "| variants x checkpoints | jobs | dry run (s) | full run (s) | compute (s) | start-up (s) | scheduling (s) | overhead | no-op rerun (s) |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:

        def f(key: str, fmt: str = "{:.1f}", r: dict = r) -> str:
            return fmt.format(r[key]) if key in r else "-"

        lines.append(
            f"| {r['variants']} x {r['checkpoints']} | {r.get('jobs', '-')} | {f('dry_run_s')} | {f('full_run_s')} | "
            f"{f('compute_s')} | {f('startup_s')} | {f('scheduling_s')} | {f('overhead_share', '{:.0%}')} | {f('noop_rerun_s')} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("Invocation time", "Full run (1 core): where the wall time goes"))
    names = [f"{r['variants']} x {r['checkpoints']}" for r in rows]
    fig.add_bar(x=names, y=[r["dry_run_s"] for r in rows], name="dry run (DAG build)", row=1, col=1)
    fig.add_bar(x=names, y=[r.get("noop_rerun_s") for r in rows], name="no-op rerun", row=1, col=1)
    full = [r for r in rows if "full_run_s" in r]
    fnames = [f"{r['variants']} x {r['checkpoints']}" for r in full]
    base = [0.0] * len(full)
    for key, label in (("compute_s", "compute"), ("startup_s", "process start-up"), ("scheduling_s", "scheduling")):
        # One offset group with explicit bases: a stacked bar in a grouped layout.
        fig.add_bar(x=fnames, y=[r[key] for r in full], base=base, offsetgroup="full", name=label, row=1, col=2)
        base = [b + r[key] for b, r in zip(base, full, strict=True)]
    fig.update_layout(
        title=f"n variants x {CHECKPOINTS} checkpoints, p = {rows[0]['p']}",
        barmode="group",
        width=1100,
        height=480,
        template="simple_white",
    )
    fig.update_yaxes(title_text="seconds", row=1, col=1)
    fig.update_yaxes(title_text="seconds", row=1, col=2)
    fig.write_image(str(path))


def write_json(name: str | None, rows: list[dict], title: str, default: str) -> None:
    """bench/results/NAME.json with the rows (`--json` without a name: DEFAULT)."""
    if name:
        name = default if name == "overhead" else name
        notes = "Seconds; overhead = (start-up + scheduling) / wall of the full run (--cores 1), where run in full."
        write_result(name, title, *record_rows(rows), notes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--full", type=int, nargs="+", default=[1, 8], help="sweep sizes to also run in full")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    parser.add_argument("--keep", action="store_true", help="keep the results trees under --out")
    parser.add_argument("--p", type=int, default=P, help="the modulus of every variant (default %(default)s)")
    parser.add_argument("--grid", action="store_true", help="the 4 x 4 x 4 sweep (64 variants x 50 checkpoints) only")
    parser.add_argument(
        "--every", type=int, default=1, help="--grid: a checkpoint every N epochs (default %(default)s: 50 epochs)"
    )
    add_json_arg(parser, "overhead")
    args = parser.parse_args()
    if args.grid:
        row = measure(64, args.p, 64 in args.full, args.out, args.keep, grid=True, every=args.every)
        suffix = f"_every{args.every}" if args.every > 1 else ""
        (args.out / f"overhead_p{args.p}_grid{suffix}.json").write_text(json.dumps([row], indent=2) + "\n")
        print(table([row]))
        write_json(args.json, [row], f"The 4 x 4 x 4 sweep at p = {args.p}", f"overhead_grid_p{args.p}")
        return 0
    rows = [measure(n, args.p, n in args.full, args.out, args.keep) for n in args.variants]
    (args.out / f"overhead_p{args.p}.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(table(rows))
    write_json(args.json, rows, f"Workflow overhead at p = {args.p}", f"overhead_p{args.p}")
    plot(rows, args.docs / f"bench_overhead_p{args.p}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
