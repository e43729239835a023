"""Trials of rounds end to end: rewinding, nested masks, controls, run folder, resume."""

import numpy as np
import pandas as pd
import pytest
import tf_keras
import yaml
from conftest import run_tiny

import lthnb.lottery.experiment as experiment
from lthnb.runs.paths import RunPaths
from lthnb.runs.state import load_state
from lthnb.runs.tables import RunFolderError, trial_writer


def test_rounds_rewind_to_theta0_with_nested_masks(tiny_params, tiny_splits, spy):
    params = tiny_params.replace(rounds=3, controls=["reinit"])
    _, rounds = run_tiny(params, tiny_splits)
    tickets = [call for call in spy if call is not spy[0]][::2]  # ticket, reinit, ticket, ...
    state = load_state(RunPaths(params.run_dir).trial(0).state)
    theta0 = state.theta0
    # round 0 starts dense from theta0
    assert all(m.all() for m in spy[0]["masks"].values())
    for key, value in theta0.items():
        np.testing.assert_array_equal(spy[0]["weights"][key], value)
    previous = spy[0]
    for round_index, call in enumerate(tickets, start=1):
        for name, mask in call["masks"].items():
            # survivors equal theta0 bit for bit, pruned weights are exactly 0
            np.testing.assert_array_equal(
                call["weights"][f"{name}/kernel"], theta0[f"{name}/kernel"] * mask
            )
            np.testing.assert_array_equal(call["weights"][f"{name}/bias"], theta0[f"{name}/bias"])
            assert np.all(mask <= previous["masks"][name])  # nested
            expected = round(mask.size * (1 - {"output": 0.1}.get(name, 0.2)) ** round_index)
            assert int(mask.sum()) == expected
            # the pruned ones are the smallest magnitudes of the previous round's trained weights
            trained = np.abs(previous["outcome"].final_weights[f"{name}/kernel"])
            survivors = previous["masks"][name] == 1
            assert trained[(mask == 1)].min() >= trained[survivors & (mask == 0)].max()
        previous = call
    # every rounds.csv row describes the mask actually used in that training
    for call, (_, row) in zip(
        spy, rounds.sort_values(["round", "kind"], ascending=[True, False]).iterrows(), strict=True
    ):
        used = sum(int(m.sum()) for m in call["masks"].values())
        assert row["weights_remaining"] == used
    assert list(rounds["kind"]) == [
        "ticket",
        "ticket",
        "reinit",
        "ticket",
        "reinit",
        "ticket",
        "reinit",
    ]


def test_reinit_control_same_mask_fresh_values(tiny_params, tiny_splits, spy):
    params = tiny_params.replace(rounds=1, controls=["reinit"])
    run_tiny(params, tiny_splits)
    ticket, control = spy[1], spy[2]
    for name, mask in ticket["masks"].items():
        np.testing.assert_array_equal(control["masks"][name], mask)
        kernel = control["weights"][f"{name}/kernel"]
        assert np.all(kernel[mask == 0] == 0)
        assert not np.allclose(kernel[mask == 1], ticket["weights"][f"{name}/kernel"][mask == 1])


def test_late_rewinding_resets_to_the_weights_after_k_iterations(tiny_params, tiny_splits, spy):
    params = tiny_params.replace(rounds=2, rewind_iteration=7, controls=["reinit"])
    evaluations, rounds = run_tiny(params, tiny_splits)
    rewind = spy[0]["outcome"].rewind_weights
    # theta_k is what round 0 held after k iterations: the same net trained for k only
    short = tiny_params.replace(iterations=7, rounds=0, output_dir=params.output_dir + "_k")
    run_tiny(short, tiny_splits)
    np.testing.assert_array_equal(
        rewind["dense1/kernel"], spy[-1]["outcome"].final_weights["dense1/kernel"]
    )
    assert not np.array_equal(
        rewind["dense1/kernel"], spy[0]["outcome"].final_weights["dense1/kernel"]
    )
    state = load_state(RunPaths(params.run_dir).trial(0).state)
    for call in (spy[1], spy[3]):  # the tickets of rounds 1 and 2
        for name, mask in call["masks"].items():
            np.testing.assert_array_equal(
                call["weights"][f"{name}/kernel"], rewind[f"{name}/kernel"] * mask
            )
            np.testing.assert_array_equal(state.rewind[f"{name}/kernel"], rewind[f"{name}/kernel"])
    # rewound rounds train from k to the same end: T - k iterations, on the absolute clock
    pruned = rounds[rounds["round"] > 0]
    assert (pruned["start_iteration"] == 7).all() and (pruned["iterations_trained"] == 13).all()
    assert (pruned["early_stop_iteration"] >= 7).all()
    assert rounds.loc[rounds["round"] == 0, "iterations_trained"].item() == 20
    later = evaluations[evaluations["round"] > 0]
    assert later["iteration"].min() == 10 and later["iteration"].max() == 20


def test_oneshot_prunes_round_zero_weights(tiny_params, tiny_splits, spy):
    params = tiny_params.replace(rounds=2, pruning_method="oneshot")
    run_tiny(params, tiny_splits)
    trained = spy[0]["outcome"].final_weights["dense1/kernel"]
    mask = spy[2]["masks"]["dense1"]
    assert int(mask.sum()) == round(mask.size * 0.64)
    assert np.abs(trained[mask == 1]).min() >= np.abs(trained[mask == 0]).max()


def test_global_scope_keeps_the_layerwise_total(tiny_params, tiny_splits, spy):
    params = tiny_params.replace(rounds=1, pruning_scope="global")
    _, rounds = run_tiny(params, tiny_splits)
    sizes = {name: mask.size for name, mask in spy[0]["masks"].items()}
    layerwise = {
        name: round(size * (0.9 if name == "output" else 0.8)) for name, size in sizes.items()
    }
    assert rounds.iloc[1]["weights_remaining"] == sum(layerwise.values())
    masks = spy[1]["masks"]
    # one ranking over all layers: not the layer-wise counts, and one threshold for all
    assert {name: int(mask.sum()) for name, mask in masks.items()} != layerwise
    trained = spy[0]["outcome"].final_weights
    kept = [np.abs(trained[f"{n}/kernel"][m == 1]).min() for n, m in masks.items()]
    pruned = [
        np.abs(trained[f"{n}/kernel"][m == 0]).max() for n, m in masks.items() if (m == 0).any()
    ]
    assert min(kept) >= max(pruned)


def test_tables_and_ticket_in_the_run_folder(tiny_params, tiny_splits):
    evaluations, rounds = run_tiny(tiny_params.replace(trials=2), tiny_splits)
    paths = RunPaths(tiny_params.run_dir)
    assert pd.read_csv(paths.rounds).equals(rounds)
    assert set(rounds["trial"]) == {0, 1} and len(rounds) == 2 * 3
    assert len(evaluations) == 2 * 3 * 4  # 20 iterations, evaluated every 5
    assert list(evaluations["iteration"].iloc[:4]) == [5, 10, 15, 20]
    for _, row in rounds.iterrows():
        unit = evaluations[
            (evaluations.trial == row.trial) & (evaluations["round"] == row["round"])
        ]
        assert row["early_stop_iteration"] == unit.loc[unit["val_loss"].idxmin(), "iteration"]
        assert row["iterations_trained"] == 20 and not row["diverged"]
    assert rounds["percent_remaining"].iloc[2] == pytest.approx(
        100 * rounds["weights_remaining"].iloc[2] / rounds["weights_remaining"].iloc[0]
    )
    assert yaml.safe_load(paths.params.read_text())["rounds"] == 2
    trial = paths.trial(0)
    state = load_state(trial.state)
    ticket = tf_keras.models.load_model(trial.ticket)
    assert not any("prune_low_magnitude" in layer.name for layer in ticket.layers)
    for name, mask in state.masks.items():
        kernel = ticket.get_layer(name).kernel.numpy()
        np.testing.assert_array_equal(kernel, state.theta0[f"{name}/kernel"] * mask)
    with np.load(trial.ticket_masks) as masks:
        np.testing.assert_array_equal(masks["dense1"], state.masks["dense1"])


def test_interrupted_run_resumes_to_the_same_tables(
    tiny_params, tiny_splits, monkeypatch, tmp_path
):
    params = tiny_params.replace(rounds=2, controls=["reinit"], trials=2, dropout=0.3)
    _, reference = run_tiny(params.replace(output_dir=str(tmp_path / "whole")), tiny_splits)
    reference_evaluations = pd.read_csv(tmp_path / "whole" / "evaluations.csv")

    real = experiment.Experiment._save_unit
    saved = []

    def interrupted(self, book, unit, masks, outcome):
        if len(saved) == 7:  # round 2: after trial 0's ticket, before its control
            raise KeyboardInterrupt
        saved.append(unit)
        real(self, book, unit, masks, outcome)

    monkeypatch.setattr(experiment.Experiment, "_save_unit", interrupted)
    resumed = params.replace(output_dir=str(tmp_path / "resumed"))
    with pytest.raises(KeyboardInterrupt):
        run_tiny(resumed, tiny_splits)
    trials = RunPaths(resumed.run_dir)
    assert load_state(trials.trial(0).state).completed == [
        "0/ticket",
        "1/ticket",
        "1/reinit",
        "2/ticket",
    ]
    assert len(load_state(trials.trial(1).state).completed) == 3
    monkeypatch.setattr(experiment.Experiment, "_save_unit", real)
    _, rounds = run_tiny(resumed, tiny_splits)  # round 2 again, with 3 networks instead of 4
    pd.testing.assert_frame_equal(rounds, reference, check_exact=True)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "resumed" / "evaluations.csv"),
        reference_evaluations,
        check_exact=True,
    )


def test_rerun_of_a_finished_run_trains_nothing(tiny_params, tiny_splits, spy):
    run_tiny(tiny_params, tiny_splits)
    count = len(spy)
    _, rounds = run_tiny(tiny_params, tiny_splits)
    assert len(spy) == count and len(rounds) == 3


def test_run_folder_with_other_params_is_refused(tiny_params, tiny_splits):
    run_tiny(tiny_params.replace(rounds=0), tiny_splits)
    with pytest.raises(RunFolderError, match=r"dense_rate: 0.2 there, 0.3 now"):
        run_tiny(tiny_params.replace(rounds=0, dense_rate=0.3), tiny_splits)


def test_second_writer_of_a_trial_is_refused(tiny_params):
    trial = RunPaths(tiny_params.run_dir).trial(0)
    refused = pytest.raises(RunFolderError, match="another process")
    with trial_writer(trial), refused, trial_writer(trial):
        pass
    with trial_writer(trial):  # released again
        pass


def test_corrupt_state_names_the_file(tiny_params, tiny_splits):
    run_tiny(tiny_params.replace(rounds=0), tiny_splits)
    state = RunPaths(tiny_params.run_dir).trial(0).state
    state.write_bytes(b"not a zip file")
    with pytest.raises(RunFolderError, match="state.npz"):
        run_tiny(tiny_params.replace(rounds=0), tiny_splits)


def test_corrupt_table_names_the_file(tiny_params, tiny_splits):
    run_tiny(tiny_params.replace(rounds=1), tiny_splits)
    table = RunPaths(tiny_params.run_dir).trial(0).rounds
    table.write_bytes(b"\x00\xff garbage \xfe")
    with pytest.raises(RunFolderError, match=r"trial_000/rounds.csv is corrupt"):
        run_tiny(tiny_params.replace(rounds=1), tiny_splits)


def test_raising_rounds_or_trials_continues_arun_tiny(tiny_params, tiny_splits, spy):
    run_tiny(tiny_params.replace(rounds=1), tiny_splits)
    trained_before = len(spy)
    evaluations, rounds = run_tiny(tiny_params.replace(rounds=2, trials=2), tiny_splits)
    # trial 1 rounds 0-2 and trial 0 round 2; trial 0's finished rounds never again
    assert trained_before == 2 and len(spy) == 2 + 3 + 1
    assert sorted(zip(rounds["trial"], rounds["round"], strict=True)) == [
        (trial, round_index) for trial in (0, 1) for round_index in range(3)
    ]
    paths = RunPaths(tiny_params.run_dir)
    state = load_state(paths.trial(0).state)
    ticket = tf_keras.models.load_model(paths.trial(0).ticket)
    for name, mask in state.masks.items():  # the ticket was exported again, at round 2
        np.testing.assert_array_equal(ticket.get_layer(name).kernel.numpy() != 0, mask == 1)
    assert yaml.safe_load(paths.trial(0).ticket_info.read_text())["round"] == 2


def test_run_folder_of_the_epoch_clock_is_refused_naming_the_new_keys(tiny_params, tiny_splits):
    run_tiny(tiny_params.replace(rounds=0), tiny_splits)
    paths = RunPaths(tiny_params.run_dir)
    stored = yaml.safe_load(paths.params.read_text())
    stored["max_epochs"] = 4
    paths.params.write_text(yaml.safe_dump(stored))
    with pytest.raises(RunFolderError, match=r"max_epochs.*iterations, eval_every, rewind_iter"):
        run_tiny(tiny_params.replace(rounds=0), tiny_splits)


def test_a_diverged_ticket_is_recorded_as_such_and_ends_its_trial(tiny_params, tiny_splits):
    params = tiny_params.replace(rounds=2, learning_rate=1e12)
    with pytest.warns(UserWarning, match=r"trial 0 round 0 ticket: the loss became NaN"):
        evaluations, rounds = run_tiny(params, tiny_splits)
    assert len(rounds) == 1  # nothing to prune from: rounds 1 and 2 are not trained
    row = rounds.iloc[0]
    assert bool(row["diverged"]) and row["iterations_trained"] > 0
    assert np.isnan(row["early_stop_iteration"]) and np.isnan(row["test_accuracy"])
    assert np.isfinite(evaluations[["val_loss", "train_loss"]].to_numpy(float)).all()
    assert load_state(RunPaths(params.run_dir).trial(0).state).diverged_round == 0
    _, again = run_tiny(params, tiny_splits)  # a rerun trains nothing more
    assert len(again) == 1


def test_a_run_folder_older_than_a_parameter_resumes_if_it_has_the_default(
    tiny_params, tiny_splits, spy
):
    run_tiny(tiny_params.replace(rounds=1), tiny_splits)
    paths = RunPaths(tiny_params.run_dir)
    stored = yaml.safe_load(paths.params.read_text())
    del stored["weight_decay"]  # as if weight_decay came after the folder was made
    paths.params.write_text(yaml.safe_dump(stored, sort_keys=False))
    trained = len(spy)
    run_tiny(tiny_params.replace(rounds=1), tiny_splits)
    assert len(spy) == trained
    with pytest.raises(RunFolderError, match=r"weight_decay: 0.0 there, 0.01 now"):
        run_tiny(tiny_params.replace(rounds=1, weight_decay=0.01), tiny_splits)
