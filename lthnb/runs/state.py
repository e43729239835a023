"""A trial's state on disk: everything needed to resume it, its round records and its ticket's
summary. Arrays are .npz (loaded with allow_pickle=False), written atomically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lthnb.runs.tables import Arrays, RunFolderError, write_arrays, write_text


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


def write_ticket_info(path: Path, info: dict) -> None:
    write_text(path, json.dumps(info, indent=2))


def read_ticket_info(path: Path) -> dict | None:
    """The exported ticket's round and sizes; None if not exported yet."""
    return json.loads(path.read_text()) if path.exists() else None
