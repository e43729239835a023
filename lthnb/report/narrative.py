"""What a figure shows, in one or two sentences computed from the run's tables.

05_plot prints these under its figures and 04_train under its look inside one round, so no
sentence in a report is typed by hand where the data could contradict it. Every number is a
mean over trials (statistics.mean_std, the statistic the figures draw); whether a ticket beats a
control is decided by the 95% CI of their gap (statistics.ticket_gaps). No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lthnb.analysis.statistics import (
    CONFIDENCE,
    by_round,
    controls_in,
    mean_std,
    ticket_gaps,
    trials_text,
)
from lthnb.controls.kinds import CONTROLS, TICKET, kind_label
from lthnb.pruning.masks import format_percent
from lthnb.report.explore import input_image
from lthnb.report.figures import default_rounds, layer_percents
from lthnb.runs.reader import RoundRecord, RunTables

NO_CONTROL = "No control was trained (controls is empty)."
EXCLUDES_ZERO = f"{CONFIDENCE:.0%} CI of the gap excludes 0"
NO_INTERVAL = f"no {CONFIDENCE:.0%} CI: it needs two or more trials that differ"


def _runs(runs: RunTables | Sequence[RunTables]) -> list[RunTables]:
    return [runs] if isinstance(runs, RunTables) else list(runs)


def _per_run(runs, sentence) -> str:
    """One paragraph per run, named by its label when several runs share a figure."""
    runs = _runs(runs)
    if len(runs) == 1:
        return sentence(runs[0])
    return "\n\n".join(f"**{run.label}**: {sentence(run)}" for run in runs)


def _at(stats: pd.DataFrame, round_index: int) -> str:
    """'51.2%': the percent of weights remaining in a round, as the figures' ticks show it."""
    return f"{format_percent(stats.loc[round_index, 'percent_remaining'])}%"


def accuracy(runs: RunTables | Sequence[RunTables]) -> str:
    """Where tickets fall below the dense net, and where controls fall below the tickets."""
    return _per_run(runs, _accuracy)


def _accuracy(run: RunTables) -> str:
    tickets = by_round(run.rounds, TICKET, "test_accuracy", 100.0)
    dense = tickets["mean"].get(0, np.nan)
    pruned = tickets.drop(index=0, errors="ignore")
    if pruned.empty or np.isnan(dense):
        return (
            f"Only the dense network has a test accuracy ({dense:.2f}%, {trials_text(run.rounds)})."
        )
    change = pruned["mean"] - dense
    at_or_above = change >= 0  # a diverged round (NaN) counts as below
    segments = _segments(at_or_above)
    opening = f"Dense network: {dense:.2f}% test accuracy ({trials_text(run.rounds)})."
    if len(segments) > MAX_SEGMENTS:
        worst = change.idxmin()
        tickets_text = (
            f"Tickets are at or above it at {int(at_or_above.sum())} of {len(change)} pruned "
            f"rounds and below it at the others, by up to {-change[worst]:.2f} pp "
            f"(at {_at(tickets, worst)})."
        )
    else:
        parts = [
            _segment_text(above, rounds, change, tickets, first=index == 0)
            for index, (above, rounds) in enumerate(segments)
        ]
        tickets_text = f"Tickets are {_join(parts)}."
    return f"{opening} {tickets_text} {_each_control(run, _accuracy_control)}"


MAX_SEGMENTS = 4  # above/below stretches named one by one; more are summarised


def _segments(flags: pd.Series) -> list[tuple[bool, list[int]]]:
    """Consecutive rounds with the same flag, in round order: [(flag, [rounds]), ...]."""
    segments: list[tuple[bool, list[int]]] = []
    for round_index, flag in flags.items():
        if segments and segments[-1][0] == bool(flag):
            segments[-1][1].append(round_index)
        else:
            segments.append((bool(flag), [round_index]))
    return segments


def _segment_text(
    above: bool, rounds: list[int], change: pd.Series, tickets: pd.DataFrame, first: bool
) -> str:
    """'at or above it from 41.1% to 3.6% (by up to +0.68 pp at 10.8%)' and the like."""
    if len(rounds) == 1:
        where = f"at {_at(tickets, rounds[0])}"
    else:
        where = f"from {_at(tickets, rounds[0])} to {_at(tickets, rounds[-1])}"
    where += " of weights remaining" if first else ""
    values = change[rounds]
    if values.isna().all():
        return f"below it {where} (diverged)"
    extreme = values.idxmax() if above else values.idxmin()
    amount = f"{values[extreme]:+.2f}" if above else f"{-values[extreme]:.2f}"
    by = (
        f"by up to {amount} pp at {_at(tickets, extreme)}" if len(rounds) > 1 else f"by {amount} pp"
    )
    return f"{'at or above' if above else 'below'} it {where} ({by})"


def _each_control(run: RunTables, sentence) -> str:
    """`sentence(run, control)` for every control the run trained, in kinds' order."""
    controls = controls_in(run.rounds)
    return " ".join(sentence(run, control) for control in controls) if controls else NO_CONTROL


def _name(control: str) -> str:
    return f"{kind_label(control)} controls"


def _capital(text: str) -> str:
    return text[0].upper() + text[1:]


def _compared(run: RunTables, control: str, value: str, scale: float) -> tuple[pd.DataFrame, str]:
    """The ticket − control gaps of the rounds where both have a value, and a note counting the
    diverged networks left out of them, so that none goes unmentioned."""
    gaps = ticket_gaps(run.rounds, control, value, scale)
    count = int(gaps["diverged"].sum())
    note = f" {count} diverged network{'s are' if count > 1 else ' is'} left out." if count else ""
    return gaps.dropna(subset=["gap"]), note


def _accuracy_control(run: RunTables, control: str) -> str:
    """Where tickets beat a control, judged by the 95% CI of the gap: from which percent on."""
    gaps, left_out = _compared(run, control, "test_accuracy", 100.0)
    name = _name(control)
    if gaps.empty:
        return f"{_capital(name)} have no result to compare with the tickets.{left_out}"
    if gaps["low"].isna().all():
        last = gaps.index[-1]
        return (
            f"{_capital(name)} are below the tickets at {int((gaps['gap'] > 0).sum())} of "
            f"{len(gaps)} pruned rounds (ticket − control at {_at(gaps, last)}: "
            f"{gaps['gap'][last]:+.2f} pp; {NO_INTERVAL}).{left_out}"
        )
    ahead = gaps["significant"] & (gaps["gap"] > 0)
    behind = gaps["significant"] & (gaps["gap"] < 0)
    if not ahead.any() and not behind.any():
        return (
            f"{_capital(name)} are never significantly behind the tickets: the {CONFIDENCE:.0%} "
            f"CI of the gap includes 0 at every pruned round.{left_out}"
        )
    control_ahead = (
        f"significantly ahead of the tickets at {int(behind.sum())} of {len(gaps)} pruned rounds "
        f"({EXCLUDES_ZERO})"
    )
    if not ahead.any():
        return (
            f"{_capital(name)} are never significantly behind the tickets, and {control_ahead}."
            + left_out
        )
    text = _tickets_ahead(name, gaps, ahead)
    if behind.any():
        text += f" {_capital(name)} are {control_ahead}."
    return text + left_out


def _tickets_ahead(name: str, gaps: pd.DataFrame, ahead: pd.Series) -> str:
    """'Tickets beat <name> from 51.2% remaining on (...)': the rounds where the CI of the gap
    lies above 0, told as the stretch that reaches the sparsest round where there is one."""
    last = gaps.index[-1]
    if ahead.all():
        return (
            f"Tickets beat {name} at every pruned round ({EXCLUDES_ZERO}), by "
            f"{gaps['gap'].min():.2f} to {gaps['gap'].max():.2f} pp."
        )
    if ahead[last]:
        start = ahead.index[(~ahead).to_numpy().nonzero()[0][-1] + 1]
        return (
            f"Tickets beat {name} from {_at(gaps, start)} remaining on ({EXCLUDES_ZERO}), by "
            f"{gaps['gap'][last]:.2f} pp at {_at(gaps, last)}."
        )
    return (
        f"Tickets beat {name} at {int(ahead.sum())} of {len(gaps)} pruned rounds "
        f"({EXCLUDES_ZERO}), the last at {_at(gaps, ahead[ahead].index[-1])}; at "
        f"{_at(gaps, last)} the gap is {gaps['gap'][last]:+.2f} pp."
    )


def early_stop(runs: RunTables | Sequence[RunTables]) -> str:
    """How much sooner tickets reach their minimum validation loss than the dense net."""
    return _per_run(runs, _early_stop)


def _early_stop(run: RunTables) -> str:
    tickets = by_round(run.rounds, TICKET, "early_stop_iteration")
    dense = tickets["mean"].get(0, np.nan)
    pruned = tickets.drop(index=0, errors="ignore").dropna(subset=["mean"])
    opening = (
        f"The dense network reaches its minimum validation loss at iteration {dense:.0f} "
        f"({trials_text(run.rounds)})"
    )
    if pruned.empty or np.isnan(dense):
        return opening + "."
    fastest = pruned["mean"].idxmin()
    earliest = pruned["mean"][fastest]
    if earliest < dense:
        speed = f", {dense / earliest:.1f}x sooner" if earliest > 0 else ""
        first = (
            f"{opening}; tickets reach it earliest at {_at(tickets, fastest)} of weights "
            f"remaining, at iteration {earliest:.0f}{speed}."
        )
    else:
        first = (
            f"{opening}; no ticket reaches it sooner (the earliest: iteration {earliest:.0f} "
            f"at {_at(tickets, fastest)})."
        )
    return f"{first} {_each_control(run, _early_stop_control)}"


def _early_stop_control(run: RunTables, control: str) -> str:
    """At how many pruned rounds a control stops later than the tickets, and significantly so."""
    gaps, left_out = _compared(run, control, "early_stop_iteration", 1.0)
    name = _capital(_name(control))
    if gaps.empty:
        return f"{name} have no early stop to compare with the tickets'.{left_out}"
    last = gaps.index[-1]
    at_last = (
        f"at {_at(gaps, last)}: iteration {gaps['control'][last]:.0f} against "
        f"{gaps['ticket'][last]:.0f}"
    )
    if gaps["low"].isna().all():
        later = int((gaps["gap"] < 0).sum())
        return (
            f"{name} stop later than the tickets at {later} of {len(gaps)} pruned rounds "
            f"({at_last}; {NO_INTERVAL}).{left_out}"
        )
    later = int((gaps["significant"] & (gaps["gap"] < 0)).sum())
    return (
        f"{name} stop significantly later than the tickets ({EXCLUDES_ZERO}) at {later} of "
        f"{len(gaps)} pruned rounds ({at_last}).{left_out}"
    )


def validation(run: RunTables, rounds: Sequence[int] | None = None, kind: str = "ticket") -> str:
    """The peak of each validation curve drawn by plots.validation_curves (same rounds)."""
    rows = run.evaluations[run.evaluations["kind"] == kind]
    chosen = default_rounds(rows["round"].unique()) if rounds is None else list(rounds)
    peaks = []
    for round_index in chosen:
        curve = mean_std(rows[rows["round"] == round_index], "val_accuracy", "iteration", 100.0)
        if curve["mean"].notna().any():
            best = curve["mean"].idxmax()
            percent = format_percent(curve["percent_remaining"].iloc[0])
            peaks.append(f"{curve['mean'][best]:.2f}% at iteration {best} with {percent}%")
    if not peaks:
        return f"No validation accuracy was recorded for {kind} rounds {chosen}."
    return (
        f"Peak validation accuracy of the {kind}s ({trials_text(run.rounds)}), "
        "by weights remaining: " + "; ".join(peaks) + "."
    )


def layers(run: RunTables) -> str:
    """What each layer keeps after the last round, naming layers whose curves coincide."""
    per_round = layer_percents(run)
    if per_round.empty:
        return "No per-layer counts were recorded."
    last = per_round.index[-1]
    final = per_round.loc[last]
    groups: dict[str, list[str]] = {}
    for layer, percent in final.items():
        groups.setdefault(f"{format_percent(percent)}%", []).append(str(layer))
    parts = []
    for percent, names in groups.items():
        if len(names) == 1:
            parts.append(f"{names[0]} keeps {percent}")
        else:
            parts.append(f"{_join(names)} each keep {percent} (their curves coincide)")
    return f"After round {last}, {_join(parts)} of its kernel weights."


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def layer_view(record: RoundRecord, layer: str | None = None) -> str:
    """Which initial magnitudes survived in a layer: what explore.layer_view draws."""
    layer = layer or next(iter(record.masks))
    mask = record.masks[layer].astype(bool)
    initial = np.abs(record.theta0[layer])
    kept = (
        f"Round {record.round_index} keeps {int(mask.sum())} of {layer}'s {mask.size} kernel "
        f"weights ({100 * mask.mean():.1f}%)."
    )
    if mask.all():
        return kept + " Nothing is pruned yet."
    return (
        f"{kept} Their initial magnitudes |θ0| average {initial[mask].mean():.4f}, "
        f"against {initial[~mask].mean():.4f} for the pruned ones."
    )


def border_width(side: int) -> int:
    """The border of an image: 4 pixels of a 28x28 one, where MNIST's digits never reach."""
    return max(1, side // 7)


def border_and_centre(connections: np.ndarray) -> tuple[float, float]:
    """Mean surviving connections per pixel in the border and in the centre of the image."""
    width = border_width(min(connections.shape))
    border = np.ones(connections.shape, dtype=bool)
    border[width:-width, width:-width] = False
    return float(connections[border].mean()), float(connections[~border].mean())


def input_connections(record: RoundRecord) -> str:
    """Whether the border or the centre of the input keeps more first-layer connections."""
    connections = input_image(record)
    if connections is None:
        return "The first layer is not dense on square images: there is no map per input pixel."
    border, centre = border_and_centre(connections)
    width = border_width(min(connections.shape))
    if f"{border:.1f}" == f"{centre:.1f}":
        verdict = "the border and the centre keep as many"
    else:
        verdict = f"the {'border' if border > centre else 'centre'} keeps more"
    return (
        f"In round {record.round_index}, a pixel of the {width}-pixel border keeps on average "
        f"{border:.1f} of its connections to the first layer, a pixel of the centre {centre:.1f}: "
        f"{verdict}."
    )


def round_comparison(table: pd.DataFrame) -> str:
    """The ticket against the dense net and its controls, from inspect_round.ticket_vs_control."""
    rows = table.set_index("network")
    dense = rows.loc["dense"]
    if TICKET not in rows.index:
        return (
            f"Round 0 is the dense network: {dense['test accuracy %']:.2f}% test accuracy, early "
            f"stop at iteration {dense['early-stop iteration']:.0f}. No round is pruned yet."
        )
    ticket = rows.loc[TICKET]
    text = (
        f"With {format_percent(ticket['% weights left'])}% of weights left (round "
        f"{ticket['round']}), the ticket reaches {ticket['test accuracy %']:.2f}% test accuracy "
        f"({ticket['test accuracy %'] - dense['test accuracy %']:+.2f} pp against the dense net) "
        f"and stops early at iteration {ticket['early-stop iteration']:.0f} (dense: "
        f"{dense['early-stop iteration']:.0f})."
    )
    controls = [network for network in rows.index if network in CONTROLS]
    if not controls:
        return f"{text} {NO_CONTROL}"
    return " ".join([text, *(_control_in_round(rows.loc[c], ticket, c) for c in controls)])


def _control_in_round(control: pd.Series, ticket: pd.Series, kind: str) -> str:
    if control["diverged"]:
        return f"Its {kind_label(kind)} control diverged."
    accuracy = control["test accuracy %"]
    return (
        f"Its {kind_label(kind)} control reaches {accuracy:.2f}% "
        f"({accuracy - ticket['test accuracy %']:+.2f} pp against the ticket) at iteration "
        f"{control['early-stop iteration']:.0f}."
    )
