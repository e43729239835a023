"""The reproduction table: tickets vs controls vs the dense net at the paper's sparsities.

Frankle & Carbin (2019, §2) discuss LeNet at 51%, 21%, 13.5%, 7% and 3.6% of weights remaining.
This module picks the round nearest each of those from a run's rounds.csv and compares, as mean
± std over trials, test accuracy and early-stop iteration, and the ticket's lead over each
control the run trained with its 95% CI (lthnb.analysis.statistics). docs/REPRODUCTION.md embeds its
output; a test regenerates it from the committed CSV, so no number is typed in by hand.

    .venv/bin/python -m lthnb.report.reproduction docs/results/lenet_fashion_mnist/rounds.csv

With `--every-round` the rows are every round instead of the paper's LeNet sparsities (for runs
on another schedule, such as the conv nets at reduced scale). With `--paired <rounds.csv>`
(or `--late-rewinding`) it compares instead the tickets of two runs of one protocol trial by
trial, e.g. rewound to θ0 and to θk, or float32 and bfloat16 (`--labels` names them), and with
`--recipe <rounds.csv>` the tickets and controls of another recipe (e.g. open_lth's) at equal
sparsity. With `--stability` it writes the instability analysis of a run folder (07_stability's
table and sentences) instead.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from lthnb.analysis.stability_tables import read_stability
from lthnb.analysis.statistics import (
    CONFIDENCE,
    by_round,
    controls_in,
    interval_text,
    mean_std_text,
    ticket_gaps,
)
from lthnb.controls.kinds import CONTROLS, REINIT, TICKET, kind_label
from lthnb.report.stability_figures import (
    batch_norm_text,
    path_text,
    remaining_text,
    rewind_text,
    stability_view,
)
from lthnb.runs.tables import RunFolderError, read_table

PAPER_PERCENTS = (51.0, 21.0, 13.5, 7.0, 3.6)
# Where two recipes are compared: the dense net, then the paper's sparsities down to about 9%
# (open_lth's 11 levels of 20% global pruning reach 8.6-8.9%).
RECIPE_PERCENTS = (100.0, 51.0, 21.0, 13.5, 9.0)
REWINDING_LABELS = ("θ0", "θk")
INTERVAL_PARTS = ("pp", "low", "high", "significant")  # ticket_minus_<control>_<part> columns
INTERVAL_NOTE = (
    f"\nIn brackets: the {CONFIDENCE:.0%} confidence interval of the gap over trials (Welch's t); "
    "* where it excludes 0.\n"
)


def round_percents(rounds: pd.DataFrame, first_round: int = 1) -> tuple[float, ...]:
    """The percent remaining of each round from `first_round` on that the tickets reached:
    `--every-round`'s rows (the summary's start at round 1: the dense net has its own line)."""
    tickets = rounds[(rounds["kind"] == TICKET) & (rounds["round"] >= first_round)]
    return tuple(tickets.groupby("round")["percent_remaining"].first())


def comparison_table(
    rounds: pd.DataFrame, percents: Sequence[float] = PAPER_PERCENTS
) -> pd.DataFrame:
    """One row per paper sparsity: the nearest round's ticket, dense and control figures, with
    the ticket's lead over each control (`ticket_minus_<control>_pp`) and its 95% CI."""
    accuracy = by_round(rounds, TICKET, "test_accuracy", 100.0)
    iteration = by_round(rounds, TICKET, "early_stop_iteration")
    dense_accuracy, dense_iteration = accuracy["mean"][0], iteration["mean"][0]
    controls = {
        control: (by_round(rounds, control, "test_accuracy", 100.0), ticket_gaps(rounds, control))
        for control in controls_in(rounds)
    }
    rows = []
    for target in percents:
        round_index = int((accuracy["percent_remaining"] - target).abs().idxmin())
        ticket_accuracy = accuracy["mean"][round_index]
        row = {
            "paper_percent": target,
            "round": round_index,
            "percent_remaining": accuracy["percent_remaining"][round_index],
            "trials": accuracy["trials"][round_index],
            "ticket_accuracy": ticket_accuracy,
            "ticket_accuracy_std": accuracy["std"][round_index],
            "ticket_minus_dense_pp": ticket_accuracy - dense_accuracy,
            "ticket_early_stop_iteration": iteration["mean"][round_index],
            "early_stop_change_vs_dense_percent": 100
            * (iteration["mean"][round_index] / dense_iteration - 1),
        }
        for control, (stats, gaps) in controls.items():
            row |= _control_columns(control, stats, gaps, round_index)
        rows.append(row)
    return pd.DataFrame(rows)


def _control_columns(
    control: str, stats: pd.DataFrame, gaps: pd.DataFrame, round_index: int
) -> dict[str, float | bool]:
    """A control's accuracy in one round and the ticket's lead over it, NaN where not trained."""
    return {
        f"{control}_trials": stats["trials"].get(round_index, 0),
        f"{control}_accuracy": stats["mean"].get(round_index, math.nan),
        f"{control}_accuracy_std": stats["std"].get(round_index, math.nan),
        f"ticket_minus_{control}_pp": gaps["gap"].get(round_index, math.nan),
        f"ticket_minus_{control}_low": gaps["low"].get(round_index, math.nan),
        f"ticket_minus_{control}_high": gaps["high"].get(round_index, math.nan),
        f"ticket_minus_{control}_significant": bool(gaps["significant"].get(round_index, False)),
    }


def paired_table(
    first: pd.DataFrame, second: pd.DataFrame, percents: Sequence[float] = PAPER_PERCENTS
) -> pd.DataFrame:
    """Per sparsity: the tickets of two runs of one protocol that differ in one setting (θ0
    against late rewinding to θk, float32 against bfloat16), round by round over the same
    trials (those the second run has), so the comparison is paired."""
    present = second.loc[second["kind"] == TICKET, ["trial", "round"]]
    first = first.merge(present, on=["trial", "round"])
    rows = []
    stats = {
        name: (
            by_round(rounds, TICKET, "test_accuracy", 100.0),
            by_round(rounds, TICKET, "early_stop_iteration"),
        )
        for name, rounds in (("first", first), ("second", second))
    }
    percent = stats["second"][0]["percent_remaining"]
    for target in percents:
        round_index = int((percent - target).abs().idxmin())
        row = {
            "paper_percent": target,
            "round": round_index,
            "percent_remaining": percent[round_index],
        }
        for name, (accuracy, iteration) in stats.items():
            row[f"{name}_trials"] = accuracy["trials"].get(round_index, 0)
            row[f"{name}_accuracy"] = accuracy["mean"].get(round_index, math.nan)
            row[f"{name}_accuracy_std"] = accuracy["std"].get(round_index, math.nan)
            row[f"{name}_early_stop_iteration"] = iteration["mean"].get(round_index, math.nan)
        row["second_minus_first_pp"] = row["second_accuracy"] - row["first_accuracy"]
        rows.append(row)
    return pd.DataFrame(rows)


def paired_markdown(
    first_csv: str | Path,
    second_csv: str | Path,
    every_round: bool = False,
    labels: Sequence[str] = REWINDING_LABELS,
) -> str:
    """`paired_table` as GitHub markdown: every round from the dense one on, or the paper's
    sparsities; `labels` name the two runs (default θ0 and θk)."""
    first, second = _rounds(first_csv), _rounds(second_csv)
    percents = round_percents(second, 0) if every_round else PAPER_PERCENTS
    table = paired_table(first, second, percents)
    a, b = labels
    titles = [f"trials {a}/{b}", f"{a} ticket acc. (%)", f"{b} ticket acc. (%)", f"{b} − {a} (pp)"]
    titles += [f"{a} early-stop iter.", f"{b} early-stop iter."]
    return _markdown_table(
        titles,
        (
            [
                f"{r.first_trials}/{r.second_trials}",
                mean_std_text(r.first_accuracy, r.first_accuracy_std),
                mean_std_text(r.second_accuracy, r.second_accuracy_std),
                f"{r.second_minus_first_pp:+.2f}",
                f"{r.first_early_stop_iteration:.0f}",
                f"{r.second_early_stop_iteration:.0f}",
            ]
            for r in table.itertuples()
        ),
        table,
        paper_column=not every_round,
    )


def recipe_table(
    first: pd.DataFrame, second: pd.DataFrame, percents: Sequence[float] = RECIPE_PERCENTS
) -> pd.DataFrame:
    """Two recipes' tickets and reinit controls at the round nearest each sparsity in each run
    (their schedules differ, so rounds are matched by percent remaining, not by index)."""
    rows = []
    for target in percents:
        row: dict[str, float | int] = {"target_percent": target}
        for name, rounds in (("first", first), ("second", second)):
            accuracy = by_round(rounds, TICKET, "test_accuracy", 100.0)
            round_index = int((accuracy["percent_remaining"] - target).abs().idxmin())
            control = by_round(rounds, REINIT, "test_accuracy", 100.0)
            iteration = by_round(rounds, TICKET, "early_stop_iteration")
            row |= {
                f"{name}_round": round_index,
                f"{name}_percent": accuracy["percent_remaining"][round_index],
                f"{name}_trials": accuracy["trials"][round_index],
                f"{name}_accuracy": accuracy["mean"][round_index],
                f"{name}_accuracy_std": accuracy["std"][round_index],
                f"{name}_reinit": control["mean"].get(round_index, math.nan),
                f"{name}_reinit_std": control["std"].get(round_index, math.nan),
                f"{name}_early_stop_iteration": iteration["mean"][round_index],
            }
        rows.append(row)
    return pd.DataFrame(rows)


def recipe_markdown(first_csv: str | Path, second_csv: str | Path, labels: Sequence[str]) -> str:
    """`recipe_table` as GitHub markdown; `labels` name the two recipes in the headers."""
    table = recipe_table(_rounds(first_csv), _rounds(second_csv))
    titles = ["target %"]
    for label in labels:
        titles += [f"{label}: round (% left)", "ticket acc. (%)", "reinit acc. (%)", "early stop"]
    rows = []
    for row in table.to_dict("records"):
        cells = [f"{row['target_percent']:g}"]
        for name in ("first", "second"):
            cells += [
                f"{row[f'{name}_round']} ({row[f'{name}_percent']:.1f})",
                mean_std_text(row[f"{name}_accuracy"], row[f"{name}_accuracy_std"]),
                mean_std_text(row[f"{name}_reinit"], row[f"{name}_reinit_std"]),
                f"{row[f'{name}_early_stop_iteration']:.0f}",
            ]
        rows.append(cells)
    return markdown_grid(titles, rows)


def markdown_grid(titles: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub markdown table with right-aligned columns (no tabulate dependency)."""
    lines = ["| " + " | ".join(titles) + " |", "|" + "---:|" * len(titles)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _markdown_table(titles: list[str], cells, table: pd.DataFrame, paper_column: bool) -> str:
    """GitHub markdown: the paper's sparsity (if `paper_column`), the round and its percent,
    then `titles`."""
    titles = ["paper %"] * paper_column + ["round", "% remaining", *titles]
    rows = (
        [f"{r.paper_percent:g}"] * paper_column + [f"{r.round}", f"{r.percent_remaining:.1f}", *row]
        for r, row in zip(table.itertuples(), cells, strict=True)
    )
    return markdown_grid(titles, rows)


def dense_summary(rounds: pd.DataFrame) -> str:
    accuracy = by_round(rounds, TICKET, "test_accuracy", 100.0)
    iteration = by_round(rounds, TICKET, "early_stop_iteration")
    return (
        f"Dense network (round 0, {accuracy['trials'][0]} trials): test accuracy "
        f"{mean_std_text(accuracy['mean'][0], accuracy['std'][0])} %, early stop "
        f"at iteration {iteration['mean'][0]:.0f} (mean)."
    )


def markdown(table: pd.DataFrame, paper_column: bool = True) -> str:
    """The table as GitHub markdown, rounded for reading, with a note on the intervals."""
    controls = [control for control in CONTROLS if f"{control}_accuracy" in table.columns]
    titles = ["ticket acc. (%)", *(f"{kind_label(c)} acc. (%)" for c in controls)]
    titles += ["ticket − dense (pp)"]
    titles += [f"ticket − {kind_label(c)} (pp, {CONFIDENCE:.0%} CI)" for c in controls]
    titles += ["ticket early-stop iter.", "vs dense"]
    rows = table.to_dict("records")
    cells = (_markdown_cells(row, controls) for row in rows)
    text = _markdown_table(titles, cells, table, paper_column)
    return text + INTERVAL_NOTE if controls else text


def _markdown_cells(row: dict, controls: Sequence[str]) -> list[str]:
    """One row of `markdown`: the ticket, each control, the gaps and the early stop."""
    return [
        mean_std_text(row["ticket_accuracy"], row["ticket_accuracy_std"]),
        *(mean_std_text(row[f"{c}_accuracy"], row[f"{c}_accuracy_std"]) for c in controls),
        f"{row['ticket_minus_dense_pp']:+.2f}",
        *(
            interval_text(*(row[f"ticket_minus_{c}_{part}"] for part in INTERVAL_PARTS))
            for c in controls
        ),
        f"{row['ticket_early_stop_iteration']:.0f}",
        f"{row['early_stop_change_vs_dense_percent']:+.0f}%",
    ]


def summary_markdown(rounds_csv: str | Path, every_round: bool = False) -> str:
    """The dense line and the comparison table for a rounds.csv (every pruned round, or the
    paper's LeNet sparsities)."""
    rounds = _rounds(rounds_csv)
    percents = round_percents(rounds) if every_round else PAPER_PERCENTS
    table = markdown(comparison_table(rounds, percents), paper_column=not every_round)
    return dense_summary(rounds) + "\n\n" + table


def stability_markdown(run_dir: str | Path) -> str:
    """The instability analysis of a run folder (07_stability's table and sentences) as
    GitHub markdown: one row per (round, k), mean ± std over trials."""
    tables = read_stability(run_dir)
    view = stability_view(tables)
    view["stable"] = view["stable"].map({True: "yes", False: "no"})
    titles = ["round", "k", *view.columns]
    rows = (
        [str(round_index), str(k), *(str(value) for value in values)]
        for (round_index, k), values in zip(view.index, view.itertuples(index=False), strict=True)
    )
    sentences = [path_text(tables), rewind_text(tables), remaining_text(tables)]
    if tables.batch_norm in ("recompute", "interpolate"):  # a network with batch norm
        sentences.append(batch_norm_text(tables))
    return markdown_grid(titles, rows) + "".join(f"\n{sentence}\n" for sentence in sentences)


def _rounds(path: str | Path) -> pd.DataFrame:
    """A run's rounds.csv, or one line saying what is wrong with it."""
    return read_table(Path(path), advice="give the rounds.csv of a run that 04_train finished")


def _markdown(args: argparse.Namespace) -> str:
    if args.stability:
        return stability_markdown(args.rounds_csv)
    if args.paired:
        labels = args.labels or REWINDING_LABELS
        return paired_markdown(args.rounds_csv, args.paired, args.every_round, labels)
    if args.recipe:
        return recipe_markdown(args.rounds_csv, args.recipe, args.labels or ("paper", "other"))
    return summary_markdown(args.rounds_csv, args.every_round)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m lthnb.report.reproduction", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "rounds_csv", type=Path, help="a run's rounds.csv (with --stability: its run folder)"
    )
    parser.add_argument(
        "--paired",
        "--late-rewinding",
        type=Path,
        help="the rounds.csv of a run differing in one setting (e.g. late rewinding)",
    )
    parser.add_argument(
        "--recipe", type=Path, help="another recipe's rounds.csv, compared at equal sparsity"
    )
    parser.add_argument(
        "--labels", nargs=2, help="the two runs' names (--paired: θ0 θk; --recipe: paper other)"
    )
    parser.add_argument(
        "--every-round",
        action="store_true",
        help="a row per pruned round, not the paper's LeNet sparsities (e.g. the conv runs)",
    )
    parser.add_argument(
        "--stability",
        action="store_true",
        help="the instability analysis (07_stability) of the run folder given instead",
    )
    parser.add_argument("--output", type=Path, help="write here instead of printing")
    args = parser.parse_args(argv)
    try:
        text = _markdown(args)
    except RunFolderError as error:  # a damaged or missing table: its one line, no traceback
        parser.exit(1, f"{parser.prog}: {error}\n")
    if args.output:
        args.output.write_text(text)
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
