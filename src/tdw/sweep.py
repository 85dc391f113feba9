"""Sweeps: the config's ``sweep`` (lists of values per sweepable name, ``include``,
``exclude``) expanded into combinations, each combination's variant name, and the
``checkpoints`` rule that gives its schedule.

A combination maps every sweepable name to a value: the swept value, or the config's (its
``train`` value, the family's architecture, seed 0; the data seed follows the seed). A
variant's name is the family's template over p and seed with one ``_<tag><value>`` per
other sweepable name whose value differs from the *family's* default (the recipe's defaults, the
family's architecture; at ``{tags}`` in the template, else at the end). The name is
relative to the family, never to a config: two configs whose recipes differ in a sweepable
value give different names, whatever their ``train`` sections say.
"""

from __future__ import annotations

import itertools

from tdw.families import Family
from tdw.models.architecture import ModelConfig
from tdw.validation import ConfigError, check_path_name

# Every name a family may declare sweepable, in the order the product runs over them (p
# outermost, seeds innermost: the order variants are listed in).
SWEEPABLE = (
    "p",
    "train_frac",
    "weight_decay",
    "lr",
    "warmup_steps",
    "betas",
    "d_model",
    "d_mlp",
    "n_heads",
    "attention_rate",
    "seed",
    "data_seed",
)
TRAIN_NAMES = ("train_frac", "weight_decay", "lr", "warmup_steps", "betas")
ARCH_NAMES = ("d_model", "d_mlp", "n_heads", "attention_rate")
# Name tags, in the order they appear in a variant name.
TAGS = {
    "weight_decay": "wd",
    "train_frac": "frac",
    "lr": "lr",
    "warmup_steps": "warmup",
    "betas": "betas",
    "d_model": "dmodel",
    "d_mlp": "dmlp",
    "n_heads": "heads",
    "attention_rate": "attn",
    "data_seed": "dseed",
}


def sweepable(family: Family) -> tuple[str, ...]:
    """The names the family declares sweepable (default: all of ``SWEEPABLE``)."""
    return tuple(family.spec.get("sweepable", SWEEPABLE))


def defaults(family: Family, train) -> dict:
    """Each sweepable name's value where the config does not sweep it (p has none)."""
    arch = family.model_config(3)
    return {
        "seed": 0,
        "data_seed": None,
        **{n: getattr(train, n) for n in TRAIN_NAMES},
        **{n: getattr(arch, n) for n in ARCH_NAMES},
    }


def _value(name: str, value):
    return tuple(value) if name == "betas" else value


def _format(value) -> str:
    if isinstance(value, tuple):
        return "-".join(_format(v) for v in value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value).replace("+", "")


def describe(combo: dict) -> str:
    """A combination as ``name = value`` pairs, p and seed first."""
    return "{" + ", ".join(f"{n}: {_format(v)}" for n, v in combo.items()) + "}"


def _check_keys(entry: dict, allowed: tuple[str, ...], family: Family, source: str, key: str) -> None:
    for name in entry:
        if name not in allowed:
            raise ConfigError(
                f"{source}: key '{key}.{name}': {name!r} is not a name family {family.name} declares sweepable; "
                f"it declares {list(allowed)}"
            )


def _matches(combo: dict, entry: dict) -> bool:
    return all(combo[n] == _value(n, v) for n, v in entry.items())


def combinations(sweep: dict, family: Family, train, source: str) -> list[dict]:
    """The product of the swept lists, less the ``exclude`` matches, plus the ``include``
    entries (each one combination; p must be given), in product order. The data seed is
    resolved (None: the seed)."""
    allowed = sweepable(family)
    lists = {n: v for n, v in sweep.items() if n not in ("include", "exclude")}
    _check_keys(lists, allowed, family, source, "sweep")
    base = defaults(family, train)
    axes = [(n, [_value(n, v) for v in lists[n]]) for n in SWEEPABLE if n in lists]
    combos = []
    if "p" in lists:
        names = [n for n, _ in axes]
        combos = [base | dict(zip(names, values, strict=True)) for values in itertools.product(*(v for _, v in axes))]
    for i, entry in enumerate(sweep.get("exclude", [])):
        _check_keys(entry, allowed, family, source, f"sweep.exclude.{i}")
        kept = [c for c in combos if not _matches(c, entry)]
        if len(kept) == len(combos):
            raise ConfigError(f"{source}: key 'sweep.exclude.{i}': {entry} matches no combination of the sweep")
        if not kept and not sweep.get("include"):
            raise ConfigError(
                f"{source}: key 'sweep.exclude': the excluded combinations are every combination of the sweep; nothing is left to run"
            )
        combos = kept
    for i, entry in enumerate(sweep.get("include", [])):
        _check_keys(entry, allowed, family, source, f"sweep.include.{i}")
        if "p" not in entry:
            raise ConfigError(f"{source}: key 'sweep.include.{i}': {entry} gives no 'p'; an included combination needs one")
        combo = base | {n: _value(n, v) for n, v in entry.items()}
        if combo not in combos:  # an entry the product already has adds nothing
            combos.append(combo)
    out = []
    for combo in combos:
        combo = {"p": combo["p"], "seed": combo["seed"]} | {n: combo[n] for n in SWEEPABLE if n not in ("p", "seed")}
        out.append(combo | {"data_seed": combo["seed"] if combo["data_seed"] is None else combo["data_seed"]})
    return out


def overrides(combo: dict, family: Family, train) -> tuple[dict, dict]:
    """The combination's train and architecture values that differ from the defaults."""
    base = defaults(family, train)
    changed = {n: combo[n] for n in TRAIN_NAMES + ARCH_NAMES if combo[n] != base[n]}
    for n in ("train_frac", "weight_decay", "lr", "betas", "attention_rate"):  # a YAML integer is a float here
        if n in changed:
            changed[n] = tuple(map(float, changed[n])) if n == "betas" else float(changed[n])
    return {n: v for n, v in changed.items() if n in TRAIN_NAMES}, {n: v for n, v in changed.items() if n in ARCH_NAMES}


def tags(combo: dict, family: Family, family_train) -> list[tuple[str, object]]:
    """(name, value) of every name the family declares sweepable, other than p and seed,
    whose value is not the family's default (``family_train``: the family's default recipe).
    A name the family does not declare sweepable does not change what it trains."""
    base = defaults(family, family_train) | {"data_seed": combo["seed"]}
    names = sweepable(family)
    return [(n, combo[n]) for n in TAGS if n in names and combo[n] != base[n]]


def tag_text(pairs: list[tuple[str, object]]) -> str:
    return "".join(f"_{TAGS[n]}{_format(v)}" for n, v in pairs)


def variant_name(combo: dict, family: Family, family_train, source: str) -> str:
    """The family's template over the combination, tagged relative to ``family_train``."""
    template = family.spec["variant_name"]
    suffix = tag_text(tags(combo, family, family_train))
    if "{tags}" in template:
        name = template.format(p=combo["p"], seed=combo["seed"], tags=suffix)
    else:
        name = template.format(p=combo["p"], seed=combo["seed"]) + suffix
    where = f"{source}: the variant name template {template!r} over combination {describe(combo)}"
    return check_path_name(name, where, "variant name")


def check_model(combo: dict, family: Family, source: str) -> ModelConfig:
    """The combination's model, refused where its width does not split into its heads."""
    arch = family.spec["architecture"] | {n: combo[n] for n in ARCH_NAMES}
    arch["attention_rate"] = float(arch["attention_rate"])  # a YAML integer (0, 1) is a rate too
    if arch.get("d_model", 128) % arch.get("n_heads", 4):
        raise ConfigError(
            f"{source}: key 'sweep': combination {describe(combo)}: d_model {combo['d_model']} is not divisible by "
            f"n_heads {combo['n_heads']} (each head has d_model / n_heads dimensions)"
        )
    return ModelConfig(p=combo["p"], **arch)


def schedule_rules(items: list, family: Family, source: str, expand) -> list[tuple[dict, tuple[int, ...]]]:
    """``checkpoints`` as (when, epochs) rules: a plain list of epochs and ranges is one
    rule for every variant; otherwise every item is ``{when: {...}, schedule: [...]}``
    (``when`` absent: every variant) and the first rule whose values match wins."""
    is_rule = [isinstance(item, dict) and "schedule" in item for item in items]
    if not any(is_rule):
        return [({}, expand(items, source))]
    if not all(is_rule):
        i = is_rule.index(False)
        raise ConfigError(
            f"{source}: key 'checkpoints.{i}': {items[i]!r} is an epoch or range among schedule rules; "
            "give either a list of epochs and ranges or a list of {when, schedule} rules"
        )
    rules = []
    for i, item in enumerate(items):
        when = item.get("when", {})
        _check_keys(when, sweepable(family), family, source, f"checkpoints.{i}.when")
        rules.append(({n: _value(n, v) for n, v in when.items()}, expand(item["schedule"], source, f"checkpoints.{i}.schedule")))
    return rules


def schedules(combos: list[dict], rules: list[tuple[dict, tuple[int, ...]]], source: str) -> list[tuple[int, ...]]:
    """Each combination's checkpoint epochs: those of the first rule it matches."""
    for i, (when, _) in enumerate(rules):
        if when and not any(_matches(c, when) for c in combos):
            raise ConfigError(f"{source}: key 'checkpoints.{i}.when': {when} matches no variant of the sweep")
    out = []
    for combo in combos:
        found = next((epochs for when, epochs in rules if _matches(combo, when)), None)
        if found is None:
            raise ConfigError(
                f"{source}: key 'checkpoints': combination {describe(combo)} matches no rule; "
                "end the rules with one without 'when' (every variant)"
            )
        out.append(found)
    return out
