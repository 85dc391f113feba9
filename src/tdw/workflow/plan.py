"""Which rules the workflow declares for a resolved config, and their names.

A rule's outputs are fixed when it is declared, so a rule that writes one file per
checkpoint is declared once per checkpoint schedule:

- ``forward_cache_trained``, ``train``: the trained variants with the first schedule (every
  trained variant when the config gives one schedule); ``forward_cache_trained_<k>``,
  ``train_<k>``: those with the k-th distinct schedule (per-variant ``checkpoints`` rules);
- ``forward_cache_legacy_<variant>``, ``import_legacy_<variant>``: one per legacy variant
  (each has its own final epoch);
- ``train`` (``train_<k>``): every trained variant that trains alone, one job each;
- ``train_batch_p<p>[<tags>]_seeds<s1>_<s2>...``: with ``batch_seeds``, the seeds of one
  prime trained together in one job, when they share the architecture, the recipe and the
  schedule (a group of one trains alone); ``<tags>`` are the variant names' tags other
  than the data seed, as in ``train_batch_p113_wd0_3_seeds0_1``.

Characters of a legacy variant's name that cannot be part of a rule name (``.`` and ``-``)
become ``_``. Variants with early stopping form classes of their own (their rules declare
folders: ``EpochClass.early_stop``). With several families (``runs:``), the classes span
every family's variants; a seed batch holds one family's, and a batch name an earlier
family already has gets ``_<family>`` appended.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from tdw.errors import ConfigError
from tdw.workbench import Variant, Workbench


@dataclass(frozen=True)
class EpochClass:
    """Variants with one checkpoint schedule, and the rule suffix naming them."""

    name: str  # "trained", "trained_<k>" (the k-th schedule) or "legacy_<variant>"
    legacy: bool
    epochs: tuple[int, ...]
    variants: tuple[str, ...]
    # trained with early stopping: which checkpoints exist is known once training ends, so the
    # class's rules declare the checkpoint and cache folders, and metadata.json lists the epochs
    early_stop: bool = False


@dataclass(frozen=True)
class SeedBatch:
    """Trained variants of one prime, architecture and schedule that train together in one job
    (as one stacked model with per-model seeds and optimizer settings)."""

    name: str  # the rule name: train_batch_p<p>[_<shared tags>]_seeds<s1>_<s2>... or ..._<n>models
    p: int
    variants: tuple[Variant, ...]


def rule_name(text: str) -> str:
    """``text`` with every character a rule name cannot hold replaced by ``_``."""
    return re.sub(r"\W", "_", text)


def trained(wb: Workbench) -> list[Variant]:
    return [v for v in wb.variants if not v.is_legacy]


def epoch_classes(wb: Workbench) -> list[EpochClass]:
    """The trained variants by schedule and early stopping (on or off), first seen first
    (``trained``, ``trained_2``, ...), then one class per legacy variant."""
    out = []
    by_epochs: dict[tuple, list[str]] = {}
    for v in trained(wb):
        by_epochs.setdefault((v.epochs, (v.train or wb.train).early_stop is not None), []).append(v.name)
    for k, ((epochs, stops), names) in enumerate(by_epochs.items()):
        out.append(EpochClass("trained" if k == 0 else f"trained_{k + 1}", False, epochs, tuple(names), stops))
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


def train_rule(epoch_class: EpochClass) -> str:
    """The rule that trains a trained class's variants one job each: train, train_2, ..."""
    return "train" + epoch_class.name.removeprefix("trained")


def batch_key(v: Variant) -> tuple:
    """What variants trained together in one job share (``tdw.train.stacking``): shapes,
    schedule and the filter's layout; seeds, data seeds and the optimizer's and filter's
    strengths may differ, since the stacked trainer gives each model its own."""
    from tdw.train.stacking import stack_key

    if v.train is None:
        raise ValueError(f"variant {v.name}: no recipe; batch_key takes the variants of a resolved config (tdw.config.resolve)")
    return stack_key("", v.model, v.p, v.train_frac, v.epochs, v.train)


def seed_batches(wb: Workbench) -> list[SeedBatch]:
    """With ``batch_seeds``, the trained variants that share a ``batch_key`` in groups of
    two or more, by prime; none otherwise. A batch is named by its prime, the tags all its
    variants share, and its seeds when only seeds differ (else the number of models)."""
    from tdw.sweep import tag_text

    if not wb.batch_seeds:
        return []
    groups: dict[tuple, list[Variant]] = {}
    for v in trained(wb):
        groups.setdefault(batch_key(v), []).append(v)
    out: list[SeedBatch] = []
    for group in sorted(groups.values(), key=lambda g: g[0].p):  # by prime, else in sweep order
        if len(group) < 2:
            continue
        p = group[0].p
        shared = [t for t in group[0].tags if t[0] != "data_seed" and all(t in w.tags for w in group)]
        only_seeds = all([t for t in w.tags if t[0] != "data_seed"] == shared for w in group)
        what = "_seeds" + "_".join(str(v.seed) for v in group) if only_seeds else f"_{len(group)}models"
        name = f"train_batch_p{p}{rule_name(tag_text(shared))}{what}"
        taken = {b.name for b in out}
        name = next(f"{name}_{k}" for k in range(1, len(out) + 2) if f"{name}_{k}" not in taken) if name in taken else name
        out.append(SeedBatch(name, p, tuple(group)))
    return out


def unique_batch_names(per_family: dict[str, list[SeedBatch]]) -> list[SeedBatch]:
    """The seed batches of several families (family -> its batches), in order; a batch whose
    name an earlier family's batch has gets the family's name appended
    (``train_batch_p11_seeds0_1_modsub``)."""
    out: list[SeedBatch] = []
    for family, batches in per_family.items():
        for b in batches:
            if any(o.name == b.name for o in out):
                b = replace(b, name=f"{b.name}_{rule_name(family)}")
            out.append(b)
    return out


def train_alone(wb: Workbench) -> list[str]:
    """Names of the trained variants the ``train`` rule trains, one job each."""
    batched = {v.name for b in seed_batches(wb) for v in b.variants}
    return [v.name for v in trained(wb) if v.name not in batched]


def alternatives(names) -> str:
    """A wildcard constraint matching exactly ``names`` (none: a pattern that never matches)."""
    return "|".join(re.escape(n) for n in sorted(names)) or "(?!)"
