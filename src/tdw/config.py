"""Config files: the resolve step. ``load``, ``resolve`` and ``resolve_runs`` validate a config
strictly and tie it to its family (``tdw.families``), its sweep (``tdw.sweep``), its legacy files
(``tdw.train.legacy``) and the memory its jobs need (``tdw.workflow.resources``); what they return
is plain data (``tdw.workbench``). This module sits above all of those, so none imports it.

Every error names the file, the key and what is expected, and is raised while the DAG is
built, before any job runs.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from tdw.families import FAMILIES_DIR, load_family
from tdw.models.architecture import ModelConfig
from tdw.tasks import sequence
from tdw.validation import ConfigError, check_path_name, checked_params, load_yaml, validate
from tdw.workbench import FAMILY_TRAIN, Family, TrainConfig, Variant, Workbench, default_analyzers
from tdw.workflow.resources import TRAIN_MEM_MB, check_variant_sizes

# Also offered here for the rules, scripts and tests that take them with the resolve step.
__all__ = [
    "FAMILIES_DIR",
    "TRAIN_MEM_MB",
    "ConfigError",
    "Family",
    "TrainConfig",
    "Variant",
    "Workbench",
    "expand_schedule",
    "load",
    "load_family",
    "resolve",
    "resolve_runs",
]


def check_results_folder(results: str, source: str) -> None:
    """``results`` is a folder, or can be made one: no part of it is a file."""
    path = Path(results)
    for part in (path, *path.parents):
        if part.exists() and not part.is_dir():
            raise ConfigError(f"{source}: key 'results': {results!r}: {part} is a file; give a folder (it is made if missing)")


def check_takes_effect(train: TrainConfig, epochs: tuple[int, ...], name: str, source: str) -> None:
    """Settings that could never act within the variant's schedule (its last checkpoint epoch
    is its last training step) are errors, not silent no-ops."""
    last = epochs[-1]
    stop = train.early_stop
    if stop is not None and stop["for_epochs"] > last:
        raise ConfigError(
            f"{source}: key 'train.early_stop.for_epochs': {stop['for_epochs']} for variant {name}, whose training ends at "
            f"epoch {last}: the test loss can never stay low that long; give at most {last} or train longer"
        )
    filt = train.grokfast
    if filt is not None and filt["lamb"] == 0:
        raise ConfigError(
            f"{source}: key 'train.grokfast.lamb': 0 for variant {name}: the filter adds lamb times the filtered gradient, "
            "so it would never change a step; give a lamb other than 0, or grokfast: null for no filter"
        )
    if filt is not None and filt["kind"] == "ma" and filt["window"] > last:
        raise ConfigError(
            f"{source}: key 'train.grokfast.window': {filt['window']} for variant {name}, which takes {last} steps: the "
            f"filter acts once the window is full, so it never would (and would keep every gradient); give at most {last}"
        )


def check_tracking(train: TrainConfig, model: ModelConfig, family: Family, name: str, source: str) -> None:
    """A ``train.tracking`` setting runs on the variant's model with the family's recipe: its hooks
    exist and are one vector per position (``tdw.train.tracking.hook_problem``), and the family
    trains full batch (the minibatch trainer does not track)."""
    if train.tracking is None:
        return
    from tdw.train.tracking import hook_problem

    recipe = family.spec.get("training", {}).get("recipe", "full_batch")
    if recipe != "full_batch":
        raise ConfigError(
            f"{source}: key 'train.tracking': family {family.name!r} trains with the {recipe!r} recipe; tracking "
            "is offered for full-batch training only: remove train.tracking"
        )
    problem = hook_problem(train.tracking, model)
    if problem is not None:
        raise ConfigError(f"{source}: {problem} (variant {name}, family {family.name!r})")


def check_fast_path(train: TrainConfig, model: ModelConfig, family: Family, name: str, source: str) -> None:
    """``train.fast_path: tables`` computes the logits of the paper's shape (one layer with MLP,
    ReLU, no LayerNorm; ``ModelConfig.is_paper_shape``) trained full batch: refused elsewhere."""
    if train.fast_path is None:
        return
    recipe = family.spec.get("training", {}).get("recipe", "full_batch")
    if recipe != "full_batch":
        raise ConfigError(
            f"{source}: key 'train.fast_path': family {family.name!r} trains with the {recipe!r} recipe; the tables fast "
            "path is offered for full-batch training only: remove train.fast_path"
        )
    if not model.is_paper_shape or model.n_ctx != 3:
        raise ConfigError(
            f"{source}: key 'train.fast_path': {train.fast_path!r} for variant {name}, whose model is not the paper's "
            "shape (a one-layer transformer with an MLP, ReLU, no LayerNorm, 3 positions); the tables cover that shape "
            "only: remove train.fast_path"
        )


def is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))


def check_modulus(p: int, source: str, key: str) -> None:
    if p < 3 or not is_prime(p):
        raise ConfigError(f"{source}: key {key!r}: {p} is not a prime >= 3 (the modulus must be prime)")


# Checkpoints of one variant's schedule, at most: the DAG build plans each (20,001 take about 10 s,
# bench/results/dag_scale.json), so a range past this is a typo that would stall it or exhaust memory.
MAX_CHECKPOINTS = 100_000


def expand_schedule(items: list, source: str, key: str = "checkpoints") -> tuple[int, ...]:
    """Checkpoint epochs from integers and ``{from, to, every}`` ranges (``to`` inclusive when
    on the grid). The result must be non-negative and strictly increasing."""
    epochs: list[int] = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            if item["to"] < item["from"]:
                raise ConfigError(f"{source}: key '{key}.{i}': 'to' ({item['to']}) is before 'from' ({item['from']})")
            grid = range(item["from"], item["to"] + 1, item["every"])
            if len(epochs) + len(grid) > MAX_CHECKPOINTS:
                raise ConfigError(
                    f"{source}: key '{key}.{i}': {item} makes the schedule {len(epochs) + len(grid):,} checkpoints; "
                    f"a schedule holds at most {MAX_CHECKPOINTS:,} (give a larger 'every')"
                )
            epochs += grid
        else:
            epochs.append(item)
    for i, e in enumerate(epochs):
        if e < 0:
            raise ConfigError(f"{source}: key '{key}': epoch {e} is negative; epochs are >= 0")
        if i and e <= epochs[i - 1]:
            what = "duplicate" if e == epochs[i - 1] else "out of order"
            raise ConfigError(
                f"{source}: key '{key}': epoch {e} is {what} (after {epochs[i - 1]}); "
                "list epochs and ranges in strictly increasing order"
            )
    return tuple(epochs)


def _names_known(values: list[str], known: list[str], source: str, key: str) -> None:
    for v in values:
        if v not in known:
            raise ConfigError(f"{source}: key {key!r}: unknown {key.rstrip('s')} {v!r}; the family offers {sorted(known)}")


def resolve(config: dict, source: str = "config", families_dir: str = "families") -> Workbench:
    """Validate a loaded config mapping and resolve it against its family."""
    validate(config, "config.schema.json", source)
    check_results_folder(config.get("results", "results"), source)
    if "family" not in config:
        raise ConfigError(f"{source}: key 'family': missing; give a family (a folder under {families_dir}) or a list of 'runs'")
    if "runs" in config:
        raise ConfigError(f"{source}: key 'runs': several families are resolved by tdw.config.resolve_runs")
    family = _named(load_family(config["family"], families_dir), config.get("variant_name"), source)
    recipe: dict[str, Any] = {k: tuple(v) if k == "betas" else v for k, v in config.get("train", {}).items()}
    train = TrainConfig(**recipe)
    spec = family.spec

    variants = _sweep_variants(config, family, train, source)
    for i, entry in enumerate(config.get("legacy", [])):
        from tdw.train.legacy import LegacyEntryError, resolve_entry

        check_path_name(entry["name"], f"{source}: key 'legacy.{i}.name'", "variant name")
        check_modulus(entry.get("p", 3), source, f"legacy.{i}.p")
        path = Path(entry["path"])
        if not path.exists():
            raise ConfigError(f"{source}: key 'legacy.{i}.path': file {path} not found")
        if not path.is_file():
            raise ConfigError(f"{source}: key 'legacy.{i}.path': {path} is a folder; expected a checkpoint file (.pth)")
        try:  # the file is read here (shapes, stored config, history lengths), before any job runs
            found = resolve_entry(entry | {"path": str(path)}, family, train.train_frac)
        except LegacyEntryError as err:
            raise ConfigError(f"{source}: key 'legacy.{i}.{err.key}': {err}") from err
        check_modulus(found.p, source, f"legacy.{i}.p")
        where = (str(path), found.test_loss_every)
        model = family.model_config(found.p)
        variants.append(
            Variant(entry["name"], found.p, found.seed, found.train_frac, (found.epoch,), *where, train=train, model=model)
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
    _check_epoch_params(settings, variants, source)
    if family.operation == sequence.OPERATION:  # prompt files against every variant's vocabulary
        sequence.check_prompt_files(spec, family.root, [v.p for v in variants], str(family.files[0]))
    if spec.get("training", {}).get("recipe", "full_batch") != "full_batch" and config.get("batch_seeds"):
        raise ConfigError(
            f"{source}: key 'batch_seeds': the minibatch recipe of family {family.name!r} trains one variant at a time"
        )
    check_variant_sizes(family, variants, probe, config.get("batch_seeds", False), source, _frac_key(config))
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


# Keys of a config that hold for the whole workflow run, not one family: top level only.
RUN_WIDE = ("results", "keep_caches", "batch_seeds", "replace")


def resolve_runs(config: dict, source: str = "config", families_dir: str = "families") -> tuple[Workbench, ...]:
    """A config's families, one ``Workbench`` each: the config itself, or one per entry of its
    ``runs`` list (``{family, sweep, ...}``; a key the entry does not give is the top level's).
    A family listed twice, or a variant name two families share, is refused."""
    if "runs" not in config:
        return (resolve(config, source, families_dir),)
    validate(config, "config.schema.json", source)
    for key in ("family", "sweep", "legacy"):
        if key in config:
            raise ConfigError(f"{source}: key {key!r}: with 'runs', each entry gives its own {key!r}; move it into the entries")
    shared = {k: v for k, v in config.items() if k != "runs"}
    runs: list[Workbench] = []
    owner: dict[str, str] = {}
    for i, entry in enumerate(config["runs"]):
        wb = resolve(shared | entry, f"{source}: runs.{i} (family {entry['family']})", families_dir)
        if any(r.family.name == wb.family.name for r in runs):
            raise ConfigError(f"{source}: key 'runs.{i}.family': family {wb.family.name!r} is listed twice; give it one entry")
        for v in wb.variants:
            if v.name in owner:
                raise ConfigError(
                    f"{source}: key 'runs.{i}': variant name {v.name!r} of family {wb.family.name} is also one of family "
                    f"{owner[v.name]}; names must be unique across the runs (give one family a variant_name template that differs)"
                )
            owner[v.name] = wb.family.name
        runs.append(wb)
    return tuple(runs)


def _named(family: Family, template: str | None, source: str) -> Family:
    """The family with the config's ``variant_name`` template in place of its own (None: its own)."""
    if template is None:
        return family
    try:
        template.format(p=3, seed=0, tags="")
    except (KeyError, IndexError, ValueError) as err:
        raise ConfigError(
            f"{source}: key 'variant_name': {template!r} is not a format string over {{p}}, {{seed}} and {{tags}} ({err!r})"
        ) from None
    return replace(family, spec=family.spec | {"variant_name": template})


def _sweep_variants(config: dict, family: Family, train: TrainConfig, source: str) -> list[Variant]:
    """The swept variants, each with its own recipe, architecture and schedule
    (``tdw.sweep``); two combinations with one name are refused."""
    from tdw import sweep

    combos = sweep.combinations(config.get("sweep", {}), family, train, source)
    for c in combos:
        if family.operation == sequence.OPERATION:
            sequence.check_vocabulary(c["p"], source, "sweep.p")
        else:
            check_modulus(c["p"], source, "sweep.p")
    schedules = sweep.schedules(
        combos, sweep.schedule_rules(config.get("checkpoints", [0]), family, source, expand_schedule), source
    )
    variants: list[Variant] = []
    seen: dict[str, dict] = {}
    for combo, epochs in zip(combos, schedules, strict=True):
        name = sweep.variant_name(combo, family, FAMILY_TRAIN, source)
        if name in seen:
            raise ConfigError(
                f"{source}: key 'sweep': combinations {sweep.describe(seen[name])} and {sweep.describe(combo)} "
                f"both give variant name {name!r}"
            )
        seen[name] = combo
        model = sweep.check_model(combo, family, source)
        recipe, _ = sweep.overrides(combo, family, train)
        vt = replace(train, **recipe) if recipe else train
        tags = tuple(sweep.tags(combo, family, FAMILY_TRAIN))
        check_takes_effect(vt, epochs, name, source)
        check_tracking(vt, model or family.model_config(combo["p"]), family, name, source)
        check_fast_path(vt, model or family.model_config(combo["p"]), family, name, source)
        if vt.early_stop is not None and epochs[0] != 0:
            raise ConfigError(
                f"{source}: key 'checkpoints': variant {name} stops early (train.early_stop) but its schedule starts at "
                f"epoch {epochs[0]}; start it at 0, so that a run stopping at any epoch has a checkpoint"
            )
        variants.append(
            Variant(name, combo["p"], combo["seed"], vt.train_frac, epochs, None, None, combo["data_seed"], vt, model, tags)
        )
    return variants


def _frac_key(config: dict) -> str:
    """The key a variant's train fraction comes from, for messages."""
    if "train_frac" in config.get("sweep", {}):
        return "sweep.train_frac"
    return "train.train_frac" if "train" in config else ""


def _resolve_analyzers(config: dict, spec: dict, probe: str, source: str) -> dict[str, dict]:
    """Analyzer -> resolved params. ``analyzers`` in a config is a list (the family's
    analyzers to run) or a mapping (those to run, each with parameter overrides, ``{}`` or
    null for none); absent: all the family offers except those it marks ``on_request``."""
    from tdw.analyzers import REGISTRY, get
    from tdw.analyzers.base import supports, unsupported

    selected = config.get("analyzers", default_analyzers(spec))
    overrides = selected if isinstance(selected, dict) else {}
    for name in selected:  # one the family cannot offer: say why
        if name in REGISTRY and name not in spec["analyzers"] and not supports(get(name), spec["task"]):
            raise ConfigError(
                f"{source}: key 'analyzers.{name}': family {spec['name']!r} does not offer it: "
                f"{unsupported(get(name), spec['task'])} (task {spec['task']})"
            )
    _names_known(list(selected), list(spec["analyzers"]), source, "analyzers")
    settings = {}
    for name in selected:
        allowed = spec["analyzers"][name].get("probes", list(spec["probes"]))
        if probe not in allowed:
            raise ConfigError(f"{source}: key 'probe': analyzer {name!r} does not accept probe {probe!r}; it accepts {allowed}")
        given = spec["analyzers"][name]["params"] | (overrides.get(name) or {})
        settings[name] = checked_params(get(name).params, given, f"{source}: key 'analyzers.{name}' (analyzer {name!r})")
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
        params = checked_params(declared(name), given, f"{source}: key 'figures.{name}' (figure {name!r})")
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


# Analyzer parameters whose values are checkpoint epochs ("final" and null mean the last, the
# first and last: always there).
EPOCH_PARAMS = {"llc_calibration": ("epoch",), "ablations": ("compare",)}


def _check_epoch_params(settings: dict[str, dict], variants: list[Variant], source: str) -> None:
    """An epoch an analyzer parameter names must be a checkpoint epoch of every variant."""
    for name, keys in EPOCH_PARAMS.items():
        for key in keys:
            value = settings.get(name, {}).get(key)
            wanted = [value] if isinstance(value, int) and not isinstance(value, bool) else value
            if not isinstance(wanted, list):
                continue
            for v in variants:
                missing = [e for e in wanted if e not in v.epochs]
                if missing:
                    raise ConfigError(
                        f"{source}: key 'analyzers.{name}.{key}': epoch {missing[0]} is not a checkpoint of variant {v.name} "
                        f"(its checkpoints: {_epochs_text(v.epochs)}); name a checkpoint epoch"
                    )


def _epochs_text(epochs: tuple[int, ...]) -> str:
    return ", ".join(map(str, epochs)) if len(epochs) <= 8 else f"{epochs[0]}, {epochs[1]}, ..., {epochs[-1]} ({len(epochs)})"


def load(path: str | Path, families_dir: str = "families") -> Workbench:
    """A config file, read strictly (UTF-8, no key twice: ``tdw.validation.load_yaml``), resolved."""
    config = load_yaml(path)
    if config is not None and not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, not {type(config).__name__}")
    return resolve(config or {}, str(path), families_dir)
