"""The reproduction table comes from rounds.csv by code, and the committed one is current."""

import math

import pandas as pd
import pytest
from conftest import REPO
from scipy import stats

from lthnb.report.reproduction import (
    comparison_table,
    main,
    markdown,
    paired_markdown,
    paired_table,
    recipe_markdown,
    recipe_table,
    stability_markdown,
    summary_markdown,
)

RESULTS = REPO / "docs" / "results" / "lenet_fashion_mnist"
LATE_REWINDING = REPO / "docs" / "results" / "lenet_fashion_mnist_rewind"
OPEN_LTH = REPO / "docs" / "results" / "lenet_open_lth"
OPEN_LTH_LABELS = ("paper (Adam, layer-wise)", "open_lth (SGD, global)")


def _rounds(
    offsets: tuple[float, ...] = (-0.01, 0.01), controls: dict[str, float] | None = None
) -> pd.DataFrame:
    """Tickets at 90% and each control at its accuracy (default: reinit at 85%) in every pruned
    round; trial t adds offsets[t] to every accuracy."""
    controls = {"reinit": 0.85} if controls is None else controls
    rows = []
    for trial, offset in enumerate(offsets):
        for round_index, percent in enumerate((100.0, 50.0, 20.0)):
            kinds = {"ticket": 0.90, **(controls if round_index else {})}
            for kind, accuracy in kinds.items():
                rows.append(
                    dict(
                        trial=trial,
                        round=round_index,
                        kind=kind,
                        percent_remaining=percent,
                        test_accuracy=accuracy + offset,
                        early_stop_iteration=1000 - 200 * round_index * (kind == "ticket"),
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


def test_every_control_gets_its_accuracy_and_the_tickets_lead_with_scipys_interval():
    rounds = _rounds((-0.002, 0.0, 0.002), {"same_sign": 0.90, "random_mask": 0.80})
    table = comparison_table(rounds, percents=(51.0, 21.0))
    for control, accuracy in (("random_mask", 80.0), ("same_sign", 90.0)):
        ticket = rounds.query("kind == 'ticket' and round == 2")["test_accuracy"] * 100
        other = rounds.query(f"kind == '{control}' and round == 2")["test_accuracy"] * 100
        interval = stats.ttest_ind(ticket, other, equal_var=False).confidence_interval(0.95)
        row = table.iloc[1]
        assert row[f"{control}_accuracy"] == pytest.approx(accuracy)
        assert row[f"ticket_minus_{control}_pp"] == pytest.approx(90.0 - accuracy)
        assert row[f"ticket_minus_{control}_low"] == pytest.approx(interval.low)
        assert row[f"ticket_minus_{control}_high"] == pytest.approx(interval.high)
    assert table["ticket_minus_random_mask_significant"].all()
    assert not table["ticket_minus_same_sign_significant"].any()
    assert "reinit_accuracy" not in table.columns


def test_markdown_gives_each_control_two_columns_and_stars_significant_leads():
    rounds = _rounds((-0.002, 0.0, 0.002), {"same_sign": 0.90, "random_mask": 0.80})
    header, _, first, second, *note = markdown(comparison_table(rounds, (51.0, 21.0))).splitlines()
    assert header.split(" | ")[3:9] == [
        "ticket acc. (%)", "random mask acc. (%)", "same-sign reinit acc. (%)",
        "ticket − dense (pp)", "ticket − random mask (pp, 95% CI)",
        "ticket − same-sign reinit (pp, 95% CI)",
    ]  # fmt: skip
    cells = first.split(" | ")
    assert cells[7].startswith("+10.00 [+9.") and cells[7].endswith("]*")
    assert cells[8].startswith("+0.00 [-") and not cells[8].endswith("*")
    assert note[-1].endswith("* where it excludes 0.")
    plain = markdown(comparison_table(_rounds(controls={}), (51.0,)))
    assert "95% CI" not in plain and "In brackets" not in plain
    assert plain.splitlines()[0].count(" | ") == 6  # paper %, round, % remaining and 4 more


def test_committed_summary_is_regenerated_from_the_committed_rounds():
    committed = (RESULTS / "summary.md").read_text()
    assert summary_markdown(RESULTS / "rounds.csv") == committed
    assert committed in (REPO / "docs" / "REPRODUCTION.md").read_text()


def test_paired_table_compares_the_same_rounds_of_two_runs():
    theta0 = _rounds()
    late = theta0.assign(
        test_accuracy=theta0["test_accuracy"] + 0.01,
        early_stop_iteration=theta0["early_stop_iteration"] + 500,
    )
    table = paired_table(theta0, late, percents=(51.0, 21.0))
    assert list(table["round"]) == [1, 2]
    assert table["second_minus_first_pp"].tolist() == pytest.approx([1.0, 1.0])
    assert table["first_trials"].tolist() == [2, 2]
    assert (
        table["second_early_stop_iteration"] - table["first_early_stop_iteration"]
    ).tolist() == [
        500,
        500,
    ]


def test_paired_table_pairs_the_trials_of_the_late_run():
    theta0 = _rounds()
    late = theta0[(theta0["trial"] == 0) | (theta0["round"] < 2)]  # trial 1 stopped at round 1
    table = paired_table(theta0, late, percents=(51.0, 21.0))
    assert table["first_trials"].tolist() == [2, 1] == table["second_trials"].tolist()
    assert table.iloc[1]["first_accuracy"] == pytest.approx(89.0)  # trial 0 alone


def test_committed_late_rewinding_summary_is_regenerated_from_the_committed_rounds():
    committed = (LATE_REWINDING / "summary.md").read_text()
    regenerated = paired_markdown(RESULTS / "rounds.csv", LATE_REWINDING / "rounds.csv")
    assert regenerated == committed
    assert committed in (REPO / "docs" / "REPRODUCTION.md").read_text()


def test_recipes_are_matched_by_sparsity_not_by_round():
    first = _rounds()
    second = _rounds((0.0, 0.02))
    # the second recipe prunes slower: 100, 80, 50, 20 % over rounds 0..3
    second["round"] = second["round"].map({0: 0, 1: 2, 2: 3})
    extra = second[second["round"] == 2].assign(round=1, percent_remaining=80.0)
    second = pd.concat([second, extra], ignore_index=True)
    table = recipe_table(first, second, percents=(100.0, 51.0, 21.0))
    assert list(table["first_round"]) == [0, 1, 2]
    assert list(table["second_round"]) == [0, 2, 3]
    assert list(table["second_percent"]) == [100.0, 50.0, 20.0]
    assert table["second_accuracy"].iloc[1] == pytest.approx(91.0)
    assert table["first_reinit"].iloc[1] == pytest.approx(85.0)
    assert math.isnan(table["second_reinit"].iloc[0])  # no control of the dense net


def test_committed_recipe_comparison_is_current():
    committed = (OPEN_LTH / "summary.md").read_text()
    generated = recipe_markdown(RESULTS / "rounds.csv", OPEN_LTH / "rounds.csv", OPEN_LTH_LABELS)
    assert committed == generated
    assert committed in (REPO / "docs" / "REPRODUCTION.md").read_text()


def test_every_round_gives_a_row_per_round_without_the_paper_column(tmp_path):
    theta0 = _rounds()
    theta0.to_csv(tmp_path / "theta0.csv", index=False)
    theta0.assign(test_accuracy=theta0["test_accuracy"] + 0.01).to_csv(
        tmp_path / "late.csv", index=False
    )
    main([str(tmp_path / "theta0.csv"), "--every-round", "--output", str(tmp_path / "s.md")])
    lines = (tmp_path / "s.md").read_text().splitlines()
    header, rows = lines[2], [line for line in lines[4:] if line.startswith("| ")]
    assert header.startswith("| round | % remaining | ticket acc. (%) |")
    assert [row.split(" | ")[:2] for row in rows] == [["| 1", "50.0"], ["| 2", "20.0"]]
    main([str(tmp_path / "theta0.csv"), "--late-rewinding", str(tmp_path / "late.csv"),
          "--every-round", "--output", str(tmp_path / "r.md")])  # fmt: skip
    lines = (tmp_path / "r.md").read_text().splitlines()
    assert lines[0].startswith("| round | % remaining | trials θ0/θk |")
    assert [line.split(" | ")[:2] for line in lines[2:]] == [["| 0", "100.0"], ["| 1", "50.0"],
                                                              ["| 2", "20.0"]]  # fmt: skip
    assert [line.split(" | ")[5] for line in lines[2:]] == ["+1.00"] * 3


RESULTS_ROOT = REPO / "docs" / "results"


@pytest.mark.parametrize(
    "run", ["conv2_fashion_mnist", "conv4_fashion_mnist", "conv6_fashion_mnist"]
)
def test_committed_conv_summaries_are_current(run):
    committed = (RESULTS_ROOT / run / "summary.md").read_text()
    assert summary_markdown(RESULTS_ROOT / run / "rounds.csv", every_round=True) == committed
    assert committed in (REPO / "docs" / "REPRODUCTION.md").read_text()


@pytest.mark.parametrize(
    ("first", "second", "labels"),
    [
        ("conv2_fashion_mnist", "conv2_fashion_mnist_bf16", ("float32", "bfloat16")),
        ("conv4_fashion_mnist", "conv4_fashion_mnist_rewind", ("θ0", "θ100")),
        ("conv6_fashion_mnist", "conv6_fashion_mnist_rewind", ("θ0", "θ100")),
    ],
)
def test_committed_conv_pairs_are_current(first, second, labels):
    """A conv run against its twin of another precision or rewind point, trial by trial."""
    committed = (RESULTS_ROOT / second / "summary.md").read_text()
    pair = (RESULTS_ROOT / first / "rounds.csv", RESULTS_ROOT / second / "rounds.csv")
    assert paired_markdown(*pair, True, labels) == committed
    assert committed in (REPO / "docs" / "REPRODUCTION.md").read_text()


def test_committed_stability_summary_is_current():
    folder = RESULTS_ROOT / "lenet_fashion_mnist_stability"
    committed = (folder / "summary.md").read_text()
    assert stability_markdown(folder) == committed
    assert committed in (REPO / "docs" / "REPRODUCTION.md").read_text()


def test_the_cli_refuses_a_damaged_or_missing_table_in_one_line(tmp_path, capsys):
    cut = tmp_path / "rounds.csv"
    text = (RESULTS / "rounds.csv").read_text()
    cut.write_text(text[: len(text) // 2])  # a copy cut short mid-line
    truncated = "is truncated (its last line is cut off)"
    for path, problem in ((cut, truncated), (tmp_path / "none.csv", "is missing")):
        with pytest.raises(SystemExit) as exit_:
            main([str(path)])
        error = capsys.readouterr().err.strip()
        assert exit_.value.code == 1 and "\n" not in error
        assert error.endswith(
            f"{path} {problem}; give the rounds.csv of a run that 04_train finished"
        )
