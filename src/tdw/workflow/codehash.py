"""Content hashes of the code a workflow rule runs: its script plus every workbench module
that script imports, transitively (found by reading import statements).

Snakemake tracks a ``script:`` file by mtime and ignores the modules it imports; the
workflow instead passes this hash as a rule parameter, so a checkout that only touches
files reruns nothing while an edit to an imported module reruns exactly its rules.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = "tdw"
SRC = Path(__file__).resolve().parents[1]  # the tdw package


def _module_file(module: str) -> Path | None:
    parts = module.split(".")[1:]
    if not parts:
        return SRC / "__init__.py"
    rel = Path(*parts)
    for candidate in (SRC / rel.with_suffix(".py"), SRC / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == PACKAGE:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    parents = {".".join(m.split(".")[:i]) for m in found for i in range(2, m.count(".") + 1)}
    return found | parents


@functools.cache
def closure(*entries: str) -> tuple[Path, ...]:
    """Files reachable from entry files or ``tdw.*`` module names, sorted."""
    todo = [Path(e) if e.endswith(".py") else _module_file(e) for e in entries]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path is None or path in seen:
            continue
        seen.add(path)
        todo += [_module_file(m) for m in _imports(path)]
    return tuple(sorted(seen))


def code_hash(*entries: str) -> str:
    """sha256 (16 hex digits) over the content of ``closure(*entries)`` and the package's
    data files (schemas, page templates)."""
    h = hashlib.sha256()
    files = list(closure(*entries)) + sorted((SRC / "schemas").glob("*.json")) + sorted((SRC / "templates").glob("*"))
    for path in files:
        h.update(str(path.relative_to(SRC.parent) if path.is_relative_to(SRC.parent) else path.name).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]
