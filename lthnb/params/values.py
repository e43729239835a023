"""Checks of one parameter's value against its declared type and allowed values.

Each failure is one line naming the key, the value (shortened) and what is allowed.
"""

from __future__ import annotations

import math
import re
import reprlib
import types
import typing
from collections.abc import Mapping
from typing import Any

from lthnb.params.schema import Params, ParamsError

# Integers end up in numpy and TensorFlow, which hold them in 64 bits.
MAX_INT = 2**63 - 1
# PyYAML follows YAML 1.1, where `1e-3` (no dot, no exponent sign) is a string; YAML 1.2,
# JSON and papermill's `-p` read it as a number, so float parameters accept such strings.
_FLOAT_TEXT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def check_value(name: str, value: Any, hint: Any, rules: Mapping[str, Any]) -> Any:
    value = _check_type(name, value, hint)
    if value is None:
        return value
    if "problem" in rules and (problem := rules["problem"](value)):
        raise ParamsError(f"{name}: {problem}")
    if "choices" in rules and value not in rules["choices"]:
        allowed = " | ".join(rules["choices"])
        raise ParamsError(f"{name}: {show(value)} is not allowed; use one of {allowed}")
    if "minimum" in rules and value < rules["minimum"]:
        raise ParamsError(f"{name}: {show(value)} is too small; it must be >= {rules['minimum']}")
    if "maximum" in rules and value > rules["maximum"]:
        raise ParamsError(f"{name}: {show(value)} is too large; it must be <= {rules['maximum']}")
    if "exclusive_minimum" in rules and value <= rules["exclusive_minimum"]:
        raise ParamsError(f"{name}: {show(value)} must be > {rules['exclusive_minimum']}")
    if "below" in rules and value >= rules["below"]:
        raise ParamsError(
            f"{name}: {show(value)} is out of range; it must be in [{rules.get('minimum', 0)}, "
            f"{rules['below']})"
        )
    if "item_choices" in rules:
        _check_items(name, value, rules["item_choices"])
    if "item_minimum" in rules and any(item < rules["item_minimum"] for item in value):
        raise ParamsError(f"{name}: {show(value)} must hold integers >= {rules['item_minimum']}")
    if rules.get("unique"):
        _check_unique(name, value)
    return value


def _check_items(name: str, value: list, choices: tuple[str, ...]) -> None:
    """A list drawn from `choices`."""
    unknown = [item for item in value if item not in choices]
    if unknown:
        raise ParamsError(
            f"{name}: {', '.join(map(show, unknown))} unknown; known: {', '.join(choices)}"
        )


def _check_unique(name: str, value: list) -> None:
    """Each item at most once (a duplicate would train or analyse the same thing twice)."""
    repeated = sorted({item for item in value if value.count(item) > 1})
    if repeated:
        raise ParamsError(f"{name}: {', '.join(map(str, repeated))} given twice; list each once")


def _check_type(name: str, value: Any, hint: Any) -> Any:
    """Accept exactly the declared type; ints are fine where floats are expected."""
    optional = isinstance(hint, types.UnionType) and type(None) in hint.__args__
    if optional and isinstance(value, str) and not value.strip():
        value = None  # an empty path means "not set", not the current folder
    if value is None:
        if optional:
            return None
        raise ParamsError(f"{name}: a value is required (got null); default is {_default(name)!r}")
    base = next(a for a in hint.__args__ if a is not type(None)) if optional else hint
    if typing.get_origin(base) is list:
        return _check_list(name, value, typing.get_args(base)[0])
    if base is bool:
        if isinstance(value, bool):
            return value
    elif base is int:
        if _is_int(value):
            return _int64(name, value)
    elif base is float:
        if (isinstance(value, int | float) and not isinstance(value, bool)) or (
            isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip())
        ):
            return _finite_float(name, value)
    elif isinstance(value, str):
        return value
    kind = type(value).__name__
    article = "an" if kind[0] in "aeiou" else "a"
    raise ParamsError(
        f"{name}: {show(value)} is {article} {kind}, expected {base.__name__} "
        f"(default {_default(name)!r})"
    )


def _check_list(name: str, value: Any, item_type: type) -> list:
    """A list of ints (e.g. dense_units) or of strings (e.g. compare_with)."""
    if isinstance(value, str) and value.strip().startswith("["):
        raise ParamsError(  # papermill's -p passes its value as text
            f"{name}: {show(value)} is text, not a list; with papermill give a list as YAML: "
            f'-y "{name}: {value.strip()}"'
        )
    if item_type is int:
        if isinstance(value, list | tuple) and all(_is_int(v) for v in value):
            return [_int64(name, v) for v in value]
        raise ParamsError(f"{name}: {show(value)} must be a list of integers, e.g. [300, 100]")
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ParamsError(f"{name}: {show(value)} must be a list of strings, e.g. [runs/conv2]")


def _finite_float(name: str, value: int | float | str) -> float:
    """float(value), refusing nan, inf and ints too large for a float."""
    try:
        number = float(value)
    except OverflowError:
        raise ParamsError(f"{name}: {show(value)} is too large for a float") from None
    if not math.isfinite(number):
        raise ParamsError(f"{name}: {show(value)} is not a finite number")
    return number


def _int64(name: str, value: int) -> int:
    if abs(value) > MAX_INT:
        raise ParamsError(f"{name}: {show(value)} is too large; integers must be <= {MAX_INT}")
    return int(value)


class _ShortRepr(reprlib.Repr):
    """repr() for error messages: one line, shortened, safe for integers of any size."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxlist, self.maxtuple, self.maxdict = 3, 8, 8, 8
        self.maxstring = self.maxother = self.maxlong = 80

    def repr_int(self, x: int, level: int) -> str:
        if abs(x) > MAX_INT:  # str() refuses ints over 4300 digits
            return f"{'-' if x < 0 else ''}<a {x.bit_length()}-bit integer>"
        return super().repr_int(x, level)


show = _ShortRepr().repr


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _default(name: str) -> Any:
    return getattr(Params(), name)
