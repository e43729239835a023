"""Trials of rounds end to end: rewinding, nested masks, controls, run folder, resume."""

import numpy as np
import pandas as pd
import pytest
import tf_keras
import yaml

import lthnb.experiment as experiment
import lthnb.training as training
from lthnb.paths import RunPaths
from lthnb.results import RunFolderError, load_state, trial_writer


@pytest.fixture
def spy(monkeypatch):
    """Record, per unit in training order, the weights its network really holds when training
    starts, its masks and its outcome; then train for real."""
    calls = []
    starts = []
    real_init = training.RoundTracker.__init__

    def recording_init(self, params, seed, rewind_epoch, steps, start):
        starts.append(start)
        real_init(self, params, seed, rewind_epoch, steps, start)

    real_make_trainer = experiment.make_trainer

    def recording_trainer(params, template, data):
        trainer = real_make_trainer(params, template, data)
        train = trainer.train

        def train_and_record(jobs, on_epoch):
            starts.clear()
            outcomes = train(jobs, on_epoch)
            for job, start, outcome in zip(jobs, starts, outcomes, strict=True):
                calls.append({"weights": start, "masks": job.masks, "outcome": outcome})
            return outcomes

        trainer.train = train_and_record
        return trainer

    monkeypatch.setattr(training.RoundTracker, "__init__", recording_init)
    monkeypatch.setattr(experiment, "make_trainer", recording_trainer)
    return calls


def _run(params, splits):
    return experiment.run_experiment(params, progress=False, load=lambda _: splits)


@pytest.mark.parametrize("together", [True, False], ids=["stacked", "one_by_one"])
def test_rounds_rewind_to_theta0_with_nested_masks(tiny_params, tiny_splits, spy, together):
    params = tiny_params.replace(rounds=3, random_reinit=True, trials_together=together)
    epochs, rounds = _run(params, tiny_splits)
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
    params = tiny_params.replace(rounds=1, random_reinit=True)
    _run(params, tiny_splits)
    ticket, control = spy[1], spy[2]
    for name, mask in ticket["masks"].items():
        np.testing.assert_array_equal(control["masks"][name], mask)
        kernel = control["weights"][f"{name}/kernel"]
        assert np.all(kernel[mask == 0] == 0)
        assert not np.allclose(kernel[mask == 1], ticket["weights"][f"{name}/kernel"][mask == 1])


def test_late_rewinding_resets_to_the_weights_after_k_epochs(tiny_params, tiny_splits, spy):
    params = tiny_params.replace(rounds=1, rewind_epochs=1, max_epochs=2)
    _run(params, tiny_splits)
    rewind = spy[0]["outcome"].rewind_weights
    assert rewind is not None
    assert not np.array_equal(rewind["dense1/kernel"], spy[0]["weights"]["dense1/kernel"])
    for name, mask in spy[1]["masks"].items():
        np.testing.assert_array_equal(
            spy[1]["weights"][f"{name}/kernel"], rewind[f"{name}/kernel"] * mask
        )


def test_oneshot_prunes_round_zero_weights(tiny_params, tiny_splits, spy):
    params = tiny_params.replace(rounds=2, pruning_method="oneshot")
    _run(params, tiny_splits)
    trained = spy[0]["outcome"].final_weights["dense1/kernel"]
    mask = spy[2]["masks"]["dense1"]
    assert int(mask.sum()) == round(mask.size * 0.64)
    assert np.abs(trained[mask == 1]).min() >= np.abs(trained[mask == 0]).max()


def test_global_scope_keeps_the_layerwise_total(tiny_params, tiny_splits, spy):
    params = tiny_params.replace(rounds=1, pruning_scope="global")
    _, rounds = _run(params, tiny_splits)
    sizes = {name: mask.size for name, mask in spy[0]["masks"].items()}
    expected = round(sizes["dense1"] * 0.8) + round(sizes["dense2"] * 0.8)
    expected += round(sizes["output"] * 0.9)
    assert rounds.iloc[1]["weights_remaining"] == expected


def test_tables_and_ticket_in_the_run_folder(tiny_params, tiny_splits):
    epochs, rounds = _run(tiny_params.replace(trials=2), tiny_splits)
    paths = RunPaths(tiny_params.run_dir)
    assert pd.read_csv(paths.rounds).equals(rounds)
    assert set(rounds["trial"]) == {0, 1} and len(rounds) == 2 * 3
    assert len(epochs) == 2 * 3 * 2
    for _, row in rounds.iterrows():
        unit = epochs[(epochs.trial == row.trial) & (epochs["round"] == row["round"])]
        assert row["early_stop_epoch"] == unit.loc[unit["val_loss"].idxmin(), "epoch"]
        assert row["early_stop_iteration"] == row["early_stop_epoch"] * 10
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
    params = tiny_params.replace(rounds=2, random_reinit=True, trials=2, dropout=0.3)
    _, reference = _run(params.replace(output_dir=str(tmp_path / "whole")), tiny_splits)
    reference_epochs = pd.read_csv(tmp_path / "whole" / "epochs.csv")

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
        _run(resumed, tiny_splits)
    trials = RunPaths(resumed.run_dir)
    assert load_state(trials.trial(0).state).completed == [
        "0/ticket",
        "1/ticket",
        "1/reinit",
        "2/ticket",
    ]
    assert len(load_state(trials.trial(1).state).completed) == 3
    monkeypatch.setattr(experiment.Experiment, "_save_unit", real)
    _, rounds = _run(resumed, tiny_splits)  # round 2 again, with 3 networks instead of 4
    pd.testing.assert_frame_equal(rounds, reference, check_exact=True)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "resumed" / "epochs.csv"), reference_epochs, check_exact=True
    )


def test_rerun_of_a_finished_run_trains_nothing(tiny_params, tiny_splits, spy):
    _run(tiny_params, tiny_splits)
    count = len(spy)
    _, rounds = _run(tiny_params, tiny_splits)
    assert len(spy) == count and len(rounds) == 3


def test_run_folder_with_other_params_is_refused(tiny_params, tiny_splits):
    _run(tiny_params.replace(rounds=0), tiny_splits)
    with pytest.raises(RunFolderError, match=r"dense_rate: 0.2 there, 0.3 now"):
        _run(tiny_params.replace(rounds=0, dense_rate=0.3), tiny_splits)


def test_second_writer_of_a_trial_is_refused(tiny_params):
    trial = RunPaths(tiny_params.run_dir).trial(0)
    refused = pytest.raises(RunFolderError, match="another process")
    with trial_writer(trial), refused, trial_writer(trial):
        pass
    with trial_writer(trial):  # released again
        pass


def test_corrupt_state_names_the_file(tiny_params, tiny_splits):
    _run(tiny_params.replace(rounds=0), tiny_splits)
    state = RunPaths(tiny_params.run_dir).trial(0).state
    state.write_bytes(b"not a zip file")
    with pytest.raises(RunFolderError, match="state.npz"):
        _run(tiny_params.replace(rounds=0), tiny_splits)


def test_corrupt_table_names_the_file(tiny_params, tiny_splits):
    _run(tiny_params.replace(rounds=1), tiny_splits)
    table = RunPaths(tiny_params.run_dir).trial(0).rounds
    table.write_bytes(b"\x00\xff garbage \xfe")
    with pytest.raises(RunFolderError, match=r"trial_000/rounds.csv is corrupt"):
        _run(tiny_params.replace(rounds=1), tiny_splits)
