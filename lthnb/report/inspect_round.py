"""Look inside one round of a finished trial, from what the run folder recorded (no training).

04_train ends with these checks of the method on trial 0's sparsest round:
- `mask_vs_schedule`: the survivors per layer of the round's mask against 03's schedule;
- `rewind_check`: the exported ticket (`ticket.keras`, the rewound weights times the final mask)
  holds θ0 (θk with late rewinding) bit for bit where the mask keeps a weight, exactly 0 where it
  prunes one, and the round's trained weights are exactly 0 where pruned;
- `ticket_vs_control`: the ticket of that round against the dense net and each of its controls.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lthnb.analysis.statistics import controls_in
from lthnb.controls.kinds import TICKET
from lthnb.nets.names import weight_key
from lthnb.runs.folder import stored_params
from lthnb.runs.paths import RunPaths
from lthnb.runs.reader import read_round, recorded_rounds
from lthnb.runs.state import TrialState, load_state, read_exported_ticket
from lthnb.runs.tables import RunFolderError

TOTAL = "all prunable"


def choose_round(run_dir: str | Path, trial: int | None = None) -> tuple[int, int]:
    """(trial, round) to look inside: the given trial, else the first whose ticket is exported,
    and its sparsest completed ticket round, the one `ticket.keras` holds."""
    paths = RunPaths(Path(run_dir))
    exported = [
        number
        for number in recorded_rounds(run_dir)
        if paths.trial(number).ticket_info.exists()  # written last of the ticket's files
    ]
    if trial is None:
        if not exported:
            raise RunFolderError(f"{paths.root} has no exported ticket; run 04_train first")
        trial = min(exported)
    state = load_state(paths.trial(trial).state)
    if state is None or state.last_ticket_round < 0:
        raise RunFolderError(f"trial {trial} has no completed round in {paths.root}; run 04_train")
    return trial, state.last_ticket_round


def mask_vs_schedule(
    masks: dict[str, np.ndarray], schedule: pd.DataFrame, totals: pd.DataFrame, round_index: int
) -> pd.DataFrame:
    """Survivors per layer in a round's masks against 03's schedule (overview.pruning_schedule).

    With global scope only the total is scheduled; the per-layer targets are then empty.
    """
    planned = schedule[schedule["round"] == round_index].set_index("layer")["weights_remaining"]
    rows = [
        {"layer": name, "weights": mask.size, "kept": int(mask.sum()), "scheduled": planned[name]}
        for name, mask in masks.items()
    ]
    total = totals.set_index("round").loc[round_index]
    rows.append(
        {
            "layer": TOTAL,
            "weights": sum(mask.size for mask in masks.values()),
            "kept": sum(int(mask.sum()) for mask in masks.values()),
            "scheduled": total["weights_remaining"],
        }
    )
    table = pd.DataFrame(rows)
    table["scheduled"] = table["scheduled"].astype("Int64")  # NaN (global scope) stays empty
    table["matches"] = table["kept"] == table["scheduled"]
    return table


def rewind_start(state: TrialState) -> tuple[str, dict[str, np.ndarray]]:
    """The weights survivors are rewound to, with their name: θ0, or θk after late rewinding."""
    return ("θk", state.rewind) if state.rewind is not None else ("θ0", state.theta0)


def ticket_weights(path: Path, arch: str) -> dict[str, np.ndarray]:
    """Every weight of an exported ticket by name (`<layer>/kernel`, `bn/moving_mean`, ...)."""
    from lthnb.nets.weights import get_weights, load_network  # TensorFlow only where read

    return get_weights(load_network(path, arch))


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal bit for bit: same dtype, same shape, same bytes (so -0.0 differs from 0.0)."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def rewind_check(run_dir: str | Path, trial: int, round_index: int) -> pd.DataFrame:
    """Per layer: does the exported ticket hold the rewound survivors and exact zeros?

    Reads `ticket.keras` and `ticket_masks.npz` (the final round), the round's record and the
    trial state's θ0/θk. The round must be the one the ticket was exported from.
    """
    paths = RunPaths(Path(run_dir)).trial(trial)
    record = read_round(run_dir, trial, round_index)
    exported_masks = read_exported_ticket(paths, list(record.masks))
    if any(not np.array_equal(exported_masks[n], m) for n, m in record.masks.items()):
        raise RunFolderError(
            f"{paths.ticket} holds another round's ticket than round {round_index}; "
            f"look inside the trial's last round ({load_state(paths.state).last_ticket_round})"
        )
    start_name, start = rewind_start(load_state(paths.state))
    arch = stored_params(RunPaths(Path(run_dir)).params).get("arch", "lenet")
    ticket = ticket_weights(paths.ticket, arch)
    rows, checked = [], set()
    for name, mask in record.masks.items():
        kept = mask.astype(bool)
        key = weight_key(name, start)
        kernel, initial = ticket[key], start[key]
        others = _layer_weights(start, key.rsplit("/", 1)[0]) - {key}
        checked |= others | {key}
        rows.append(
            {
                "layer": name,
                "rewound to": start_name,
                "survivors": int(kept.sum()),
                "survivors: same bits": same_bits(kernel[kept], initial[kept]),
                "pruned: exactly 0": bool(np.all(kernel[~kept] == 0)),
                "other weights: same bits": _all_same_bits(ticket, start, others),
                "trained pruned: 0": bool(np.all(record.trained[name][~kept] == 0)),
            }
        )
    unpruned = set(start) - checked  # layers with no prunable weight: batch norm's, ...
    if unpruned:
        rows.append(
            {
                "layer": "layers never pruned",
                "rewound to": start_name,
                "other weights: same bits": _all_same_bits(ticket, start, unpruned),
            }
        )
    return pd.DataFrame(rows)


def _layer_weights(weights: dict[str, np.ndarray], layer: str) -> set[str]:
    return {name for name in weights if name.rsplit("/", 1)[0] == layer}


def _all_same_bits(ticket: dict, start: dict, names: set[str]) -> bool | None:
    """Do the ticket's `names` hold the rewound values bit for bit (None: no such weights)?"""
    if not names:
        return None
    return all(same_bits(ticket[name], start[name]) for name in names)


def ticket_vs_control(rounds: pd.DataFrame, trial: int, round_index: int) -> pd.DataFrame:
    """The trial's dense net (round 0), and the round's ticket and each control it trained, from
    rounds.csv; `network` names the kind (lthnb.controls.kinds), in kinds' order.

    Round 0 is the dense net itself: its table has that one row.
    """
    rows = rounds[rounds["trial"] == trial]
    units = {"dense": rows[(rows["round"] == 0) & (rows["kind"] == TICKET)]}
    if round_index > 0:
        in_round = rows[rows["round"] == round_index]
        for kind in (TICKET, *controls_in(in_round)):
            units[kind] = in_round[in_round["kind"] == kind]
    table = pd.DataFrame(
        [
            {
                "network": network,
                "round": int(row["round"]),
                "% weights left": row["percent_remaining"],
                "test accuracy %": 100 * row["test_accuracy"],
                "early-stop iteration": row["early_stop_iteration"],
                "diverged": bool(row.get("diverged", False)),
            }
            for network, unit in units.items()
            for _, row in unit.iterrows()
        ]
    )
    needed = TICKET if round_index > 0 else "dense"
    if needed not in set(table.get("network", [])):
        raise RunFolderError(f"rounds.csv has no ticket of trial {trial}, round {round_index}")
    return table
