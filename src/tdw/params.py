"""Declared parameters of analyzers and figures: name, type, default and meaning, stated
once in the module that uses them; families and configs give overrides only.

``resolve_params`` checks overrides against the declarations (an unknown name or a value of
the wrong type is an error naming the key, the type expected and the names known) and
returns every parameter, defaults filled in. Types are Python annotations over JSON values:
``int``, ``float`` (an integer is accepted and made a float; NaN and the infinities are not:
they pass every range check), ``bool``, ``str``, ``None``,
``list[T]``, ``Literal[...]`` and unions of these. A parameter may also declare a range
``check`` (a value of the right type -> what is wrong with it, or None).
"""

from __future__ import annotations

import copy
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Union


class ParamError(ValueError):
    """A parameter override that an analyzer or figure does not declare, or of the wrong type."""


@dataclass(frozen=True)
class Param:
    """One declared parameter. ``default`` must conform to ``type``; list defaults are
    written as tuples (immutable) and handed out as fresh lists."""

    name: str
    type: Any
    default: Any
    doc: str
    check: Callable[[Any], str | None] | None = None  # a value of the right type -> what is wrong with it, or None

    def __post_init__(self) -> None:
        if not conforms(self.default, self.type):
            raise TypeError(f"parameter {self.name!r}: the default {self.default!r} is not {type_name(self.type)}")
        if self.check is not None and self.check(self.default) is not None:
            raise TypeError(f"parameter {self.name!r}: the default {self.default!r} is out of range: {self.check(self.default)}")


def in_range(lo: float, hi: float, lo_open: bool = False):
    """A range check: ``lo < v <= hi`` (``lo_open``) or ``lo <= v <= hi``."""

    def check(value: float) -> str | None:
        ok = (value > lo if lo_open else value >= lo) and value <= hi
        return None if ok else f"expected {lo} {'<' if lo_open else '<='} value <= {hi}"

    return check


def conforms(value: object, tp: Any) -> bool:
    """Whether a JSON-like value fits annotation ``tp`` (bool is not a number here)."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(conforms(value, arg) for arg in typing.get_args(tp))
    if origin is Literal:
        return any(value == arg and type(value) is type(arg) for arg in typing.get_args(tp))
    if origin is list:
        (item,) = typing.get_args(tp)
        return isinstance(value, list | tuple) and all(conforms(v, item) for v in value)
    if tp is None or tp is type(None):
        return value is None
    if isinstance(value, bool):
        return tp is bool
    if tp is float:
        return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    return isinstance(value, tp)


def type_name(tp: Any) -> str:
    """A readable name for an annotation: ``list[int] | null``, ``'final' | list[int]``."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in typing.get_args(tp))
    if origin is Literal:
        return " | ".join(repr(arg) for arg in typing.get_args(tp))
    if origin is list:
        return f"list[{type_name(typing.get_args(tp)[0])}]"
    if tp is None or tp is type(None):
        return "null"
    return {float: "number", int: "integer", bool: "boolean", str: "string"}.get(tp, getattr(tp, "__name__", str(tp)))


def _not_finite(value: object) -> bool:
    """Whether ``value`` is, or a list of it holds, NaN or an infinity."""
    if isinstance(value, list | tuple):
        return any(_not_finite(v) for v in value)
    return isinstance(value, float) and not math.isfinite(value)


def _plain(value: object, tp: Any) -> object:
    """A fresh JSON-like copy: tuples become lists, an integer given for a float a float."""
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, list | tuple):
        return [copy.deepcopy(v) for v in value]
    return copy.deepcopy(value)


def resolve_params(declared: tuple[Param, ...], given: dict, where: str) -> dict:
    """Every declared parameter, in declaration order: ``given`` overrides checked, defaults
    filled in. ``where`` opens each error message (e.g. the file and key)."""
    known = {p.name: p for p in declared}
    for key in given:
        if key not in known:
            takes = ", ".join(f"{p.name} ({type_name(p.type)})" for p in declared) or "no parameters"
            raise ParamError(f"{where}: unknown parameter {key!r}; it takes {takes}")
    out = {}
    for p in declared:
        value = given.get(p.name, p.default)
        if not conforms(value, p.type):
            if _not_finite(value):
                raise ParamError(f"{where}: parameter {p.name!r}: {value!r} is not a finite number ({p.doc})")
            raise ParamError(f"{where}: parameter {p.name!r}: expected {type_name(p.type)}, not {value!r} ({p.doc})")
        problem = p.check(value) if p.check is not None else None
        if problem is not None:
            raise ParamError(f"{where}: parameter {p.name!r}: {value!r} is out of range: {problem} ({p.doc})")
        out[p.name] = _plain(value, p.type)
    return out
