"""A trial's state on disk: everything needed to resume it, its round records and its ticket's
summary. Arrays are .npz (loaded with allow_pickle=False), written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lthnb.nets.names import weight_key
from lthnb.runs.paths import TrialPaths
from lthnb.runs.tables import (
    Arrays,
    DamagedFile,
    RunFolderError,
    check_archive,
    read_arrays,
    read_json,
    trial_advice,
    write_arrays,
    write_text,
)

# The ticket's files are exported from the state, so 04_train writes a damaged one again.
TICKET_ADVICE = "rerun 04_train with the run's parameters: it exports the ticket again"


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
    advice = trial_advice(path.parent.parent)
    groups = _grouped(path, read_arrays(path, advice), ("mask", "trained"), advice)
    masks = {name: value.astype(np.float32) for name, value in groups["mask"].items()}
    trained = {name: value.astype(np.float32) for name, value in groups["trained"].items()}
    if not masks or _shapes(masks) != _shapes(trained):
        raise DamagedFile(f"{path} does not hold one mask and trained kernel per layer", advice)
    return masks, trained


def load_state(path: Path) -> TrialState | None:
    """The saved state, None if the trial has not started; a damaged one is refused in one line."""
    if not path.exists():
        return None
    advice = trial_advice(path.parent)
    arrays = read_arrays(path, advice, required=["completed"])
    plain = ("completed", "diverged_round")
    groups = _grouped(path, arrays, (*_STATE_GROUPS, "company"), advice, plain)
    _check_state_shapes(path, groups, advice)
    return TrialState(
        theta0=groups["theta0"],
        masks=groups["masks"],
        trained_kernels=groups["trained_kernels"],
        rewind=groups["rewind"] or None,
        completed=[str(unit) for unit in arrays["completed"]],
        diverged_round=int(arrays["diverged_round"]) if "diverged_round" in arrays else None,
        companies={
            int(round_index): [str(unit) for unit in units]
            for round_index, units in groups["company"].items()
        },
    )


def _grouped(
    path: Path, arrays: Arrays, groups: Sequence[str], advice: str, plain: Sequence[str] = ()
) -> dict[str, Arrays]:
    """Arrays named `group:key` sorted into their groups (those in `plain` left out); another
    name means the file is not what it should be."""
    grouped: dict[str, Arrays] = {group: {} for group in groups}
    for name, value in arrays.items():
        group, _, key = name.partition(":")
        if group in grouped and key:
            grouped[group][key] = value
        elif name not in plain:
            raise DamagedFile(f"{path} holds an unexpected array {name!r}", advice)
    return grouped


def _check_state_shapes(path: Path, groups: dict[str, Arrays], advice: str) -> None:
    """Masks and trained kernels have the shapes of the θ0 weights they mask, θk those of θ0."""
    theta0 = groups["theta0"]
    if not theta0:
        raise DamagedFile(f"{path} lacks its θ0 arrays", advice)
    kernels = {
        name: theta0[key].shape
        for name in groups["masks"]
        if (key := weight_key(name, theta0)) in theta0
    }
    wrong = [
        group
        for group in ("masks", "trained_kernels")
        if not groups[group] or _shapes(groups[group]) != kernels
    ]
    if groups["rewind"] and _shapes(groups["rewind"]) != _shapes(groups["theta0"]):
        wrong.append("rewind")
    if wrong:
        raise DamagedFile(f"{path} holds {', '.join(wrong)} of other shapes than its θ0", advice)


def _shapes(arrays: Arrays) -> dict[str, tuple[int, ...]]:
    return {name: value.shape for name, value in arrays.items()}


def write_ticket_info(path: Path, info: dict) -> None:
    write_text(path, json.dumps(info, indent=2))


def read_ticket_info(path: Path) -> dict | None:
    """The exported ticket's round and sizes; None if not exported yet."""
    return read_json(path, TICKET_ADVICE, required=["round"]) if path.exists() else None


def read_exported_ticket(paths: TrialPaths, names: Sequence[str]) -> Arrays:
    """The exported ticket's masks (`names` at least), once its .keras archive is checked whole
    for TensorFlow to load."""
    check_archive(paths.ticket, "a .keras archive", TICKET_ADVICE)
    return read_arrays(paths.ticket_masks, TICKET_ADVICE, required=names)


def ticket_damage(paths: TrialPaths, masks: Arrays) -> str | None:
    """What is wrong with a trial's exported ticket files (`masks`: the state's), None if they
    are whole or none was exported yet: what makes 04_train export the ticket again."""
    if not any(path.exists() for path in (paths.ticket, paths.ticket_masks, paths.ticket_info)):
        return None
    try:
        read_json(paths.ticket_info, TICKET_ADVICE, required=["round"])
        stored = read_exported_ticket(paths, list(masks))
    except DamagedFile as damage:
        return damage.what
    if _shapes({name: stored[name] for name in masks}) != _shapes(masks):
        return f"{paths.ticket_masks} holds masks of other shapes than {paths.state}"
    return None
