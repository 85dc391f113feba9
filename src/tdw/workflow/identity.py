"""A variant's name determines its definition: a results folder that already holds a variant
of the same name defined differently is refused while the DAG is built, before any job could
retrain it and replace its files.

A variant's definition is what its ``config.json`` records (family, task, seeds,
architecture, recipe; a legacy variant's source file: ``tdw.io.variant.variant_config``, the
function the trainer writes it with) less what only extends or ends the run: the checkpoint schedule (more epochs or checkpoints resume) and early stopping. A
variant still training has no ``config.json`` yet; its ``train_state/key.json`` records the
same definition. ``replace`` names variants whose differently defined folder the user asks
to set aside: the folder moves to ``<family>/replaced/<variant>-<UTC time>/`` (nothing is
deleted) and the variant is made anew.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tdw.errors import ConfigError
from tdw.layout import FamilyLayout, VariantLayout

# Keys of config.json that extend or end a run rather than define it.
NOT_DEFINING = ("checkpoint_epochs", "legacy_config")
NOT_DEFINING_TRAIN = ("early_stop",)


def defining(config: dict) -> dict:
    """``config`` less the keys that do not define a variant."""
    out = {k: v for k, v in config.items() if k not in NOT_DEFINING}
    if isinstance(out.get("train"), dict):
        out["train"] = {k: v for k, v in out["train"].items() if k not in NOT_DEFINING_TRAIN}
    if out.get("data_seed") == out.get("seed"):  # written by newer trainers only: absent means the seed
        out.pop("data_seed", None)
    return out


def differences(recorded: dict, wanted: dict, prefix: str = "") -> list[tuple[str, object, object]]:
    """(key, recorded value, wanted value) of every key whose values differ, nested keys
    dotted; a key one side lacks has value ``None`` there (lists compare as values)."""
    out = []
    for key in sorted(set(recorded) | set(wanted)):
        a, b = recorded.get(key), wanted.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif _normal(a) != _normal(b):
            out.append((f"{prefix}{key}", a, b))
    return out


def _normal(value: object) -> object:
    """Lists and tuples alike (JSON has no tuples)."""
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    return value


def recorded(layout: VariantLayout) -> tuple[dict | None, Path | None]:
    """The definition on disk and the file it was read from: ``config.json``, else the train
    state's key file of a run not finished yet; (None, None) where neither exists. A file
    that cannot be read is an error naming it."""
    for path, pick in ((Path(layout.config), lambda d: d), (Path(layout.state_key), lambda d: d.get("config"))):
        if not path.is_file():
            continue
        try:
            found = pick(json.loads(path.read_text()))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ConfigError(
                f"{path}: cannot be read ({err}); the variant's definition on disk is unknown: move the folder "
                f"{layout.dir} aside or delete it to make the variant anew"
            ) from None
        if isinstance(found, dict):
            return found, path
    return None, None


@dataclass(frozen=True)
class Conflict:
    variant: str
    layout: VariantLayout
    path: Path
    diffs: tuple[tuple[str, object, object], ...]

    def describe(self) -> str:
        lines = [f"  {k}: {_show(a)} on disk, {_show(b)} in this config" for k, a, b in self.diffs]
        return f"variant {self.variant!r} ({self.path}):\n" + "\n".join(lines)


def _show(value: object) -> str:
    return "absent" if value is None else json.dumps(value)


def conflicts(wanted: Iterable[tuple[VariantLayout, dict]]) -> list[Conflict]:
    """Variants whose folder holds a different definition than ``wanted`` (layout, the
    definition this config gives it)."""
    out = []
    for layout, config in wanted:
        found, path = recorded(layout)
        if found is None or path is None:
            continue
        diffs = differences(defining(found), defining(config))
        if diffs:
            out.append(Conflict(config["variant"], layout, path, tuple(diffs)))
    return out


def check_existing(wanted: Iterable[tuple[VariantLayout, dict]], replace: Iterable[str], source: str) -> list[Conflict]:
    """Refuse variants whose folders hold another definition, unless named in ``replace``;
    returns the conflicts to replace (``set_aside`` moves their folders)."""
    replace = set(replace)
    found = conflicts(wanted)
    refused = [c for c in found if c.variant not in replace]
    if refused:
        names = ",".join(c.variant for c in refused)
        raise ConfigError(
            f"{source}: {len(refused)} variant(s) already exist on disk with a different definition; nothing was run:\n"
            + "\n".join(c.describe() for c in refused)
            + "\nA variant's name must determine its definition. Either give this config's variants other names "
            "(a 'variant_name' template, or a 'results' folder of their own), or replace the variants on disk (their "
            f"folders move to replaced/ beside them, nothing is deleted): --config replace={names}"
        )
    return found


def set_aside(found: Iterable[Conflict]) -> list[str]:
    """Move each conflicting variant's folder to ``<family>/replaced/<variant>-<UTC time>``;
    one line per folder moved."""
    lines = []
    for c in found:
        target = _replaced_folder(c.layout)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(c.layout.dir, target)
        lines.append(f"variant {c.variant!r} replaced: its former folder is now {target}")
    return lines


def _replaced_folder(layout: VariantLayout) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return FamilyLayout(layout.results, layout.family).replaced(layout.variant, stamp)


def replace_names(value: object, source: str, known: Iterable[str]) -> tuple[str, ...]:
    """The config's ``replace`` (a variant name, a comma-separated list or a list), each a
    variant of this config."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ConfigError(f"{source}: key 'replace': {value!r}: give variant names, comma-separated or as a list")
    known = set(known)
    names = tuple(i.strip() for i in items if i.strip())
    for n in names:
        if n not in known:
            raise ConfigError(f"{source}: key 'replace': {n!r} is not a variant of this config; its variants: {sorted(known)}")
    return names
