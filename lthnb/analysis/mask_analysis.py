"""Do tickets agree, and what do they keep? Mask overlap, sign changes and initial magnitudes.

The Jaccard index of two masks against the level two independent random masks
reach, d/(2 − d), tells whether IMP finds the same subnetwork twice (in other trials, or in a
run with another pruning method or rewind point). Signs and initial magnitudes of the weights
each round keeps or prunes say what the pruning selects (Zhou et al. 2019). Pure numpy/pandas on
the run folder's round records (no TensorFlow); the core functions take plain mask dicts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from lthnb.nets.names import kernels_of
from lthnb.pruning.masks import format_percent, percent_remaining, total_percent_remaining
from lthnb.runs.folder import read_run_params
from lthnb.runs.paths import RunPaths
from lthnb.runs.reader import recorded_rounds
from lthnb.runs.state import load_state, read_round_record
from lthnb.runs.tables import RunFolderError

Arrays = dict[str, np.ndarray]
RunMasks = Mapping[int, Mapping[int, Arrays]]  # trial -> round -> layer -> 0/1 mask
GROUPS = ("survivors", "pruned")
QUANTILES = {"q10": 0.1, "q25": 0.25, "median": 0.5, "q75": 0.75, "q90": 0.9}
MATCH_TOLERANCE = 0.02  # relative difference of percent remaining for rounds to match


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """|A∩B| / |A∪B| of two 0/1 masks of one layer; 1 when both are empty (the same mask, as
    scipy's Jaccard distance of 0 for two all-zero vectors)."""
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    if a.shape != b.shape:
        raise ValueError(f"masks of different shapes {a.shape} and {b.shape}: not one layer")
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def chance_jaccard(
    density: float | np.ndarray, other: float | np.ndarray | None = None
) -> float | np.ndarray:
    """Expected Jaccard of two independent random masks keeping shares d1, d2 of a layer:
    d1·d2 / (d1 + d2 − d1·d2), d/(2 − d) for equal shares; 1 for two empty masks (as jaccard)."""
    d1 = np.asarray(density, dtype=float)
    d2 = d1 if other is None else np.asarray(other, dtype=float)
    union = d1 + d2 - d1 * d2
    return np.divide(d1 * d2, union, out=np.ones(np.shape(union)), where=union > 0)[()]


@dataclass(frozen=True)
class TrialRecords:
    """A trial's ticket rounds, and the kernels its pruned rounds start from (θ0 or θk)."""

    trial: int
    start: Arrays
    start_name: str  # "θ0", or "θk" when the run rewinds late
    masks: dict[int, Arrays]
    trained: dict[int, Arrays]


def read_trials(run_dir: str | Path) -> list[TrialRecords]:
    """Every trial's recorded ticket rounds (each record is written whole, so a running trial
    contributes the rounds it finished)."""
    paths = RunPaths(Path(run_dir))
    available = recorded_rounds(run_dir)
    if not available:
        raise RunFolderError(f"{run_dir} has no round records; run 04_train first")
    trials = []
    for trial, rounds in available.items():
        state = load_state(paths.trial(trial).state)
        if state is None:
            raise RunFolderError(f"{paths.trial(trial).state} is missing; run 04_train first")
        records = {r: read_round_record(paths.trial(trial).round_record(r)) for r in rounds}
        start = state.theta0 if state.rewind is None else state.rewind
        masks = {r: record[0] for r, record in records.items()}
        name = "θ0" if state.rewind is None else "θk"
        kernels = kernels_of(start, masks[rounds[0]])
        trained = {r: record[1] for r, record in records.items()}
        trials.append(TrialRecords(trial, kernels, name, masks, trained))
    return trials


def masks_by_trial(trials: Sequence[TrialRecords]) -> dict[int, dict[int, Arrays]]:
    return {records.trial: records.masks for records in trials}


# --- overlap ---


def _pair_rows(key: dict, a: Arrays, b: Arrays) -> list[dict]:
    """One row per layer for a pair of masks: their Jaccard index and the chance level."""
    density_a, density_b = percent_remaining(a), percent_remaining(b)
    total = (total_percent_remaining(a) + total_percent_remaining(b)) / 2
    rows = []
    for layer in a:
        d_a, d_b = density_a[layer] / 100, density_b[layer] / 100
        rows.append(
            {**key, "layer": layer, "percent_remaining": total, "density": (d_a + d_b) / 2,
             "chance": chance_jaccard(d_a, d_b), "jaccard": jaccard(a[layer], b[layer])}
        )  # fmt: skip
    return rows


def _overlap_summary(rows: list[dict], keys: list[str]) -> pd.DataFrame:
    """Mean ± std (ddof=1) over pairs of the Jaccard index per (keys, layer), against chance."""
    columns = [*keys, "layer", "percent_remaining", "density", "chance"]
    if not rows:
        return pd.DataFrame(
            columns=[*columns, "jaccard_mean", "jaccard_std", "pairs", "over_chance"]
        )
    grouped = pd.DataFrame(rows).groupby([*keys, "layer"], sort=False)
    table = grouped[["percent_remaining", "density", "chance"]].mean()
    table["jaccard_mean"] = grouped["jaccard"].mean()
    table["jaccard_std"] = grouped["jaccard"].std()
    table["pairs"] = grouped["jaccard"].size()
    table["over_chance"] = table["jaccard_mean"] / table["chance"]
    return table.reset_index()


def trial_overlap(masks: RunMasks) -> pd.DataFrame:
    """Per (round, layer): the tickets' Jaccard index between every pair of trials that reached
    the round, as mean ± std over pairs, with the layer's density and the chance level."""
    rows = []
    rounds = sorted({r for per_trial in masks.values() for r in per_trial})
    for round_index in rounds:
        having = [t for t in sorted(masks) if round_index in masks[t]]
        for first, second in combinations(having, 2):
            key = {"round": round_index}
            rows += _pair_rows(key, masks[first][round_index], masks[second][round_index])
    return _overlap_summary(rows, ["round"])


def trial_overlap_of(run_dir: str | Path) -> pd.DataFrame:
    """trial_overlap of a run folder's tickets."""
    return trial_overlap(masks_by_trial(read_trials(run_dir)))


def _matching_round(mask: Arrays, candidates: Mapping[int, Arrays], tolerance: float) -> int | None:
    """The candidate round nearest in total percent remaining, if within `tolerance` of it."""
    percent = total_percent_remaining(mask)
    gaps = {r: abs(total_percent_remaining(m) - percent) for r, m in candidates.items()}
    nearest = min(gaps, key=gaps.get, default=None)
    return nearest if nearest is not None and gaps[nearest] <= tolerance * percent else None


def run_overlap(
    masks: RunMasks, other: RunMasks, tolerance: float = MATCH_TOLERANCE
) -> pd.DataFrame:
    """Per (round, layer): Jaccard between two runs' tickets at equal sparsity, mean ± std over
    the trials both have. Trials pair by index (with one seed they share θ0); a round pairs with
    the other run's round whose total percent remaining is within `tolerance` (relative)."""
    rows = []
    for trial in sorted(set(masks) & set(other)):
        for round_index, mask in sorted(masks[trial].items()):
            match = _matching_round(mask, other[trial], tolerance)
            if match is not None:
                key = {"round": round_index, "round_other": match}
                rows += _pair_rows(key, mask, other[trial][match])
    return _overlap_summary(rows, ["round", "round_other"])


def run_overlap_of(
    run_dir: str | Path, other_dir: str | Path, tolerance: float = MATCH_TOLERANCE
) -> pd.DataFrame:
    """run_overlap of two run folders (e.g. iterative vs one-shot, θ0 vs late rewinding)."""
    return run_overlap(
        masks_by_trial(read_trials(run_dir)), masks_by_trial(read_trials(other_dir)), tolerance
    )


# --- what each round keeps: signs and initial magnitudes ---


def _transitions(masks: Mapping[int, Arrays]) -> Iterator[tuple[dict, dict[str, np.ndarray]]]:
    """({round r, its percent remaining, layer}, {survivors: kept in round r, pruned: alive in
    round r−1 and removed at r}) for every recorded round r ≥ 1 and layer."""
    for round_index in sorted(masks):
        if round_index - 1 not in masks:
            continue
        percent = total_percent_remaining(masks[round_index])
        for layer, mask in masks[round_index].items():
            alive = masks[round_index - 1][layer] > 0
            key = {"round": round_index, "percent_remaining": percent, "layer": layer}
            yield key, {"survivors": mask > 0, "pruned": alive & (mask == 0)}


def sign_changes(
    start: Arrays,
    masks: Mapping[int, Arrays],
    trained: Mapping[int, Arrays],
    pruning_method: str = "iterative",
) -> pd.DataFrame:
    """Per round r ≥ 1, layer and group (survivors of round r, weights pruned at r): the share
    of weights whose sign in the kernels that round r's pruning ranked differs from their sign
    at `start` (θ0, or θk: what survivors are rewound to).

    The signs are read where the pruning looked: iterative pruning ranks round r−1's trained
    kernels (one-shot pruning round 0's). A weight whose sign there differs from its start
    crossed zero in training; the shares say whether pruning keeps such weights or those that
    kept the sign they restart with (Zhou et al. 2019: the sign matters). Only weights alive in
    round r−1 count, as only they were ranked.
    """
    rows = []
    for key, groups in _transitions(masks):
        ranked = trained[0 if pruning_method == "oneshot" else key["round"] - 1][key["layer"]]
        changed = np.sign(ranked) != np.sign(start[key["layer"]])
        for group, members in groups.items():
            count, flipped = int(members.sum()), int(changed[members].sum())
            share = flipped / count if count else np.nan
            rows.append(
                {**key, "group": group, "weights": count, "changed": flipped, "share": share}
            )
    return pd.DataFrame(rows)


def start_magnitudes(start: Arrays, masks: Mapping[int, Arrays]) -> pd.DataFrame:
    """Per round r ≥ 1, layer and group: quantiles of |start| (θ0 or θk) of round r's survivors
    and of the weights pruned at r: does pruning trained weights select large initial ones?"""
    rows = []
    for key, groups in _transitions(masks):
        magnitudes = np.abs(start[key["layer"]])
        for group, members in groups.items():
            values = magnitudes[members]
            levels = [np.nan] * len(QUANTILES)  # an empty group: a layer left unpruned
            if values.size:
                levels = np.quantile(values, list(QUANTILES.values()))
            quantiles = dict(zip(QUANTILES, levels, strict=True))
            rows.append({**key, "group": group, "weights": values.size, **quantiles})
    return pd.DataFrame(rows)


def _per_trial(trials: Sequence[TrialRecords], table_of) -> pd.DataFrame:
    tables = [table_of(t).assign(trial=t.trial, start=t.start_name) for t in trials]
    if all(table.empty for table in tables):
        raise RunFolderError("no pruned round is recorded yet; train round 1 of a trial first")
    return pd.concat(tables, ignore_index=True)


def sign_changes_of(run_dir: str | Path) -> pd.DataFrame:
    """sign_changes of every trial of a run (columns trial and start added)."""
    method = read_run_params(RunPaths(Path(run_dir))).pruning_method
    trials = read_trials(run_dir)
    return _per_trial(trials, lambda t: sign_changes(t.start, t.masks, t.trained, method))


def start_magnitudes_of(run_dir: str | Path) -> pd.DataFrame:
    """start_magnitudes of every trial of a run (columns trial and start added)."""
    return _per_trial(read_trials(run_dir), lambda t: start_magnitudes(t.start, t.masks))


def over_trials(table: pd.DataFrame, values: Sequence[str]) -> pd.DataFrame:
    """Mean and std over trials of `values` per (round, layer, group): what the figures draw."""
    grouped = table.groupby(["round", "layer", "group"], sort=False)
    summary = grouped[["percent_remaining", *values]].mean()
    for value in values:
        summary[f"{value}_std"] = grouped[value].std()
    summary["trials"] = grouped["trial"].nunique()
    return summary.reset_index()


def wide_by_round(table: pd.DataFrame, value: str) -> pd.DataFrame:
    """`value` with one row per round and a column per layer (and group): a table to read."""
    columns = [column for column in ("layer", "group") if column in table.columns]
    wide = table.pivot_table(index="round", columns=columns, values=value, sort=False).round(3)
    percents = table.groupby("round")["percent_remaining"].mean().map(format_percent)
    wide.index = pd.MultiIndex.from_arrays(
        [wide.index, percents.reindex(wide.index)], names=["round", "% left"]
    )
    return wide
