"""Reading and writing a run folder: atomic files, tidy tables, resumable trial state.

Every write goes to a temporary file that is renamed over the target, so a killed process
leaves either the old or the new file, never half of one. No pickle anywhere: tables are CSV,
arrays are .npz loaded with allow_pickle=False, parameters are YAML/JSON.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import filelock
import numpy as np
import pandas as pd
import yaml

from lthnb.controls.kinds import REINIT, kind_sort_key
from lthnb.params import (
    REMOVED_PARAMETERS,
    RESUMABLE_PARAMETERS,
    Params,
    load_params,
    network_defaults,
)
from lthnb.runs.paths import RunPaths, TrialPaths

Arrays = dict[str, np.ndarray]
UNIT_KEYS = ["trial", "round", "kind"]
# evaluations.csv: one row per evaluation point of a unit; iterations are absolute, and the
# train metrics are means over the mini-batches since the previous pause.
EVALUATION_COLUMNS = [
    *UNIT_KEYS,
    "percent_remaining",
    "iteration",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
]


class RunFolderError(RuntimeError):
    """The run folder cannot be used as it is; the message says how to fix it."""


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path next to `target` that replaces it once the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=target.suffix, dir=target.parent
    )
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(target: Path, text: str) -> None:
    with atomic_path(target) as temporary:
        temporary.write_text(text)


def write_table(target: Path, table: pd.DataFrame) -> None:
    with atomic_path(target) as temporary:
        table.to_csv(temporary, index=False)


def read_table(path: Path) -> pd.DataFrame:
    """A CSV table, or a clear error naming the file if it cannot be parsed."""
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise RunFolderError(
            f"{path} is corrupt ({error}); delete that trial's folder to recompute it"
        ) from None


def open_run(params: Params) -> RunPaths:
    """Create the run folder, or check that an existing one was made with the same parameters.

    Controls may be added to an existing run (they train for its finished rounds); the stored
    parameters then list them, so that dropping one later is refused.
    """
    paths = RunPaths(params.run_dir)
    if paths.params.exists():
        stored = _stored_params(paths.params)
        _check_same_params(paths.params, stored, params)
        if stored.get("controls") == params.controls:
            return paths
    write_text(paths.params, yaml.safe_dump(params.to_dict(), sort_keys=False))
    return paths


def read_run_params(paths: RunPaths) -> Params:
    return load_params(_stored_params(paths.params))


def _stored_params(path: Path) -> dict:
    """A run folder's parameters, with `random_reinit` (before `controls`) read as controls."""
    stored = yaml.safe_load(path.read_text()) or {}
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
    defaults = {**Params().to_dict(), **network_defaults(stored.get("arch"))}
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


@contextmanager
def exclusive_writer(folder: Path, lock_path: Path, advice: str) -> Iterator[None]:
    """Hold `folder`'s OS file lock: one process writes it at a time, and a process that dies
    releases it. A second writer is refused at once with `advice`."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(lock_path, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise RunFolderError(
            f"{folder} is being written by another process (lock {lock_path}); {advice}"
        ) from None
    try:
        yield
    finally:
        lock.release()


def trial_writer(paths: TrialPaths) -> AbstractContextManager[None]:
    """One process trains a trial at a time."""
    return exclusive_writer(paths.root, paths.lock, "wait for it to finish or run another trial")


@dataclass
class TrialState:
    """Everything needed to continue a trial after its last completed (round, kind)."""

    theta0: Arrays
    masks: Arrays
    trained_kernels: Arrays
    rewind: Arrays | None = None
    completed: list[str] = field(default_factory=list)
    diverged_round: int | None = None  # the round whose ticket diverged: nothing to prune
    # per round, the "trial/kind" units that trained in its stack: tells a finished round from
    # one whose saving was cut off (run folders from before this was recorded have none)
    companies: dict[int, list[str]] = field(default_factory=dict)

    @staticmethod
    def unit(round_index: int, kind: str) -> str:
        return f"{round_index}/{kind}"

    def is_done(self, round_index: int, kind: str) -> bool:
        return self.unit(round_index, kind) in self.completed

    @property
    def last_round(self) -> int:
        """The latest round with a completed unit; -1 before any."""
        return self._last_round_of(self.completed)

    @property
    def last_ticket_round(self) -> int:
        """The latest round whose ticket is done; -1 before any."""
        return self._last_round_of(unit for unit in self.completed if unit.endswith("/ticket"))

    @staticmethod
    def _last_round_of(units) -> int:
        return max((int(unit.split("/")[0]) for unit in units), default=-1)

    def ended_before(self, round_index: int) -> bool:
        """A diverged ticket ends its trial: its weights are no base for the next mask."""
        return self.diverged_round is not None and round_index > self.diverged_round


_STATE_GROUPS = ("theta0", "masks", "trained_kernels", "rewind")


def save_state(path: Path, state: TrialState) -> None:
    arrays = {
        f"{group}:{key}": value
        for group in _STATE_GROUPS
        for key, value in (getattr(state, group) or {}).items()
    }
    arrays["completed"] = np.array(state.completed, dtype=np.str_)
    for round_index, company in state.companies.items():
        arrays[f"company:{round_index}"] = np.array(company, dtype=np.str_)
    if state.diverged_round is not None:
        arrays["diverged_round"] = np.array(state.diverged_round)
    write_arrays(path, arrays)


def write_arrays(target: Path, arrays: Arrays) -> None:
    """A compressed .npz, written atomically."""
    with atomic_path(target) as temporary, temporary.open("wb") as handle:
        np.savez_compressed(handle, **arrays)


def write_round_record(path: Path, masks: Arrays, trained_kernels: Arrays) -> None:
    """A ticket round's masks and trained kernels (float16): what the analyses of a run read."""
    record = {f"mask:{name}": mask.astype(np.uint8) for name, mask in masks.items()}
    for name, kernel in trained_kernels.items():
        record[f"trained:{name}"] = kernel.astype(np.float16)
    write_arrays(path, record)


def read_round_record(path: Path) -> tuple[Arrays, Arrays]:
    """(masks as float32 0/1, trained kernels as float32) of a ticket round's record."""
    if not path.exists():
        raise RunFolderError(f"{path} does not exist; run 04_train for that trial first")
    with np.load(path, allow_pickle=False) as archive:
        groups: dict[str, Arrays] = {"mask": {}, "trained": {}}
        for key in archive.files:
            group, name = key.split(":", 1)
            groups[group][name] = archive[key].astype(np.float32)
    return groups["mask"], groups["trained"]


def load_state(path: Path) -> TrialState | None:
    """The saved state, None if the trial has not started, or a clear error if it is corrupt."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            groups: dict[str, Arrays] = {group: {} for group in (*_STATE_GROUPS, "company")}
            for name in archive.files:
                if name not in ("completed", "diverged_round"):
                    group, key = name.split(":", 1)
                    groups[group][key] = archive[name]
            companies = {
                int(round_index): [str(unit) for unit in units]
                for round_index, units in groups["company"].items()
            }
            completed = [str(unit) for unit in archive["completed"]]
            diverged = int(archive["diverged_round"]) if "diverged_round" in archive else None
    except (OSError, ValueError, KeyError) as error:
        raise RunFolderError(
            f"trial state {path} is unreadable ({error}); delete {path.parent} to rerun that trial"
        ) from None
    return TrialState(
        theta0=groups["theta0"],
        masks=groups["masks"],
        trained_kernels=groups["trained_kernels"],
        rewind=groups["rewind"] or None,
        completed=completed,
        diverged_round=diverged,
        companies=companies,
    )


def completed_rows(path: Path, state: TrialState | None) -> pd.DataFrame:
    """A trial's table restricted to the units its state marks complete.

    Tables are written before the state, so rows of a unit that was cut off are dropped here.
    """
    if state is None or not path.exists():
        return pd.DataFrame()
    table = read_table(path)
    done = table["round"].astype(str) + "/" + table["kind"].astype(str)
    return table[done.isin(state.completed)].reset_index(drop=True)


def merge_trials(paths: RunPaths) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Concatenate every trial's tables into the run-level evaluations.csv and rounds.csv.

    Processes training other trials merge too; the lock makes the last merge see every table.
    """
    paths.root.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(paths.merge_lock):
        return _merge_unlocked(paths)


def _merge_unlocked(paths: RunPaths) -> tuple[pd.DataFrame, pd.DataFrame]:
    merged = []
    for name in ("evaluations", "rounds"):
        tables = [
            read_table(getattr(trial, name))
            for trial in paths.trials()
            if getattr(trial, name).exists()
        ]
        table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
        if not table.empty:
            sort_keys = UNIT_KEYS + (["iteration"] if name == "evaluations" else [])
            table = table.sort_values(sort_keys, key=kind_sort_key, kind="stable")
            table = table.reset_index(drop=True)
        write_table(getattr(paths, name), table)
        merged.append(table)
    return merged[0], merged[1]


def write_ticket_info(path: Path, info: dict) -> None:
    write_text(path, json.dumps(info, indent=2))


def read_ticket_info(path: Path) -> dict | None:
    """The exported ticket's round and sizes; None if not exported yet."""
    return json.loads(path.read_text()) if path.exists() else None
