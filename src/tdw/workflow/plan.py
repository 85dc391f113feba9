"""Which rules the workflow declares for a resolved config, and their names.

A rule's outputs are fixed when it is declared, so a rule that writes one file per
checkpoint is declared once per checkpoint schedule:

- ``forward_cache_trained``: every trained variant (they share the config's schedule);
- ``forward_cache_legacy_<variant>``, ``import_legacy_<variant>``: one per legacy variant
  (each has its own final epoch);
- ``train``: every trained variant that trains alone, one job each;
- ``train_batch_p<p>_seeds<s1>_<s2>...``: with ``batch_seeds``, the seeds of one prime
  trained together in one job (a prime swept with a single seed trains alone).

Characters of a legacy variant's name that cannot be part of a rule name (``.`` and ``-``)
become ``_``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tdw.config import ConfigError, Variant, Workbench


@dataclass(frozen=True)
class EpochClass:
    """Variants with one checkpoint schedule, and the rule suffix naming them."""

    name: str  # "trained" or "legacy_<variant>"
    legacy: bool
    epochs: tuple[int, ...]
    variants: tuple[str, ...]


@dataclass(frozen=True)
class SeedBatch:
    """Trained variants of one prime that train together in one job."""

    name: str  # the rule name: train_batch_p<p>_seeds<s1>_<s2>...
    p: int
    variants: tuple[Variant, ...]


def rule_name(text: str) -> str:
    """``text`` with every character a rule name cannot hold replaced by ``_``."""
    return re.sub(r"\W", "_", text)


def trained(wb: Workbench) -> list[Variant]:
    return [v for v in wb.variants if not v.is_legacy]


def epoch_classes(wb: Workbench) -> list[EpochClass]:
    """The trained variants as one class (first, if any), then one class per legacy variant."""
    out = []
    train = trained(wb)
    if train:
        schedules = {v.epochs for v in train}
        if len(schedules) > 1:
            raise ConfigError(f"{wb.source}: trained variants have {len(schedules)} checkpoint schedules; the config gives one")
        out.append(EpochClass("trained", False, train[0].epochs, tuple(v.name for v in train)))
    for v in wb.variants:
        if v.is_legacy:
            name = rule_name(f"legacy_{v.name}")
            clash = next((c for c in out if c.name == name), None)
            if clash:
                raise ConfigError(
                    f"{wb.source}: legacy variants {clash.variants[0]!r} and {v.name!r} give one rule name {name!r}"
                )
            out.append(EpochClass(name, True, v.epochs, (v.name,)))
    return out


def seed_batches(wb: Workbench) -> list[SeedBatch]:
    """With ``batch_seeds``, the trained variants of each prime swept with two or more
    seeds, by prime; none otherwise."""
    if not wb.batch_seeds:
        return []
    by_p: dict[int, list[Variant]] = {}
    for v in trained(wb):
        by_p.setdefault(v.p, []).append(v)
    return [
        SeedBatch(f"train_batch_p{p}_seeds{'_'.join(str(v.seed) for v in group)}", p, tuple(group))
        for p, group in sorted(by_p.items())
        if len(group) > 1
    ]


def train_alone(wb: Workbench) -> list[str]:
    """Names of the trained variants the ``train`` rule trains, one job each."""
    batched = {v.name for b in seed_batches(wb) for v in b.variants}
    return [v.name for v in trained(wb) if v.name not in batched]


def alternatives(names) -> str:
    """A wildcard constraint matching exactly ``names`` (none: a pattern that never matches)."""
    return "|".join(re.escape(n) for n in sorted(names)) or "(?!)"
