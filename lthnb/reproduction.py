"""The reproduction table: tickets vs controls vs the dense net at the paper's sparsities.

Frankle & Carbin (2019, §2) discuss LeNet at 51%, 21%, 13.5%, 7% and 3.6% of weights remaining.
This module picks the round nearest each of those from a run's rounds.csv and compares, as mean
± std over trials, test accuracy and early-stop iteration. docs/REPRODUCTION.md embeds its
output; a test regenerates it from the committed CSV, so no number is typed in by hand.

    .venv/bin/python -m lthnb.reproduction docs/results/lenet_fashion_mnist/rounds.csv
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

PAPER_PERCENTS = (51.0, 21.0, 13.5, 7.0, 3.6)


def _stats(rows: pd.DataFrame, column: str) -> tuple[float, float]:
    values = rows[column]
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def comparison_table(
    rounds: pd.DataFrame, percents: Sequence[float] = PAPER_PERCENTS
) -> pd.DataFrame:
    """One row per paper sparsity: the nearest round's ticket, control and dense figures."""
    dense = rounds[(rounds["round"] == 0) & (rounds["kind"] == "ticket")]
    dense_accuracy, _ = _stats(dense, "test_accuracy")
    dense_iteration, _ = _stats(dense, "early_stop_iteration")
    by_round = rounds[rounds["kind"] == "ticket"].groupby("round")["percent_remaining"].mean()
    rows = []
    for target in percents:
        round_index = int((by_round - target).abs().idxmin())
        ticket = rounds[(rounds["round"] == round_index) & (rounds["kind"] == "ticket")]
        control = rounds[(rounds["round"] == round_index) & (rounds["kind"] == "reinit")]
        ticket_accuracy, ticket_std = _stats(ticket, "test_accuracy")
        ticket_iteration, _ = _stats(ticket, "early_stop_iteration")
        row = {
            "paper_percent": target,
            "round": round_index,
            "percent_remaining": by_round[round_index],
            "trials": len(ticket),
            "ticket_accuracy": 100 * ticket_accuracy,
            "ticket_accuracy_std": 100 * ticket_std,
            "reinit_accuracy": float("nan"),
            "reinit_accuracy_std": float("nan"),
            "ticket_minus_dense_pp": 100 * (ticket_accuracy - dense_accuracy),
            "ticket_minus_reinit_pp": float("nan"),
            "ticket_early_stop_iteration": ticket_iteration,
            "early_stop_change_vs_dense_percent": 100 * (ticket_iteration / dense_iteration - 1),
        }
        if len(control):
            control_accuracy, control_std = _stats(control, "test_accuracy")
            row.update(
                reinit_accuracy=100 * control_accuracy,
                reinit_accuracy_std=100 * control_std,
                ticket_minus_reinit_pp=100 * (ticket_accuracy - control_accuracy),
            )
        rows.append(row)
    return pd.DataFrame(rows)


def dense_summary(rounds: pd.DataFrame) -> str:
    dense = rounds[(rounds["round"] == 0) & (rounds["kind"] == "ticket")]
    accuracy, std = _stats(dense, "test_accuracy")
    iteration, _ = _stats(dense, "early_stop_iteration")
    return (
        f"Dense network (round 0, {len(dense)} trials): test accuracy {100 * accuracy:.2f} ± "
        f"{100 * std:.2f} %, early stop at iteration {iteration:.0f} (mean)."
    )


def markdown(table: pd.DataFrame) -> str:
    """The table as GitHub markdown, rounded for reading."""
    header = (
        "| paper % | round | % remaining | ticket acc. (%) | reinit acc. (%) | ticket − dense (pp) "
        "| ticket − reinit (pp) | ticket early-stop iter. | vs dense |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = [
        f"| {r.paper_percent:g} | {r.round} | {r.percent_remaining:.1f} "
        f"| {r.ticket_accuracy:.2f} ± {r.ticket_accuracy_std:.2f} "
        f"| {r.reinit_accuracy:.2f} ± {r.reinit_accuracy_std:.2f} "
        f"| {r.ticket_minus_dense_pp:+.2f} | {r.ticket_minus_reinit_pp:+.2f} "
        f"| {r.ticket_early_stop_iteration:.0f} | {r.early_stop_change_vs_dense_percent:+.0f}% |"
        for r in table.itertuples()
    ]
    return header + "\n".join(lines) + "\n"


def summary_markdown(rounds_csv: str | Path) -> str:
    """The dense line and the comparison table for a rounds.csv."""
    rounds = pd.read_csv(rounds_csv)
    return dense_summary(rounds) + "\n\n" + markdown(comparison_table(rounds))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rounds_csv", type=Path)
    parser.add_argument("--output", type=Path, help="write here instead of printing")
    args = parser.parse_args(argv)
    text = summary_markdown(args.rounds_csv)
    if args.output:
        args.output.write_text(text)
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
