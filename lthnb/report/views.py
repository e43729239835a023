"""The tables notebooks show beside the figures: mean ± std as text, one row per thing read.

Figures live in lthnb.report.figures; these views only format what lthnb.analysis.statistics
computes.
"""

from __future__ import annotations

import pandas as pd

from lthnb.analysis.statistics import controls_in, interval_text, mean_std_text, round_summary
from lthnb.controls.kinds import TICKET, kind_label, kind_of
from lthnb.pruning.masks import format_percent
from lthnb.runs.reader import RunTables


def kinds_view(run: RunTables) -> pd.DataFrame:
    """The kinds of network the run trained, with what each is: the key to legends and tables."""
    kinds = [TICKET, *controls_in(run.rounds)]
    return pd.DataFrame(
        {
            "legend": [kind_label(name) for name in kinds],
            "what it is": [kind_of(name).description for name in kinds],
            "networks": run.rounds["kind"].value_counts().reindex(kinds).to_numpy(),
        },
        index=pd.Index(kinds, name="kind"),
    )


def summary_view(run: RunTables) -> pd.DataFrame:
    """The summary table for reading: one row per round and network, mean ± std as text, and
    the ticket's lead over each control with its 95% CI, starred where the CI excludes 0."""
    table = round_summary(run.rounds)
    lead = zip(
        table["ticket_lead"], table["ticket_lead_low"], table["ticket_lead_high"],
        table["significant"], strict=True,
    )  # fmt: skip
    view = pd.DataFrame(
        {
            "% left": table["percent_remaining"].map(format_percent),
            "trials": table["trials"],
            "test acc. %": _mean_std_texts(table, "test_accuracy", 2),
            "vs dense pp": table["accuracy_change_vs_dense"].map("{:+.2f}".format),
            "ticket lead pp": [interval_text(*values) for values in lead],
            "stop iter.": _mean_std_texts(table, "early_stop_iteration", 0),
        }
    )
    network = table["kind"].map(kind_label).where(table["round"] > 0, "dense")
    view.index = pd.MultiIndex.from_arrays([table["round"], network], names=["round", "network"])
    return view


def _mean_std_texts(table: pd.DataFrame, value: str, digits: int) -> list[str]:
    means, stds = table[f"{value}_mean"], table[f"{value}_std"]
    return [mean_std_text(mean, std, digits) for mean, std in zip(means, stds, strict=True)]
