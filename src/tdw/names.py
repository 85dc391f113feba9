"""The one check of a name that becomes a path component (a family, variant, config, report or
sweep name): a safe, bounded name that cannot climb out of its folder or take the place of a
folder the results layout uses beside it."""

from __future__ import annotations

import re

from tdw.errors import ConfigError
from tdw.layout import FAMILY_FILES, LOGS

MAX_LENGTH = 100
PATTERN = re.compile(r"[A-Za-z0-9_.-]+")
# Folders and files the layout puts beside family and variant folders; compared ignoring case,
# since on a case-insensitive file system `Compare` is the same folder as `compare`.
RESERVED = frozenset(n.lower() for n in (*FAMILY_FILES.values(), LOGS))
EXPECTED = f"1 to {MAX_LENGTH} of the characters A-Z a-z 0-9 _ . - (not '.' or '..', nor one of {sorted(RESERVED)})"


class UnsafeNameError(ConfigError):
    """A name that cannot be a path component of the workbench's layout."""


def check_name(name: object, what: str) -> str:
    """``name`` when it is a safe path component, else ``UnsafeNameError`` whose message names
    ``what`` (e.g. ``"config name"``), the value and what is expected."""
    if not isinstance(name, str):
        raise UnsafeNameError(f"{what} {name!r}: expected a text name of {EXPECTED}")
    if not name:
        problem = "is empty"
    elif len(name) > MAX_LENGTH:
        problem = f"has {len(name)} characters"
    elif not PATTERN.fullmatch(name):
        bad = sorted({c for c in name if not PATTERN.fullmatch(c)})
        problem = "has the character" + "s" * (len(bad) > 1) + " " + ", ".join(repr(c) for c in bad)
    elif name in (".", ".."):
        problem = "is a relative folder"
    elif name.lower() in RESERVED:
        problem = "is a folder or file the results layout uses"
    else:
        return name
    shown = name if len(name) <= MAX_LENGTH else name[:40] + "..."
    raise UnsafeNameError(f"{what} {shown!r} {problem}; expected {EXPECTED}")
