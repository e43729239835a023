"""The reproduction table: tickets vs controls vs the dense net at the paper's sparsities.

Frankle & Carbin (2019, §2) discuss LeNet at 51%, 21%, 13.5%, 7% and 3.6% of weights remaining.
This module picks the round nearest each of those from a run's rounds.csv and compares, as mean
± std over trials, test accuracy and early-stop iteration. docs/REPRODUCTION.md embeds its
output; a test regenerates it from the committed CSV, so no number is typed in by hand.

    .venv/bin/python -m lthnb.reproduction docs/results/lenet_fashion_mnist/rounds.csv

With `--late-rewinding <rounds.csv>` it compares instead the tickets rewound to θ0 with those of
a late-rewinding run (rewound to θk) of the same protocol.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from lthnb.plots import mean_std

PAPER_PERCENTS = (51.0, 21.0, 13.5, 7.0, 3.6)


def _by_round(rounds: pd.DataFrame, kind: str, value: str, scale: float = 1.0) -> pd.DataFrame:
    """Per round mean ± std over trials (plots' statistic); one trial has a std of 0 here."""
    stats = mean_std(rounds[rounds["kind"] == kind], value, scale=scale)
    stats["std"] = stats["std"].fillna(0.0)
    return stats


def comparison_table(
    rounds: pd.DataFrame, percents: Sequence[float] = PAPER_PERCENTS
) -> pd.DataFrame:
    """One row per paper sparsity: the nearest round's ticket, control and dense figures."""
    accuracy = _by_round(rounds, "ticket", "test_accuracy", 100.0)
    iteration = _by_round(rounds, "ticket", "early_stop_iteration")
    control = _by_round(rounds, "reinit", "test_accuracy", 100.0)
    dense_accuracy, dense_iteration = accuracy["mean"][0], iteration["mean"][0]
    rows = []
    for target in percents:
        round_index = int((accuracy["percent_remaining"] - target).abs().idxmin())
        ticket_accuracy = accuracy["mean"][round_index]
        control_accuracy = control["mean"].get(round_index, float("nan"))
        rows.append(
            {
                "paper_percent": target,
                "round": round_index,
                "percent_remaining": accuracy["percent_remaining"][round_index],
                "trials": accuracy["trials"][round_index],
                "ticket_accuracy": ticket_accuracy,
                "ticket_accuracy_std": accuracy["std"][round_index],
                "reinit_accuracy": control_accuracy,
                "reinit_accuracy_std": control["std"].get(round_index, float("nan")),
                "ticket_minus_dense_pp": ticket_accuracy - dense_accuracy,
                "ticket_minus_reinit_pp": ticket_accuracy - control_accuracy,
                "ticket_early_stop_iteration": iteration["mean"][round_index],
                "early_stop_change_vs_dense_percent": 100
                * (iteration["mean"][round_index] / dense_iteration - 1),
            }
        )
    return pd.DataFrame(rows)


def rewinding_table(
    theta0: pd.DataFrame, late: pd.DataFrame, percents: Sequence[float] = PAPER_PERCENTS
) -> pd.DataFrame:
    """Per paper sparsity: tickets rewound to θ0 against tickets rewound to θk, round by round
    over the same trials (those the late-rewinding run has), so the comparison is paired."""
    present = late.loc[late["kind"] == "ticket", ["trial", "round"]]
    theta0 = theta0.merge(present, on=["trial", "round"])
    rows = []
    stats = {
        name: (
            _by_round(rounds, "ticket", "test_accuracy", 100.0),
            _by_round(rounds, "ticket", "early_stop_iteration"),
        )
        for name, rounds in (("theta0", theta0), ("late", late))
    }
    percent = stats["late"][0]["percent_remaining"]
    for target in percents:
        round_index = int((percent - target).abs().idxmin())
        row = {
            "paper_percent": target,
            "round": round_index,
            "percent_remaining": percent[round_index],
        }
        for name, (accuracy, iteration) in stats.items():
            row[f"{name}_trials"] = accuracy["trials"].get(round_index, 0)
            row[f"{name}_accuracy"] = accuracy["mean"].get(round_index, float("nan"))
            row[f"{name}_accuracy_std"] = accuracy["std"].get(round_index, float("nan"))
            row[f"{name}_early_stop_iteration"] = iteration["mean"].get(round_index, float("nan"))
        row["late_minus_theta0_pp"] = row["late_accuracy"] - row["theta0_accuracy"]
        rows.append(row)
    return pd.DataFrame(rows)


def rewinding_markdown(theta0_csv: str | Path, late_csv: str | Path) -> str:
    """The θ0-against-θk table as GitHub markdown."""
    table = rewinding_table(pd.read_csv(theta0_csv), pd.read_csv(late_csv))
    titles = ["trials θ0/θk", "θ0 ticket acc. (%)", "θk ticket acc. (%)", "θk − θ0 (pp)"]
    titles += ["θ0 early-stop iter.", "θk early-stop iter."]
    return _markdown_table(
        titles,
        (
            [
                f"{r.theta0_trials}/{r.late_trials}",
                _spread(r.theta0_accuracy, r.theta0_accuracy_std, r.theta0_trials),
                _spread(r.late_accuracy, r.late_accuracy_std, r.late_trials),
                f"{r.late_minus_theta0_pp:+.2f}",
                f"{r.theta0_early_stop_iteration:.0f}",
                f"{r.late_early_stop_iteration:.0f}",
            ]
            for r in table.itertuples()
        ),
        table,
    )


def _spread(mean: float, std: float, trials: int) -> str:
    """'mean ± std', or the mean alone where one trial has no spread to show."""
    return f"{mean:.2f} ± {std:.2f}" if trials > 1 else f"{mean:.2f}"


def _markdown_table(titles: list[str], cells, table: pd.DataFrame) -> str:
    """GitHub markdown: the paper's sparsity, the round and its percent, then `titles`."""
    titles = ["paper %", "round", "% remaining", *titles]
    lines = ["| " + " | ".join(titles) + " |", "|" + "---:|" * len(titles)]
    for r, row in zip(table.itertuples(), cells, strict=True):
        first = [f"{r.paper_percent:g}", f"{r.round}", f"{r.percent_remaining:.1f}"]
        lines.append("| " + " | ".join(first + row) + " |")
    return "\n".join(lines) + "\n"


def dense_summary(rounds: pd.DataFrame) -> str:
    accuracy = _by_round(rounds, "ticket", "test_accuracy", 100.0)
    iteration = _by_round(rounds, "ticket", "early_stop_iteration")
    return (
        f"Dense network (round 0, {accuracy['trials'][0]} trials): test accuracy "
        f"{accuracy['mean'][0]:.2f} ± {accuracy['std'][0]:.2f} %, early stop at iteration "
        f"{iteration['mean'][0]:.0f} (mean)."
    )


def markdown(table: pd.DataFrame) -> str:
    """The table as GitHub markdown, rounded for reading."""
    titles = ["ticket acc. (%)", "reinit acc. (%)", "ticket − dense (pp)"]
    titles += ["ticket − reinit (pp)", "ticket early-stop iter.", "vs dense"]
    return _markdown_table(
        titles,
        (
            [
                f"{r.ticket_accuracy:.2f} ± {r.ticket_accuracy_std:.2f}",
                f"{r.reinit_accuracy:.2f} ± {r.reinit_accuracy_std:.2f}",
                f"{r.ticket_minus_dense_pp:+.2f}",
                f"{r.ticket_minus_reinit_pp:+.2f}",
                f"{r.ticket_early_stop_iteration:.0f}",
                f"{r.early_stop_change_vs_dense_percent:+.0f}%",
            ]
            for r in table.itertuples()
        ),
        table,
    )


def summary_markdown(rounds_csv: str | Path) -> str:
    """The dense line and the comparison table for a rounds.csv."""
    rounds = pd.read_csv(rounds_csv)
    return dense_summary(rounds) + "\n\n" + markdown(comparison_table(rounds))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rounds_csv", type=Path)
    parser.add_argument("--late-rewinding", type=Path, help="a late-rewinding run's rounds.csv")
    parser.add_argument("--output", type=Path, help="write here instead of printing")
    args = parser.parse_args(argv)
    if args.late_rewinding:
        text = rewinding_markdown(args.rounds_csv, args.late_rewinding)
    else:
        text = summary_markdown(args.rounds_csv)
    if args.output:
        args.output.write_text(text)
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
