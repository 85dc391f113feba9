"""The package's shape: the layer order in pyproject.toml holds (``lint-imports``), the import
graph of ``src/tdw`` has no circle and no module takes another's private name (built here from
the code with ``ast``, imports inside functions too), and ``mypy src/tdw`` is clean."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import ROOT

BIN = Path(sys.executable).parent


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, package: str, modules: set[str]) -> list[tuple[str, str | None]]:
    """(module, name) pairs an import statement takes from the package; name None: a module."""
    if isinstance(node, ast.Import):
        return [(a.name, None) for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: from the package ``level - 1`` above this module's
        parent = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*parent, base] if base else parent)
    return [(f"{base}.{a.name}", None) if f"{base}.{a.name}" in modules else (base, a.name) for a in node.names]


def import_graph(src: Path, root: str = "tdw") -> tuple[dict[str, set[str]], list[str]]:
    """The package's modules -> the package modules each imports (anywhere in the file), and
    every private name (``_x``) a module takes from another, as ``"a takes _x from b"``; an
    attribute ``m._x`` of an imported module ``m`` counts as taking it."""
    files = {module_name(p, src): p for p in sorted((src / root).rglob("*.py"))}
    modules = set(files)
    graph: dict[str, set[str]] = {}
    borrowed: list[str] = []
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(), str(path))
        targets, aliases = set(), {}
        for node in ast.walk(tree):
            for module, taken in _imported(node, package, modules):
                if module not in modules:
                    continue
                targets.add(module)
                if taken is not None and taken.startswith("_") and not taken.startswith("__"):
                    borrowed.append(f"{name} takes {taken} from {module}")
                if isinstance(node, ast.ImportFrom) and taken is None:
                    alias = next(a.asname or a.name for a in node.names if module.endswith("." + a.name))
                    aliases[alias] = module
                elif isinstance(node, ast.Import):
                    for a in node.names:
                        if a.asname and a.name == module:
                            aliases[a.asname] = module
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                if node.attr.startswith("_") and not node.attr.startswith("__") and aliases[node.value.id] != name:
                    borrowed.append(f"{name} takes {node.attr} from {aliases[node.value.id]}")
        graph[name] = targets - {name}
    return graph, sorted(set(borrowed))


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            child = next(edges, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_import_graph_has_no_circle():
    graph, _ = import_graph(ROOT / "src")
    assert len(graph) > 100 and "tdw.train.state" in graph["tdw.train.sequence"]
    found = circles(graph)
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_module_takes_another_modules_private_name():
    _, borrowed = import_graph(ROOT / "src")
    assert not borrowed, "private names used across modules: " + "; ".join(borrowed)


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (tmp_path / "pkg" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / rel).write_text(text)
    return tmp_path


def test_the_graph_sees_imports_inside_functions_and_private_attributes(tmp_path):
    """The checks above would catch what they claim: a circle closed by an import inside a
    function, a relative import, and a private name taken as ``module._name``."""
    src = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from pkg.b import public\n",
            "b.py": "def public():\n    from . import c\n    return c._hidden\n",
            "c.py": "def _hidden():\n    from pkg import a\n",
            "d.py": "from pkg.c import _hidden\n",
        },
    )
    graph, borrowed = import_graph(src, "pkg")
    assert graph["pkg.b"] == {"pkg.c"} and graph["pkg.d"] == {"pkg.c"}
    assert circles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]
    assert borrowed == ["pkg.b takes _hidden from pkg.c", "pkg.d takes _hidden from pkg.c"]


def _this_checkout() -> dict[str, str]:
    """The environment of a tool that must import this checkout's ``tdw``."""
    return os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}


def test_the_layers_contract_holds():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")
    assert layers["exhaustive"] and all("ignore_imports" not in c for c in contracts)
    done = subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache"], cwd=ROOT, env=_this_checkout(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Contracts: 1 kept, 0 broken." in done.stdout


def test_mypy_is_clean(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp().parent / "tdw-mypy-cache"  # kept between runs: a warm check takes seconds
    done = subprocess.run(
        [str(BIN / "mypy"), "--cache-dir", str(cache)],
        cwd=ROOT,
        env=_this_checkout(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert done.stdout.startswith("Success: no issues found")
