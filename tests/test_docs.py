"""The documents stay true: every shell command README.md and the guides under docs/ show is run
by a test (REGISTRY says which), the commands of the record pages (docs/RESULTS.md,
docs/BENCHMARKS.md) name configs that validate and bench options that exist, and
docs/BENCHMARKS.md is what bench/render.py makes of bench/results/*.json."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tdw.config import resolve_runs
from tdw.io import storage

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ("BENCHMARKS.md", "RESULTS.md")  # pages of measured results, whose commands take minutes to hours
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
DRY = "tests/test_docs.py::test_default_config_targets_plan"

# Each documented command (normalised: comments dropped, `.venv/bin/` dropped, `a && b` split)
# and what runs it: a test ("file::name"), or a file and the text in it that runs the command.
REGISTRY: dict[str, tuple[str, ...]] = {
    "bash scripts/setup.sh": (".ci/run: bash scripts/setup.sh",),
    "python -m pytest -q": (".ci/run: python -m pytest -q",),
    "pip install -r envs/requirements.txt": ("scripts/setup.sh: -r envs/requirements.txt",),
    "snakemake --cores 2": (DRY,),
    "snakemake --cores 2 results/modadd/p113_seed0_frac0.5/reports/default.html": (DRY,),
    "snakemake --cores 2 results/modadd/p113_seed1_frac0.5/reports/default.html": (DRY,),
    "snakemake --cores 2 results/modadd/p113_seed0_frac0.5/figures/embedding_frequencies.png": (DRY,),
    "snakemake --cores 2 results/modadd/compare/default.html": (DRY,),
    "snakemake --cores 2 results/modadd/sweeps/default.html": (DRY,),
    "snakemake --cores 2 --configfile tests/configs/tiny.yaml": (
        "tests/test_report_workflow.py::test_edited_report_file_rebuilds_only_that_report",
    ),
    "snakemake --report report.zip": ("tests/test_report_workflow.py::test_edited_report_file_rebuilds_only_that_report",),
    "snakemake --cores 2 --configfile config/induction.yaml": (
        "tests/test_induction_workflow.py::test_default_config_shows_the_induction_phase_change",
    ),
    "snakemake --unlock": ("tests/test_faults.py::test_sigkill_mid_sweep_then_rerun_equals_uninterrupted",),
    "snakemake --cores N": ("tests/test_faults.py::test_sigkill_mid_sweep_then_rerun_equals_uninterrupted",),
    "snakemake --profile profiles/slurm": ("tests/test_slurm.py::test_sweep_on_slurm_equals_local",),
    "snakemake --profile profiles/slurm --configfile config/paper.yaml": (
        "tests/test_slurm.py::test_sweep_on_slurm_equals_local",
        "tests/test_config.py::test_the_default_and_paper_configs_resolve",
    ),
    "snakemake --profile profiles/slurm --configfile tests/configs/tiny.yaml --slurm-init-seconds-before-status-checks 1 "
    "--seconds-between-status-checks 2": ("tests/test_slurm.py::test_sweep_on_slurm_equals_local",),
    "tests/slurm/start.sh": ("tests/test_slurm.py::test_sweep_on_slurm_equals_local",),
    "pytest -m slurm tests/test_slurm.py": ("tests/test_slurm.py::test_sweep_on_slurm_equals_local",),
    "python -m tdw --help": ("tests/test_cli.py::test_help_lists_every_command",),
    "python -m tdw dashboard": ("tests/test_dashboard_browser.py::test_browse_views_with_the_global_slider",),
    "python -m tdw dashboard [--host 127.0.0.1] [--port 7860] [--workdir .] [--cores 2]": (
        "tests/test_dashboard_browser.py::test_browse_views_with_the_global_slider",
    ),
    "python -m tdw dashboard --host 0.0.0.0 --auth-file logins.txt --allowed-host workstation.lab.example": (
        "tests/test_dashboard_safety.py::test_a_bind_outside_loopback_needs_a_login_before_any_socket_opens",
    ),
    "python -m tdw tables results/modadd/p113_seed0_frac0.5/artifacts/full/dimensionality.h5 --out tables": (
        "tests/test_cli.py::test_tables_through_the_cli_equals_the_module",
    ),
    "python -m tdw tables results/modadd/p113_seed0_frac0.5/history.h5 --out tables --format json": (
        "tests/test_cli.py::test_tables_through_the_cli_equals_the_module",
    ),
    "python -m tdw storage results/modadd": ("tests/test_storage.py::test_hard_linked_checkpoints_count_once",),
    "python -m tdw storage results/modadd --json /tmp/usage.json": ("tests/test_docs.py::test_storage_writes_its_json",),
    "python -m tdw export results/modadd/p113_seed0_frac0.5 --report default --out share/p113_seed0_frac0.5": (
        "tests/test_export.py::test_bundle_has_every_view_as_images",
    ),
    "python -m tdw llc-calibrate results/modadd/p113_seed0_frac0.5 --epoch 600 --eps 1e-5,3e-5,1e-4 --nbeta n,batch": (
        "tests/test_llc.py::test_calibrate_command_writes_the_grid",
    ),
}

FENCE = re.compile(r"^\s*```(\w*)\s*$")
HIDDEN = re.compile(r"^ {4}(\.venv/bin/|python |snakemake |pytest |bash )")


def guides() -> list[Path]:
    return [ROOT / "README.md", *(p for p in sorted((ROOT / "docs").glob("*.md")) if p.name not in RECORDS)]


def blocks(text: str, langs: tuple[str, ...]) -> list[list[str]]:
    """The lines of every fenced block whose language is one of ``langs``."""
    out, lang, buf = [], None, []
    for line in text.splitlines():
        m = FENCE.match(line)
        if m and lang is None:
            lang, buf = m[1], []
        elif m and not m[1]:
            if lang in langs:
                out.append(textwrap.dedent("\n".join(buf)).splitlines())
            lang = None
        elif lang is not None:
            buf.append(line)
    return out


def commands(text: str, langs: tuple[str, ...] = ("bash", "sh", "shell", "console")) -> list[str]:
    """Every command of the shell blocks, normalised as REGISTRY's keys are."""
    found = []
    for block in blocks(text, langs):
        for line in "\n".join(block).replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                found += [re.sub(r"^\.venv/bin/", "", " ".join(part.split())) for part in line.split(" && ")]
    return found


def documented() -> dict[str, list[str]]:
    """Each documented command and the files that show it."""
    shown: dict[str, list[str]] = {}
    for path in guides():
        for command in commands(path.read_text()):
            shown.setdefault(command, []).append(path.name)
    return shown


def test_every_documented_command_is_run_by_a_test():
    missing = [f"{', '.join(files)}: {cmd!r}" for cmd, files in documented().items() if cmd not in REGISTRY]
    assert not missing, "documented commands that no REGISTRY entry says a test runs:\n" + "\n".join(missing)


def test_every_registry_entry_is_documented_and_names_a_real_runner():
    shown = documented()
    stale = [cmd for cmd in REGISTRY if cmd not in shown]
    assert not stale, f"REGISTRY entries that no document shows: {stale}"
    broken = []
    for cmd, runners in REGISTRY.items():
        for runner in runners:
            if "::" in runner:
                file, name = runner.split("::")
                ok = (ROOT / file).exists() and re.search(rf"^\s*def {name}\(", (ROOT / file).read_text(), re.M)
            else:
                file, text = runner.split(": ", 1)
                ok = (ROOT / file).exists() and text in (ROOT / file).read_text()
            if not ok:
                broken.append(f"{cmd!r}: {runner}")
    assert not broken, "REGISTRY runners that do not exist:\n" + "\n".join(broken)


def test_no_command_outside_a_shell_block():
    """An indented command line would escape the check above."""
    hidden = []
    for path in guides():
        inside = False
        for n, line in enumerate(path.read_text().splitlines(), 1):
            inside = inside != bool(FENCE.match(line))
            if not inside and HIDDEN.match(line):
                hidden.append(f"{path.name}:{n}: {line.strip()}")
    assert not hidden, "commands outside a ```bash block:\n" + "\n".join(hidden)


def test_default_config_targets_plan(tmp_path):
    """The targets README and the guides build from the default config, in one dry run."""
    targets = sorted(
        {word for cmd, runners in REGISTRY.items() if DRY in runners for word in cmd.split() if word.startswith("results/")}
    )
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path), "-n", "--cores", "2", *targets]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for target in targets:
        assert target in proc.stdout, f"{target} is not planned: {proc.stdout[-2000:]}"


def test_storage_writes_its_json(tmp_path):
    family = tmp_path / "results" / "modadd"
    (family / "p13_seed0" / "checkpoints").mkdir(parents=True)
    (family / "p13_seed0" / "checkpoints" / "checkpoint_epoch_00000.safetensors").write_bytes(b"x" * 1000)
    (family / "p13_seed0" / "metadata.json").write_text("{}")
    out = tmp_path / "usage.json"
    assert storage.main([str(family), "--json", str(out)]) == 0
    usage = json.loads(out.read_text())
    assert "p13_seed0" in json.dumps(usage)


def test_readme_configs_resolve():
    """The README's config examples are whole configs the workflow accepts."""
    configs = ["\n".join(b) for b in blocks((ROOT / "README.md").read_text(), ("yaml",)) if b and b[0].startswith("family:")]
    assert configs
    for text in configs:
        (workbench,) = resolve_runs(yaml.safe_load(text), "README.md", str(ROOT / "families"))
        assert workbench.variants


# -- the record pages --------------------------------------------------------------------


def record_commands(name: str) -> list[str]:
    return commands((ROOT / "docs" / name).read_text(), langs=("text",))


@pytest.mark.parametrize("page", RECORDS)
def test_record_commands_name_real_configs_and_options(page):
    """Each bench command's script and options exist; each config a run names validates."""
    checked, problems = 0, []
    for cmd in record_commands(page):
        words = [w for w in shlex.split(cmd) if "=" not in w or w.startswith("-")]
        scripts = [w for w in words if w.startswith("bench/") and w.endswith(".py")]
        for script in scripts:
            source = (ROOT / script).read_text() if (ROOT / script).exists() else ""
            given = {w.split("=")[0] for w in words if w.startswith("--")} - {"--json"}
            unknown = [f for f in given if f'"{f}"' not in source]
            if not source or unknown:
                problems.append(f"{page}: {cmd!r}: {script} {'is missing' if not source else f'has no option {unknown}'}")
            checked += 1
        for i, word in enumerate(words):
            if word == "--configfile" and not words[i + 1].startswith("/tmp"):
                path = ROOT / words[i + 1]
                try:
                    resolve_runs(yaml.safe_load(path.read_text()), str(path), str(ROOT / "families"))
                except (OSError, ValueError) as err:
                    problems.append(f"{page}: {cmd!r}: {err}")
                checked += 1
    assert checked and not problems, "\n".join(problems)


def load_renderer():
    spec = importlib.util.spec_from_file_location("bench_render", ROOT / "bench" / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmarks_doc_is_rendered_from_the_result_files():
    render = load_renderer()
    diff = render.first_difference(render.render(), (ROOT / "docs" / "BENCHMARKS.md").read_text())
    assert diff is None, f"docs/BENCHMARKS.md differs from bench/results/*.json ({diff}); run .venv/bin/python bench/render.py"


def test_every_result_file_is_in_the_document():
    render = load_renderer()
    text = (ROOT / "docs" / "BENCHMARKS.md").read_text()
    for name, result in render.load_results().items():
        assert f"### {result['title']}" in text, name
        assert f"Commit `{result['commit']}`, {result['date']}, {result['machine']['cores']} cores" in text, name


def test_a_changed_number_is_named_by_its_line(tmp_path):
    render = load_renderer()
    results = tmp_path / "results"
    results.mkdir()
    for path in (ROOT / "bench" / "results").glob("*.json"):
        (results / path.name).write_text(path.read_text())
    data = json.loads((results / "train_speed.json").read_text())
    data["rows"][0][1] = 99.9
    (results / "train_speed.json").write_text(json.dumps(data))
    diff = render.first_difference(render.render(results), (ROOT / "docs" / "BENCHMARKS.md").read_text())
    assert diff is not None and "| 99.9 |" in diff and diff.startswith("line ")


def test_a_result_file_without_its_keys_is_refused(tmp_path):
    render = load_renderer()
    (tmp_path / "x.json").write_text(json.dumps({"name": "x", "title": "t"}))
    with pytest.raises(ValueError, match=r"x\.json: missing keys \['command', 'commit', 'date', 'machine', 'columns'"):
        render.load_results(tmp_path)
    (tmp_path / "x.json").write_text(
        json.dumps(
            {"name": "y", "title": "t", "command": "c", "commit": "c", "date": "d", "machine": {"cores": 2}}
            | {"columns": ["a"], "rows": [], "notes": ""}
        )
    )
    with pytest.raises(ValueError, match=r"x\.json: key 'name' is 'y', expected the file's name 'x'"):
        render.load_results(tmp_path)


def test_commands_are_read_as_the_registry_writes_them():
    text = "```bash\n.venv/bin/snakemake --cores 2 \\\n  --configfile a.yaml   # a comment\n# only a comment\nbash x.sh && pytest -q\n```\n"
    assert commands(text) == ["snakemake --cores 2 --configfile a.yaml", "bash x.sh", "pytest -q"]
    assert commands("```yaml\nsnakemake: no\n```\n") == []


def test_a_bench_result_written_by_results_io_renders(tmp_path, monkeypatch):
    """What a bench script's --json writes is what the renderer reads, with the command it ran."""
    spec = importlib.util.spec_from_file_location("results_io", ROOT / "bench" / "results_io.py")
    results_io = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(results_io)
    argv = [str(ROOT / "bench" / "bench_cache.py"), "--repeats", "2", "--json", "cache_probe"]
    monkeypatch.setattr(sys, "argv", argv)
    columns, rows = results_io.figure_rows({"cache_mb": 5.96, "per_checkpoint_s": [0.3, 0.4]})
    path = results_io.write_result("cache_probe", "A probe", columns, rows, "notes", results=tmp_path)
    (result,) = load_renderer().load_results(tmp_path).values()
    assert path == tmp_path / "cache_probe.json"
    assert result["command"] == ".venv/bin/python bench/bench_cache.py --repeats 2"
    assert result["rows"] == [["cache_mb", 5.96], ["per_checkpoint_s", "0.3, 0.4"]]
    assert result["machine"]["cores"] >= 1 and result["commit"]
    assert "| cache_mb | 5.96 |" in load_renderer().render(tmp_path)


def test_every_test_the_faults_table_names_exists():
    """docs/FAULTS.md's table names the tests that show each fault is caught: each
    ``tests/<file>.py::<test>`` (and each ``::<test>`` after it, in the same file) exists."""
    text = (ROOT / "docs" / "FAULTS.md").read_text()
    named = 0
    for row in (line for line in text.splitlines() if line.startswith("| ") and "tests/" in line):
        current = None
        for path, test in re.findall(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`", row):
            if path:
                current = ROOT / path
                assert current.is_file(), f"docs/FAULTS.md names {path}, which does not exist"
            if test:
                assert current is not None, f"docs/FAULTS.md: ::{test} with no file before it"
                assert re.search(rf"^\s*def {test}\(", current.read_text(), re.M), (
                    f"docs/FAULTS.md: {current.name}::{test} not found"
                )
                named += 1
    assert named >= 20
