"""Whole-pipeline overhead: wall time of a fresh `snakemake --cores 2` run against the sum of
its jobs' useful compute (the TIMING line each job's log ends with: time inside the package
call, after Python start-up and imports).

    .venv/bin/python bench/bench_pipeline.py [--configfile config/config.yaml] [--cores 2] [--json pipeline_default]

The run happens in a temporary working directory; the default config is the README's.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from results_io import add_json_arg, write_result  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configfile", default=str(ROOT / "config" / "config.yaml"))
    ap.add_argument("--cores", default="2")
    ap.add_argument("--keep", help="working directory to use and keep (default: a temporary one)")
    add_json_arg(ap, "pipeline_default")
    args = ap.parse_args()
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    work = Path(args.keep or tempfile.mkdtemp(prefix="tdw-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    cmd = [snakemake, "-s", str(ROOT / "Snakefile"), "--configfile", str(Path(args.configfile).resolve()), "--cores", args.cores]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(proc.stderr[-4000:])
    per_rule: dict[str, float] = {}
    jobs_by_rule: dict[str, int] = {}
    jobs = 0
    for log in work.glob("results/logs/**/*.log"):
        m = re.search(r"^TIMING (.*)$", log.read_text(), re.M)
        if m:
            rule = log.parent.name
            per_rule[rule] = per_rule.get(rule, 0.0) + json.loads(m[1])["compute_s"]
            jobs_by_rule[rule] = jobs_by_rule.get(rule, 0) + 1
            jobs += 1
    job_wall = 0.0
    for bench in work.glob("results/logs/**/*.bench.tsv"):
        job_wall += float(bench.read_text().splitlines()[1].split("\t")[0])
    compute = sum(per_rule.values())
    if args.json:
        write_json_result(args.json, args.configfile, wall, compute, per_rule, jobs_by_rule, job_wall)
    print(
        json.dumps(
            {
                "config": str(args.configfile),
                "jobs_with_timing": jobs,
                "wall_s": round(wall, 1),
                "sum_compute_s": round(compute, 1),
                "wall_over_compute": round(wall / compute, 3),
                "compute_by_rule_s": {k: round(v, 1) for k, v in sorted(per_rule.items())},
                "sum_job_wall_s_benchmarked_rules": round(job_wall, 1),
                "workdir": str(work) if args.keep else None,
            },
            indent=1,
        )
    )


def write_json_result(name: str, config: str, wall: float, compute: float, per_rule: dict, jobs: dict, job_wall: float) -> None:
    rows = [
        ["jobs", sum(jobs.values()), ", ".join(f"{rule} {n}" for rule, n in sorted(jobs.items()))],
        ["wall time (s)", round(wall, 1), "the whole snakemake invocation, DAG build included"],
        ["sum of useful compute (s)", round(compute, 1), ", ".join(f"{r} {v:.1f}" for r, v in sorted(per_rule.items()))],
        ["sum of job wall times (s)", round(job_wall, 1), "Snakemake benchmark: files"],
        ["wall / compute", round(wall / compute, 2), "target <= 1.5"],
    ]
    notes = (
        f"A fresh `snakemake --cores 2` run of {Path(config).name} in an empty working directory. Useful compute is the time "
        "each job spends inside the workbench after start-up and imports (the TIMING line that ends every job log)."
    )
    write_result(name, "The default config, from nothing to its reports", ["measure", "value", "detail"], rows, notes)


if __name__ == "__main__":
    main()
