"""A trial's tables restricted to its finished units, and the run-level tables merged from every
trial's (under a lock, since trials of one run folder may train in parallel processes).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

import filelock
import pandas as pd

from lthnb.controls.kinds import kind_sort_key
from lthnb.runs.paths import RunPaths
from lthnb.runs.tables import DamagedFile, notice, read_table, write_table

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


def completed_rows(
    path: Path,
    completed: Collection[str],
    key_columns: Sequence[str],
    columns: Sequence[str] = (),
    advice: str | None = None,
) -> pd.DataFrame:
    """The rows of a table whose unit, its `key_columns` joined by "/", is in `completed`.

    Tables are written before the state that marks a unit complete, so rows of a unit that was
    cut off are dropped here; a table not written yet (no unit complete) is empty with
    `columns`. A missing or damaged one is refused with `advice` (by default: a trial's table,
    see read_table).
    """
    if not completed and not path.exists():
        return pd.DataFrame(columns=list(columns))
    table = read_table(path, key_columns, advice)
    keys = table[key_columns[0]].astype(str)
    for column in key_columns[1:]:
        keys = keys + "/" + table[column].astype(str)
    return table[keys.isin(completed)].reset_index(drop=True)


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
        damage = _damage(getattr(paths, name))
        write_table(getattr(paths, name), table)
        if damage:
            notice(f"{damage}; rebuilt it from the trials' {name}.csv")
        merged.append(table)
    return merged[0], merged[1]


def _damage(path: Path) -> str | None:
    """What is wrong with a run-level table about to be rebuilt; None if it reads or is not
    there yet."""
    try:
        if path.exists():
            read_table(path, advice="")
    except DamagedFile as damage:
        return damage.what
    return None
