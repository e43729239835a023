"""Paper-style figures (Frankle & Carbin 2019, Fig. 3/4) and a summary table from run folders.

Every curve is the mean over trials with a ±1 std band (sample std, ddof=1): the old notebooks
plotted the last trial only. Every kind a run trained (the ticket and each control of
lthnb.controls.kinds) is its own curve; the statistics come from lthnb.analysis.statistics. No
TensorFlow here, so plotting starts instantly and tests stay fast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from lthnb.analysis.statistics import by_round, controls_in, mean_std
from lthnb.controls.kinds import KINDS, TICKET, kind_label, kind_of
from lthnb.pruning.masks import format_percent
from lthnb.runs.reader import RunTables

# Layers pruned at the same rate draw the same curve: each layer gets its own marker and dashes,
# hollow markers shrinking layer by layer, so a curve drawn later never hides an earlier one.
LAYER_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LAYER_DASHES = ("-", "--", ":", "-.")
MAX_PERCENT_TICKS = 12  # at most this many labelled ticks across the log axis
DEFAULT_CURVES = 5  # rounds shown by validation_curves when none are asked for


class PlotInputError(ValueError):
    """A run folder or table cannot be plotted; the message says what to run or fix."""


def line_with_band(ax: Axes, x, stats: pd.DataFrame, label: str, **style) -> None:
    """Plot the mean; shade ±1 std where it exists (not with one trial)."""
    (line,) = ax.plot(x, stats["mean"], label=label, **style)
    if stats["std"].notna().any():
        std = stats["std"].fillna(0.0)
        ax.fill_between(
            x, stats["mean"] - std, stats["mean"] + std, color=line.get_color(), alpha=0.2,
            linewidth=0, gid=f"{label} band",
        )  # fmt: skip


def _as_list(runs: RunTables | Sequence[RunTables]) -> list[RunTables]:
    runs = [runs] if isinstance(runs, RunTables) else list(runs)
    if not runs:
        raise PlotInputError("no runs to plot; pass read_run(<run folder>)")
    return runs


def new_axes(ax: Axes | None) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    return plt.subplots(figsize=(7.5, 4.8), layout="constrained")


def _thin_ticks(percents: Sequence[float]) -> list[float]:
    """Keep ticks that are far enough apart on the log axis to be read, always the two ends."""
    values = sorted({round(float(p), 6) for p in percents if p > 0}, reverse=True)
    if len(values) <= 2:
        return values
    gap = math.log10(values[0] / values[-1]) / MAX_PERCENT_TICKS
    kept = [values[0]]
    for value in values[1:-1]:
        if math.log10(kept[-1] / value) >= gap:
            kept.append(value)
    if len(kept) > 1 and math.log10(kept[-1] / values[-1]) < gap:
        kept.pop()
    return [*kept, values[-1]]


def percent_axis(ax: Axes, percents: Sequence[float]) -> None:
    """Log x axis, 100 % on the left, ticks at the rounds' percentages (paper Fig. 3)."""
    ticks = _thin_ticks(percents)
    ax.set_xscale("log")
    ax.set_xticks(ticks, [format_percent(tick) for tick in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(max(ticks) * 1.08, min(ticks) / 1.08)
    ax.set_xlabel("Weights remaining (%)")


def _paper_plot(runs, value: str, scale: float, ylabel: str, what: str, ax) -> Figure:
    """Each kind a run trained (its registered style) and its dense net (dotted, the ticket's
    colour).

    A run alone gives each kind its own colour too; several runs get one colour each.
    """
    runs = _as_list(runs)
    fig, ax = new_axes(ax)
    palette = sns.color_palette(n_colors=max(len(runs), len(KINDS)))
    percents: list[float] = []
    for index, run in enumerate(runs):
        colors = {k: palette[index if len(runs) > 1 else KINDS.index(k)] for k in KINDS}
        for name in (TICKET, *controls_in(run.rounds)):
            stats = by_round(run.rounds, name, value, scale)
            if stats.empty:
                continue
            percents += list(stats["percent_remaining"])
            style = {"color": colors[name], "markersize": 3.5, **kind_of(name).style}
            line_with_band(
                ax, stats["percent_remaining"], stats, f"{run.label} {kind_label(name)}", **style
            )
        dense = by_round(run.rounds, TICKET, value, scale)["mean"].get(0, np.nan)
        if not np.isnan(dense):
            ax.axhline(
                dense, color=colors[TICKET], linestyle=":", linewidth=1, label=f"{run.label} dense"
            )
    percent_axis(ax, percents)
    names = ", ".join(run.label for run in runs)
    ax.set(ylabel=ylabel, title=f"{names}: {what} vs. weights remaining\n(mean ± std over trials)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def accuracy_vs_remaining(runs: RunTables | Sequence[RunTables], ax: Axes | None = None) -> Figure:
    """Test accuracy at early stop as pruning proceeds: does the ticket beat its controls?"""
    ylabel = "Test accuracy at early stop (%)"
    return _paper_plot(runs, "test_accuracy", 100.0, ylabel, "test accuracy", ax)


def early_stop_vs_remaining(
    runs: RunTables | Sequence[RunTables], ax: Axes | None = None
) -> Figure:
    """Iteration of minimum validation loss: winning tickets learn faster (paper Fig. 3)."""
    return _paper_plot(runs, "early_stop_iteration", 1.0, "Early-stop iteration", "early stop", ax)


def default_rounds(available: Sequence[int], count: int = DEFAULT_CURVES) -> list[int]:
    """Up to `count` rounds spread evenly, always the first and the last."""
    available = sorted(available)
    if len(available) <= count:
        return available
    picks = np.linspace(0, len(available) - 1, count).round().astype(int)
    return [available[i] for i in sorted(set(picks))]


def validation_curves(
    run: RunTables,
    rounds: Sequence[int] | None = None,
    kind: str = TICKET,
    ax: Axes | None = None,
) -> Figure:
    """Validation accuracy during training, one curve per round: how sparsity changes learning."""
    rows = run.evaluations[run.evaluations["kind"] == kind]
    available = sorted(int(r) for r in rows["round"].unique())
    if not available:
        raise PlotInputError(
            f"{run.label} has no {kind!r} rows in evaluations.csv (kinds: {KINDS})"
        )
    chosen = default_rounds(available) if rounds is None else list(rounds)
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        raise PlotInputError(f"rounds {unknown} not in {run.label} ({kind}); have {available}")
    fig, ax = new_axes(ax)
    for round_index, color in zip(chosen, sns.color_palette("viridis", len(chosen)), strict=True):
        stats = mean_std(rows[rows["round"] == round_index], "val_accuracy", "iteration", 100.0)
        label = f"{format_percent(stats['percent_remaining'].iloc[0])}% remaining"
        line_with_band(ax, stats.index, stats, label, color=color)
    ax.set(
        xlabel="Training iteration",
        ylabel="Validation accuracy (%)",
        title=f"{run.label} {kind}: validation accuracy during training\n(mean ± std over trials)",
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def layer_remaining(run: RunTables, ax: Axes | None = None) -> Figure:
    """Percent of each layer's weights left per round: shows the per-layer pruning rates.

    Layers with the same rate coincide; each has its own marker and dashes so both stay visible.
    """
    columns = [column for column in run.rounds.columns if column.startswith("remaining_")]
    if not columns:
        raise PlotInputError(f"{run.label}: rounds.csv has no remaining_<layer> columns")
    per_round = layer_percents(run)
    fig, ax = new_axes(ax)
    for index, layer in enumerate(per_round.columns):
        ax.plot(per_round.index, per_round[layer], label=layer, **layer_style(index))
    log_percent_axis(ax, per_round.to_numpy().ravel())
    ax.set(
        xlabel="Pruning round",
        ylabel="Weights remaining in layer (%)",
        title=f"{run.label}: weights remaining per layer",
    )
    ax.grid(True, alpha=0.3)
    ax.legend(title="Layer", fontsize="small")
    return fig


def log_percent_axis(ax: Axes, percents) -> None:
    """Log y axis of percent remaining, ticks at the values drawn; whole rounds on the x axis."""
    ticks = _thin_ticks([p for p in percents if not np.isnan(p)])
    ax.set_yscale("log")
    ax.set_yticks(ticks, [format_percent(tick) for tick in ticks])
    ax.yaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def layer_style(index: int) -> dict:
    """Line style of the index-th layer: its own colour, marker and dashes, hollow markers
    shrinking layer by layer, so layers pruned at the same rate stay visible on one curve."""
    return {
        "color": sns.color_palette()[index % len(sns.color_palette())],
        "marker": LAYER_MARKERS[index % len(LAYER_MARKERS)],
        "fillstyle": "none",
        "markersize": max(4.0, 10.0 - 2.0 * index),
        "markeredgewidth": 1.3,
        "linestyle": LAYER_DASHES[index % len(LAYER_DASHES)],
        "linewidth": 1.5,
    }


def layer_percents(run: RunTables) -> pd.DataFrame:
    """Percent of each layer's kernel weights remaining per round (tickets; columns: layers).

    Equal across trials for layer-wise pruning; the mean also summarises global pruning.
    """
    columns = [column for column in run.rounds.columns if column.startswith("remaining_")]
    tickets = run.rounds[run.rounds["kind"] == TICKET]
    per_round = tickets.groupby("round")[columns].mean()
    return per_round.rename(columns=lambda column: column.removeprefix("remaining_"))
