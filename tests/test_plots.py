"""Figures and summary table from a synthetic run folder in the real results format."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from scipy import stats  # noqa: E402

from lthnb.analysis import statistics
from lthnb.controls.kinds import (  # noqa: E402
    CONTROLS,
    RANDOM_MASK,
    REINIT,
    RESHUFFLE,
    SAME_SIGN,
    TICKET,
    kind_of,
)
from lthnb.report import display, figures, views  # noqa: E402
from lthnb.runs import reader
from lthnb.runs.tables import RunFolderError

TRIALS = 3
PERCENTS = [100.0, 80.0, 64.0, 51.2]  # dense layers, rate 0.2
OUTPUT_PERCENTS = [100.0, 90.0, 81.0, 72.9]  # output layer, rate 0.1
# Ticket accuracy per round; trials add -1, 0, +1 pp, so the std over trials is exactly 1 pp.
ACCURACY = {
    TICKET: [0.90, 0.92, 0.93, 0.91],
    REINIT: [np.nan, 0.88, 0.85, 0.80],
    RANDOM_MASK: [np.nan, 0.86, 0.82, 0.75],
    RESHUFFLE: [np.nan, 0.90, 0.89, 0.86],
    SAME_SIGN: [np.nan, 0.92, 0.93, 0.91],  # the ticket's: its gap is never significant
}
LEGEND = ["ticket", "random reinit", "random mask", "reshuffled init", "same-sign reinit"]


def write_run(
    folder: Path, arch: str = "lenet", controls: Sequence[str] = (REINIT,), shift: float = 0.0
) -> Path:
    """A run folder as lthnb.runs.tables writes it: params.yaml, evaluations.csv, rounds.csv.

    Every kind's trials add -1, 0, +1 pp to its accuracy and 0, 10, 20 to its early stop.
    """
    folder.mkdir(parents=True)
    folder.joinpath("params.yaml").write_text(yaml.safe_dump({"arch": arch, "trials": TRIALS}))
    evaluations, rounds = [], []
    for trial in range(TRIALS):
        offset = (trial - 1) / 100
        for round_index, percent in enumerate(PERCENTS):
            kinds = [TICKET, *controls] if round_index else [TICKET]
            for kind in kinds:
                accuracy = ACCURACY[kind][round_index] + offset + shift
                stop = 100 * (4 - round_index) + 10 * trial + (50 if kind != TICKET else 0)
                for step in range(1, 4):
                    evaluations.append(
                        {
                            "trial": trial, "round": round_index, "kind": kind,
                            "percent_remaining": percent, "iteration": 10 * step,
                            "train_loss": 1.0 / step, "train_accuracy": 0.5 + 0.1 * step,
                            "val_loss": 1.0 / step,
                            "val_accuracy": 0.5 + 0.1 * step + offset + round_index / 100,
                        }
                    )  # fmt: skip
                rounds.append(
                    {
                        "trial": trial, "round": round_index, "kind": kind,
                        "percent_remaining": percent, "percent_remaining_with_biases": percent,
                        "weights_remaining": int(1000 * percent),
                        "remaining_dense1": percent, "remaining_dense2": percent,
                        "remaining_output": OUTPUT_PERCENTS[round_index],
                        "start_iteration": 0, "early_stop_iteration": stop,
                        "val_loss": 0.5, "val_accuracy": accuracy,
                        "test_loss": 0.5, "test_accuracy": accuracy,
                        "iterations_trained": 30, "diverged": False,
                    }
                )  # fmt: skip
    pd.DataFrame(evaluations).to_csv(folder / "evaluations.csv", index=False)
    pd.DataFrame(rounds).to_csv(folder / "rounds.csv", index=False)
    return folder


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_run(tmp_path / "lenet_run")


@pytest.fixture
def run(run_dir: Path) -> reader.RunTables:
    return reader.read_run(run_dir)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def line(ax, label: str):
    matches = [each for each in ax.get_lines() if each.get_label() == label]
    assert len(matches) == 1, [each.get_label() for each in ax.get_lines()]
    return matches[0]


def band(ax, label: str) -> np.ndarray:
    matches = [each for each in ax.collections if each.get_gid() == f"{label} band"]
    assert len(matches) == 1
    return matches[0].get_paths()[0].vertices


def test_read_run_labels_by_arch_and_keeps_tables(run, run_dir):
    assert run.label == "lenet"
    assert run.params["trials"] == TRIALS
    assert len(run.rounds) == TRIALS * (len(PERCENTS) * 2 - 1)
    assert set(run.evaluations["kind"]) == {"ticket", "reinit"}
    assert reader.read_run(run_dir, label="lenet iterative").label == "lenet iterative"
    (run_dir / "params.yaml").unlink()
    assert reader.read_run(run_dir).label == "lenet_run"


def test_accuracy_plot_shows_mean_and_std_over_trials(run, run_dir):
    ax = figures.accuracy_vs_remaining(run).axes[0]
    csv = pd.read_csv(run_dir / "rounds.csv")
    tickets = csv[csv["kind"] == "ticket"].groupby("round")
    mean = tickets["test_accuracy"].mean().to_numpy() * 100
    std = tickets["test_accuracy"].std().to_numpy() * 100
    ticket = line(ax, "lenet ticket")
    np.testing.assert_allclose(ticket.get_xdata(), PERCENTS)
    np.testing.assert_allclose(ticket.get_ydata(), mean)
    np.testing.assert_allclose(std, 1.0)
    vertices = band(ax, "lenet ticket")
    for x, low, high in zip(PERCENTS, mean - std, mean + std, strict=True):
        at_x = vertices[np.isclose(vertices[:, 0], x)][:, 1]
        assert np.isclose(at_x.min(), low) and np.isclose(at_x.max(), high)
    reinit = line(ax, "lenet random reinit")
    assert reinit.get_linestyle() == "--" and ticket.get_linestyle() == "-"
    np.testing.assert_allclose(reinit.get_xdata(), PERCENTS[1:])
    np.testing.assert_allclose(line(ax, "lenet dense").get_ydata(), [90.0, 90.0])


def test_percent_axis_is_log_decreasing_with_round_ticks(run):
    ax = figures.accuracy_vs_remaining(run).axes[0]
    assert ax.get_xscale() == "log"
    left, right = ax.get_xlim()
    assert left > right
    np.testing.assert_allclose(sorted(ax.get_xticks()), sorted(PERCENTS))
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["100", "80.0", "64.0", "51.2"]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert {"lenet ticket", "lenet random reinit", "lenet dense"} <= set(legend)
    assert ax.get_xlabel() == "Weights remaining (%)" and "%" in ax.get_ylabel()
    assert ax.get_title()


def test_many_rounds_thin_the_ticks_but_keep_both_ends():
    percents = [100 * 0.8**r for r in range(30)]
    ticks = figures._thin_ticks(percents)
    assert ticks[0] == 100 and np.isclose(ticks[-1], percents[-1])
    assert len(ticks) <= figures.MAX_PERCENT_TICKS + 1
    assert all(np.log10(a / b) > 0.1 for a, b in zip(ticks, ticks[1:], strict=False))
    assert [figures.format_percent(p) for p in (100, 51.2, 21.0, 3.6, 0.05)] == [
        "100", "51.2", "21.0", "3.6", "0.05",
    ]  # fmt: skip


def test_two_runs_share_one_axes_in_two_colours(tmp_path):
    runs = [
        reader.read_run(write_run(tmp_path / "a", arch="conv2")),
        reader.read_run(write_run(tmp_path / "b", arch="conv4", shift=0.02)),
    ]
    ax = figures.accuracy_vs_remaining(runs).axes[0]
    conv2, conv4 = line(ax, "conv2 ticket"), line(ax, "conv4 ticket")
    assert conv2.get_color() != conv4.get_color()
    assert line(ax, "conv2 random reinit").get_color() == conv2.get_color()
    np.testing.assert_allclose(conv4.get_ydata() - conv2.get_ydata(), 2.0)
    legend = {text.get_text() for text in ax.get_legend().get_texts()}
    assert {"conv2 ticket", "conv4 ticket", "conv2 dense", "conv4 dense"} <= legend


def test_run_without_controls_has_no_control_series(tmp_path):
    run = reader.read_run(write_run(tmp_path / "x", controls=()))
    ax = figures.early_stop_vs_remaining(run).axes[0]
    labels = [each.get_label() for each in ax.get_lines()]
    assert labels == ["lenet ticket", "lenet dense"]
    np.testing.assert_allclose(line(ax, "lenet ticket").get_ydata(), [410, 310, 210, 110])
    assert ax.get_ylabel() == "Early-stop iteration"
    table = statistics.round_summary(run.rounds)
    assert set(table["kind"]) == {TICKET} and table["ticket_lead"].isna().all()
    assert list(views.kinds_view(run).index) == [TICKET]


def test_single_trial_has_no_band(tmp_path):
    folder = write_run(tmp_path / "one")
    rounds = pd.read_csv(folder / "rounds.csv")
    rounds[rounds["trial"] == 0].to_csv(folder / "rounds.csv", index=False)
    ax = figures.accuracy_vs_remaining(reader.read_run(folder)).axes[0]
    assert not [each for each in ax.collections if each.get_gid()]


def test_round_summary_matches_pandas(run, run_dir):
    table = statistics.round_summary(run.rounds)
    csv = pd.read_csv(run_dir / "rounds.csv")
    assert list(zip(table["round"], table["kind"], strict=True)) == [
        (0, TICKET), (1, TICKET), (1, REINIT), (2, TICKET), (2, REINIT), (3, TICKET), (3, REINIT),
    ]  # fmt: skip
    for kind in (TICKET, REINIT):
        grouped = csv[csv["kind"] == kind].groupby("round")
        rows = table[table["kind"] == kind].set_index("round")
        accuracy, stop = grouped["test_accuracy"], grouped["early_stop_iteration"]
        np.testing.assert_allclose(rows["percent_remaining"], grouped["percent_remaining"].mean())
        np.testing.assert_allclose(rows["test_accuracy_mean"], accuracy.mean() * 100)
        np.testing.assert_allclose(rows["test_accuracy_std"], accuracy.std() * 100)
        np.testing.assert_allclose(rows["early_stop_iteration_mean"], stop.mean())
        np.testing.assert_allclose(rows["early_stop_iteration_std"], stop.std())
        assert list(rows["trials"]) == [TRIALS] * len(rows)
    tickets = table[table["kind"] == TICKET]
    np.testing.assert_allclose(tickets["accuracy_change_vs_dense"], [0.0, 2.0, 3.0, 1.0])
    assert tickets["significant"].isna().all()


def several_controls(tmp_path: Path, controls: Sequence[str] = CONTROLS) -> reader.RunTables:
    return reader.read_run(write_run(tmp_path / "controls", controls=controls))


def test_round_summary_gives_each_controls_lead_with_scipys_interval(tmp_path):
    table = statistics.round_summary(several_controls(tmp_path).rounds).set_index(["round", "kind"])
    assert list(table.loc[1].index) == [TICKET, *CONTROLS]
    for control in CONTROLS:
        ticket = [100 * (ACCURACY[TICKET][2] + offset) for offset in (-0.01, 0, 0.01)]
        other = [100 * (ACCURACY[control][2] + offset) for offset in (-0.01, 0, 0.01)]
        interval = stats.ttest_ind(ticket, other, equal_var=False).confidence_interval(0.95)
        row = table.loc[(2, control)]
        assert row["ticket_lead"] == pytest.approx(np.mean(ticket) - np.mean(other), abs=1e-4)
        assert row["ticket_lead_low"] == pytest.approx(interval.low, abs=1e-4)
        assert row["ticket_lead_high"] == pytest.approx(interval.high, abs=1e-4)
    significant = table["significant"].dropna().unstack()
    assert significant[[REINIT, RANDOM_MASK]].all().all()
    assert not significant[SAME_SIGN].any()


def test_validation_curves_default_to_first_and_last_round(run):
    ax = figures.validation_curves(run).axes[0]
    labels = [each.get_label() for each in ax.get_lines()]
    assert labels == ["100% remaining", "80.0% remaining", "64.0% remaining", "51.2% remaining"]
    first = line(ax, "100% remaining")
    np.testing.assert_allclose(first.get_xdata(), [10, 20, 30])
    np.testing.assert_allclose(first.get_ydata(), [60, 70, 80])
    assert figures.default_rounds(range(21)) == [0, 5, 10, 15, 20]
    assert figures.default_rounds(range(9), count=3) == [0, 4, 8]
    ax = figures.validation_curves(run, rounds=[3], kind="reinit").axes[0]
    assert [each.get_label() for each in ax.get_lines()] == ["51.2% remaining"]
    with pytest.raises(figures.PlotInputError, match="have \\[1, 2, 3\\]"):
        figures.validation_curves(run, rounds=[0], kind="reinit")


def test_layer_remaining_draws_one_line_per_layer(run):
    ax = figures.layer_remaining(run).axes[0]
    assert [each.get_label() for each in ax.get_lines()] == ["dense1", "dense2", "output"]
    assert ax.get_yscale() == "log"
    np.testing.assert_allclose(line(ax, "output").get_ydata(), OUTPUT_PERCENTS)
    np.testing.assert_allclose(line(ax, "dense1").get_xdata(), [0, 1, 2, 3])
    ticks = sorted(ax.get_yticks())  # 80 is thinned out: too close to 81 on a log axis
    np.testing.assert_allclose(ticks, [51.2, 64.0, 72.9, 81.0, 90.0, 100.0])


def test_coinciding_layers_stay_visible_and_distinct_in_the_legend(run):
    ax = figures.layer_remaining(run).axes[0]
    dense1, dense2 = line(ax, "dense1"), line(ax, "dense2")
    np.testing.assert_allclose(dense1.get_ydata(), dense2.get_ydata())  # the same curve
    styles = {(each.get_marker(), each.get_linestyle()) for each in ax.get_lines()}
    assert len(styles) == 3  # every layer has its own marker and dashes
    assert dense1.get_fillstyle() == "none"  # hollow: the one drawn first shows around the next
    assert dense1.get_markersize() > dense2.get_markersize()
    assert dense1.get_color() != dense2.get_color()
    handles = ax.get_legend().legend_handles
    assert [handle.get_marker() for handle in handles] == [
        each.get_marker() for each in ax.get_lines()
    ]


def test_summary_view_is_narrow_and_reads_mean_plus_minus_std(run):
    view = views.summary_view(run)
    assert max(len(column) for column in view.columns) <= 18
    assert view.index.names == ["round", "network"]
    assert list(view.index)[:3] == [(0, "dense"), (1, "ticket"), (1, "random reinit")]
    assert view.loc[(1, "ticket"), "test acc. %"] == "92.00 ± 1.00"
    assert view.loc[(2, "ticket"), "vs dense pp"] == "+3.00"
    assert view.loc[(2, "random reinit"), "vs dense pp"] == "-5.00"
    assert view.loc[(3, "ticket"), "stop iter."] == "110 ± 10"
    assert view.loc[(3, "random reinit"), "stop iter."] == "160 ± 10"
    assert view.loc[(3, "ticket"), "% left"] == "51.2" and view.loc[(3, "ticket"), "trials"] == 3
    assert view.loc[(0, "dense"), "ticket lead pp"] == "–"
    width = max(len(line) for line in view.to_string().splitlines())
    assert width < 110


def test_summary_view_stars_the_significant_leads(tmp_path):
    view = views.summary_view(several_controls(tmp_path))
    same = [100 * (ACCURACY[TICKET][1] + offset) for offset in (-0.01, 0, 0.01)]
    low, high = stats.ttest_ind(same, same, equal_var=False).confidence_interval(0.95)
    assert view.loc[(1, "same-sign reinit"), "ticket lead pp"] == f"+0.00 [{low:+.2f}, {high:+.2f}]"
    lead = view.loc[(1, "random reinit"), "ticket lead pp"]
    assert lead.startswith("+4.00 [") and lead.endswith("]*")
    assert view.loc[(3, "random mask"), "test acc. %"] == "75.00 ± 1.00"
    assert [network for _, network in view.loc[[1]].index] == LEGEND


def test_kinds_view_lists_the_kinds_trained_with_their_legend_and_description(tmp_path):
    view = views.kinds_view(several_controls(tmp_path, controls=(SAME_SIGN, REINIT)))
    assert list(view.index) == [TICKET, REINIT, SAME_SIGN]
    assert list(view["legend"]) == ["ticket", "random reinit", "same-sign reinit"]
    assert list(view["networks"]) == [TRIALS * len(PERCENTS), TRIALS * 3, TRIALS * 3]
    assert "original sign" in view.loc[SAME_SIGN, "what it is"]


def test_every_control_is_its_own_series_with_its_own_style(tmp_path):
    run = several_controls(tmp_path)
    for figure, value, scale in (
        (figures.accuracy_vs_remaining, "test_accuracy", 100.0),
        (figures.early_stop_vs_remaining, "early_stop_iteration", 1.0),
    ):
        ax = figure(run).axes[0]
        labels = [each.get_label() for each in ax.get_lines()]
        assert labels == [f"lenet {name}" for name in LEGEND] + ["lenet dense"]
        for kind, name in zip((TICKET, *CONTROLS), LEGEND, strict=True):
            rows = run.rounds[run.rounds["kind"] == kind].groupby("round")[value]
            np.testing.assert_allclose(line(ax, f"lenet {name}").get_ydata(), rows.mean() * scale)
            assert len(band(ax, f"lenet {name}")) > 0
        series = [line(ax, f"lenet {name}") for name in LEGEND]
        assert len({each.get_marker() for each in series}) == len(LEGEND)
        assert len({each.get_color() for each in series}) == len(LEGEND)  # one run: by kind
        legend = [text.get_text() for text in ax.get_legend().get_texts()]
        assert legend == labels


def test_only_the_controls_a_run_trained_are_drawn(tmp_path):
    ax = figures.accuracy_vs_remaining(several_controls(tmp_path, controls=(RESHUFFLE,))).axes[0]
    labels = [each.get_label() for each in ax.get_lines()]
    assert labels == ["lenet ticket", "lenet reshuffled init", "lenet dense"]
    assert line(ax, "lenet reshuffled init").get_marker() == kind_of(RESHUFFLE).style["marker"]


def test_compared_runs_keep_one_colour_each_and_the_kinds_styles(tmp_path):
    runs = [
        reader.read_run(write_run(tmp_path / "a", arch="conv2", controls=CONTROLS)),
        reader.read_run(write_run(tmp_path / "b", arch="conv4", controls=(RANDOM_MASK,))),
    ]
    ax = figures.early_stop_vs_remaining(runs).axes[0]
    conv2 = [line(ax, f"conv2 {name}") for name in LEGEND]
    assert len({each.get_color() for each in conv2}) == 1
    mask = line(ax, "conv4 random mask")
    assert mask.get_color() != conv2[0].get_color()
    assert mask.get_marker() == line(ax, "conv2 random mask").get_marker()
    assert line(ax, "conv4 dense").get_color() == mask.get_color()
    assert not [each for each in ax.get_lines() if each.get_label() == "conv4 random reinit"]


def test_save_figure_writes_png_and_svg(run, tmp_path):
    paths = display.save_figure(
        figures.accuracy_vs_remaining(run), tmp_path / "figs" / "new", "acc"
    )
    assert [path.name for path in paths] == ["acc.png", "acc.svg"]
    assert all(path.stat().st_size > 1000 for path in paths)
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and b"<svg" in paths[1].read_bytes()
    assert sorted(path.name for path in paths[0].parent.iterdir()) == ["acc.png", "acc.svg"]


def test_a_shown_figure_is_saved_closed_and_carries_alt_text(run, tmp_path):
    plt.close("all")
    figure = figures.accuracy_vs_remaining(run)
    image = display.show_figure(figure, tmp_path / "figures", "acc")
    assert sorted(path.name for path in (tmp_path / "figures").iterdir()) == ["acc.png", "acc.svg"]
    assert not plt.get_fignums()  # the inline backend will not show it a second time
    assert image.png[:4] == b"\x89PNG"
    assert image.alt == "lenet: test accuracy vs. weights remaining (mean ± std over trials)"
    bundle = image._repr_mimebundle_()
    assert set(bundle) == {"text/html", "text/plain"}  # nothing printed besides the figure
    html = bundle["text/html"]
    assert html.startswith('<img src="data:image/png;base64,')
    assert 'alt="lenet: test accuracy vs. weights remaining (mean ± std over trials)"' in html
    pixels = int.from_bytes(image.png[16:20], "big")
    assert image.width == round(pixels * display.SCREEN_DPI / display.DISPLAY_DPI)
    quoted = display.figure_image(plt.figure(), alt='a "quoted" <b>alt</b>')
    assert (
        'alt="a &quot;quoted&quot; &lt;b&gt;alt&lt;/b&gt;"'
        in quoted._repr_mimebundle_()["text/html"]
    )


def test_missing_or_empty_tables_say_what_to_run(tmp_path):
    folder = write_run(tmp_path / "m")
    (folder / "rounds.csv").unlink()
    with pytest.raises(RunFolderError, match="rounds.csv is missing; run 04_train first"):
        reader.read_run(folder)
    (folder / "rounds.csv").write_text("")
    with pytest.raises(RunFolderError, match="rounds.csv is empty; run 04_train first"):
        reader.read_run(folder)


def test_plots_module_does_not_import_tensorflow():
    code = "import sys, lthnb.report.figures; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
