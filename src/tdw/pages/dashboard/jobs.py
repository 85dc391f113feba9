"""What the dashboard does, without the UI: write a validated config from form values, run
Snakemake on it as a subprocess (streaming its output), find finished variants, and
render a variant's report from its artifacts with changed visual parameters."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

from tdw.config import FAMILIES_DIR as FAMILIES
from tdw.config import ConfigError, load_family, resolve
from tdw.io.atomic import write_text
from tdw.io.variant import read_metadata_json
from tdw.layout import RESULTS, FamilyLayout, VariantLayout, find_variants

ROOT = FAMILIES.parent  # the workbench checkout (Snakefile, families/)


def parse_ints(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in str(text).replace(",", " ").split()]
    except ValueError as err:
        raise ConfigError(f"{what}: expected integers separated by commas, got {text!r}") from err


def parse_schedule(text: str) -> list:
    """'0-400/50, 450-1200/25, 1500' -> [{from, to, every}, ..., 1500]."""
    items: list = []
    for part in str(text).replace(",", " ").split():
        if "-" in part:
            span, _, every = part.partition("/")
            start, _, stop = span.partition("-")
            try:
                items.append({"from": int(start), "to": int(stop), "every": int(every or 1)})
            except ValueError as err:
                raise ConfigError(f"checkpoints: cannot read {part!r}; write ranges as from-to/every") from err
        else:
            items += parse_ints(part, "checkpoints")
    return items


def make_config(workdir: Path, name: str, family: str, moduli: str, seeds: str, checkpoints: str, train: dict) -> Path:
    """Validate form values as a workbench config and write ``<workdir>/dashboard/<name>.yaml``."""
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ConfigError(f"config name {name!r}: use letters, digits, '_' and '-'")
    config = {
        "family": family,
        "results": str(Path(workdir) / RESULTS),
        "sweep": {"p": parse_ints(moduli, "modulus"), "seed": parse_ints(seeds, "seeds")},
        "train": {k: v for k, v in train.items() if v is not None},
        "checkpoints": parse_schedule(checkpoints),
    }
    resolve(config, f"dashboard config {name!r}", str(FAMILIES))  # raises ConfigError naming the key
    path = Path(workdir) / "dashboard" / f"{name}.yaml"
    write_text(path, yaml.safe_dump(config, sort_keys=False))
    return path


def targets(config: Path, what: str) -> list[str]:
    """Snakemake targets: 'train' (checkpoints only), 'reports' (train + analyze + reports)
    or 'all' (everything, static figures included)."""
    wb = resolve(yaml.safe_load(Path(config).read_text()), str(config), str(FAMILIES))
    family = FamilyLayout(wb.results, wb.family.name)
    if what == "all":
        return ["all"]
    if what == "train":
        return [str(family.variant(v.name).metadata) for v in wb.variants]
    return [str(family.variant(v.name).report(r)) for v in wb.variants for r in wb.reports]


STEPS = re.compile(r"^(\d+) of (\d+) steps \(\d+%\) done")
TOTAL = re.compile(r"^total\s+(\d+)$")
FAILED = re.compile(r"^Error in rule (\S+):")


def progress(lines: list[str]) -> str:
    """What Snakemake's output says so far: 'k of n jobs done', the jobs that failed (rule and
    first output), or that nothing was stale."""
    done = total = None
    failed = []
    for n, line in enumerate(lines):
        if m := STEPS.match(line):
            done, total = int(m[1]), int(m[2])
        elif (m := TOTAL.match(line)) and total is None:
            done, total = 0, int(m[1])
        elif m := FAILED.match(line):
            output = next((ln.split(":", 1)[1].strip() for ln in lines[n + 1 : n + 8] if ln.strip().startswith("output:")), "")
            failed.append(f"{m[1]} ({output})" if output else m[1])
    if total is None:
        return "nothing to be done" if any(ln.startswith("Nothing to be done") for ln in lines) else ""
    text = f"{done} of {total} jobs done"
    return text + (f"; failed: {', '.join(failed)}" if failed else "")


def run_snakemake(workdir: Path, config: Path, what: str, cores: int = 2) -> Iterator[tuple[str, int | None, str]]:
    """Yield (output so far, exit code or None while running, progress so far)."""
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    cmd = [snakemake, *targets(config, what), "--snakefile", str(ROOT / "Snakefile"), "--cores", str(cores)]
    cmd += ["--configfile", str(config)]
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines = [f"$ {' '.join(cmd)}"]
    for line in proc.stdout:
        lines.append(line.rstrip())
        yield "\n".join(lines[-400:]), None, progress(lines)
    yield "\n".join(lines[-400:]), proc.wait(), progress(lines)


def variants(workdir: Path) -> list[str]:
    """'family/variant' for every variant with a finished training run under the workdir."""
    return [f"{v.family}/{v.variant}" for v in find_variants(Path(workdir) / RESULTS)]


def report_names(family: str) -> list[str]:
    return sorted(p.stem for p in (FAMILIES / family / "reports").glob("*.json"))


def reports_for(key: str | None) -> list[str]:
    """The reports a variant ('family/variant') can show: its family's; with no variant
    chosen, those of every family."""
    if key:
        return report_names(key.split("/")[0])
    return sorted({r for d in FAMILIES.iterdir() if (d / "family.json").exists() for r in report_names(d.name)})


def _inputs_stamp(layout: VariantLayout, views: list[dict]) -> list:
    """(file, size, mtime_ns) of everything a report reads: metadata.json and every view's
    input files (a re-run analyzer rewrites its artifact, so its stamp changes)."""
    files = sorted({layout.metadata, *(Path(p) for v in views for p in v["inputs"].values())})
    return [[str(f.relative_to(layout.dir)), st.st_size, st.st_mtime_ns] for f in files for st in (f.stat(),)]


def render_variant_report(workdir: Path, key: str, report: str, overrides: dict) -> Path:
    """The variant's report with per-view parameter ``overrides`` ({figure: {param: value}}),
    written under ``<workdir>/dashboard/views/``, named by what it is made of (spec, every
    file it reads, the report code), so unchanged parameters and files reuse the file, and a
    re-run analyzer or an upgraded workbench does not."""
    from tdw.figures import REGISTRY
    from tdw.pages.report import write_report
    from tdw.pages.report_spec import variant_report
    from tdw.workflow.codehash import code_hash

    family, variant = key.split("/")
    layout = VariantLayout(Path(workdir) / RESULTS, family, variant)
    spec, views = variant_report(layout.dir, family, load_family(family, str(FAMILIES)).spec, FAMILIES, report, overrides)
    stamp = _inputs_stamp(layout, views)
    code = code_hash("tdw.pages.report", "tdw.pages.report_spec", *(REGISTRY[v["figure"]] for v in spec["views"]))
    digest = hashlib.sha256(json.dumps([spec, stamp, code], sort_keys=True).encode()).hexdigest()[:12]
    out = Path(workdir) / "dashboard" / "views" / f"{variant}-{report}-{digest}.html"
    if not out.exists():
        meta = read_metadata_json(layout.metadata)
        write_report(out, spec=spec, variant=variant, family=family, views=views, metadata=meta)
    return out


def view_params(workdir: Path, key: str, report: str) -> dict:
    """The current visual parameters of a report's views, as the editor's starting point."""
    from tdw.pages.report_spec import variant_report

    family, variant = key.split("/")
    vdir = VariantLayout(Path(workdir) / RESULTS, family, variant).dir
    spec, _ = variant_report(vdir, family, load_family(family, str(FAMILIES)).spec, FAMILIES, report)
    return {v["figure"]: v["params"] for v in spec["views"]}
