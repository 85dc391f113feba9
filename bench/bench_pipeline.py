"""Whole-pipeline overhead: wall time of a fresh `snakemake --cores 2` run against the sum of
its jobs' useful compute (the TIMING line each job's log ends with: time inside the package
call, after Python start-up and imports).

    .venv/bin/python bench/bench_pipeline.py [--configfile config/config.yaml] [--cores 2]

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configfile", default=str(ROOT / "config" / "config.yaml"))
    ap.add_argument("--cores", default="2")
    ap.add_argument("--keep", help="working directory to use and keep (default: a temporary one)")
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
    jobs = 0
    for log in work.glob("logs/**/*.log"):
        m = re.search(r"^TIMING (.*)$", log.read_text(), re.M)
        if m:
            rule = log.parent.name
            per_rule[rule] = per_rule.get(rule, 0.0) + json.loads(m[1])["compute_s"]
            jobs += 1
    job_wall = 0.0
    for bench in work.glob("logs/**/*.bench.tsv"):
        job_wall += float(bench.read_text().splitlines()[1].split("\t")[0])
    compute = sum(per_rule.values())
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


if __name__ == "__main__":
    main()
