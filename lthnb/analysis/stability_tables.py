"""The instability analysis's files (`<run>/stability/`): tidy tables that resume unit by unit.

path_points.csv holds one row per (trial, round, k, alpha): test loss and error, and train loss
and error on a fixed subset of the training split. instability.csv holds one row per (trial,
round, k): the instabilities of test and train error, the two copies' test accuracies and their
mean. Errors and accuracies are fractions, as in rounds.csv. completed.json lists the units whose
rows count: tables are written first and the unit marked after, so rows of a unit cut off by a
kill are dropped when the analysis resumes. It also records what identifies the paths beyond the
units: `stability_points` and `batch_norm`, what the paths did with batch norm statistics
(recompute | interpolate, or none for a network without batch norm); an analysis resumed with
another is refused, never mixed. No TensorFlow here, so figures load fast.
"""

from __future__ import annotations

import dataclasses
import json
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lthnb.runs.merge import completed_rows
from lthnb.runs.paths import RunPaths, StabilityPaths
from lthnb.runs.tables import (
    RunFolderError,
    exclusive_writer,
    read_json,
    write_table,
    write_text,
)

NO_BATCH_NORM = "none"  # a network without batch norm: recompute and interpolate agree
UNRECORDED = "unrecorded"  # written before `batch_norm` was recorded: statistics were mixed
UNIT_COLUMNS = ["trial", "round", "rewind_iteration"]
POINT_COLUMNS = [
    *UNIT_COLUMNS, "percent_remaining", "alpha",
    "test_loss", "test_error", "train_loss", "train_error",
]  # fmt: skip
INSTABILITY_COLUMNS = [
    *UNIT_COLUMNS, "percent_remaining", "instability", "train_instability",
    "copy1_test_accuracy", "copy2_test_accuracy", "mean_test_accuracy", "diverged",
]  # fmt: skip


@dataclass(frozen=True)
class Unit:
    """One path: a trial's round (its ticket's mask), its copies started from theta_k."""

    trial: int
    round_index: int
    rewind_iteration: int

    @property
    def key(self) -> str:
        return f"{self.trial}/{self.round_index}/{self.rewind_iteration}"

    @property
    def row(self) -> dict[str, int]:
        return dict(zip(UNIT_COLUMNS, dataclasses.astuple(self), strict=True))


def analysis_writer(paths: StabilityPaths) -> AbstractContextManager[None]:
    """One process writes the analysis's tables at a time."""
    return exclusive_writer(paths.root, paths.lock, "wait for it")


@dataclass
class StabilityBook:
    """The analysis's tables and its complete units, as on disk."""

    paths: StabilityPaths
    points: int
    batch_norm: str
    completed: list[str]
    path_points: pd.DataFrame
    instability: pd.DataFrame

    @classmethod
    def open(cls, paths: StabilityPaths, points: int, batch_norm: str) -> StabilityBook:
        """The analysis so far, refused where its paths were computed otherwise."""
        completed: list[str] = []
        if paths.completed.exists():
            record = _read_completed(paths)
            if record["stability_points"] != points:
                raise RunFolderError(
                    f"{paths.root} has paths of {record['stability_points']} points; set "
                    f"stability_points: {record['stability_points']} or delete that folder"
                )
            recorded = record.get("batch_norm", _before_the_record(batch_norm))
            if recorded != batch_norm:
                raise RunFolderError(
                    f"{paths.root} has paths computed with stability_batch_norm: {recorded}; "
                    f"set stability_batch_norm: {recorded} or delete that folder"
                )
            completed = record["units"]
        return cls(paths, points, batch_norm, completed, *_completed_tables(paths, completed))

    def is_done(self, unit: Unit) -> bool:
        return unit.key in self.completed

    def add(self, unit: Unit, path: pd.DataFrame, summary: dict) -> None:
        """Write the unit's rows, then mark it complete: only then do they count."""
        self.path_points = _appended(self.path_points, path, [*UNIT_COLUMNS, "alpha"])
        self.instability = _appended(self.instability, pd.DataFrame([summary]), UNIT_COLUMNS)
        write_table(self.paths.path_points, self.path_points)
        write_table(self.paths.instability, self.instability)
        self.completed.append(unit.key)
        record = {
            "stability_points": self.points,
            "batch_norm": self.batch_norm,
            "units": self.completed,
        }
        write_text(self.paths.completed, json.dumps(record, indent=1))


def _before_the_record(batch_norm: str) -> str:
    """What an analysis written before `batch_norm` was recorded did: it mixed every weight,
    statistics included, which for a network without batch norm is nothing."""
    return NO_BATCH_NORM if batch_norm == NO_BATCH_NORM else "interpolate"


def _appended(table: pd.DataFrame, rows: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """`table` with `rows`, sorted by unit (whatever order units were computed in)."""
    both = rows if table.empty else pd.concat([table, rows], ignore_index=True)
    return both.sort_values(order, kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class StabilityTables:
    """A run folder's analysis tables, named for figure legends, and what its paths did with
    batch norm statistics (recompute | interpolate | none | unrecorded)."""

    label: str
    path_points: pd.DataFrame
    instability: pd.DataFrame
    batch_norm: str = UNRECORDED


def read_stability(run_dir: str | Path, label: str | None = None) -> StabilityTables:
    """The complete units' rows of a run folder's analysis; label defaults to the folder name."""
    paths = RunPaths(Path(run_dir))
    book = paths.stability
    if not book.completed.exists():
        raise RunFolderError(f"{book.root} holds no finished path; run 07_stability first")
    record = _read_completed(book)
    return StabilityTables(
        label or paths.root.name,
        *_completed_tables(book, record["units"]),
        batch_norm=record.get("batch_norm", UNRECORDED),
    )


def _read_completed(paths: StabilityPaths) -> dict:
    """completed.json: the points per path and the complete units."""
    return read_json(paths.completed, _advice(paths), required=["stability_points", "units"])


def _completed_tables(paths: StabilityPaths, completed: list[str]) -> tuple[pd.DataFrame, ...]:
    """(path_points, instability): the rows of the complete units."""
    return (
        completed_rows(paths.path_points, completed, UNIT_COLUMNS, POINT_COLUMNS, _advice(paths)),
        completed_rows(
            paths.instability, completed, UNIT_COLUMNS, INSTABILITY_COLUMNS, _advice(paths)
        ),
    )


def _advice(paths: StabilityPaths) -> str:
    """The analysis is computed from the trials' files, so deleting it loses no training."""
    return f"delete {paths.root} to compute the analysis again (04_train's results are kept)"
