"""Per-round statistics over trials: the numbers behind 05's figures, tables and sentences.

Two statistics, computed here only: the mean ± std of a value per round (every curve and band),
and the gap of each control to the ticket per round, mean(ticket) − mean(control), with a 95%
confidence interval over trials. Trials are independent seeds and tickets and controls need not
vary alike, so the interval is Welch's t interval (unequal variances). `round_summary` gathers
both per round and kind: the numbers of 05's summary table. No TensorFlow here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from lthnb.controls.kinds import CONTROLS, TICKET, kind_sort_key

CONFIDENCE = 0.95
GAP_COLUMNS = [
    "percent_remaining", "ticket", "control", "gap", "low", "high", "significant",
    "ticket_trials", "control_trials", "diverged",
]  # fmt: skip


def mean_std(rows: pd.DataFrame, value: str, by: str = "round", scale: float = 1.0) -> pd.DataFrame:
    """Mean, std and trial count of `value` per `by`: the one statistic every curve shows.

    The std is the sample std (ddof=1), NaN with one trial; diverged values (NaN) are skipped.
    """
    grouped = rows.groupby(by)
    return pd.DataFrame(
        {
            "percent_remaining": grouped["percent_remaining"].mean(),
            "mean": grouped[value].mean() * scale,
            "std": grouped[value].std() * scale,
            "trials": grouped["trial"].nunique(),
        }
    )


def by_round(rounds: pd.DataFrame, kind: str, value: str, scale: float = 1.0) -> pd.DataFrame:
    """mean_std per round of one kind's rows of rounds.csv: the curve of that kind."""
    return mean_std(rounds[rounds["kind"] == kind], value, scale=scale)


def trials_text(rows: pd.DataFrame) -> str:
    """What a mean over `rows` averages, for sentences: "one trial" or "means over n trials"."""
    count = rows["trial"].nunique()
    return "one trial" if count == 1 else f"means over {count} trials"


def controls_in(rounds: pd.DataFrame) -> list[str]:
    """The controls a run trained, in kinds' order, so tables and legends list them alike."""
    present = set(rounds["kind"])
    return [kind for kind in CONTROLS if kind in present]


def welch_interval(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Welch's t interval of mean(a) − mean(b); NaN where it cannot be estimated: a sample of
    fewer than two values, or two samples without any spread."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if min(a.size, b.size) < 2:
        return math.nan, math.nan
    var_a, var_b = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    variance = var_a + var_b
    if variance == 0:
        return math.nan, math.nan
    freedom = variance**2 / (var_a**2 / (a.size - 1) + var_b**2 / (b.size - 1))
    half = stats.t.ppf((1 + confidence) / 2, freedom) * math.sqrt(variance)
    gap = a.mean() - b.mean()
    return float(gap - half), float(gap + half)


def ticket_gaps(
    rounds: pd.DataFrame,
    control: str,
    value: str = "test_accuracy",
    scale: float = 100.0,
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """Per round where `control` trained: mean(ticket) − mean(control) of `value` and its Welch
    interval over trials; `significant` where the interval excludes 0.

    Diverged networks (NaN) are left out of both samples and counted in `diverged`, so a gap
    is never computed from a network that did not train. Indexed by round, like mean_std.
    """
    tickets = rounds[rounds["kind"] == TICKET]
    rows = {}
    for round_index, controls in rounds[rounds["kind"] == control].groupby("round"):
        ticket_values = tickets.loc[tickets["round"] == round_index, value] * scale
        control_values = controls[value] * scale
        ticket, other = ticket_values.dropna(), control_values.dropna()
        low, high = welch_interval(ticket, other, confidence)
        rows[round_index] = {
            "percent_remaining": controls["percent_remaining"].mean(),
            "ticket": ticket.mean(),
            "control": other.mean(),
            "gap": ticket.mean() - other.mean(),
            "low": low,
            "high": high,
            "significant": bool(low > 0 or high < 0),  # False where the interval is NaN
            "ticket_trials": len(ticket),
            "control_trials": len(other),
            "diverged": int(ticket_values.isna().sum() + control_values.isna().sum()),
        }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=GAP_COLUMNS)
    return table.rename_axis("round")


def round_summary(rounds: pd.DataFrame) -> pd.DataFrame:
    """One row per round and kind: accuracy (%) and early stop (mean, std over trials), the
    change against the dense net and, for controls, the ticket's lead with its 95% CI."""
    dense = by_round(rounds, TICKET, "test_accuracy", 100.0)["mean"].get(0, np.nan)
    kinds = (TICKET, *controls_in(rounds))
    table = pd.concat([_kind_summary(rounds, kind, dense) for kind in kinds]).reset_index()
    table = table.sort_values(["round", "kind"], key=kind_sort_key, kind="stable")
    table["significant"] = table["significant"].astype("boolean")  # NA: tickets
    return table.reset_index(drop=True).round(4)


def _kind_summary(rounds: pd.DataFrame, kind: str, dense: float) -> pd.DataFrame:
    """round_summary's rows of one kind; the ticket's lead is empty on the ticket's own rows."""
    accuracy = by_round(rounds, kind, "test_accuracy", 100.0)
    stop = by_round(rounds, kind, "early_stop_iteration")
    lead = ticket_gaps(rounds, kind) if kind != TICKET else pd.DataFrame(columns=GAP_COLUMNS)
    return pd.DataFrame(
        {
            "kind": kind,
            "percent_remaining": accuracy["percent_remaining"],
            "trials": accuracy["trials"],
            "test_accuracy_mean": accuracy["mean"],
            "test_accuracy_std": accuracy["std"],
            "early_stop_iteration_mean": stop["mean"],
            "early_stop_iteration_std": stop["std"],
            "accuracy_change_vs_dense": accuracy["mean"] - dense,
            "ticket_lead": lead["gap"],
            "ticket_lead_low": lead["low"],
            "ticket_lead_high": lead["high"],
            "significant": lead["significant"],
        },
        index=accuracy.index,
    )


def mean_std_text(mean: float, std: float, digits: int = 2) -> str:
    """'mean ± std'; the mean alone where one trial gives no std, a dash where nothing ran."""
    if np.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" if np.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def interval_text(gap: float, low: float, high: float, significant: bool, digits: int = 2) -> str:
    """'+0.31 [+0.03, +0.59]*': a gap, its interval and a star where it excludes 0.

    Without an interval (one trial) the gap alone; a dash where there is no gap at all.
    """
    if np.isnan(gap):
        return "–"
    if np.isnan(low):
        return f"{gap:+.{digits}f}"
    star = "*" if significant else ""
    return f"{gap:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]{star}"
