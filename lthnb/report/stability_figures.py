"""Figures, table and sentences of the instability analysis (07_stability), from its tables.

Frankle et al. (2020) show test error along the linear path between two copies, instability
against the rewind iteration k, and instability beside test accuracy against sparsity. Every
curve is the mean over trials with a ±1 std band (`statistics.mean_std`, as in 05); instability
is computed per trial, then averaged. The paper counts a network as stable when its instability
is below 2 percentage points. No TensorFlow here, so figures load fast.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lthnb.analysis.stability_tables import NO_BATCH_NORM, UNRECORDED, StabilityTables
from lthnb.analysis.statistics import mean_std, mean_std_text, trials_text
from lthnb.pruning.masks import format_percent
from lthnb.report.figures import line_with_band, new_axes, percent_axis

STABLE_BELOW = 2.0  # percentage points of test error: the paper's threshold for "stable"
VALUES = {  # summary columns: table column, header, scale, digits
    "instability": ("instability pp", 100.0, 2),
    "train_instability": ("train instability pp", 100.0, 2),
    "mean_test_accuracy": ("copies' test acc. %", 100.0, 2),
}


def _k_label(k: int) -> str:
    return f"k = {k}"


def _remaining(rows: pd.DataFrame) -> str:
    """'13.5% remaining' for rows of one round."""
    return f"{format_percent(rows['percent_remaining'].mean())}% remaining"


def path_round(tables: StabilityTables, round_index: int | None = None) -> int:
    """The round whose paths figure (a) shows: the one asked for, else the one with the largest
    mean instability (the picture of a barrier, where there is one; the sparsest on ties)."""
    rounds = sorted(int(r) for r in tables.path_points["round"].unique())
    if round_index is None:
        means = tables.instability.groupby("round")["instability"].mean().fillna(-np.inf)
        return int(means.sort_index(ascending=False).idxmax())
    if round_index not in rounds:
        raise ValueError(f"round {round_index} was not analysed; stability_rounds has {rounds}")
    return round_index


def _ks(rows: pd.DataFrame) -> list[int]:
    return sorted(int(k) for k in rows["rewind_iteration"].unique())


def _k_colors(ks: list[int]) -> list:
    """One colour per k, the same in figures (a) and (c); (b) colours sparsities (viridis)."""
    return sns.color_palette(n_colors=len(ks))


def _instability_by(rows: pd.DataFrame, by: str) -> pd.DataFrame:
    return mean_std(rows, "instability", by, 100.0)


def error_along_path(
    tables: StabilityTables, round_index: int | None = None, ax: Axes | None = None
) -> Figure:
    """Figure (a): test error against alpha, one curve per k, at one round."""
    chosen = path_round(tables, round_index)
    rows = tables.path_points[tables.path_points["round"] == chosen]
    fig, ax = new_axes(ax)
    ks = _ks(rows)
    for k, color in zip(ks, _k_colors(ks), strict=True):
        stats = mean_std(rows[rows["rewind_iteration"] == k], "test_error", "alpha", 100.0)
        line_with_band(ax, stats.index, stats, _k_label(k), color=color, marker="o", markersize=3)
    ax.set(
        xlabel="Interpolation α (0: copy 1, 1: copy 2)",
        ylabel="Test error (%)",
        title=f"{tables.label}: test error on the linear path between two copies\n"
        f"round {chosen}, {_remaining(rows)} (mean ± std over trials)",
    )
    ax.grid(True, alpha=0.3)
    ax.legend(title="copies start from θk", fontsize="small")
    return fig


def instability_vs_rewind(tables: StabilityTables, ax: Axes | None = None) -> Figure:
    """Figure (b): instability against k, one curve per sparsity; the ks evenly spaced."""
    units = tables.instability
    ks = _ks(units)
    fig, ax = new_axes(ax)
    rounds = sorted(units["round"].unique())
    for round_index, color in zip(rounds, sns.color_palette("viridis", len(rounds)), strict=True):
        rows = units[units["round"] == round_index]
        stats = _instability_by(rows, "rewind_iteration")
        positions = [ks.index(k) for k in stats.index]
        line_with_band(ax, positions, stats, _remaining(rows), color=color, marker="o")
    _threshold(ax)
    ax.set_xticks(range(len(ks)), [str(k) for k in ks])
    ax.set(
        xlabel="Rewind iteration k (the copies start from θk; ticks evenly spaced)",
        ylabel="Instability (pp of test error)",
        title=f"{tables.label}: instability vs. rewind iteration\n(mean ± std over trials)",
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def _threshold(ax: Axes) -> None:
    ax.axhline(STABLE_BELOW, color="grey", linestyle=":", linewidth=1, label="stable below (2 pp)")


def instability_vs_remaining(tables: StabilityTables) -> Figure:
    """Figure (c): instability (left) and the copies' test accuracy (right) against sparsity,
    one curve per k: are subnetworks accurate only where they are stable?"""
    units = tables.instability
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), layout="constrained")
    ks = _ks(units)
    for k, color in zip(ks, _k_colors(ks), strict=True):
        rows = units[units["rewind_iteration"] == k]
        for ax, value in ((left, "instability"), (right, "mean_test_accuracy")):
            stats = mean_std(rows, value, "round", 100.0)
            x = stats["percent_remaining"]
            line_with_band(ax, x, stats, _k_label(k), color=color, marker="o", markersize=3.5)
    _threshold(left)
    for ax in (left, right):
        percent_axis(ax, units["percent_remaining"].tolist())
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="small")
    left.set(ylabel="Instability (pp of test error)", title="Instability")
    right.set(ylabel="Test accuracy (%), mean of the two copies", title="Test accuracy")
    fig.suptitle(
        f"{tables.label}: instability and accuracy vs. weights remaining (mean ± std over trials)"
    )
    return fig


def stability_view(tables: StabilityTables) -> pd.DataFrame:
    """One row per (round, k): instabilities and accuracy as mean ± std, and the verdict."""
    grouped = tables.instability.groupby(["round", "rewind_iteration"])
    means, stds = grouped.mean(numeric_only=True), grouped.std(numeric_only=True)
    view = pd.DataFrame(
        {"% left": means["percent_remaining"].map(format_percent)}, index=means.index
    )
    view["trials"] = grouped["trial"].nunique()
    for column, (header, scale, digits) in VALUES.items():
        pairs = zip(means[column] * scale, stds[column] * scale, strict=True)
        view[header] = [mean_std_text(mean, std, digits) for mean, std in pairs]
    view["stable"] = means["instability"] * 100.0 < STABLE_BELOW
    return view.rename_axis(["round", "k"])


# --- sentences under the figures ---

BATCH_NORM_TEXTS = {  # what the paths did with batch norm statistics, by the analysis's record
    "recompute": "Batch norm statistics were recomputed at every α (stability_batch_norm: "
    "recompute): the population statistics of the network at that point on fixed training "
    "batches, so every point, the ends included, is evaluated with statistics that describe it.",
    "interpolate": "Batch norm statistics were interpolated like the weights "
    "(stability_batch_norm: interpolate): between the ends they mix the copies' statistics "
    "rather than describe the network at that point, which can raise the barrier.",
    NO_BATCH_NORM: "The network has no batch norm: its paths are the same under either "
    "stability_batch_norm.",
    UNRECORDED: "These tables predate the record of stability_batch_norm: any batch norm "
    "statistics were interpolated like the weights.",
}


def batch_norm_text(tables: StabilityTables) -> str:
    """What the paths did with batch norm statistics: they change the barrier of a network
    with batch norm, so a reader of the numbers must know which."""
    unknown = f"Batch norm statistics: {tables.batch_norm!r}, a record lthnb does not know."
    return BATCH_NORM_TEXTS.get(tables.batch_norm, unknown)


def _list(values: Sequence) -> str:
    return ", ".join(str(v) for v in values)


def path_text(tables: StabilityTables, round_index: int | None = None) -> str:
    """Figure (a) in words: the ends, the worst point and the verdict for each k."""
    chosen = path_round(tables, round_index)
    rows = tables.path_points[tables.path_points["round"] == chosen]
    units = tables.instability[tables.instability["round"] == chosen]
    parts = []
    for k in _ks(rows):
        curve = mean_std(rows[rows["rewind_iteration"] == k], "test_error", "alpha", 100.0)
        ends = (curve["mean"].iloc[0] + curve["mean"].iloc[-1]) / 2
        value = _instability_by(units, "rewind_iteration").loc[k, "mean"]
        parts.append(
            f"for k = {k}, {ends:.2f}% at the ends and {curve['mean'].max():.2f}% at worst "
            f"(α = {curve['mean'].idxmax():.2f}), an instability of {value:.2f} pp "
            f"({_verdict(value)})"
        )
    return (
        f"At {_remaining(rows)} (round {chosen}, {trials_text(rows)}), "
        "the test error along the path: "
        f"{'; '.join(parts)}."
    )


def _verdict(instability_pp: float) -> str:
    if np.isnan(instability_pp):
        return "diverged"
    return "stable" if instability_pp < STABLE_BELOW else "unstable"


def rewind_text(tables: StabilityTables) -> str:
    """Figure (b) in words: per sparsity, the ks at which the subnetwork is stable."""
    units = tables.instability
    parts = []
    for _, rows in units.groupby("round"):
        means = _instability_by(rows, "rewind_iteration")["mean"]
        stable = [k for k, value in means.items() if value < STABLE_BELOW]
        verdict = (
            "stable at every k"
            if len(stable) == len(means)
            else "stable at no k"
            if not stable
            else f"stable at k = {_list(stable)} only"
        )
        first, last = means.index[0], means.index[-1]
        spread = f"{means[first]:.2f} pp at k = {first}"
        if last != first:
            spread += f", {means[last]:.2f} pp at k = {last}"
        parts.append(f"at {_remaining(rows)}, {spread}: {verdict}")
    return (
        f"Instability ({trials_text(units)}; stable below {STABLE_BELOW:g} pp, the paper's "
        f"threshold): {'; '.join(parts)}."
    )


def remaining_text(tables: StabilityTables) -> str:
    """Figure (c) in words: how far down each k stays stable, and whether accuracy follows."""
    units = tables.instability
    parts = []
    for k in _ks(units):
        rows = units[units["rewind_iteration"] == k]
        means = _instability_by(rows, "round")
        stable = means[means["mean"] < STABLE_BELOW]
        reach = f"at {len(stable)} of {len(means)} sparsities"
        if not stable.empty:
            reach += f", the sparsest {format_percent(stable['percent_remaining'].min())}%"
        parts.append(f"with k = {k} the subnetworks are stable {reach}")
    text = "; ".join(parts)
    return f"{text[0].upper()}{text[1:]}. {_accuracy_gap_text(units)}"


def _accuracy_gap_text(units: pd.DataFrame) -> str:
    """The paper's finding, tested on these tables: the sparse subnetworks' accuracy change
    against the dense network at the same k, where they are stable and where they are not."""
    means = units.groupby(["rewind_iteration", "round"])[["instability", "mean_test_accuracy"]]
    means = means.mean() * 100.0
    if 0 not in means.index.get_level_values("round"):
        return "Round 0 was not analysed, so there is no dense accuracy to compare with."
    dense = means.xs(0, level="round")["mean_test_accuracy"]
    sparse = means.drop(index=0, level="round")
    if sparse.empty:
        return f"Only the dense network was analysed ({_list(f'{a:.2f}%' for a in dense)})."
    change = sparse["mean_test_accuracy"] - dense.reindex(sparse.index, level="rewind_iteration")
    stable = sparse["instability"] < STABLE_BELOW
    sentences = []
    for label, chosen in (("stable", stable), ("unstable", ~stable)):
        if chosen.any():
            sentences.append(
                f"{int(chosen.sum())} {label} (sparsity, k) pairs: {change[chosen].mean():+.2f} pp"
            )
    return (
        "Test accuracy of the sparse subnetworks against the dense network at the same k, "
        f"averaged over {'; over '.join(sentences)}."
    )
