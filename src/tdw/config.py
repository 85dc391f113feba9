"""Config and family files: strict validation and the resolved view the workflow uses.

Every error names the file, the key and what is expected, and is raised while the DAG is
built, before any job runs.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from tdw.models.architecture import ModelConfig

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
    name: str
    root: Path
    spec: dict = field(repr=False)

    def model_config(self, p: int) -> ModelConfig:
        return ModelConfig(p=p, **self.spec["architecture"])

    @property
    def operation(self) -> str:
        return self.spec["task"]["operation"]


def _schema(name: str) -> dict:
    return json.loads(resources.files("tdw.schemas").joinpath(name).read_text())


def _validate(obj: object, schema_name: str, source: str) -> None:
    validator = jsonschema.Draft202012Validator(_schema(schema_name))
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    err = errors[0]
    key = ".".join(str(k) for k in err.absolute_path) or "(top level)"
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        raise ConfigError(f"{source}: key {key!r}: {err.message}{hint}")
    if err.validator == "oneOf" and err.context:
        err = max(err.context, key=lambda e: len(e.absolute_path))  # the branch that got furthest
        key = ".".join(str(k) for k in err.absolute_path)
    expected = err.schema.get("description", "")
    raise ConfigError(f"{source}: key {key!r}: {err.message}" + (f" (expected: {expected})" if expected else ""))


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


@cache
def load_family(name: str, families_dir: str = "families") -> Family:
    root = Path(families_dir) / name
    path = root / "family.json"
    if not path.exists():
        known = sorted(d.name for d in Path(families_dir).iterdir() if (d / "family.json").exists())
        raise ConfigError(f"family {name!r}: {path} not found; known families: {', '.join(known)}")
    try:
        spec = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON: {err}") from err
    _validate(spec, "family.schema.json", str(path))
    if spec["name"] != name:
        raise ConfigError(f"{path}: key 'name': {spec['name']!r} differs from its folder name {name!r}")
    if spec["default_probe"] not in spec["probes"]:
        raise ConfigError(
            f"{path}: key 'default_probe': {spec['default_probe']!r} is not one of its probes {sorted(spec['probes'])}"
        )
    from tdw.analyzers import check_family_analyzers

    check_family_analyzers(spec, str(path))
    return Family(name=name, root=root, spec=spec)


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
    analyzers = config.get("analyzers", list(spec["analyzers"]))
    _names_known(analyzers, list(spec["analyzers"]), source, "analyzers")
    for name in analyzers:
        allowed = spec["analyzers"][name].get("probes", list(spec["probes"]))
        if probe not in allowed:
            raise ConfigError(f"{source}: key 'probe': analyzer {name!r} does not accept probe {probe!r}; it accepts {allowed}")
    figures = {}
    overrides = config.get("figures", {})
    _names_known(list(overrides), list(spec["figures"]), source, "figures")
    for name, fig in spec["figures"].items():
        if fig["source"] != "history" and fig["source"] not in analyzers:
            continue
        params = fig.get("params", {}) | overrides.get(name, {})
        unknown = set(overrides.get(name, {})) - set(fig.get("params", {}))
        if unknown:
            raise ConfigError(
                f"{source}: key 'figures.{name}': unknown parameter(s) {sorted(unknown)}; "
                f"the figure takes {sorted(fig.get('params', {}))}"
            )
        figures[name] = {"source": fig["source"], "params": params}
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
    )


def load(path: str | Path, families_dir: str = "families") -> Workbench:
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    return resolve(config or {}, str(path), families_dir)
