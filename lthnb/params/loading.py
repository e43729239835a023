"""`load_params`: a YAML file or a mapping (what papermill injected) to one validated Params.

Keys the source leaves out take the network's recipe (`lthnb.nets.registry`), then the schema's
default. Validation errors are raised before TensorFlow is touched.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lthnb.params.rules import check_consistency
from lthnb.params.schema import (
    PARAMETER_NAMES,
    REMOVED_PARAMETERS,
    Params,
    ParamsError,
    network_defaults,
)
from lthnb.params.values import check_value
from lthnb.params.yaml_file import key_text, read_yaml


def load_params(source: str | Path | Mapping[str, Any] | None = None, **overrides: Any) -> Params:
    """Read a YAML file or a mapping (what papermill injected), apply overrides, validate."""
    values: dict[str, Any] = {}
    if isinstance(source, Mapping):
        values.update(source)
    elif source is not None:
        values.update(read_yaml(Path(source)))
    values.update(overrides)
    removed = [key for key in values if key in REMOVED_PARAMETERS]
    if removed:
        raise ParamsError(
            "; ".join(f"{key}: no longer a parameter; {REMOVED_PARAMETERS[key]}" for key in removed)
        )
    unknown = sorted(key_text(key) for key in values if key not in PARAMETER_NAMES)
    if unknown:
        raise ParamsError(_unknown_message(unknown))
    values = {**network_defaults(values.get("arch", Params.arch)), **values}
    hints = typing.get_type_hints(Params)
    checked = {}
    for f in dataclasses.fields(Params):
        if f.name in values:
            checked[f.name] = check_value(f.name, values[f.name], hints[f.name], f.metadata)
    params = Params(**checked)
    check_consistency(params)
    return params


def _unknown_message(unknown: list[str]) -> str:
    """`key: unknown parameter`, with the closest known names for typos."""
    matches = {key: difflib.get_close_matches(key, PARAMETER_NAMES, n=1) for key in unknown}
    hints = [
        match[0] if len(unknown) == 1 else f"{key} -> {match[0]}"
        for key, match in matches.items()
        if match
    ]
    plural = "s" if len(unknown) > 1 else ""
    message = f"{', '.join(unknown)}: unknown parameter{plural}"
    if hints:
        message += f"; did you mean {', '.join(hints)}?"
    return f"{message}; known parameters: {', '.join(PARAMETER_NAMES)}"
