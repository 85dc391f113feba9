"""Config and family files: strict validation and the resolved view the workflow uses.

Every error names the file, the key and what is expected, and is raised while the DAG is
built, before any job runs.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from tdw.models.architecture import ModelConfig
from tdw.params import ParamError, resolve_params
from tdw.workflow.resources import TRAIN_MEM_MB, check_variant_sizes

__all__ = ["TRAIN_MEM_MB", "ConfigError", "Workbench", "load", "load_family", "resolve"]

FAMILIES_DIR = Path(__file__).resolve().parents[2] / "families"  # the checkout's family declarations


class ConfigError(ValueError):
    """A config or family file that does not describe a valid workbench setup."""


@dataclass(frozen=True)
class TrainConfig:
    """Training hyperparameters; defaults are the paper's mainline."""

    train_frac: float = 0.3
    lr: float = 1e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    warmup_steps: int = 10
    test_loss_every: int = 1

    def to_dict(self) -> dict:
        return asdict(self) | {"betas": list(self.betas)}


@dataclass(frozen=True)
class Variant:
    """One member of a family, fixed by its domain parameters."""

    name: str
    p: int
    seed: int
    train_frac: float
    epochs: tuple[int, ...]  # checkpoint epochs, increasing
    legacy_path: str | None = None
    legacy_test_every: int | None = None  # spacing of a legacy file's test-loss history

    @property
    def is_legacy(self) -> bool:
        return self.legacy_path is not None


@dataclass(frozen=True)
class Family:
    """A resolved family: ``spec`` is its file merged over the families it extends, every
    analyzer's and figure's ``params`` complete (declared defaults, then the files' values);
    ``files``: the family file and its parents', nearest first."""

    name: str
    root: Path
    spec: dict = field(repr=False)
    files: tuple[Path, ...] = ()

    def model_config(self, p: int) -> ModelConfig:
        return ModelConfig(p=p, **self.spec["architecture"])

    @property
    def operation(self) -> str:
        return self.spec["task"]["operation"]


def _schema(name: str) -> dict:
    return json.loads(resources.files("tdw.schemas").joinpath(name).read_text())


def _validate(obj: object, schema_name: str, source: str | Callable[[list], str]) -> None:
    """Check ``obj`` against a schema; ``source`` names the file, or maps a key path to the
    file that states it."""
    validator = jsonschema.Draft202012Validator(_schema(schema_name))
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    err = errors[0]
    path = list(err.absolute_path)
    key = ".".join(str(k) for k in path) or "(top level)"
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed)) if isinstance(err.instance, dict) else []
        where = source(path + extra[:1]) if callable(source) else source
        hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        raise ConfigError(f"{where}: key {key!r}: {err.message}{hint}")
    if err.validator == "oneOf" and err.context:
        err = max(err.context, key=lambda e: len(e.absolute_path))  # the branch that got furthest
        path = list(err.absolute_path)
        key = ".".join(str(k) for k in path)
    expected = err.schema.get("description", "")
    where = source(path) if callable(source) else source
    raise ConfigError(f"{where}: key {key!r}: {err.message}" + (f" (expected: {expected})" if expected else ""))


def is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))


def check_modulus(p: int, source: str, key: str) -> None:
    if p < 3 or not is_prime(p):
        raise ConfigError(f"{source}: key {key!r}: {p} is not a prime >= 3 (the modulus must be prime)")


def expand_schedule(items: list, source: str) -> tuple[int, ...]:
    """Checkpoint epochs from integers and ``{from, to, every}`` ranges (``to`` inclusive when
    on the grid). The result must be non-negative and strictly increasing."""
    epochs: list[int] = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            if item["to"] < item["from"]:
                raise ConfigError(f"{source}: key 'checkpoints.{i}': 'to' ({item['to']}) is before 'from' ({item['from']})")
            epochs += range(item["from"], item["to"] + 1, item["every"])
        else:
            epochs.append(item)
    for i, e in enumerate(epochs):
        if e < 0:
            raise ConfigError(f"{source}: key 'checkpoints': epoch {e} is negative; epochs are >= 0")
        if i and e <= epochs[i - 1]:
            what = "duplicate" if e == epochs[i - 1] else "out of order"
            raise ConfigError(
                f"{source}: key 'checkpoints': epoch {e} is {what} (after {epochs[i - 1]}); "
                "list epochs and ranges in strictly increasing order"
            )
    return tuple(epochs)


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
    while True:
        path = Path(families_dir) / name / "family.json"
        if not path.exists():
            known = sorted(d.name for d in Path(families_dir).iterdir() if (d / "family.json").exists())
            what = f"{chain[-1][0]}: key 'extends': unknown family {name!r}" if chain else f"family {name!r}"
            raise ConfigError(f"{what}: {path} not found; known families: {', '.join(known)}")
        stamp = _stamp(path)  # before reading: a file changed meanwhile is read again next time
        try:
            spec = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}: not valid JSON: {err}") from err
        if not isinstance(spec, dict) or "name" not in spec:
            raise ConfigError(f"{path}: expected an object with its own 'name' (the folder name, {name!r})")
        chain.append((path, spec, stamp))
        parent = spec.get("extends")
        if parent is None:
            return chain
        if not isinstance(parent, str):
            raise ConfigError(f"{path}: key 'extends': {parent!r} is not a family name")
        names = [c[0].parent.name for c in chain]
        if parent in names:
            raise ConfigError(f"{path}: key 'extends': a cycle: {' -> '.join([*names, parent])}")
        name = parent


def _origin(chain: list[tuple[Path, dict, tuple]], keys: list) -> str:
    """The nearest file of the chain that states the key path ``keys`` (else the first)."""
    for path, spec, _ in chain:
        node = spec
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
                    _params(declared(name), {k: v for k, v in entry["params"].items() if v is not None}, where)


def _params(declared: tuple, given: dict, where: str) -> dict:
    try:
        return resolve_params(declared, given, where)
    except ParamError as err:
        raise ConfigError(str(err)) from None


def _load_family(name: str, families_dir: str) -> tuple[Family, tuple]:
    """The resolved family and the stamps of the files it was read from."""
    from tdw import analyzers, figures

    chain = _read_chain(name, families_dir)
    path = chain[0][0]
    spec: dict = {}
    for _, raw, _ in reversed(chain):
        spec = merge(spec, raw)
    spec.pop("extends", None)
    _validate(spec, "family.schema.json", lambda keys: _origin(chain, keys))
    if spec["name"] != name:
        raise ConfigError(f"{path}: key 'name': {spec['name']!r} differs from its folder name {name!r}")
    if spec["default_probe"] not in spec["probes"]:
        raise ConfigError(
            f"{_origin(chain, ['default_probe'])}: key 'default_probe': {spec['default_probe']!r} "
            f"is not one of its probes {sorted(spec['probes'])}"
        )
    analyzers.check_family_analyzers(spec, _origin(chain, ["analyzers"]))
    for fig in spec["figures"]:
        if fig not in figures.REGISTRY:
            raise ConfigError(
                f"{_origin(chain, ['figures', fig])}: key 'figures.{fig}': unknown figure; registered: {sorted(figures.REGISTRY)}"
            )
    _check_param_overrides(chain)
    for section, declared in (("analyzers", lambda n: analyzers.get(n).params), ("figures", figures.params)):
        for key, entry in spec[section].items():
            entry["params"] = _params(declared(key), entry.get("params", {}), f"{path}: key '{section}.{key}.params'")
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


@dataclass(frozen=True)
class Workbench:
    """A validated config together with its family: everything the workflow needs to know."""

    source: str
    family: Family
    train: TrainConfig
    variants: tuple[Variant, ...]
    probe: str
    analyzers: tuple[str, ...]
    figures: dict
    reports: tuple[str, ...]
    results: str = "results"
    batch_seeds: bool = False
    keep_caches: bool = True
    analyzer_settings: dict = field(default_factory=dict, repr=False)  # analyzer -> its resolved params

    def analyzer_params(self, name: str) -> dict:
        """Every parameter of analyzer ``name`` for this config: declared defaults, the
        family's values, the config's overrides."""
        if name not in self.analyzer_settings:
            raise ConfigError(f"{self.source}: analyzer {name!r} is not run by this config; it runs {list(self.analyzers)}")
        return copy.deepcopy(self.analyzer_settings[name])

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise ConfigError(f"{self.source}: no variant named {name!r}; variants: {[v.name for v in self.variants]}")


def _names_known(values: list[str], known: list[str], source: str, key: str) -> None:
    for v in values:
        if v not in known:
            raise ConfigError(f"{source}: key {key!r}: unknown {key.rstrip('s')} {v!r}; the family offers {sorted(known)}")


def resolve(config: dict, source: str = "config", families_dir: str = "families") -> Workbench:
    """Validate a loaded config mapping and resolve it against its family."""
    _validate(config, "config.schema.json", source)
    family = load_family(config["family"], families_dir)
    train = TrainConfig(**{k: tuple(v) if k == "betas" else v for k, v in config.get("train", {}).items()})
    epochs = expand_schedule(config.get("checkpoints", [0]), source)
    spec = family.spec

    variants: list[Variant] = []
    sweep = config.get("sweep", {})
    for p in sweep.get("p", []):
        check_modulus(p, source, "sweep.p")
    for p in sweep.get("p", []):
        for seed in sweep.get("seed", [0]):
            name = spec["variant_name"].format(p=p, seed=seed)
            variants.append(Variant(name, p, seed, train.train_frac, epochs))
    for i, entry in enumerate(config.get("legacy", [])):
        from tdw.train.legacy import LegacyEntryError, resolve_entry

        check_modulus(entry.get("p", 3), source, f"legacy.{i}.p")
        path = Path(entry["path"])
        if not path.exists():
            raise ConfigError(f"{source}: key 'legacy.{i}.path': file {path} not found")
        try:  # the file is read here (shapes, stored config, history lengths), before any job runs
            found = resolve_entry(entry | {"path": str(path)}, family, train.train_frac)
        except LegacyEntryError as err:
            raise ConfigError(f"{source}: key 'legacy.{i}.{err.key}': {err}") from err
        check_modulus(found.p, source, f"legacy.{i}.p")
        variants.append(
            Variant(entry["name"], found.p, found.seed, found.train_frac, (found.epoch,), str(path), found.test_loss_every)
        )
    names = [v.name for v in variants]
    for n in names:
        if names.count(n) > 1:
            raise ConfigError(f"{source}: variant name {n!r} appears twice (sweep and legacy names must be unique)")
    if not variants:
        raise ConfigError(f"{source}: no variants: give 'sweep.p' (and 'sweep.seed') or a 'legacy' entry")

    probe = config.get("probe", spec["default_probe"])
    _names_known([probe], list(spec["probes"]), source, "probe")
    settings = _resolve_analyzers(config, spec, probe, source)
    analyzers = list(settings)
    _check_key_frequencies(settings, variants, source)
    check_variant_sizes(family, variants, probe, config.get("batch_seeds", False), source, "train" in config)
    figures = _resolve_figures(config, spec, analyzers, source)
    reports = config.get("reports", ["default"])
    known_reports = [p.stem for p in (family.root / "reports").glob("*.json")]
    _names_known(reports, known_reports, source, "reports")
    return Workbench(
        source=source,
        family=family,
        train=train,
        variants=tuple(variants),
        probe=probe,
        analyzers=tuple(analyzers),
        figures=figures,
        reports=tuple(reports),
        results=config.get("results", "results"),
        batch_seeds=config.get("batch_seeds", False),
        keep_caches=config.get("keep_caches", True),
        analyzer_settings=settings,
    )


def _resolve_analyzers(config: dict, spec: dict, probe: str, source: str) -> dict[str, dict]:
    """Analyzer -> resolved params. ``analyzers`` in a config is a list (the family's
    analyzers to run) or a mapping (those to run, each with parameter overrides, ``{}`` or
    null for none); absent: all the family offers."""
    from tdw.analyzers import get

    selected = config.get("analyzers", list(spec["analyzers"]))
    overrides = selected if isinstance(selected, dict) else {}
    _names_known(list(selected), list(spec["analyzers"]), source, "analyzers")
    settings = {}
    for name in selected:
        allowed = spec["analyzers"][name].get("probes", list(spec["probes"]))
        if probe not in allowed:
            raise ConfigError(f"{source}: key 'probe': analyzer {name!r} does not accept probe {probe!r}; it accepts {allowed}")
        given = spec["analyzers"][name]["params"] | (overrides.get(name) or {})
        settings[name] = _params(get(name).params, given, f"{source}: key 'analyzers.{name}' (analyzer {name!r})")
    return settings


def _resolve_figures(config: dict, spec: dict, analyzers: list[str], source: str) -> dict[str, dict]:
    """Figure -> {source, params} for the figures whose artifact this config produces; a
    config's ``figures.<name>`` overrides visual parameters."""
    from tdw.figures import params as declared

    overrides = config.get("figures", {})
    _names_known(list(overrides), list(spec["figures"]), source, "figures")
    figures = {}
    for name, fig in spec["figures"].items():
        given = fig["params"] | overrides.get(name, {})
        params = _params(declared(name), given, f"{source}: key 'figures.{name}' (figure {name!r})")
        if fig["source"] == "history" or fig["source"] in analyzers:
            figures[name] = {"source": fig["source"], "params": params}
    return figures


def _check_key_frequencies(settings: dict[str, dict], variants: list[Variant], source: str) -> None:
    """Explicit key frequencies must be frequencies of every variant's modulus: 1..p//2."""
    for name, params in settings.items():
        keys = params.get("key_frequencies")
        if not isinstance(keys, list):
            continue
        for v in variants:
            bad = [k for k in keys if not 1 <= k <= v.p // 2]
            if bad or not keys:
                raise ConfigError(
                    f"{source}: key 'analyzers.{name}.key_frequencies': {keys} for variant {v.name} (p = {v.p}): "
                    f"give at least one frequency, each in 1..{v.p // 2}"
                )


def load(path: str | Path, families_dir: str = "families") -> Workbench:
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    return resolve(config or {}, str(path), families_dir)
