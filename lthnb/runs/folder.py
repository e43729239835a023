"""Opening a run folder: its stored parameters, and the check that a rerun continues the same
experiment (only the schema's resumable parameters may differ, and controls may only grow).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from lthnb.controls.kinds import REINIT
from lthnb.params import (
    REMOVED_PARAMETERS,
    RESUMABLE_PARAMETERS,
    Params,
    default_values,
    load_params,
)
from lthnb.runs.paths import RunPaths
from lthnb.runs.tables import RunFolderError, notice, read_yaml_mapping, write_text

# params.yaml is what 04_train was given, so 04_train writes it again.
PARAMS_ADVICE = (
    "restore it from a copy, or run 04_train with the run's parameters to write it again "
    "(delete a damaged one first; nothing is trained again)"
)


def open_run(params: Params) -> RunPaths:
    """Create the run folder, or check that an existing one was made with the same parameters.

    Controls may be added to an existing run (they train for its finished rounds); the stored
    parameters then list them, so that dropping one later is refused. A run folder that lost
    its params.yaml gets it again from `params` (complete: every key has its value).
    """
    paths = RunPaths(params.run_dir)
    lost = not paths.params.exists() and any(t.state.exists() for t in paths.trials())
    if paths.params.exists():
        stored = stored_params(paths.params)
        _check_same_params(paths.params, stored, params)
        if stored.get("controls") == params.controls:
            return paths
    write_text(paths.params, yaml.safe_dump(params.to_dict(), sort_keys=False))
    if lost:
        notice(f"{paths.params} was missing; wrote it again from the parameters given")
    return paths


def read_run_params(paths: RunPaths) -> Params:
    return load_params(stored_params(paths.params))


def stored_params(path: Path) -> dict:
    """A run folder's parameters, with `random_reinit` (before `controls`) read as controls."""
    stored = read_yaml_mapping(path, PARAMS_ADVICE)
    if "random_reinit" in stored:
        stored["controls"] = [REINIT] if stored.pop("random_reinit") else []
    return stored


def _check_same_params(path: Path, stored: dict, params: Params) -> None:
    old_keys = sorted(key for key in stored if key in REMOVED_PARAMETERS)
    if old_keys:
        raise RunFolderError(
            f"run folder {path.parent} was made by an earlier lthnb with {', '.join(old_keys)}, "
            "counted in epochs; this lthnb counts iterations (iterations, eval_every, "
            "rewind_iteration). Use another output_dir, or delete the folder to start over."
        )
    dropped = [kind for kind in stored.get("controls", []) if kind not in params.controls]
    if dropped:
        raise RunFolderError(
            f"run folder {path.parent} has {', '.join(dropped)} results; controls must keep "
            f"{stored['controls']} (adding controls is fine). Use another output_dir to run "
            "without them."
        )
    current = params.to_dict()
    # a parameter newer than the folder had its default there (its network's recipe first)
    defaults = default_values(stored.get("arch"))
    differences = [
        f"{key}: {stored.get(key, defaults[key])!r} there, {current[key]!r} now"
        for key in current
        if key not in (*RESUMABLE_PARAMETERS, "controls")
        and stored.get(key, defaults[key]) != current[key]
    ]
    if differences:
        raise RunFolderError(
            f"run folder {path.parent} was made with different parameters ("
            + "; ".join(differences)
            + "). Use another output_dir, or delete the folder to start over."
        )
