"""What the dashboard does, without the UI: write a validated config from form values (one
list per sweepable knob of the family), run Snakemake on it as a subprocess (streaming its
output), find finished variants and sweep pages, and render a variant's report from its
artifacts with changed visual parameters."""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

from tdw import sweep as sweeps
from tdw.config import FAMILIES_DIR as FAMILIES
from tdw.config import ConfigError, Workbench, load, load_family, resolve
from tdw.io.atomic import link_or_copy, write_text
from tdw.io.variant import read_metadata_json
from tdw.layout import RESULTS, FamilyLayout, VariantLayout, find_variants
from tdw.names import check_name
from tdw.pages.dashboard.runs import RUNS
from tdw.pages.sweep_spec import sweep_names
from tdw.validation import schema

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


def family_spec(family: str):
    """The family ``family`` (``families/<family>/``), its name checked first: a form's family
    field names a folder."""
    return load_family(check_name(family, "family"), str(FAMILIES))


def split_key(key: str) -> tuple[str, str]:
    """A Views tab key ``family/variant`` as (family, variant), both checked as path names."""
    family, sep, variant = str(key).partition("/")
    if not sep:
        raise ConfigError(f"variant {key!r}: expected family/variant, e.g. modadd/p113_seed0")
    return check_name(family, "family"), check_name(variant, "variant")


def knob_names(family: str) -> list[str]:
    """The names the family declares sweepable: the Train tab's list fields."""
    return list(sweeps.sweepable(family_spec(family)))


def p_label(family: str) -> str:
    """The Train tab's label of p: the modulus of a modular task, the vocabulary size of a sequence task."""
    from tdw.tasks import sequence

    return "p (vocabulary size)" if family_spec(family).operation == sequence.OPERATION else "p (modulus)"


def sweep_pages(family: str) -> list[str]:
    """The family's sweep files (``families/<family>/sweeps/<name>.json``, or its parents')."""
    return sweep_names(family_spec(family))


def _item_schema(name: str) -> dict:
    """The config schema's type of one value of sweep list ``name``."""
    config = schema("config.schema.json")
    item = config["properties"]["sweep"]["properties"][name]["items"]
    return config["$defs"][item["$ref"].rsplit("/", 1)[1]] if "$ref" in item else item


HINTS = {
    "integer": "integers separated by commas, e.g. 0, 1, 2",
    "number": "numbers separated by commas, e.g. 0.3, 1, 3e-3",
    "array": "pairs beta1-beta2 separated by commas, e.g. 0.9-0.98, 0.9-0.99",
}


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def parse_knob(name: str, text: str) -> list:
    """Sweep list ``name`` from a form field: comma-separated values, each read as the config
    schema types that list (integers; numbers; pairs of numbers written ``0.9-0.98``, as in
    variant names). The values' ranges are checked by ``tdw.config.resolve``."""
    item = _item_schema(name)
    kind = item.get("type")
    if kind not in HINTS:
        raise ConfigError(f"sweep knob {name!r}: the dashboard cannot read values of type {kind!r}; sweep it in a config file")
    values: list = []
    for part in str(text).replace(",", " ").split():
        try:
            if kind == "integer":
                values.append(int(part))
            elif kind == "number":
                values.append(_number(part))
            else:
                pair = [_number(x) for x in re.split(r"(?<![eE])-", part)]
                if len(pair) != item.get("minItems", 2):
                    raise ValueError(part)
                values.append(pair)
        except ValueError:
            raise ConfigError(f"sweep knob {name!r}: cannot read {part!r}; expected {HINTS[kind]}") from None
    return values


def parse_combinations(text: str, key: str) -> list[dict]:
    """``include`` or ``exclude`` as a config writes them: mappings in YAML flow style,
    ``{weight_decay: 3.0, train_frac: 0.7}, {lr: 0.01}`` (brackets optional)."""
    text = str(text or "").strip()
    if not text:
        return []
    try:
        value = yaml.safe_load(f"[{text}]" if text.startswith("{") else text)
    except yaml.YAMLError as err:
        raise ConfigError(f"sweep {key}: {text!r} is not valid YAML ({getattr(err, 'problem', err)})") from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, dict) and v for v in value):
        raise ConfigError(
            f"sweep {key}: {text!r} is not a list of mappings name: value, e.g. {{weight_decay: 3.0, train_frac: 0.7}}"
        )
    return value


def make_config(
    workdir: Path, name: str, family: str, knobs: dict, checkpoints: str, train: dict, include: str = "", exclude: str = ""
) -> tuple[Path, Workbench]:
    """Form values as a workbench config, resolved as a config file is when the DAG is built
    (``tdw.config.resolve``: errors name the key and value), then written atomically to
    ``<workdir>/dashboard/<name>.yaml``. ``knobs``: sweepable name -> comma-separated values
    (empty: not swept); names the family does not declare sweepable are left out."""
    check_name(name, "config name")
    declared = knob_names(family)
    sweep = {n: parse_knob(n, knobs[n]) for n in declared if str(knobs.get(n) or "").strip()}
    for key, text in (("include", include), ("exclude", exclude)):
        if entries := parse_combinations(text, key):
            sweep[key] = entries
    config = {
        "family": family,
        "results": str(Path(workdir) / RESULTS),
        "sweep": sweep,
        "train": {k: v for k, v in train.items() if v is not None},
        "checkpoints": parse_schedule(checkpoints),
    }
    wb = resolve(config, f"dashboard config {name!r}", str(FAMILIES))
    path = Path(workdir) / "dashboard" / f"{name}.yaml"
    write_text(path, yaml.safe_dump(config, sort_keys=False))
    return path, wb


def launched_config(workdir: Path, name: str) -> Path:
    """The config ``<workdir>/dashboard/<name>.yaml`` the Train tab wrote: ``name`` is a plain
    name (no folder, no ``..``) of a config there, whose resolved path lies in that folder."""
    folder = (Path(workdir) / "dashboard").resolve()
    path = folder / f"{check_name(name, 'config name')}.yaml"
    offered = sorted(p.stem for p in folder.glob("*.yaml"))
    if not path.is_file():
        raise ConfigError(f"config name {name!r}: no config {path.name} in {folder}; launched configs: {offered}")
    if not path.resolve().is_relative_to(folder):
        raise ConfigError(f"config name {name!r}: {path} leads to {path.resolve()}, outside {folder}")
    return path


def targets(config: Path, what: str, sweep: str | None = None) -> list[str]:
    """Snakemake targets: 'train' (checkpoints only), 'sweep' (the sweep page ``sweep`` and
    what it reads), 'reports' (train + analyze + reports, and the sweep page ``sweep`` where
    given) or 'all' (everything, static figures and every sweep page included)."""
    wb = load(config, str(FAMILIES))
    family = FamilyLayout(wb.results, wb.family.name)
    if what == "all":
        return ["all"]
    if what == "train":
        return [str(family.variant(v.name).metadata) for v in wb.variants]
    pages = []
    if sweep is not None or what == "sweep":
        known = sweep_names(wb.family)
        if sweep not in known:
            offered = f"its sweep files are {known}" if known else "it has no sweep files (families/<family>/sweeps/)"
            raise ConfigError(f"{config}: sweep page {sweep!r} is not one of family {wb.family.name}'s: {offered}")
        pages = [str(family.sweep(sweep))]
    if what == "sweep":
        return pages
    return [str(family.variant(v.name).report(r)) for v in wb.variants for r in wb.reports] + pages


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


def run_snakemake(
    workdir: Path, config: Path, what: str, cores: int = 2, sweep: str | None = None, owner: object = None
) -> Iterator[tuple[str, int | None, str]]:
    """Yield (output so far, exit code or None while running, progress so far), at least every
    second. Snakemake runs in its own process group (``runs.RUNS``, under ``owner``): closing the
    generator before the run ends stops the group."""
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    cmd = [snakemake, *targets(config, what, sweep), "--snakefile", str(ROOT / "Snakefile"), "--cores", str(cores)]
    cmd += ["--configfile", str(config)]
    run = RUNS.start(cmd, workdir, owner)
    lines = [f"$ {' '.join(cmd)}"]
    try:
        for _ in run.follow(lines):
            yield "\n".join(lines[-400:]), None, progress(lines)
        yield "\n".join(lines[-400:]), run.wait(), progress(lines)
    finally:
        RUNS.stop(run)


def show_sweep_page(workdir: Path, family: str, sweep: str) -> Path:
    """A snapshot of ``results/<family>/sweeps/<sweep>.html`` under ``<workdir>/dashboard/views/``
    (where the dashboard serves files from), named by its content: a rebuilt page is a new file."""
    if sweep not in sweep_pages(family):
        raise ConfigError(f"sweep page {sweep!r}: family {family} has sweep files {sweep_pages(family)}")
    page = FamilyLayout(Path(workdir) / RESULTS, family).sweep(sweep)
    digest = hashlib.sha256(page.read_bytes()).hexdigest()[:12]
    out = Path(workdir) / "dashboard" / "views" / f"sweep-{family}-{sweep}-{digest}.html"
    if not out.exists():
        link_or_copy(page, out)
    return out


def variants(workdir: Path) -> list[str]:
    """'family/variant' for every variant with a finished training run under the workdir."""
    return [f"{v.family}/{v.variant}" for v in find_variants(Path(workdir) / RESULTS)]


def report_names(family: str) -> list[str]:
    check_name(family, "family")
    return sorted(p.stem for p in (FAMILIES / family / "reports").glob("*.json"))


def reports_for(key: str | None) -> list[str]:
    """The reports a variant ('family/variant') can show: its family's; with no variant
    chosen, those of every family."""
    if key:
        return report_names(split_key(key)[0])
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

    family, variant = split_key(key)
    if report not in report_names(family):
        raise ConfigError(f"report {report!r}: family {family} has reports {report_names(family)}")
    layout = VariantLayout(Path(workdir) / RESULTS, family, variant)
    spec, views = variant_report(layout.dir, family, family_spec(family).spec, FAMILIES, report, overrides)
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

    family, variant = split_key(key)
    if report not in report_names(family):
        raise ConfigError(f"report {report!r}: family {family} has reports {report_names(family)}")
    vdir = VariantLayout(Path(workdir) / RESULTS, family, variant).dir
    spec, _ = variant_report(vdir, family, family_spec(family).spec, FAMILIES, report)
    return {v["figure"]: v["params"] for v in spec["views"]}
