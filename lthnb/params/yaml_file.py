"""Reading a params file: YAML that must hold `key: value` lines, each key once.

Errors are one line: the file, then the line and column of the problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lthnb.params.schema import ParamsError


def key_text(key: Any) -> str:
    """A key as written in a params file; odd ones (numbers, spaces, newlines) quoted."""
    return key if isinstance(key, str) and key.isidentifier() else repr(key)


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ParamsError(
            f"parameter file {path} does not exist; pass a path like params/demo.yaml"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
        raise ParamsError(f"parameter file {path} cannot be read: {reason}") from None
    try:
        loaded = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader
    except _DuplicateKeyError as error:
        raise ParamsError(f"parameter file {path} {error}") from None
    except yaml.YAMLError as error:
        raise ParamsError(
            f"parameter file {path} is not valid YAML: {_yaml_problem(error)}"
        ) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ParamsError(
            f"parameter file {path} must hold `key: value` lines, got a {type(loaded).__name__}"
        )
    return loaded


class _DuplicateKeyError(yaml.YAMLError):
    """A mapping gives one key twice (PyYAML would keep the last value silently)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                first = first_lines.get(key)
            except TypeError:  # an unhashable key: construct_mapping explains it
                break
            if first is not None:
                raise _DuplicateKeyError(
                    f"gives {key_text(key)} twice (lines {first} and {line}); keep one"
                )
            first_lines[key] = line
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: `line L, column C: problem`."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return " ".join(str(error).split())
