"""Per-round statistics: mean ± std, and the ticket − control gap with its Welch interval."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lthnb.analysis import statistics
from lthnb.controls.kinds import RANDOM_MASK, REINIT, SAME_SIGN, TICKET

PERCENTS = [100.0, 80.0, 64.0]


def rounds_table(accuracies: dict[str, list[list[float]]]) -> pd.DataFrame:
    """rounds.csv rows: accuracies[kind][round] lists each trial's test accuracy (a fraction).

    An empty list skips that round for the kind (controls have no round 0).
    """
    rows = [
        {
            "trial": trial, "round": round_index, "kind": kind,
            "percent_remaining": PERCENTS[round_index], "test_accuracy": accuracy,
            "early_stop_iteration": 1000.0 - 100 * round_index + trial,
        }
        for kind, per_round in accuracies.items()
        for round_index, trials in enumerate(per_round)
        for trial, accuracy in enumerate(trials)
    ]  # fmt: skip
    return pd.DataFrame(rows)


TICKETS = [[0.90, 0.91, 0.89], [0.910, 0.905, 0.915, 0.912], [0.90, 0.93, 0.88]]
UNEQUAL = [[], [0.86, 0.89, 0.84], [0.85, 0.851, 0.849, 0.850, 0.852]]  # other n, other spread


def test_welch_interval_matches_scipy_on_a_fixed_example():
    a, b = [90.1, 89.7, 90.4, 90.0, 90.3], [88.2, 89.9, 87.5]
    expected = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert statistics.welch_interval(a, b) == pytest.approx(tuple(expected), rel=1e-12)
    wider = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.99)
    assert statistics.welch_interval(a, b, 0.99) == pytest.approx(tuple(wider), rel=1e-12)
    pooled = stats.ttest_ind(a, b, equal_var=True).confidence_interval(0.95)
    assert statistics.welch_interval(a, b)[0] != pytest.approx(pooled.low)  # not Student's


def test_ticket_gaps_are_ticket_minus_control_per_round_with_scipys_interval():
    rounds = rounds_table({TICKET: TICKETS, REINIT: UNEQUAL})
    gaps = statistics.ticket_gaps(rounds, REINIT)
    assert list(gaps.index) == [1, 2] and gaps.index.name == "round"
    for round_index in (1, 2):
        ticket = 100 * np.array(TICKETS[round_index])
        control = 100 * np.array(UNEQUAL[round_index])
        interval = stats.ttest_ind(ticket, control, equal_var=False).confidence_interval(0.95)
        row = gaps.loc[round_index]
        assert row["gap"] == pytest.approx(ticket.mean() - control.mean())
        assert (row["low"], row["high"]) == pytest.approx(tuple(interval))
        assert (row["ticket_trials"], row["control_trials"]) == (len(ticket), len(control))
    assert gaps.loc[1, "percent_remaining"] == 80.0
    stops = statistics.ticket_gaps(rounds, REINIT, "early_stop_iteration", 1.0)
    assert stops.loc[2, "gap"] == pytest.approx(np.mean(range(3)) - np.mean(range(5)))


def test_a_clear_lead_is_significant_and_noise_is_not():
    noise = [[], [0.901, 0.91, 0.899], [0.91, 0.89, 0.90]]  # within a pp of the tickets
    far_below = [[], [0.80, 0.81, 0.79], [0.70, 0.71, 0.69]]
    far_above = [[], [0.99, 0.991, 0.989], [0.99, 0.98, 0.985]]
    rounds = rounds_table(
        {TICKET: TICKETS, REINIT: far_below, RANDOM_MASK: noise, SAME_SIGN: far_above}
    )
    below = statistics.ticket_gaps(rounds, REINIT)
    assert below["significant"].all() and (below["low"] > 0).all()
    same = statistics.ticket_gaps(rounds, RANDOM_MASK)
    assert not same["significant"].any() and ((same["low"] < 0) & (same["high"] > 0)).all()
    above = statistics.ticket_gaps(rounds, SAME_SIGN)
    assert above["significant"].all() and (above["high"] < 0).all()


def test_one_trial_has_no_interval_and_is_never_significant():
    assert all(math.isnan(end) for end in statistics.welch_interval([90.0], [80.0, 81.0]))
    rounds = rounds_table({TICKET: [[0.9], [0.9], [0.9]], REINIT: [[], [0.5], [0.1]]})
    gaps = statistics.ticket_gaps(rounds, REINIT)
    assert gaps[["low", "high"]].isna().all().all() and not gaps["significant"].any()
    np.testing.assert_allclose(gaps["gap"], [40.0, 80.0])  # the gap itself is still there
    by_round = statistics.by_round(rounds, TICKET, "test_accuracy", 100.0)
    assert by_round["std"].isna().all() and list(by_round["trials"]) == [1, 1, 1]


def test_diverged_networks_are_left_out_of_the_interval_and_counted():
    with_nan = [[], [0.80, math.nan, 0.81, 0.79], [0.70, 0.71, 0.69]]
    rounds = rounds_table({TICKET: TICKETS, REINIT: with_nan})
    gaps = statistics.ticket_gaps(rounds, REINIT)
    assert list(gaps["diverged"]) == [1, 0] and list(gaps["control_trials"]) == [3, 3]
    ticket, control = 100 * np.array(TICKETS[1]), [80.0, 81.0, 79.0]
    interval = stats.ttest_ind(ticket, control, equal_var=False).confidence_interval(0.95)
    assert (gaps.loc[1, "low"], gaps.loc[1, "high"]) == pytest.approx(tuple(interval))
    assert gaps.loc[1, "gap"] == pytest.approx(ticket.mean() - 80.0)


def test_mean_std_by_round_matches_pandas_and_controls_keep_kinds_order():
    rounds = rounds_table({TICKET: TICKETS, SAME_SIGN: UNEQUAL, REINIT: UNEQUAL})
    table = statistics.by_round(rounds, TICKET, "test_accuracy", 100.0)
    np.testing.assert_allclose(table["mean"], [100 * np.mean(t) for t in TICKETS])
    np.testing.assert_allclose(table["std"], [100 * np.std(t, ddof=1) for t in TICKETS])
    assert list(table["trials"]) == [3, 4, 3] and list(table["percent_remaining"]) == PERCENTS
    assert statistics.controls_in(rounds) == [REINIT, SAME_SIGN]
    assert statistics.controls_in(rounds_table({TICKET: TICKETS})) == []


def test_interval_text_stars_significant_gaps():
    assert statistics.interval_text(0.31, 0.02, 0.6, True) == "+0.31 [+0.02, +0.60]*"
    assert statistics.interval_text(0.3, -0.18, 0.79, False) == "+0.30 [-0.18, +0.79]"
    assert statistics.interval_text(1.5, math.nan, math.nan, False) == "+1.50"
    assert statistics.interval_text(math.nan, math.nan, math.nan, False) == "–"
