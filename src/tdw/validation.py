"""Checking config, family and variant files: the error every check raises, and JSON-schema
validation whose messages name the file, the key and what is expected."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from tdw.errors import ConfigError
from tdw.names import UnsafeNameError, check_name
from tdw.params import ParamError, resolve_params

__all__ = ["ConfigError", "check_path_name", "checked_params", "load_yaml", "read_json", "schema", "validate"]


def check_path_name(name: object, where: str, what: str) -> str:
    """``name`` if it is a safe path component (``tdw.names.check_name``: 1-100 characters of
    [A-Za-z0-9_.-], not ``.`` or ``..``, not a folder the results layout uses); else a
    ``ConfigError`` that opens with ``where``."""
    try:
        return check_name(name, what)
    except UnsafeNameError as err:
        raise ConfigError(f"{where}: {err}") from None


def _is_finite_number(checker, instance) -> bool:
    """JSON Schema's "number", less NaN and the infinities (every bound passes for NaN)."""
    return isinstance(instance, int | float) and not isinstance(instance, bool) and math.isfinite(instance)


# Every schema's numbers are finite: "minimum" and "maximum" cannot refuse NaN.
_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("number", _is_finite_number),
)


def schema(name: str) -> dict:
    return json.loads(resources.files("tdw.schemas").joinpath(name).read_text())


@cache
def _validator(schema_name: str) -> jsonschema.protocols.Validator:
    return _Validator(schema(schema_name))


def _message(err: jsonschema.ValidationError) -> str:
    """jsonschema's message, said for a config: a missing key as missing, a NaN as not finite."""
    if err.validator == "required":
        missing = [k for k in err.validator_value if isinstance(err.instance, dict) and k not in err.instance]
        return f"missing {', '.join(repr(k) for k in missing)} (required)"
    if err.validator == "type" and isinstance(err.instance, float) and not math.isfinite(err.instance):
        return f"{err.instance!r} is not a finite number"
    if err.validator == "minItems" and err.instance == []:
        return "an empty list: give at least one value"
    return err.message


def _branch(err: jsonschema.ValidationError) -> jsonschema.ValidationError | None:
    """Of a ``oneOf`` error, the error of the branch the value was meant for: the one whose
    ``kind`` it names, else one of its type with the fewest errors (a range missing ``every``
    is a range, not a badly typed integer). None: no branch fits its type."""
    branches: dict[int, list] = {}
    for e in err.context:
        branches.setdefault(e.relative_schema_path[0], []).append(e)

    def rejects(e) -> bool:
        at_root = not e.relative_path
        on_kind = list(e.relative_path) == ["kind"] and e.validator == "const"
        return (at_root and e.validator in ("type", "const")) or on_kind

    fitting = [errs for errs in branches.values() if not any(rejects(e) for e in errs)]
    if not fitting:
        return None
    best = min(fitting, key=len)
    return min(best, key=lambda e: (e.validator != "required", len(e.absolute_path)))


def validate(obj: object, schema_name: str, source: str | Callable[[list], str]) -> None:
    """Check ``obj`` against a schema; ``source`` names the file, or maps a key path to the
    file that states it. Numbers must be finite."""
    errors = sorted(_validator(schema_name).iter_errors(obj), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    err = errors[0]
    path = list(err.absolute_path)
    key = ".".join(str(k) for k in path) or "(top level)"
    if err.validator == "oneOf" and err.context:
        branch = _branch(err)
        if branch is None and isinstance(err.instance, dict) and "kind" in err.instance:
            kinds = [b.get("properties", {}).get("kind", {}).get("const") for b in err.validator_value]
            where = source(path + ["kind"]) if callable(source) else source
            raise ConfigError(
                f"{where}: key '{key}.kind': {err.instance['kind']!r} is not one of {', '.join(repr(k) for k in kinds if k)}"
            )
        if branch is None:
            expected = err.schema.get("description", "")
            where = source(path) if callable(source) else source
            raise ConfigError(
                f"{where}: key {key!r}: {err.instance!r} is none of the accepted forms" + (f" ({expected})" if expected else "")
            )
        err = branch
        path = list(err.absolute_path)
        key = ".".join(str(k) for k in path)
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed)) if isinstance(err.instance, dict) else []
        where = source(path + extra[:1]) if callable(source) else source
        hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        raise ConfigError(f"{where}: key {key!r}: {err.message}{hint}")
    expected = err.schema.get("description", "") if isinstance(err.schema, dict) else ""
    where = source(path) if callable(source) else source
    raise ConfigError(f"{where}: key {key!r}: {_message(err)}" + (f" (expected: {expected})" if expected else ""))


def checked_params(declared: tuple, given: dict, where: str) -> dict:
    """``resolve_params`` with its errors as ``ConfigError`` (``where`` opens the message)."""
    try:
        return resolve_params(declared, given, where)
    except ParamError as err:
        raise ConfigError(str(err)) from None


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses a key given twice in one mapping (the plain loader keeps
    the last value without a word)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                f"key {key!r} appears twice in one mapping (lines {seen[key] + 1} and {key_node.start_mark.line + 1}); "
                "give each key once"
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(path: str | Path) -> object:
    """A YAML file's content; a file that is missing, a folder, not UTF-8, not YAML or with a
    key given twice is a ``ConfigError`` naming it."""
    path = Path(path)
    text = _read_text(path, "a YAML config file")
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None


def _read_text(path: Path, what: str) -> str:
    """A file's text, strictly UTF-8; a folder, a missing file or other bytes are a ``ConfigError``."""
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; expected {what}")
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason}); save the file as UTF-8") from None


def _object(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object that names each key once (``json`` keeps the last value without a word)."""
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise ConfigError(f"key {key!r} appears twice in one object; give each key once")
        out[key] = value
    return out


def read_json(path: str | Path) -> object:
    """A JSON file's content; a file that is missing, a folder, not UTF-8, not JSON or with a key
    given twice in one object is a ``ConfigError`` naming it."""
    path = Path(path)
    text = _read_text(path, "a JSON file")
    try:
        return json.loads(text, object_pairs_hook=_object)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON: {err}") from err
