"""Field-level helpers of the typed configuration: range checks that fail in one line, the YAML
coercions (lists to tuples) and the type check of one value against its annotation."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import asdict
from typing import Any, Literal, get_args, get_origin

from crossl.errors import CrosslError


def fail(where: str, problem: str) -> None:
    raise CrosslError(f"{where}: {problem}")


def positive(where: str, value: float) -> None:
    if not value > 0:
        fail(where, f"must be positive, got {value}")


def non_negative(where: str, value: float) -> None:
    if not value >= 0:
        fail(where, f"must be zero or positive, got {value}")


def plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


def plain_config(config: Any) -> dict[str, Any]:
    """A config dataclass as plain YAML/JSON-ready data (tuples as lists)."""
    return plain(asdict(config))


def coerce(value: Any, kind: Any, spec: dataclasses.Field[Any], where: str) -> Any:
    """YAML's lists become tuples and a lone value a 1-tuple; integers may stand for floats."""
    if get_origin(kind) is tuple and not isinstance(value, (list, tuple)):
        value = (value,)
    if get_origin(kind) is tuple:
        return tuple(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is str and spec.metadata.get("accepts_int") and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _describe(kind: Any) -> str:
    origin = get_origin(kind)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(kind))
    if origin is tuple:
        return f"a list of {_describe(get_args(kind)[0])}"
    if origin is dict:
        key, val = get_args(kind)
        return f"a mapping of {_describe(key)} to {_describe(val)}"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(kind, str(kind))


def _type_ok(value: Any, kind: Any) -> bool:
    origin = get_origin(kind)
    if origin is Literal:
        return isinstance(value, str) and value in get_args(kind)
    if origin is tuple:
        item = get_args(kind)[0]
        return isinstance(value, tuple) and all(_type_ok(v, item) for v in value)
    if origin is dict:
        key, val = get_args(kind)
        return isinstance(value, dict) and all(_type_ok(k, key) and _type_ok(v, val) for k, v in value.items())
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, k) for k in get_args(kind))
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind is str:
        return isinstance(value, str)
    return True


def check_type(value: Any, kind: Any, where: str) -> None:
    if _type_ok(value, kind):
        return
    if get_origin(kind) is Literal and isinstance(value, str):
        raise CrosslError(f"{where}: unknown value {value!r}; use one of {list(get_args(kind))}")
    if get_origin(kind) is tuple and get_origin(get_args(kind)[0]) is Literal and isinstance(value, tuple):
        choices = get_args(get_args(kind)[0])
        unknown = [v for v in value if v not in choices]
        raise CrosslError(f"{where}: unknown value(s) {unknown}; use any of {list(choices)}")
    shown = f"the string {value!r}" if isinstance(value, str) else repr(value)
    hint = ""
    if isinstance(value, str) and kind in (int, float):
        hint = " (write it as a number, e.g. 1.0e-3 rather than 1e-3 in YAML)"
    raise CrosslError(f"{where} must be {_describe(kind)}, got {shown}{hint}")
