"""Figures and generated sentences of the mask analyses (lthnb.analysis.mask_analysis's tables)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lthnb.analysis.mask_analysis import GROUPS, over_trials
from lthnb.pruning.masks import format_percent
from lthnb.report.figures import default_rounds, line_with_band, percent_axis


def _layer_panels(layers: Sequence[str], title: str, sharey: bool) -> tuple[Figure, list[Axes]]:
    columns = min(len(layers), 4)
    rows = -(-len(layers) // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(4.2 * columns, 3.8 * rows), layout="constrained", sharey=sharey,
        squeeze=False,
    )  # fmt: skip
    for ax in axes.ravel()[len(layers) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    return fig, list(axes.ravel())


def overlap_figure(table: pd.DataFrame, title: str) -> Figure | None:
    """Jaccard index (mean ± std over pairs) vs weights remaining, per layer, against chance;
    None when nothing was paired (one trial, or no matching rounds)."""
    if table.empty:
        return None
    layers = list(dict.fromkeys(table["layer"]))
    fig, axes = _layer_panels(layers, f"{title}\n(mean ± std over pairs)", sharey=True)
    for ax, layer in zip(axes, layers, strict=False):
        rows = table[table["layer"] == layer]
        stats = rows.rename(columns={"jaccard_mean": "mean", "jaccard_std": "std"})
        line_with_band(ax, rows["percent_remaining"], stats, "tickets", marker="o", markersize=3)
        ax.plot(rows["percent_remaining"], rows["chance"], "k--", label="chance d/(2−d)")
        percent_axis(ax, rows["percent_remaining"])
        ax.set(title=layer, ylabel="Jaccard index of masks", ylim=(0, 1.05))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    return fig


def _group_figure(summary: pd.DataFrame, value: str, ylabel: str, title: str) -> Figure:
    """Survivors vs pruned per layer against weights remaining, shaded from `low` to `high`."""
    layers = list(dict.fromkeys(summary["layer"]))
    fig, axes = _layer_panels(layers, title, sharey=False)
    for ax, layer in zip(axes, layers, strict=False):
        for group, color in zip(GROUPS, sns.color_palette(n_colors=2), strict=True):
            rows = summary[(summary["layer"] == layer) & (summary["group"] == group)]
            x = rows["percent_remaining"]
            ax.plot(x, rows[value], color=color, marker="o", markersize=3, label=group)
            ax.fill_between(x, rows["low"], rows["high"], color=color, alpha=0.2, linewidth=0)
        percent_axis(ax, summary["percent_remaining"])
        ax.set(title=layer, ylabel=ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    return fig


def sign_change_figure(table: pd.DataFrame) -> Figure:
    """Share of weights whose ranked sign differs from their start, survivors vs pruned."""
    summary = over_trials(table.assign(share=100 * table["share"]), ["share"])
    spread = summary["share_std"].fillna(0.0)
    summary = summary.assign(low=summary["share"] - spread, high=summary["share"] + spread)
    title = (
        f"Sign changed from {table['start'].iloc[0]} in the ranked weights, per round\n"
        "(mean ± std over trials, among the weights alive before the round)"
    )
    return _group_figure(summary, "share", "Sign changed (% of group)", title)


def magnitude_figure(table: pd.DataFrame) -> Figure:
    """Median |θ0| (or |θk|) of survivors vs weights pruned each round, band: 25–75th pct."""
    summary = over_trials(table, ["median", "q25", "q75"])
    summary = summary.rename(columns={"q25": "low", "q75": "high"})
    start = table["start"].iloc[0]
    title = (
        f"Initial magnitude |{start}| of the weights each round keeps or prunes\n"
        "(median, band: 25th–75th percentile; means over trials)"
    )
    return _group_figure(summary, "median", f"|{start}|", title)


def overlap_sentence(table: pd.DataFrame, what: str) -> str:
    """The Jaccard index as a multiple of chance per layer, at a few pruned rounds."""
    pruned = table[table["percent_remaining"] < 100]
    if pruned.empty:
        return f"No pruned round to compare {what} at (two trials or matching rounds needed)."
    parts = []
    for round_index in default_rounds(pruned["round"].unique(), 3):
        rows = pruned[pruned["round"] == round_index]
        layers = ", ".join(
            f"{r.layer} {r.over_chance:.1f}x ({r.jaccard_mean:.3f} vs {r.chance:.3f})"
            for r in rows.itertuples()
        )
        pairs = int(rows["pairs"].iloc[0])
        where = f"{format_percent(rows['percent_remaining'].iloc[0])}% remaining"
        parts.append(f"at {where} ({pairs} pair{'s' if pairs > 1 else ''}): {layers}")
    return (
        f"The masks of {what} overlap this many times as much as random masks would (Jaccard "
        "index vs chance), " + "; ".join(parts) + "."
    )


def _all_layers(table: pd.DataFrame, value: str) -> pd.Series:
    """`value` per weight of each (round, group), counts summed over layers; mean over trials."""
    per_trial = table.groupby(["round", "group", "trial"])[[value, "weights"]].sum()
    return (per_trial[value] / per_trial["weights"]).groupby(["round", "group"]).mean()


def sign_change_sentence(table: pd.DataFrame) -> str:
    """Pruned against surviving weights' sign changes, over all layers, first and last round."""
    shares = _all_layers(table, "changed") * 100
    percents = table.groupby("round")["percent_remaining"].mean()
    start = table["start"].iloc[0]
    parts = [
        f"at round {r} (to {format_percent(percents[r])}%), {shares[r, 'pruned']:.1f}% of the "
        f"weights it pruned against {shares[r, 'survivors']:.1f}% of its survivors"
        for r in sorted({percents.index.min(), percents.index.max()})
    ]
    return (
        f"Over all layers, the share of ranked weights whose sign differs from {start}: "
        + "; ".join(parts)
        + f" (means over {table['trial'].nunique()} trials)."
    )


def magnitude_sentence(table: pd.DataFrame) -> str:
    """How much larger the survivors' initial magnitudes are than the pruned ones', per layer."""
    summary = over_trials(table, ["median"]).set_index(["round", "layer", "group"])["median"]
    start = table["start"].iloc[0]
    percents = table.groupby("round")["percent_remaining"].mean()
    parts = []
    for r in sorted({percents.index.min(), percents.index.max()}):
        survivors = summary.xs((r, "survivors"), level=["round", "group"])
        ratios = (survivors / summary.xs((r, "pruned"), level=["round", "group"])).items()
        layers = ", ".join(f"{ratio:.2f}x in {layer}" for layer, ratio in ratios)
        parts.append(f"at round {r} (to {format_percent(percents[r])}%) {layers}")
    return (
        f"Median |{start}| of the survivors over that of the weights pruned in the same round "
        "(1x: pruning ignored the initial magnitudes), " + "; ".join(parts) + "."
    )
