"""Looking inside one round (04_train's last section), on written and on really trained runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from run_folder import ticket_model, write_run_folder

from lthnb.lottery.experiment import run_experiment
from lthnb.nets.weights import get_weights
from lthnb.report import inspect_round, narrative, overview
from lthnb.runs import reader
from lthnb.runs.paths import RunPaths
from lthnb.runs.state import load_state
from lthnb.runs.tables import RunFolderError


def schedule_of(params):
    return overview.pruning_schedule(params, overview.network_layers(params))


def resave_ticket(params, trial, change) -> None:
    """Rewrite trial's ticket.keras after `change(weights)` edits its weights in place."""
    path = RunPaths(params.run_dir).trial(trial).ticket
    import tf_keras

    weights = get_weights(tf_keras.models.load_model(path, compile=False))
    change(weights)
    ticket_model(params, weights).save(path)


def test_choose_round_takes_the_first_exported_trial_and_its_sparsest_round(tiny_params):
    write_run_folder(tiny_params, trials=(1, 2))
    assert inspect_round.choose_round(tiny_params.run_dir) == (1, 2)
    assert inspect_round.choose_round(tiny_params.run_dir, trial=2) == (2, 2)
    RunPaths(tiny_params.run_dir).trial(1).ticket_info.unlink()  # trial 1 not exported yet
    assert inspect_round.choose_round(tiny_params.run_dir) == (2, 2)
    with pytest.raises(RunFolderError, match="trial 5 has no completed round"):
        inspect_round.choose_round(tiny_params.run_dir, trial=5)


def test_mask_survivors_match_03s_schedule_and_a_wrong_count_shows(tiny_params):
    write_run_folder(tiny_params)
    schedule, totals = schedule_of(tiny_params)
    masks = reader.read_round(tiny_params.run_dir, 0, 2).masks
    table = inspect_round.mask_vs_schedule(masks, schedule, totals, 2)
    assert list(table["layer"]) == ["dense1", "dense2", "output", inspect_round.TOTAL]
    # 784*20 * 0.8^2, 20*10 * 0.8^2, 10*10 * 0.9^2
    assert list(table["kept"]) == [10035, 128, 81, 10035 + 128 + 81]
    assert table["matches"].all()
    masks["dense2"].flat[np.flatnonzero(masks["dense2"] == 0)[0]] = 1  # one weight too many
    table = inspect_round.mask_vs_schedule(masks, schedule, totals, 2).set_index("layer")
    assert list(table["matches"]) == [True, False, True, False]
    assert table.loc["dense2", "kept"] == 129 and table.loc["dense2", "scheduled"] == 128


def test_global_scope_schedules_only_the_total(tiny_params):
    params = tiny_params.replace(pruning_scope="global")
    write_run_folder(tiny_params)
    schedule, totals = schedule_of(params)
    masks = reader.read_round(tiny_params.run_dir, 0, 1).masks
    table = inspect_round.mask_vs_schedule(masks, schedule, totals, 1).set_index("layer")
    assert table["scheduled"].isna().sum() == 3 and table.loc["all prunable", "matches"]


def test_rewound_survivors_are_theta0_bit_for_bit_and_pruned_are_zero(tiny_params):
    write_run_folder(tiny_params)
    table = inspect_round.rewind_check(tiny_params.run_dir, 0, 2)
    assert list(table["layer"]) == ["dense1", "dense2", "output"]
    assert (table["rewound to"] == "θ0").all()
    checks = [
        "survivors: same bits",
        "pruned: exactly 0",
        "other weights: same bits",
        "trained pruned: 0",
    ]
    assert len(checks) == 4 and table[checks].all().all()
    assert list(table["survivors"]) == [10035, 128, 81]


def test_one_ulp_or_one_live_pruned_weight_fails_the_check(tiny_params):
    write_run_folder(tiny_params)
    mask = reader.read_round(tiny_params.run_dir, 0, 2).masks["dense1"].astype(bool)
    kept, pruned = np.flatnonzero(mask)[7], np.flatnonzero(~mask)[3]

    def nudge(weights):
        kernel = weights["dense1/kernel"].reshape(-1)
        kernel[kept] = np.nextafter(kernel[kept], np.float32(1))
        kernel[pruned] = 1e-30

    resave_ticket(tiny_params, 0, nudge)
    table = inspect_round.rewind_check(tiny_params.run_dir, 0, 2).set_index("layer")
    assert not table.loc["dense1", "survivors: same bits"]
    assert not table.loc["dense1", "pruned: exactly 0"]
    assert table.loc[["dense2", "output"], "survivors: same bits"].all()


def test_late_rewinding_compares_with_theta_k(tiny_params):
    write_run_folder(tiny_params, rewind=True)
    table = inspect_round.rewind_check(tiny_params.run_dir, 0, 2)
    assert (table["rewound to"] == "θk").all() and table["survivors: same bits"].all()
    state = load_state(RunPaths(tiny_params.run_dir).trial(0).state)
    assert not np.array_equal(state.rewind["dense1/kernel"], state.theta0["dense1/kernel"])


def test_only_the_exported_rounds_ticket_can_be_checked(tiny_params):
    write_run_folder(tiny_params)
    with pytest.raises(RunFolderError, match="another round's ticket than round 1.*round \\(2\\)"):
        inspect_round.rewind_check(tiny_params.run_dir, 0, 1)


def test_ticket_against_its_control_and_the_dense_net(tiny_params):
    write_run_folder(tiny_params)
    rounds = pd.read_csv(RunPaths(tiny_params.run_dir).rounds)
    table = inspect_round.ticket_vs_control(rounds, 0, 2)
    assert list(table["network"]) == ["dense", "ticket", "reinit"]
    np.testing.assert_allclose(table["test accuracy %"], [80.0, 82.0, 70.0])
    assert list(table["early-stop iteration"]) == [10, 10, 15]
    text = narrative.round_comparison(table)
    assert "82.00% test accuracy (+2.00 pp against the dense net)" in text
    assert "iteration 10 (dense: 10)" in text
    assert text.endswith(
        "Its random reinit control reaches 70.00% (-12.00 pp against the ticket) at iteration 15."
    )
    no_control = inspect_round.ticket_vs_control(rounds[rounds["kind"] == "ticket"], 0, 2)
    assert narrative.round_comparison(no_control).endswith("(controls is empty).")
    with pytest.raises(RunFolderError, match="no ticket of trial 0, round 7"):
        inspect_round.ticket_vs_control(rounds, 0, 7)
    dense = inspect_round.ticket_vs_control(rounds, 0, 0)
    assert list(dense["network"]) == ["dense"]
    assert narrative.round_comparison(dense) == (
        "Round 0 is the dense network: 80.00% test accuracy, early stop at iteration 10. "
        "No round is pruned yet."
    )


def test_a_really_trained_run_passes_every_check(tiny_params, tiny_splits):
    params = tiny_params.replace(controls=["reinit"])
    _, rounds = run_experiment(params, progress=False, load=lambda _: tiny_splits)
    trial, round_index = inspect_round.choose_round(params.run_dir)
    assert (trial, round_index) == (0, 2)
    masks = reader.read_round(params.run_dir, trial, round_index).masks
    assert inspect_round.mask_vs_schedule(masks, *schedule_of(params), round_index)["matches"].all()
    checks = inspect_round.rewind_check(params.run_dir, trial, round_index)
    assert checks.drop(columns=["layer", "rewound to", "survivors"]).all().all()
    table = inspect_round.ticket_vs_control(rounds, trial, round_index)
    assert list(table["network"]) == ["dense", "ticket", "reinit"]


def unit(trial: int, round_index: int, kind: str, accuracy: float, diverged=False) -> dict:
    return {
        "trial": trial, "round": round_index, "kind": kind,
        "percent_remaining": 100 * 0.8**round_index, "test_accuracy": accuracy,
        "early_stop_iteration": 100 * (round_index + 1), "diverged": diverged,
    }  # fmt: skip


def test_each_control_of_the_round_gets_a_row_and_a_sentence_in_kinds_order():
    rounds = pd.DataFrame(
        [
            unit(0, 0, "ticket", 0.80),
            unit(0, 1, "same_sign", 0.81),
            unit(0, 1, "random_mask", 0.60),
            unit(0, 1, "reshuffle", np.nan, diverged=True),
            unit(0, 1, "ticket", 0.82),
            unit(1, 1, "reinit", 0.50),  # another trial's control: not this trial's
            unit(1, 1, "ticket", 0.70),
        ]
    )
    table = inspect_round.ticket_vs_control(rounds, 0, 1)
    assert list(table["network"]) == ["dense", "ticket", "random_mask", "reshuffle", "same_sign"]
    np.testing.assert_allclose(table["test accuracy %"][:3], [80.0, 82.0, 60.0])
    assert list(table["diverged"]) == [False, False, False, True, False]
    text = narrative.round_comparison(table)
    assert text.endswith(
        "Its random mask control reaches 60.00% (-22.00 pp against the ticket) at iteration 200. "
        "Its reshuffled init control diverged. Its same-sign reinit control reaches 81.00% "
        "(-1.00 pp against the ticket) at iteration 200."
    )
