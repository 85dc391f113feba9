"""Checking config, family and variant files: the error every check raises, and JSON-schema
validation whose messages name the file, the key and what is expected."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import jsonschema

from tdw.errors import ConfigError
from tdw.params import ParamError, resolve_params

__all__ = ["ConfigError", "checked_params", "read_json", "schema", "validate"]


def schema(name: str) -> dict:
    return json.loads(resources.files("tdw.schemas").joinpath(name).read_text())


def validate(obj: object, schema_name: str, source: str | Callable[[list], str]) -> None:
    """Check ``obj`` against a schema; ``source`` names the file, or maps a key path to the
    file that states it."""
    validator = jsonschema.Draft202012Validator(schema(schema_name))
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


def checked_params(declared: tuple, given: dict, where: str) -> dict:
    """``resolve_params`` with its errors as ``ConfigError`` (``where`` opens the message)."""
    try:
        return resolve_params(declared, given, where)
    except ParamError as err:
        raise ConfigError(str(err)) from None


def read_json(path: str | Path) -> object:
    """A JSON file's content; a file that is not JSON is a ``ConfigError`` naming it."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON: {err}") from err
