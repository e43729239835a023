"""The reproduction table comes from rounds.csv by code, and the committed one is current."""

import pandas as pd
import pytest
from conftest import REPO

from lthnb.reproduction import (
    comparison_table,
    rewinding_markdown,
    rewinding_table,
    summary_markdown,
)

RESULTS = REPO / "docs" / "results" / "lenet_fashion_mnist"
LATE_REWINDING = REPO / "docs" / "results" / "lenet_fashion_mnist_rewind"


def _rounds() -> pd.DataFrame:
    rows = []
    for trial, offset in enumerate((-0.01, 0.01)):
        for round_index, percent in enumerate((100.0, 50.0, 20.0)):
            rows.append(
                dict(
                    trial=trial,
                    round=round_index,
                    kind="ticket",
                    percent_remaining=percent,
                    test_accuracy=0.90 + offset,
                    early_stop_iteration=1000 - 200 * round_index,
                )
            )
            if round_index:
                rows.append(
                    dict(
                        trial=trial,
                        round=round_index,
                        kind="reinit",
                        percent_remaining=percent,
                        test_accuracy=0.85 + offset,
                        early_stop_iteration=1000,
                    )
                )
    return pd.DataFrame(rows)


def test_comparison_picks_the_nearest_round_and_compares():
    table = comparison_table(_rounds(), percents=(51.0, 21.0))
    assert list(table["round"]) == [1, 2]
    first = table.iloc[0]
    assert first["ticket_accuracy"] == pytest.approx(90.0)
    assert first["ticket_accuracy_std"] == pytest.approx(100 * (0.02**2 / 2) ** 0.5)
    assert first["ticket_minus_dense_pp"] == pytest.approx(0.0)
    assert first["ticket_minus_reinit_pp"] == pytest.approx(5.0)
    assert table.iloc[1]["early_stop_change_vs_dense_percent"] == pytest.approx(-40.0)


def test_committed_summary_is_regenerated_from_the_committed_rounds():
    committed = (RESULTS / "summary.md").read_text()
    assert summary_markdown(RESULTS / "rounds.csv") == committed
    assert committed in (REPO / "docs" / "REPRODUCTION.md").read_text()


def test_rewinding_table_compares_the_same_rounds_of_two_runs():
    theta0 = _rounds()
    late = theta0.assign(
        test_accuracy=theta0["test_accuracy"] + 0.01,
        early_stop_iteration=theta0["early_stop_iteration"] + 500,
    )
    table = rewinding_table(theta0, late, percents=(51.0, 21.0))
    assert list(table["round"]) == [1, 2]
    assert table["late_minus_theta0_pp"].tolist() == pytest.approx([1.0, 1.0])
    assert table["theta0_trials"].tolist() == [2, 2]
    assert (table["late_early_stop_iteration"] - table["theta0_early_stop_iteration"]).tolist() == [
        500,
        500,
    ]


def test_rewinding_table_pairs_the_trials_of_the_late_run():
    theta0 = _rounds()
    late = theta0[(theta0["trial"] == 0) | (theta0["round"] < 2)]  # trial 1 stopped at round 1
    table = rewinding_table(theta0, late, percents=(51.0, 21.0))
    assert table["theta0_trials"].tolist() == [2, 1] == table["late_trials"].tolist()
    assert table.iloc[1]["theta0_accuracy"] == pytest.approx(89.0)  # trial 0 alone


def test_committed_late_rewinding_summary_is_regenerated_from_the_committed_rounds():
    committed = (LATE_REWINDING / "summary.md").read_text()
    regenerated = rewinding_markdown(RESULTS / "rounds.csv", LATE_REWINDING / "rounds.csv")
    assert regenerated == committed
    assert committed in (REPO / "docs" / "REPRODUCTION.md").read_text()
