"""Reading a run folder back: its merged tables for the figures and sentences, and the round
records (masks, trained kernels, θ0) for the explorer and the mask analyses. No TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lthnb.nets.names import kernels_of
from lthnb.runs.folder import stored_params
from lthnb.runs.merge import EVALUATION_COLUMNS
from lthnb.runs.paths import RunPaths, TrialPaths
from lthnb.runs.state import load_state, read_round_record
from lthnb.runs.tables import RunFolderError, read_table

# What every figure and sentence reads from rounds.csv (the rest is optional).
ROUND_COLUMNS = (
    "trial",
    "round",
    "kind",
    "percent_remaining",
    "early_stop_iteration",
    "test_accuracy",
)
# 04_train writes the run's tables from its trials', so it also rebuilds a damaged one.
READ_ADVICE = (
    "run 04_train first: it writes the run's tables from its trials', training only what is "
    "not finished (with one process per trial: once all finished)"
)


@dataclass(frozen=True)
class RunTables:
    """The merged tables of one run folder, with the name its curves carry in legends."""

    label: str
    params: dict
    evaluations: pd.DataFrame
    rounds: pd.DataFrame


def read_run(run_dir: str | Path, label: str | None = None) -> RunTables:
    """Read a run folder written by lthnb.runs.tables; label defaults to the architecture."""
    paths = RunPaths(Path(run_dir))
    params = stored_params(paths.params) if paths.params.exists() else {}
    evaluations = _read_run_table(paths.evaluations, EVALUATION_COLUMNS)
    rounds = _read_run_table(paths.rounds, ROUND_COLUMNS)
    return RunTables(
        label or str(params.get("arch") or paths.root.name), params, evaluations, rounds
    )


def _read_run_table(path: Path, required) -> pd.DataFrame:
    table = read_table(path, required, READ_ADVICE)
    if table.empty:
        raise RunFolderError(f"{path} is empty; {READ_ADVICE}")
    return table


@dataclass(frozen=True)
class RoundRecord:
    """One ticket round of one trial: masks, trained kernels, and the initial kernels θ0."""

    trial: int
    round_index: int
    masks: dict[str, np.ndarray]
    trained: dict[str, np.ndarray]
    theta0: dict[str, np.ndarray]


def trial_number(paths: TrialPaths) -> int:
    """The trial a trial folder holds, from its name (trial_001 -> 1), not its position."""
    return int(paths.root.name.removeprefix("trial_"))


def recorded_rounds(run_dir: str | Path) -> dict[int, list[int]]:
    """Trial number -> ticket rounds that have a record (what the explorer can show)."""
    available = {}
    for trial in RunPaths(Path(run_dir)).trials():
        files = sorted((trial.root / "rounds").glob("round_*.npz"))
        if files:
            available[trial_number(trial)] = [int(f.stem.removeprefix("round_")) for f in files]
    return available


def first_recorded_trial(run_dir: str | Path) -> int:
    """The lowest trial number with a round record: the default of every view."""
    available = recorded_rounds(run_dir)
    if not available:
        raise RunFolderError(f"{run_dir} has no round records; run 04_train first")
    return min(available)


def read_round(
    run_dir: str | Path, trial: int | None = None, round_index: int | None = None
) -> RoundRecord:
    """A trial's record of one ticket round; by default the first trial's sparsest round."""
    trial = first_recorded_trial(run_dir) if trial is None else trial
    paths = RunPaths(Path(run_dir)).trial(trial)
    if round_index is None:
        round_index = max(recorded_rounds(run_dir).get(trial, [0]))
    state = load_state(paths.state)
    if state is None:
        raise RunFolderError(f"{paths.state} does not exist; run 04_train for trial {trial} first")
    masks, trained = read_round_record(paths.round_record(round_index))
    theta0 = kernels_of(state.theta0, masks)
    return RoundRecord(trial, round_index, masks, trained, theta0)
