"""Paired statistics over trials: ticket − control, θk − θ0 and ticket − dense.

A ticket, its controls and the dense network of one trial share that trial's θ0 and mask, so
their differences are paired by (round, trial): each comparison is a one-sample problem on the
per-trial differences. Per round a comparison gets a paired t interval with its two-sided
p-value, an exact sign test (for the small n of these runs) and an equivalence test (TOST)
against a stated margin. Across the rounds of one table, both kinds of p-value are
Holm-adjusted, and `verdict` turns them into the words generated sentences use: a difference
is claimed only below alpha after Holm, equivalence only from TOST, and otherwise the text
says "not distinguishable". `matching` is Frankle et al. 2020's test: within one std of the
dense network. Differences are in percentage points (scale 100). No TensorFlow here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from lthnb.analysis.statistics import CONFIDENCE
from lthnb.controls.kinds import TICKET

ALPHA = 1 - CONFIDENCE
MARGIN = 0.5  # pp: the default equivalence margin, stated in every "equivalent" verdict
KEYS = ["round", "trial"]
TABLE_COLUMNS = [
    "percent_remaining", "n", "mean", "low", "high", "p", "sign_p", "holm_p",
    "tost_low", "tost_high", "tost_p", "holm_tost_p", "verdict",
]  # fmt: skip


@dataclass(frozen=True)
class Interval:
    """A paired t interval of the mean difference, its t test and its exact sign test."""

    n: int
    mean: float
    low: float
    high: float
    p_value: float  # two-sided one-sample t test of mean difference = 0
    sign_p: float  # exact two-sided sign test; zero differences dropped
    confidence: float = CONFIDENCE


@dataclass(frozen=True)
class Equivalence:
    """TOST against ±margin: its p-value and the (1 − 2α) interval it amounts to."""

    n: int
    margin: float
    low: float
    high: float
    p_value: float  # max of the two one-sided p-values
    alpha: float = ALPHA

    @property
    def equivalent(self) -> bool:
        """Equivalent when p < alpha, i.e. the (1 − 2α) interval lies inside ±margin."""
        return bool(self.p_value < self.alpha)  # False where p is NaN


def _usable(rows: pd.DataFrame, value: str) -> pd.DataFrame:
    """Rows whose network trained: a diverged one (NaN value or flagged) is never compared."""
    keep = rows[value].notna()
    if "diverged" in rows:
        keep &= ~rows["diverged"].fillna(False).astype(bool)
    return rows[keep]


def pair_rows(
    first: pd.DataFrame, second: pd.DataFrame, value: str = "test_accuracy", scale: float = 100.0
) -> pd.DataFrame:
    """first − second per (round, trial) present and trained in both: the one pairing rule,
    also for rows of two runs (θk − θ0 from a rewind run and its θ0 run)."""
    for rows in (first, second):
        if rows.duplicated(KEYS).any():
            raise ValueError("several rows share a (round, trial): the pairing is ambiguous")
    left = _usable(first, value)[[*KEYS, "percent_remaining", value]]
    right = _usable(second, value)[[*KEYS, value]]
    pairs = left.merge(right, on=KEYS, suffixes=("_first", "_second"))
    table = pd.DataFrame(
        {
            "round": pairs["round"],
            "trial": pairs["trial"],
            "percent_remaining": pairs["percent_remaining"],
            "first": pairs[f"{value}_first"] * scale,
            "second": pairs[f"{value}_second"] * scale,
        }
    )
    table["difference"] = table["first"] - table["second"]
    return table.sort_values(KEYS).reset_index(drop=True)


def paired_differences(
    rounds: pd.DataFrame,
    first: str,
    second: str | None = None,
    value: str = "test_accuracy",
    scale: float = 100.0,
    *,
    against_dense: bool = False,
) -> pd.DataFrame:
    """Per (round, trial) of rounds.csv, kind `first` − kind `second` (pp), paired by trial,
    since both share that trial's θ0 and mask; with against_dense, `first` − the same trial's
    dense network (round 0's ticket), its round 0 (dense − dense) left out."""
    if against_dense == (second is not None):
        raise ValueError("give either a second kind or against_dense=True, not both or neither")
    mine = rounds[rounds["kind"] == first]
    if not against_dense:
        return pair_rows(mine, rounds[rounds["kind"] == second], value, scale)
    dense = rounds[(rounds["kind"] == TICKET) & (rounds["round"] == 0)]
    dense = _usable(dense, value).drop(columns="round")
    sparse = mine[mine["round"] != 0]
    broadcast = sparse[KEYS].merge(dense, on="trial")  # the dense row beside every round
    return pair_rows(sparse, broadcast, value, scale)


def _clean(values: Sequence[float]) -> np.ndarray:
    """The differences as floats, NaN (a diverged unit) left out."""
    array = np.asarray(values, dtype=float)
    return array[~np.isnan(array)]


def sign_test(differences: Sequence[float]) -> float:
    """Exact two-sided sign test: valid for any n and any distribution; zeros are dropped
    (the usual convention), and with no nonzero difference p is 1."""
    values = _clean(differences)
    positive, nonzero = int((values > 0).sum()), int((values != 0).sum())
    return float(stats.binomtest(positive, nonzero, 0.5).pvalue) if nonzero else 1.0


def paired_interval(differences: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Paired t interval and two-sided t test of the mean difference, plus the sign test: the
    statistics of one paired comparison; bounds and p are NaN below 2 pairs or without spread."""
    values = _clean(differences)
    n = values.size
    mean = float(values.mean()) if n else math.nan
    low = high = p_value = math.nan
    if n >= 2 and (error := values.std(ddof=1) / math.sqrt(n)) > 0:
        half = stats.t.ppf((1 + confidence) / 2, n - 1) * error
        low, high = mean - half, mean + half
        p_value = float(2 * stats.t.sf(abs(mean) / error, n - 1))
    return Interval(n, mean, float(low), float(high), p_value, sign_test(values), confidence)


def tost(differences: Sequence[float], margin: float = MARGIN, alpha: float = ALPHA) -> Equivalence:
    """Two one-sided paired t tests against −margin and +margin: the only ground for "matches"
    or "no better"; p is the larger one-sided p, and p < alpha iff the (1 − 2α) interval lies
    inside ±margin. NaN (never equivalent) below 2 pairs or without spread."""
    if not margin > 0:
        raise ValueError(f"the equivalence margin must be positive, got {margin}")
    values = _clean(differences)
    n = values.size
    low = high = p_value = math.nan
    if n >= 2 and (error := values.std(ddof=1) / math.sqrt(n)) > 0:
        mean = values.mean()
        half = stats.t.ppf(1 - alpha, n - 1) * error
        low, high = mean - half, mean + half
        above_lower = stats.t.sf((mean + margin) / error, n - 1)  # H0: mean ≤ −margin
        below_upper = stats.t.cdf((mean - margin) / error, n - 1)  # H0: mean ≥ +margin
        p_value = max(above_lower, below_upper)
    return Equivalence(n, margin, float(low), float(high), float(p_value), alpha)


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni step-down adjusted p-values: one table's verdicts across sparsities
    share a family-wise error rate. Monotone in p, capped at 1; NaN stays NaN and does not
    count in the number of tests."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, math.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    count = order.size
    scaled = p[order] * (count - np.arange(count))
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return [float(x) for x in adjusted]


def holm(p_values: Sequence[float], alpha: float = ALPHA) -> list[bool]:
    """Which hypotheses Holm's procedure rejects at family-wise level alpha (NaN: never)."""
    return [bool(p < alpha) for p in holm_adjusted(p_values)]


def trials_phrase(n: int) -> str:
    """'1 trial' or 'n trials', for verdicts."""
    return f"{n} trial" if n == 1 else f"{n} trials"


def verdict(
    interval: Interval,
    equivalence: Equivalence,
    adjusted_p: float,
    alpha: float = ALPHA,
    adjusted_tost_p: float | None = None,
) -> str:
    """The words a sentence may use for one paired comparison: "higher" or "lower" only where
    the Holm-adjusted p is below alpha, "equivalent within ±m pp" only from TOST (its Holm-
    adjusted p where given), else "not distinguishable with n trials". A difference that is
    both significant and inside the margin reads as its direction."""
    if adjusted_p < alpha:  # False where NaN
        return "higher" if interval.mean > 0 else "lower"
    tost_p = equivalence.p_value if adjusted_tost_p is None else adjusted_tost_p
    if tost_p < alpha:
        return f"equivalent within ±{equivalence.margin:g} pp"
    return f"not distinguishable with {trials_phrase(interval.n)}"


def summarize(
    differences: pd.DataFrame,
    margin: float = MARGIN,
    confidence: float = CONFIDENCE,
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """One row per round of a pair_rows / paired_differences table: interval, t and sign
    tests, TOST and verdict, the t and TOST p-values Holm-adjusted across the table's rounds."""
    rows = {}
    for round_index, group in differences.groupby("round"):
        interval = paired_interval(group["difference"], confidence)
        equivalence = tost(group["difference"], margin, alpha)
        rows[round_index] = (group["percent_remaining"].mean(), interval, equivalence)
    holm_p = holm_adjusted([interval.p_value for _, interval, _ in rows.values()])
    holm_tost_p = holm_adjusted([equivalence.p_value for _, _, equivalence in rows.values()])
    table = {}
    for (round_index, (percent, interval, equivalence)), adjusted, tost_adjusted in zip(
        rows.items(), holm_p, holm_tost_p, strict=True
    ):
        table[round_index] = [
            percent, interval.n, interval.mean, interval.low, interval.high, interval.p_value,
            interval.sign_p, adjusted, equivalence.low, equivalence.high, equivalence.p_value,
            tost_adjusted, verdict(interval, equivalence, adjusted, alpha, tost_adjusted),
        ]  # fmt: skip
    frame = pd.DataFrame.from_dict(table, orient="index", columns=TABLE_COLUMNS)
    return frame.astype({"n": int}).rename_axis("round")


def paired_table(
    rounds: pd.DataFrame,
    first: str,
    second: str | None = None,
    margin: float = MARGIN,
    confidence: float = CONFIDENCE,
    alpha: float = ALPHA,
    *,
    value: str = "test_accuracy",
    against_dense: bool = False,
) -> pd.DataFrame:
    """summarize of paired_differences: the per-round table of one comparison in a run."""
    differences = paired_differences(rounds, first, second, value, against_dense=against_dense)
    return summarize(differences, margin, confidence, alpha)


def matching(
    rounds: pd.DataFrame, kind: str = TICKET, value: str = "test_accuracy", scale: float = 100.0
) -> pd.DataFrame:
    """Frankle et al. 2020's matching per round: mean(kind) ≥ mean(dense) − std(dense), the std
    (ddof=1) over the dense network's trials; NA where the dense std is unknown (one trial)."""
    dense = _usable(rounds[(rounds["kind"] == TICKET) & (rounds["round"] == 0)], value)
    dense_mean, dense_std = dense[value].mean() * scale, dense[value].std() * scale
    grouped = _usable(rounds[rounds["kind"] == kind], value).groupby("round")
    table = pd.DataFrame(
        {
            "percent_remaining": grouped["percent_remaining"].mean(),
            "mean": grouped[value].mean() * scale,
            "std": grouped[value].std() * scale,
            "trials": grouped["trial"].nunique(),
            "dense_mean": dense_mean,
            "dense_std": dense_std,
            "dense_trials": dense["trial"].nunique(),
        }
    )
    table["gap"] = table["mean"] - dense_mean
    known = not math.isnan(dense_std)
    table["matching"] = pd.array(
        [bool(mean >= dense_mean - dense_std) if known else pd.NA for mean in table["mean"]],
        dtype="boolean",
    )
    return table
