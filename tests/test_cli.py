"""``python -m tdw COMMAND``: each command runs its module with the given arguments."""

import subprocess
import sys

from tdw.__main__ import COMMANDS


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=300)


def test_help_lists_every_command() -> None:
    out = run("tdw", "--help")
    assert out.returncode == 0
    for name, (module, _) in COMMANDS.items():
        assert f"{name} " in out.stdout and module in out.stdout


def test_unknown_command_is_refused_by_name() -> None:
    out = run("tdw", "tabels")
    assert out.returncode == 2
    assert "unknown command 'tabels'" in out.stderr


def test_tables_through_the_cli_equals_the_module(synthetic_variant, tmp_path) -> None:
    history = synthetic_variant / "history.h5"
    a = run("tdw", "tables", str(history), "--out", str(tmp_path / "a"))
    b = run("tdw.pages.tables", str(history), "--out", str(tmp_path / "b"))
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.csv"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.csv"))
    assert files_a and files_a == files_b
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    again = run("tdw", "tables", str(history), "--out", str(tmp_path / "a"))
    assert again.returncode != 0  # an existing output is kept unless --force
