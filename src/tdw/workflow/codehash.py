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


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=4096)
def _imports(path: Path, mtime_ns: int, size: int) -> frozenset[str]:
    """``tdw`` modules a file imports, and their parent packages. ``mtime_ns`` and ``size``
    only key the cache, so an edited file is parsed again."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == PACKAGE:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    parents = {".".join(m.split(".")[:i]) for m in found for i in range(2, m.count(".") + 1)}
    return frozenset(found | parents)


def _walk(entries: tuple[str, ...]) -> dict[Path, tuple[int, int]]:
    """Every file reachable from ``entries``, with the (mtime_ns, size) it was read at."""
    todo = [Path(e) if e.endswith(".py") else _module_file(e) for e in entries]
    seen: dict[Path, tuple[int, int]] = {}
    while todo:
        path = todo.pop()
        if path is None or path in seen:
            continue
        key = _stat(path)
        if key is None:
            raise FileNotFoundError(f"{path}: no such file (reached from {list(entries)})")
        seen[path] = key
        todo += [_module_file(m) for m in _imports(path, *key)]
    return seen


# entries -> (files with the (mtime_ns, size) they were read at, closure); an entry is reused
# only while none of its files changed, so a long-running process (the dashboard) sees edits.
_CLOSURES: dict[tuple[str, ...], tuple[dict[Path, tuple[int, int]], tuple[Path, ...]]] = {}


def closure(*entries: str) -> tuple[Path, ...]:
    """Files reachable from entry files or ``tdw.*`` module names, sorted."""
    hit = _CLOSURES.get(entries)
    if hit is not None and all(_stat(path) == key for path, key in hit[0].items()):
        return hit[1]
    files = _walk(entries)
    _CLOSURES[entries] = (files, tuple(sorted(files)))
    return _CLOSURES[entries][1]


def code_hash(*entries: str) -> str:
    """sha256 (16 hex digits) over the content of ``closure(*entries)`` and the package's
    data files (schemas, page templates)."""
    h = hashlib.sha256()
    files = list(closure(*entries)) + sorted((SRC / "schemas").glob("*.json")) + sorted((SRC / "templates").glob("*"))
    for path in files:
        h.update(str(path.relative_to(SRC.parent) if path.is_relative_to(SRC.parent) else path.name).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]
