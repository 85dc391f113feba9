"""Family files (``families/<name>/family.json``): reading, ``extends`` (a family states only
what differs from the one it extends), validation, and the resolved ``Family`` with every
analyzer's and figure's parameters complete. Kept per process, read again when a file changes."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from tdw.validation import ConfigError, check_path_name, checked_params, read_json, validate
from tdw.workbench import Family

FAMILIES_DIR = Path(__file__).resolve().parents[2] / "families"  # the checkout's family declarations


def merge(base: dict, over: dict) -> dict:
    """``over`` laid on ``base`` (the ``extends`` rule): mappings merge key by key, a key set
    to null is removed, anything else (lists included) replaces the base's value."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path), st.st_mtime_ns, st.st_size


def _read_chain(name: str, families_dir: str) -> list[tuple[Path, dict, tuple]]:
    """The family file and the files it extends, nearest first: (path, contents, stamp)."""
    chain: list[tuple[Path, dict, tuple]] = []
    check_path_name(name, f"families {families_dir}", "family name")
    while True:
        path = Path(families_dir) / name / "family.json"
        if not path.exists():
            known = sorted(d.name for d in Path(families_dir).iterdir() if (d / "family.json").exists())
            what = f"{chain[-1][0]}: key 'extends': unknown family {name!r}" if chain else f"family {name!r}"
            raise ConfigError(f"{what}: {path} not found; known families: {', '.join(known)}")
        stamp = _stamp(path)  # before reading: a file changed meanwhile is read again next time
        spec = read_json(path)
        if not isinstance(spec, dict) or "name" not in spec:
            raise ConfigError(f"{path}: expected an object with its own 'name' (the folder name, {name!r})")
        chain.append((path, spec, stamp))
        parent = spec.get("extends")
        if parent is None:
            return chain
        if not isinstance(parent, str):
            raise ConfigError(f"{path}: key 'extends': {parent!r} is not a family name")
        check_path_name(parent, f"{path}: key 'extends'", "family name")
        names = [c[0].parent.name for c in chain]
        if parent in names:
            raise ConfigError(f"{path}: key 'extends': a cycle: {' -> '.join([*names, parent])}")
        name = parent


def _origin(chain: list[tuple[Path, dict, tuple]], keys: list) -> str:
    """The nearest file of the chain that states the key path ``keys`` (else the first)."""
    for path, spec, _ in chain:
        node: Any = spec
        for k in keys:
            node = node.get(k) if isinstance(node, dict) else None
            if node is None:
                break
        else:
            return str(path)
    return str(chain[0][0])


def _check_param_overrides(chain: list[tuple[Path, dict, tuple]]) -> None:
    """Each file's ``analyzers.<a>.params`` and ``figures.<f>.params`` against what the
    analyzer or figure declares (an unknown analyzer is left to ``check_family_analyzers``)."""
    from tdw import analyzers, figures

    for path, spec, _ in chain:
        for section, registry, declared in (
            ("analyzers", analyzers.REGISTRY, lambda n: analyzers.get(n).params),
            ("figures", figures.REGISTRY, figures.params),
        ):
            for name, entry in (spec.get(section) or {}).items():
                if isinstance(entry, dict) and isinstance(entry.get("params"), dict) and name in registry:
                    where = f"{path}: key '{section}.{name}.params' ({section[:-1]} {name!r})"
                    # null removes a key when files merge: that parameter takes its default
                    checked_params(declared(name), {k: v for k, v in entry["params"].items() if v is not None}, where)


def _check_task(spec: dict, chain: list[tuple[Path, dict, tuple]]) -> None:
    """The task is one the workbench has, trains with the recipe the task trains with (the
    sequence task, ``tdw.tasks.sequence``: minibatches; the grid tasks, ``tdw.tasks.modular``:
    full batch, or seeded minibatches of the training split) and makes every probe kind declared."""
    from tdw.tasks import sequence
    from tdw.tasks.modular import MINIBATCH, PROBE_KINDS, check_task, minibatch_values

    operation = spec["task"]["operation"]
    recipe = spec.get("training", {}).get("recipe", "full_batch")
    wanted = (sequence.RECIPE,) if operation == sequence.OPERATION else ("full_batch", MINIBATCH)
    if recipe not in wanted:
        raise ConfigError(
            f"{_origin(chain, ['training'])}: key 'training.recipe': {recipe!r}; the {operation!r} task trains with "
            + " or ".join(repr(w) for w in wanted)
        )
    if recipe == MINIBATCH and operation != sequence.OPERATION:
        try:
            minibatch_values(spec["training"])
        except ValueError as err:
            raise ConfigError(f"{_origin(chain, ['training'])}: key 'training': {err}") from err
    if operation == sequence.OPERATION:
        sequence.check_probes(spec, _origin(chain, ["probes"]))
        return
    try:
        check_task(spec["task"])
    except ValueError as err:
        raise ConfigError(f"{_origin(chain, ['task'])}: {err}") from err
    for probe, entry in spec["probes"].items():
        if entry["kind"] not in PROBE_KINDS:
            raise ConfigError(
                f"{_origin(chain, ['probes', probe, 'kind'])}: key 'probes.{probe}.kind': {entry['kind']!r}: "
                f"task {operation!r} makes probes of kind {', '.join(PROBE_KINDS)}"
            )


def _load_family(name: str, families_dir: str) -> tuple[Family, tuple]:
    """The resolved family and the stamps of the files it was read from."""
    from tdw import analyzers, figures

    chain = _read_chain(name, families_dir)
    path = chain[0][0]
    spec: dict = {}
    for _, raw, _ in reversed(chain):
        spec = merge(spec, raw)
    spec.pop("extends", None)
    validate(spec, "family.schema.json", lambda keys: _origin(chain, keys))
    if spec["name"] != name:
        raise ConfigError(f"{path}: key 'name': {spec['name']!r} differs from its folder name {name!r}")
    if spec["default_probe"] not in spec["probes"]:
        raise ConfigError(
            f"{_origin(chain, ['default_probe'])}: key 'default_probe': {spec['default_probe']!r} "
            f"is not one of its probes {sorted(spec['probes'])}"
        )
    _check_task(spec, chain)
    analyzers.check_family_analyzers(spec, _origin(chain, ["analyzers"]), _origin(chain, ["task"]))
    for fig in spec["figures"]:
        if fig not in figures.REGISTRY:
            raise ConfigError(
                f"{_origin(chain, ['figures', fig])}: key 'figures.{fig}': unknown figure; registered: {sorted(figures.REGISTRY)}"
            )
    _check_param_overrides(chain)
    for section, declared in (("analyzers", lambda n: analyzers.get(n).params), ("figures", figures.params)):
        for key, entry in spec[section].items():
            entry["params"] = checked_params(declared(key), entry.get("params", {}), f"{path}: key '{section}.{key}.params'")
    family = Family(name=name, root=Path(families_dir) / name, spec=spec, files=tuple(c[0] for c in chain))
    return family, tuple(c[2] for c in chain)


_FAMILIES: dict[tuple[str, str], tuple[tuple, Family]] = {}


def load_family(name: str, families_dir: str = "families") -> Family:
    """The resolved family ``families_dir/name/family.json`` (see ``Family``). Kept per
    process and read again when the file or a file it extends changed (path, mtime, size),
    so a long-running dashboard sees edits."""
    key = (name, str(families_dir))
    hit = _FAMILIES.get(key)
    if hit is not None:
        try:
            if tuple(_stamp(f) for f in hit[1].files) == hit[0]:
                return hit[1]
        except OSError:
            pass
    family, stamps = _load_family(name, families_dir)
    _FAMILIES[key] = (stamps, family)
    return family


load_family.cache_clear = _FAMILIES.clear  # type: ignore[attr-defined]
