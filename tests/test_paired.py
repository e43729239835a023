"""Paired statistics (lthnb.analysis.paired), checked against scipy and hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lthnb.analysis import paired
from lthnb.controls.kinds import REINIT, TICKET

# Trials differ a lot from each other, the ticket − control difference hardly: pairing matters.
TICKET_ACC = np.array([90.1, 91.5, 89.2, 92.0, 90.7])
CONTROL_ACC = TICKET_ACC - np.array([0.4, 0.6, 0.3, 0.5, 0.45])


def rounds_table(values: dict[str, dict[int, dict[int, float]]]) -> pd.DataFrame:
    """rounds.csv rows from values[kind][round][trial] = test accuracy (a fraction)."""
    rows = [
        {
            "trial": trial, "round": round_index, "kind": kind,
            "percent_remaining": 100.0 * 0.8**round_index, "test_accuracy": accuracy,
            "diverged": bool(np.isnan(accuracy)),
        }
        for kind, per_round in values.items()
        for round_index, per_trial in per_round.items()
        for trial, accuracy in per_trial.items()
    ]  # fmt: skip
    return pd.DataFrame(rows)


def as_trials(percent: list[float]) -> dict[int, float]:
    """Accuracies in % for trials 0, 1, …, as the fractions rounds.csv holds."""
    return {trial: value / 100 for trial, value in enumerate(percent)}


# --- paired_interval and the sign test --------------------------------------------------------


def test_paired_interval_equals_scipys_paired_t_test():
    result = stats.ttest_rel(TICKET_ACC, CONTROL_ACC)
    interval = paired.paired_interval(TICKET_ACC - CONTROL_ACC)
    assert interval.n == 5
    assert interval.mean == pytest.approx(np.mean(TICKET_ACC - CONTROL_ACC))
    assert (interval.low, interval.high) == pytest.approx(tuple(result.confidence_interval()))
    assert interval.p_value == pytest.approx(result.pvalue, rel=1e-10)
    one_sample = stats.ttest_1samp(TICKET_ACC - CONTROL_ACC, 0.0)
    assert interval.p_value == pytest.approx(one_sample.pvalue, rel=1e-10)
    wider = paired.paired_interval(TICKET_ACC - CONTROL_ACC, 0.99)
    assert (wider.low, wider.high) == pytest.approx(tuple(result.confidence_interval(0.99)))


def test_paired_interval_is_not_the_unpaired_one():
    unpaired = stats.ttest_ind(TICKET_ACC, CONTROL_ACC, equal_var=False)
    interval = paired.paired_interval(TICKET_ACC - CONTROL_ACC)
    assert unpaired.confidence_interval().low < 0 < interval.low  # only pairing sees the gap
    assert interval.p_value < 0.01 < unpaired.pvalue


def test_paired_interval_with_a_negative_mean_and_nan_left_out():
    differences = [-1.2, -0.3, 0.4, -2.0, math.nan, -0.9, -0.1]
    clean = [d for d in differences if not math.isnan(d)]
    result = stats.ttest_1samp(clean, 0.0)
    interval = paired.paired_interval(differences)
    assert interval.n == 6
    assert (interval.low, interval.high) == pytest.approx(tuple(result.confidence_interval()))
    assert interval.p_value == pytest.approx(result.pvalue, rel=1e-10)


def test_paired_interval_is_undefined_below_two_pairs_or_without_spread():
    one = paired.paired_interval([0.7])
    assert one.n == 1 and one.mean == 0.7 and one.sign_p == 1.0
    assert math.isnan(one.low) and math.isnan(one.high) and math.isnan(one.p_value)
    none = paired.paired_interval([])
    assert none.n == 0 and math.isnan(none.mean) and math.isnan(none.low)
    flat = paired.paired_interval([0.5, 0.5, 0.5])
    assert math.isnan(flat.low) and math.isnan(flat.p_value)


def test_sign_test_is_scipys_exact_binomial_test_with_zeros_dropped():
    differences = [1.0, 2.0, 0.0, -1.0, 3.0, 0.0, 4.0, 0.5]
    expected = stats.binomtest(5, 6, 0.5).pvalue
    assert paired.sign_test(differences) == pytest.approx(expected, rel=1e-12)
    assert paired.paired_interval(differences).sign_p == pytest.approx(expected, rel=1e-12)
    assert paired.sign_test(differences) != pytest.approx(stats.binomtest(5, 8, 0.5).pvalue)
    assert paired.sign_test([-1.0] * 7) == pytest.approx(stats.binomtest(0, 7).pvalue)
    assert paired.sign_test([0.0, 0.0]) == 1.0


# --- Holm ------------------------------------------------------------------------------------


def test_holm_on_a_hand_worked_example():
    adjusted = paired.holm_adjusted([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])  # Bonferroni: .04 .16 .12 .02
    assert paired.holm([0.01, 0.04, 0.03, 0.005]) == [True, False, False, True]
    assert paired.holm([0.01, 0.04, 0.03, 0.005], alpha=0.1) == [True, True, True, True]


def test_holm_is_capped_at_one_and_leaves_nan_out_of_the_count():
    assert paired.holm_adjusted([0.6, 0.7]) == [1.0, 1.0]
    adjusted = paired.holm_adjusted([0.01, math.nan, 0.04])
    assert adjusted[0] == pytest.approx(0.02) and adjusted[2] == pytest.approx(0.04)
    assert math.isnan(adjusted[1])
    assert paired.holm([0.01, math.nan, 0.04]) == [True, False, True]
    assert paired.holm_adjusted([]) == []


def holm_by_definition(p: list[float], alpha: float) -> list[bool]:
    """Holm's step-down as written: reject p_(j) ≤ α/(m − j + 1) until the first failure."""
    order = sorted(range(len(p)), key=p.__getitem__)
    reject = [False] * len(p)
    for rank, index in enumerate(order):
        if p[index] > alpha / (len(p) - rank):
            break
        reject[index] = True
    return reject


def test_holm_is_monotone_and_agrees_with_the_step_down_definition():
    rng = np.random.default_rng(7)
    for _ in range(200):
        p = list(rng.uniform(0, 0.08, size=rng.integers(1, 9)))
        adjusted = paired.holm_adjusted(p)
        by_p = [adjusted[i] for i in np.argsort(p)]
        assert all(a <= b for a, b in zip(by_p, by_p[1:], strict=False))
        assert all(a >= q and a <= 1 for a, q in zip(adjusted, p, strict=True))
        assert paired.holm(p, 0.05) == holm_by_definition(p, 0.05)


# --- TOST ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "differences, margin, equivalent",
    [
        ([0.1, -0.2, 0.05, 0.15, -0.1, 0.0], 0.5, True),
        ([0.1, -0.2, 0.05, 0.15, -0.1, 0.0], 0.1, False),
        ([0.4, 0.7, 0.3, 0.6], 0.5, False),
        ([-0.3, 0.4], 0.5, False),  # two trials: far too wide
    ],
)
def test_tost_is_two_one_sided_scipy_tests(differences, margin, equivalent):
    lower = stats.ttest_1samp(differences, -margin, alternative="greater").pvalue
    upper = stats.ttest_1samp(differences, margin, alternative="less").pvalue
    result = paired.tost(differences, margin)
    assert result.p_value == pytest.approx(max(lower, upper), rel=1e-10)
    interval = stats.ttest_1samp(differences, 0.0).confidence_interval(0.90)
    assert (result.low, result.high) == pytest.approx(tuple(interval))
    assert result.equivalent is equivalent
    assert equivalent == (-margin < result.low and result.high < margin)


def test_tost_is_never_equivalent_without_an_estimate_and_needs_a_positive_margin():
    assert not paired.tost([0.1], 0.5).equivalent
    assert math.isnan(paired.tost([0.1], 0.5).p_value)
    with pytest.raises(ValueError, match="margin"):
        paired.tost([0.1, 0.2], 0.0)


# --- verdicts ---------------------------------------------------------------------------------


def judge(differences: list[float], adjusted_p: float | None = None) -> str:
    interval = paired.paired_interval(differences)
    p = interval.p_value if adjusted_p is None else adjusted_p
    return paired.verdict(interval, paired.tost(differences, 0.5), p)


def test_verdicts_for_clear_cases_and_undecided_ones():
    assert judge([1.2, 1.5, 0.9, 1.4, 1.1]) == "higher"
    assert judge([-1.2, -1.5, -0.9, -1.4, -1.1]) == "lower"
    assert judge([0.1, -0.2, 0.05, 0.15, -0.1, 0.0]) == "equivalent within ±0.5 pp"
    assert judge([0.8, -0.6, 0.3]) == "not distinguishable with 3 trials"
    assert judge([0.7]) == "not distinguishable with 1 trial"


def test_a_difference_is_claimed_only_below_alpha_after_holm():
    differences = [0.6, 0.9, 0.3, 0.7, 0.0]
    assert paired.paired_interval(differences).p_value < 0.05
    assert judge(differences) == "higher"
    assert judge(differences, adjusted_p=0.068) == "not distinguishable with 5 trials"
    interval, equivalence = paired.paired_interval([0.1] * 2), paired.tost([0.1, 0.2], 0.5)
    assert paired.verdict(interval, equivalence, 0.5, adjusted_tost_p=0.9).startswith("not")


# --- pairing rounds.csv rows -----------------------------------------------------------------


def two_kinds() -> pd.DataFrame:
    return rounds_table(
        {
            TICKET: {0: as_trials([91.0, 92.0, 90.0]), 1: as_trials([91.5, 92.6, 90.2])},
            REINIT: {1: as_trials([90.0, 92.5, 88.0])},
        }
    )


def test_paired_differences_pair_by_trial_whatever_the_row_order():
    rounds = two_kinds()
    differences = paired.paired_differences(rounds, TICKET, REINIT)
    assert list(differences["trial"]) == [0, 1, 2] and set(differences["round"]) == {1}
    assert differences["difference"].to_numpy() == pytest.approx([1.5, 0.1, 2.2])
    assert differences["percent_remaining"].to_numpy() == pytest.approx([80.0] * 3)
    shuffled = rounds.sample(frac=1.0, random_state=3)
    assert not shuffled.index.equals(rounds.index)
    pd.testing.assert_frame_equal(paired.paired_differences(shuffled, TICKET, REINIT), differences)


def test_paired_differences_drop_a_missing_kind_and_a_diverged_unit():
    rounds = two_kinds()
    rounds = rounds[~((rounds["kind"] == REINIT) & (rounds["trial"] == 0))]  # never trained
    rounds.loc[(rounds["kind"] == TICKET) & (rounds["round"] == 1) & (rounds["trial"] == 2), [
        "test_accuracy", "diverged"]] = [math.nan, True]  # fmt: skip
    differences = paired.paired_differences(rounds, TICKET, REINIT)
    assert list(differences["trial"]) == [1]
    flagged = two_kinds()
    flagged.loc[flagged["kind"] == REINIT, "diverged"] = [False, True, False]
    assert list(paired.paired_differences(flagged, TICKET, REINIT)["trial"]) == [0, 2]


def test_paired_differences_against_the_same_trials_dense_network():
    rounds = two_kinds()
    against = paired.paired_differences(rounds, TICKET, against_dense=True)
    assert set(against["round"]) == {1}  # dense − dense is not a comparison
    assert against["difference"].to_numpy() == pytest.approx([0.5, 0.6, 0.2])
    controls = paired.paired_differences(rounds, REINIT, against_dense=True)
    assert controls["difference"].to_numpy() == pytest.approx([-1.0, 0.5, -2.0])
    rounds.loc[(rounds["round"] == 0) & (rounds["trial"] == 1), "test_accuracy"] = math.nan
    assert list(paired.paired_differences(rounds, REINIT, against_dense=True)["trial"]) == [0, 2]


def test_paired_differences_refuse_ambiguous_requests():
    rounds = two_kinds()
    with pytest.raises(ValueError, match="against_dense"):
        paired.paired_differences(rounds, TICKET)
    with pytest.raises(ValueError, match="against_dense"):
        paired.paired_differences(rounds, TICKET, REINIT, against_dense=True)
    doubled = pd.concat([rounds, rounds[rounds["kind"] == REINIT]])
    with pytest.raises(ValueError, match="ambiguous"):
        paired.paired_differences(doubled, TICKET, REINIT)


# --- the per-round table ---------------------------------------------------------------------


def test_paired_table_holm_adjusts_across_its_rounds():
    base = [90.0, 91.0, 89.0, 92.0, 90.5]
    gaps = {
        1: [0.6, 0.9, 0.3, 0.7, 0.0],
        2: [2.0, 2.1, 1.9, 2.2, 2.05],
        3: [0.5, -0.4, 0.1, 0.9, -0.8],
    }
    rounds = rounds_table(
        {
            TICKET: {
                r: as_trials([b + g for b, g in zip(base, gaps[r], strict=True)]) for r in gaps
            },
            REINIT: {r: as_trials(base) for r in gaps},
        }
    )
    table = paired.paired_table(rounds, TICKET, REINIT, margin=0.5)
    assert list(table.index) == [1, 2, 3] and list(table.columns) == paired.TABLE_COLUMNS
    for round_index, gap in gaps.items():
        expected = stats.ttest_1samp(gap, 0.0)
        row = table.loc[round_index]
        assert row["n"] == 5 and row["mean"] == pytest.approx(np.mean(gap))
        assert (row["low"], row["high"]) == pytest.approx(tuple(expected.confidence_interval()))
        assert row["p"] == pytest.approx(expected.pvalue, rel=1e-6)
    assert list(table["holm_p"]) == pytest.approx(paired.holm_adjusted(list(table["p"])))
    assert list(table["holm_tost_p"]) == pytest.approx(paired.holm_adjusted(list(table["tost_p"])))
    assert table.loc[1, "p"] < 0.05 < table.loc[1, "holm_p"]  # significant alone, not after Holm
    assert list(table["verdict"]) == ["not distinguishable with 5 trials", "higher"] + [
        "not distinguishable with 5 trials"
    ]


# --- matching (Frankle et al. 2020) ----------------------------------------------------------


def test_matching_is_within_one_sample_std_of_the_dense_mean():
    rounds = rounds_table(
        {
            TICKET: {
                0: as_trials([90.0, 91.0, 92.0]),  # mean 91, sample std 1: the bar is 90
                1: as_trials([89.0, 90.0, 91.0]),  # mean 90: on the bar, matching
                2: as_trials([89.5, 90.0, 90.2]),  # mean 89.9: below it
                3: as_trials([91.0, math.nan, 93.0]),  # one diverged: mean 92 of two
            }
        }
    )
    table = paired.matching(rounds, TICKET, scale=100.0)
    assert table["dense_mean"].iloc[0] == pytest.approx(91.0)
    assert table["dense_std"].iloc[0] == pytest.approx(1.0)  # ddof=1; ddof=0 gives 0.816
    assert table.loc[3, "mean"] == pytest.approx(92.0) and table.loc[3, "trials"] == 2
    assert list(table["matching"]) == [True, True, False, True]
    one_dense = rounds[(rounds["round"] > 0) | (rounds["trial"] == 0)]
    assert paired.matching(one_dense)["matching"].isna().all()  # no std from one trial
