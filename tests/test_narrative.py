"""The sentences under 05's figures say what the tables hold, at the percents where it happens."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lthnb.controls.kinds import RANDOM_MASK, REINIT, RESHUFFLE, SAME_SIGN, TICKET
from lthnb.report import narrative
from lthnb.runs.reader import RoundRecord, RunTables

PERCENTS = [100.0, 80.0, 64.0, 51.2, 41.0, 32.8]
TIGHT = (-0.1, 0.0, 0.1)  # three trials this close: the 95% CI of a gap is ±0.23 pp
EXCLUDES = "(95% CI of the gap excludes 0)"


def make_run(
    ticket: list[float],
    control: list[float] | None = None,
    stops: list[float] | None = None,
    control_stops: list[float] | None = None,
    label: str = "lenet",
    controls: dict[str, list[float]] | None = None,
    offsets: tuple[float, ...] = (-0.5, 0.5),
) -> RunTables:
    """Trials whose means are exactly `ticket` (accuracy in %), `control` (a reinit control) and
    each of `controls` per round; trial t adds offsets[t] pp to accuracies and 100 times that
    to early stops."""
    controls = {**({REINIT: control} if control is not None else {}), **(controls or {})}
    rows = []
    for trial, offset in enumerate(offsets):
        for round_index, percent in enumerate(PERCENTS[: len(ticket)]):
            units = [(TICKET, ticket, stops)]
            if round_index:
                units += [(kind, values, control_stops) for kind, values in controls.items()]
            for kind, accuracy, stop in units:
                rows.append(
                    {
                        "trial": trial, "round": round_index, "kind": kind,
                        "percent_remaining": percent,
                        "remaining_dense1": percent, "remaining_dense2": percent,
                        "remaining_output": 100 * 0.9**round_index,
                        "test_accuracy": (accuracy[round_index] + offset) / 100,
                        "early_stop_iteration": 100 * offset
                        + (1000.0 if stop is None else stop[round_index]),
                    }
                )  # fmt: skip
    rounds = pd.DataFrame(rows)
    return RunTables(label, {}, pd.DataFrame(), rounds)


def test_tickets_falling_below_the_dense_net_name_the_percent_where_it_happens():
    run = make_run([90.0, 90.5, 90.0, 89.2, 88.0])
    text = narrative.accuracy(run)
    assert text.startswith("Dense network: 90.00% test accuracy (means over 2 trials).")
    assert (
        "Tickets are at or above it from 80.0% to 64.0% of weights remaining (by up to +0.50 pp "
        "at 80.0%) and below it from 51.2% to 41.0% (by up to 2.00 pp at 41.0%)." in text
    )
    assert text.endswith("No control was trained (controls is empty).")


def test_tickets_never_below_and_a_single_dip_are_told_apart():
    text = narrative.accuracy(make_run([90.0, 90.1, 91.0, 90.0, 90.3]))
    assert (
        "at or above it from 80.0% to 41.0% of weights remaining (by up to +1.00 pp at 64.0%)"
        in (text)
    )
    text = narrative.accuracy(make_run([90.0, 89.0, 91.0, 90.0, 90.3]))
    assert "Tickets are below it at 80.0% of weights remaining (by 1.00 pp) and at or above it" in (
        text
    )


def test_a_diverged_round_counts_as_below_and_many_swings_are_summarised():
    text = narrative.accuracy(make_run([90.0, 91.0, np.nan, 91.0, 91.0]))
    assert "below it at 64.0% (diverged)" in text
    text = narrative.accuracy(make_run([90.0, 91.0, 89.0, 91.0, 88.0, 91.0]))  # 5 stretches
    assert (
        "Tickets are at or above it at 3 of 5 pruned rounds and below it at the others, by up to "
        "2.00 pp (at 41.0%)." in text
    )


def accuracy_of(controls: dict[str, list[float]], offsets=TIGHT) -> str:
    return narrative.accuracy(make_run([90.0] * 5, controls=controls, offsets=offsets))


def test_tickets_beat_a_control_from_the_round_where_the_interval_excludes_zero():
    text = accuracy_of({REINIT: [0, 90.1, 89.0, 88.0, 87.0]})  # 80.0%: within the noise
    assert text.endswith(
        f"Tickets beat random reinit controls from 64.0% remaining on {EXCLUDES}, by 3.00 pp "
        "at 41.0%."
    )
    text = accuracy_of({REINIT: [0, 89.0, 89.0, 88.0, 87.0]})
    assert text.endswith(
        f"Tickets beat random reinit controls at every pruned round {EXCLUDES}, by 1.00 to 3.00 pp."
    )
    text = accuracy_of({REINIT: [0, 89.0, 89.0, 90.0, 90.0]})
    assert text.endswith(
        f"Tickets beat random reinit controls at 2 of 4 pruned rounds {EXCLUDES}, the last at "
        "64.0%; at 41.0% the gap is +0.00 pp."
    )


def test_a_gap_within_the_noise_is_never_significantly_behind():
    never = (
        "Random reinit controls are never significantly behind the tickets: the 95% CI of the "
        "gap includes 0 at every pruned round."
    )
    assert accuracy_of({REINIT: [0, 90.1, 89.9, 90.0, 90.1]}).endswith(never)
    # 2 pp below, but two trials 1 pp apart: the raw means would call that a lead, the CI not
    assert accuracy_of({REINIT: [0, 88.0, 88.0, 88.0, 88.0]}, offsets=(-0.5, 0.5)).endswith(never)


def test_a_control_ahead_of_the_tickets_is_told():
    text = accuracy_of({RANDOM_MASK: [0, 91.0, 91.0, 90.0, 90.0]})
    assert text.endswith(
        "Random mask controls are never significantly behind the tickets, and significantly "
        f"ahead of the tickets at 2 of 4 pruned rounds {EXCLUDES}."
    )


def test_every_control_present_gets_its_own_sentence_in_kinds_order():
    text = accuracy_of(
        {
            SAME_SIGN: [0, 90.0, 90.1, 89.9, 90.0],
            RANDOM_MASK: [0, 85.0, 84.0, 83.0, 82.0],
            RESHUFFLE: [0, 90.0, 90.0, 89.0, 88.0],
        }
    )
    masks = text.index(f"Tickets beat random mask controls at every pruned round {EXCLUDES}")
    reshuffled = text.index("Tickets beat reshuffled init controls from 51.2% remaining on")
    same_sign = text.index("Same-sign reinit controls are never significantly behind the tickets")
    assert masks < reshuffled < same_sign
    assert "random reinit" not in text and "controls is empty" not in text


def test_one_trial_gives_no_interval_and_diverged_networks_are_counted():
    text = accuracy_of({REINIT: [0, 89.0, 91.0, 88.0, 87.0]}, offsets=(0.0,))
    assert text.endswith(
        "Random reinit controls are below the tickets at 3 of 4 pruned rounds (ticket − control "
        "at 41.0%: +3.00 pp; no 95% CI: it needs two or more trials that differ)."
    )
    text = accuracy_of({REINIT: [0, 89.0, np.nan, 88.0, 87.0]})
    assert text.endswith(
        f"Tickets beat random reinit controls at every pruned round {EXCLUDES}, by 1.00 to 3.00 "
        "pp. 3 diverged networks are left out."
    )


def test_early_stop_names_the_fastest_round_and_how_much_sooner():
    run = make_run(
        [90.0] * 5,
        control=[0, 89, 89, 89, 89],
        stops=[1200, 900, 400, 600, 800],
        control_stops=[0, 1000, 1000, 500, 900],
    )
    text = narrative.early_stop(run)
    assert text.startswith(
        "The dense network reaches its minimum validation loss at iteration 1200 (means over 2 "
        "trials); tickets reach it earliest at 64.0% of weights remaining, at iteration 400, "
        "3.0x sooner."
    )
    assert text.endswith(  # two trials 100 iterations apart: only 400 against 1000 is clear
        f"Random reinit controls stop significantly later than the tickets {EXCLUDES} at 1 of 4 "
        "pruned rounds (at 41.0%: iteration 900 against 800)."
    )
    slow = narrative.early_stop(make_run([90.0] * 3, stops=[500, 600, 700]))
    assert "no ticket reaches it sooner (the earliest: iteration 600 at 80.0%)." in slow
    assert slow.endswith("No control was trained (controls is empty).")
    one = narrative.early_stop(
        make_run([90.0] * 3, [0, 89, 89], [900, 500, 400], [0, 700, 300], offsets=(0.0,))
    )
    assert one.endswith(
        "Random reinit controls stop later than the tickets at 1 of 2 pruned rounds (at 64.0%: "
        "iteration 300 against 400; no 95% CI: it needs two or more trials that differ)."
    )


def test_several_runs_get_one_paragraph_each():
    runs = [make_run([90.0, 91.0], label="conv2"), make_run([80.0, 79.0], label="conv4")]
    first, second = narrative.accuracy(runs).split("\n\n")
    assert first.startswith("**conv2**: Dense network: 90.00%")
    assert second.startswith("**conv4**: Dense network: 80.00%") and "below it at 80.0%" in second


def test_validation_sentence_gives_each_curves_peak():
    evaluations = pd.DataFrame(
        [
            {"trial": t, "round": r, "kind": "ticket", "percent_remaining": p, "iteration": i,
             "val_accuracy": a + t / 100}
            for t in (0, 1)
            for r, p, curve in ((0, 100.0, [0.80, 0.85, 0.84]), (2, 64.0, [0.82, 0.83, 0.86]))
            for i, a in zip((100, 200, 300), curve, strict=True)
        ]
    )  # fmt: skip
    run = RunTables("lenet", {}, evaluations, make_run([90.0] * 3).rounds)
    assert narrative.validation(run) == (
        "Peak validation accuracy of the tickets (means over 2 trials), by weights remaining: "
        "85.50% at iteration 200 with 100%; 86.50% at iteration 300 with 64.0%."
    )


def test_layers_that_coincide_are_named_together():
    text = narrative.layers(make_run([90.0] * 4))
    assert text == (
        "After round 3, dense1 and dense2 each keep 51.2% (their curves coincide) and output "
        "keeps 72.9% of its kernel weights."
    )


def record_with(mask: np.ndarray, theta0: np.ndarray) -> RoundRecord:
    return RoundRecord(0, 4, {"dense1": mask}, {"dense1": theta0 * mask}, {"dense1": theta0})


def test_layer_view_compares_initial_magnitudes_of_kept_and_pruned():
    theta0 = np.array([[0.1, -0.4], [0.3, -0.2]], dtype=np.float32)
    mask = np.array([[0, 1], [1, 0]], dtype=np.uint8)
    assert narrative.layer_view(record_with(mask, theta0)) == (
        "Round 4 keeps 2 of dense1's 4 kernel weights (50.0%). Their initial magnitudes |θ0| "
        "average 0.3500, against 0.1500 for the pruned ones."
    )


@pytest.mark.parametrize(("border", "centre", "verdict"), [(20, 5, "border"), (3, 12, "centre")])
def test_input_connections_say_which_part_of_the_image_keeps_more(border, centre, verdict):
    image = np.full((28, 28), centre)
    image[:4, :] = image[-4:, :] = image[:, :4] = image[:, -4:] = border
    mask = (np.arange(20)[None, :] < image.reshape(784, 1)).astype(np.uint8)
    assert narrative.border_and_centre(narrative.input_image(record_with(mask, mask * 0.1))) == (
        border,
        centre,
    )
    text = narrative.input_connections(record_with(mask, mask * 0.1))
    assert text == (
        f"In round 4, a pixel of the 4-pixel border keeps on average {border:.1f} of its "
        f"connections to the first layer, a pixel of the centre {centre:.1f}: the {verdict} "
        "keeps more."
    )
    conv = RoundRecord(0, 1, {"conv1": np.ones((3, 3, 1, 4))}, {}, {})
    assert narrative.input_connections(conv).endswith("no map per input pixel.")
