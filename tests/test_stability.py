"""The instability analysis: pure functions, path evaluation, the driver on a tiny run, refusals."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import papermill
import pytest
import yaml
from conftest import REPO, run_tiny

import lthnb.analysis.stability_tables as stability_tables
from lthnb.analysis.stability import (
    alpha_grid,
    copy_seed,
    evaluate_path,
    instability,
    interpolate,
    rewind_points,
    run_stability,
    train_images,
    unit_summary,
)
from lthnb.analysis.stability_tables import (
    INSTABILITY_COLUMNS,
    POINT_COLUMNS,
    UNIT_COLUMNS,
    StabilityBook,
    StabilityTables,
    Unit,
    read_stability,
)
from lthnb.data.loaders import Splits
from lthnb.lottery.experiment import run_experiment
from lthnb.nets.build import build_model
from lthnb.nets.weights import get_weights
from lthnb.params import Params, ParamsError, load_params
from lthnb.report import reproduction, stability_figures
from lthnb.runs.paths import RunPaths
from lthnb.runs.state import load_state
from lthnb.runs.tables import RunFolderError
from lthnb.training.engine import DataTensors, Engine, NetworkJob

# --- pure functions ---


def test_alpha_grid_is_evenly_spaced_from_copy_one_to_copy_two():
    np.testing.assert_allclose(alpha_grid(5), [0.0, 0.25, 0.5, 0.75, 1.0])
    assert len(alpha_grid(30)) == 30


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        ([0.1, 0.1, 0.1], 0.0),  # a flat path: stable
        ([0.1, 0.4, 0.1], 0.3),  # the midpoint is worse: a barrier
        ([0.1, 0.3, 0.2], 0.15),  # measured from the mean of the ends, not the lower one
        ([0.1, 0.15, 0.2], 0.05),  # no bump, but unequal ends: the higher end is the maximum
    ],
)
def test_instability_is_the_largest_error_minus_the_mean_of_the_ends(errors, expected):
    assert instability(errors) == pytest.approx(expected)


def _weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "dense1/kernel": rng.normal(size=(6, 4)).astype(np.float32),
        "dense1/bias": rng.normal(size=4).astype(np.float32),
        "output/kernel": rng.normal(size=(4, 3)).astype(np.float32),
        "output/bias": rng.normal(size=3).astype(np.float32),
    }


def test_every_point_of_a_sparse_path_keeps_pruned_weights_exactly_zero():
    rng = np.random.default_rng(0)
    first, second = _weights(rng), _weights(rng)
    masks = {
        "dense1": (rng.random((6, 4)) < 0.5).astype(np.float32),
        "output": (rng.random((4, 3)) < 0.5).astype(np.float32),
    }
    for alpha in alpha_grid(30):
        point = interpolate(first, second, alpha, masks)
        for name, mask in masks.items():
            assert np.all(point[f"{name}/kernel"][mask == 0] == 0.0)
            assert np.count_nonzero(point[f"{name}/kernel"]) == np.count_nonzero(mask)
    ends = interpolate(first, second, 0.0, masks), interpolate(first, second, 1.0, masks)
    for end, copy in zip(ends, (first, second), strict=True):
        np.testing.assert_array_equal(end["dense1/kernel"], copy["dense1/kernel"] * masks["dense1"])
        np.testing.assert_array_equal(end["output/bias"], copy["output/bias"])
    middle = interpolate(first, second, 0.5, masks)
    np.testing.assert_allclose(
        middle["dense1/bias"], (first["dense1/bias"] + second["dense1/bias"]) / 2
    )


def test_copy_seeds_differ_per_copy_and_unit_and_from_training_seeds(tiny_params):
    from lthnb.lottery.experiment import unit_seed

    unit = Unit(0, 1, 0)
    seeds = {copy_seed(tiny_params, unit, copy) for copy in (1, 2)}
    seeds |= {copy_seed(tiny_params, Unit(1, 1, 0), 1), copy_seed(tiny_params, Unit(0, 1, 5), 1)}
    assert len(seeds) == 4
    training = {unit_seed(tiny_params, trial, r, "ticket") for trial in (0, 1) for r in (0, 1)}
    assert not seeds & training


# --- evaluation of a path ---


def _one_layer_case() -> tuple[Engine, dict, dict, dict]:
    """A linear net (no hidden layer) and two images of class 0: the first weights classify
    image P right (margin 1) and image Q wrong (margin -3), the second the other way round, so
    each end errs on one image and the midpoint (margins -1 and -1) on both."""
    params = load_params(REPO / "params" / "test.yaml", dense_units=[], rounds=0)
    images = np.zeros((2, 28, 28, 1), np.float32)
    images[0, 0, 0, 0] = images[1, 0, 1, 0] = 1.0  # P lights pixel 0, Q pixel 1
    labels = np.zeros(2, np.int64)
    splits = Splits("mnist", "hand-built", images, labels, images, labels, images, labels)
    template = build_model(params, splits.input_shape, splits.num_classes, 0)
    engine = Engine(params, template, DataTensors.from_splits(splits))
    first = {
        "output/kernel": np.zeros((784, 10), np.float32),
        "output/bias": np.zeros(10, np.float32),
    }
    second = {name: value.copy() for name, value in first.items()}
    first["output/kernel"][[0, 1], 0] = [1.0, -3.0]
    second["output/kernel"][[0, 1], 0] = [-3.0, 1.0]
    masks = {"output": np.zeros((784, 10), np.float32)}
    masks["output"][[0, 1], 0] = 1.0  # everything else pruned: a sparse path
    return engine, first, second, masks


def test_a_hand_built_net_whose_midpoint_errs_more_is_unstable():
    engine, first, second, masks = _one_layer_case()
    data = engine.data
    path = evaluate_path(engine, first, second, masks, alpha_grid(3), (data.x_train, data.y_train))
    np.testing.assert_allclose(path["test_error"], [0.5, 1.0, 0.5])
    np.testing.assert_allclose(path["train_error"], [0.5, 1.0, 0.5])
    assert instability(path["test_error"]) == pytest.approx(0.5)
    # the loss of the midpoint: softmax cross-entropy of logits (-1, 0 x 9) for both images
    assert path["test_loss"][1] == pytest.approx(np.log(np.exp(-1) + 9) + 1, rel=1e-6)


def test_copies_trained_with_the_same_seed_have_instability_zero(tiny_params, tiny_splits):
    data = DataTensors.from_splits(tiny_splits)
    template = build_model(tiny_params, tiny_splits.input_shape, 10, 0)
    engine = Engine(tiny_params, template, data)
    weights = get_weights(template)
    masks = {name.split("/")[0]: np.ones_like(v) for name, v in weights.items() if "kernel" in name}
    alphas, train = alpha_grid(5), train_images(data, 0)

    def path_of(seeds: tuple[int, int]) -> pd.DataFrame:
        outcomes = engine.train([NetworkJob(weights, masks, seed) for seed in seeds])
        return evaluate_path(engine, *(o.final_weights for o in outcomes), masks, alphas, train)

    same = path_of((3, 3))
    assert instability(same["test_error"]) == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(same["test_loss"], same["test_loss"][0], rtol=1e-6)
    differing = path_of((3, 4))  # the test can fail: other seeds give another path
    assert not np.allclose(differing["test_loss"], differing["test_loss"][0], rtol=1e-6)


# --- the driver on a tiny run ---


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_splits) -> Params:
    """Two trials, a pruned round, trained once for the whole module."""
    folder = tmp_path_factory.mktemp("stability") / "run"
    params = load_params(
        REPO / "params" / "test.yaml", output_dir=str(folder), trials=2, rounds=1, data_dir=None
    )
    run_tiny(params, tiny_splits)
    return params


def _analysis_params(tiny_run: Params, folder: Path, **changes) -> Params:
    """A copy of the tiny run in `folder`, with the analysis's parameters."""
    shutil.copytree(tiny_run.run_dir, folder)
    values = {
        "output_dir": str(folder),
        "stability_rewind_iterations": [0, 5],
        "stability_rounds": [0, 1],
        "stability_points": 5,
        **changes,
    }
    return tiny_run.replace(**values)


def _analyse(params: Params, splits: Splits):
    return run_stability(params, progress=False, load=lambda _: splits)


def test_tables_hold_one_row_per_point_and_per_unit(tiny_run, tiny_splits, tmp_path):
    params = _analysis_params(tiny_run, tmp_path / "run")
    points, units = _analyse(params, tiny_splits)
    assert list(points.columns) == POINT_COLUMNS and list(units.columns) == INSTABILITY_COLUMNS
    assert len(units) == 2 * 2 * 2 and len(points) == 5 * len(units)  # trials x rounds x k
    assert set(zip(units["round"], units["rewind_iteration"], strict=True)) == {
        (0, 0), (0, 5), (1, 0), (1, 5)
    }  # fmt: skip
    assert set(units["percent_remaining"].round(6)) == {
        100.0,
        round(units["percent_remaining"].min(), 6),
    }
    assert units["percent_remaining"].min() < 100.0
    # the summary is computed from the path: ends and maximum of test_error
    by_unit = points.groupby(["trial", "round", "rewind_iteration"])
    peaks = by_unit["test_error"].max().to_numpy()
    ends = by_unit["test_error"].agg(lambda e: (e.iloc[0] + e.iloc[-1]) / 2).to_numpy()
    np.testing.assert_allclose(units["instability"], peaks - ends)
    first = by_unit["test_error"].first().to_numpy()
    np.testing.assert_allclose(units["copy1_test_accuracy"], 1 - first)
    assert (units["instability"] >= 0).all() and not units["diverged"].any()
    written = read_stability(params.run_dir)
    pd.testing.assert_frame_equal(written.instability, units, check_dtype=False)


def test_path_ends_are_the_copies_own_evaluations(tiny_run, tiny_splits, tmp_path, spy):
    params = _analysis_params(tiny_run, tmp_path / "run", stability_rewind_iterations=[0])
    points, _ = _analyse(params, tiny_splits)
    data = DataTensors.from_splits(tiny_splits)
    engine = Engine(params, build_model(params, tiny_splits.input_shape, 10, 0), data)
    runner = engine.runner(1)
    copies = iter(spy)  # in training order: per round, trial 0's two copies, then trial 1's
    for round_index in (0, 1):
        for trial in (0, 1):
            path = points[(points["round"] == round_index) & (points["trial"] == trial)]
            first, second = next(copies), next(copies)
            np.testing.assert_array_equal(
                first["weights"]["dense1/kernel"], second["weights"]["dense1/kernel"]
            )
            assert not np.array_equal(
                first["outcome"].final_weights["dense1/kernel"],
                second["outcome"].final_weights["dense1/kernel"],
            )  # different SGD noise
            for row, copy in ((path.iloc[0], first), (path.iloc[-1], second)):
                runner.start([NetworkJob(copy["outcome"].final_weights, copy["masks"], 0)])
                loss, accuracy = (v.numpy()[0] for v in runner.evaluate(data.x_test, data.y_test))
                assert row["test_error"] == pytest.approx(1 - accuracy, abs=1e-12)
                assert row["test_loss"] == pytest.approx(loss, rel=1e-5)
    assert next(copies, None) is None


def test_rewound_copies_start_from_the_recomputed_theta_k_equal_to_the_stored_one(
    tiny_splits, tmp_path, spy
):
    params = load_params(
        REPO / "params" / "test.yaml", output_dir=str(tmp_path / "run"), trials=2, rounds=1,
        rewind_iteration=7, stability_rewind_iterations=[7], stability_rounds=[1],
        stability_points=3,
    )  # fmt: skip
    run_tiny(params, tiny_splits)
    states = [load_state(RunPaths(params.run_dir).trial(trial).state) for trial in (0, 1)]
    data = DataTensors.from_splits(tiny_splits)
    template = build_model(params, tiny_splits.input_shape, 10, params.seed)
    theta0 = {trial: state.theta0 for trial, state in enumerate(states)}
    recomputed = rewind_points(params, template, data, theta0, 7)
    for trial, state in enumerate(states):
        assert set(recomputed[trial]) == set(state.rewind)
        for name, value in state.rewind.items():
            np.testing.assert_array_equal(recomputed[trial][name], value)  # bit for bit
        assert not np.array_equal(state.rewind["dense1/kernel"], state.theta0["dense1/kernel"])
    spy.clear()
    _analyse(params, tiny_splits)
    copies = spy[2:]  # after theta_k's two networks: each trial's two copies
    assert len(copies) == 4
    for index, copy in enumerate(copies):
        rewind, masks = states[index // 2].rewind, copy["masks"]
        np.testing.assert_array_equal(
            copy["weights"]["dense1/kernel"], rewind["dense1/kernel"] * masks["dense1"]
        )
        assert masks["dense1"].mean() < 1.0  # round 1's mask


def test_killed_and_resumed_the_analysis_gives_identical_tables(
    tiny_run, tiny_splits, tmp_path, monkeypatch
):
    whole = _analysis_params(tiny_run, tmp_path / "whole")
    _analyse(whole, tiny_splits)
    killed = _analysis_params(tiny_run, tmp_path / "killed")
    real_write = stability_tables.write_text
    marks = []

    def mark_once(target, text):  # the second unit's rows are written, its mark is not
        if marks:
            raise KeyboardInterrupt
        marks.append(target)
        real_write(target, text)

    monkeypatch.setattr(stability_tables, "write_text", mark_once)
    with pytest.raises(KeyboardInterrupt):
        _analyse(killed, tiny_splits)
    folder = RunPaths(killed.run_dir).stability
    assert len(json.loads(folder.completed.read_text())["units"]) == 1
    assert len(pd.read_csv(folder.instability)) == 2  # a row that must not count yet
    monkeypatch.setattr(stability_tables, "write_text", real_write)
    _analyse(killed, tiny_splits)
    for name in ("path_points.csv", "instability.csv", "completed.json"):
        assert (folder.root / name).read_bytes() == (
            RunPaths(whole.run_dir).stability.root / name
        ).read_bytes()


def test_a_finished_analysis_trains_nothing_again(tiny_run, tiny_splits, tmp_path, monkeypatch):
    params = _analysis_params(tiny_run, tmp_path / "run", stability_rewind_iterations=[0])
    first = _analyse(params, tiny_splits)
    monkeypatch.setattr(Engine, "train", lambda *args, **kwargs: pytest.fail("trained again"))
    again = _analyse(params, tiny_splits)
    for before, after in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(before, after, check_dtype=False)


# --- refusals, before any training ---


@pytest.fixture
def no_training(monkeypatch):
    monkeypatch.setattr(Engine, "train", lambda *args, **kwargs: pytest.fail("it trained"))


def _no_data(params: Params) -> Splits:
    raise AssertionError("loaded data before refusing")


def test_a_round_the_run_has_not_trained_is_refused_by_name(tiny_run, tmp_path, no_training):
    params = _analysis_params(tiny_run, tmp_path / "run", rounds=3, stability_rounds=[0, 2, 3])
    with pytest.raises(RunFolderError, match=r"stability_rounds: trial 0 .* round\(s\) \[2, 3\]"):
        run_stability(params, progress=False, load=_no_data)


def test_a_run_folder_of_another_experiment_is_refused(tiny_run, tmp_path, no_training):
    params = _analysis_params(tiny_run, tmp_path / "run", learning_rate=0.1)
    with pytest.raises(RunFolderError, match="learning_rate: 0.0012 there, 0.1 now"):
        run_stability(params, progress=False, load=_no_data)


def test_an_empty_folder_is_refused(tiny_params, no_training):
    with pytest.raises(RunFolderError, match="holds no run"):
        run_stability(tiny_params, progress=False, load=_no_data)
    assert not tiny_params.run_dir.exists()


def test_controls_may_differ_and_the_run_parameters_stay_as_they_are(
    tiny_run, tiny_splits, tmp_path
):
    params = _analysis_params(
        tiny_run, tmp_path / "run", controls=["reinit"], stability_rewind_iterations=[0],
        stability_rounds=[1], stability_points=2,
    )  # fmt: skip
    stored = params.run_dir.joinpath("params.yaml").read_bytes()
    _, units = _analyse(params, tiny_splits)
    assert len(units) == 2
    assert params.run_dir.joinpath("params.yaml").read_bytes() == stored


def test_another_number_of_points_on_a_started_analysis_is_refused(tiny_run, tiny_splits, tmp_path):
    params = _analysis_params(
        tiny_run, tmp_path / "run", stability_rewind_iterations=[0], stability_rounds=[1]
    )
    _analyse(params, tiny_splits)
    with pytest.raises(RunFolderError, match="stability_points: 5"):
        _analyse(params.replace(stability_points=7), tiny_splits)


K = "stability_rewind_iterations"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({K: [0, 20]}, f"{K}: [20] must be < iterations (20)"),
        ({"stability_points": 1}, "stability_points: 1 is too small; it must be >= 2"),
        ({"stability_rounds": [0, 3]}, "stability_rounds: [3] beyond rounds (2)"),
        ({"stability_rounds": [1, 1]}, "stability_rounds: 1 given twice"),
        ({K: [5, 5]}, f"{K}: 5 given twice"),
        ({K: [-1]}, f"{K}: [-1] must hold integers >= 0"),
        ({"stability_rounds": []}, "stability_rounds: [] leaves nothing to analyse"),
    ],
)
def test_bad_analysis_parameters_are_refused_by_name(changes, message):
    with pytest.raises(ParamsError) as error:
        load_params(REPO / "params" / "test.yaml", **changes)
    assert str(error.value).startswith(message)


# --- figures, table and sentences (hand-made tables) ---

PATHS = {  # (round, percent remaining, k): per trial, test error at alpha 0, 0.5, 1
    (0, 100.0, 0): ([0.11, 0.115, 0.11], [0.11, 0.117, 0.11]),
    (0, 100.0, 500): ([0.11, 0.114, 0.11], [0.11, 0.114, 0.11]),
    (3, 51.2, 0): ([0.15, 0.20, 0.15], [0.15, 0.22, 0.15]),
    (3, 51.2, 500): ([0.115, 0.125, 0.115], [0.115, 0.125, 0.115]),
}


@pytest.fixture
def hand_made() -> StabilityTables:
    """Round 3 is unstable at k = 0 (6 pp) and stable at k = 500 (1 pp); round 0 is stable."""
    points, units = [], []
    for (round_index, percent, k), trials in PATHS.items():
        for trial, errors in enumerate(trials):
            path = pd.DataFrame(
                {"alpha": [0.0, 0.5, 1.0], "test_loss": 0.5, "test_error": errors,
                 "train_loss": 0.4, "train_error": errors}
            )  # fmt: skip
            unit = {"trial": trial, "round": round_index, "rewind_iteration": k}
            points.append(path.assign(**unit, percent_remaining=percent)[POINT_COLUMNS])
            summary = unit_summary(path)
            units.append({**unit, "percent_remaining": percent, **summary, "diverged": False})
    return StabilityTables("lenet", pd.concat(points), pd.DataFrame(units)[INSTABILITY_COLUMNS])


def test_figures_have_titles_labels_and_a_curve_per_k_or_sparsity(hand_made):
    figure = stability_figures.error_along_path(hand_made)
    ax = figure.axes[0]
    assert "round 3, 51.2% remaining" in ax.get_title()
    assert ax.get_xlabel().startswith("Interpolation α") and ax.get_ylabel() == "Test error (%)"
    assert [line.get_label() for line in ax.get_lines()] == ["k = 0", "k = 500"]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [15.0, 21.0, 15.0])
    figure = stability_figures.instability_vs_rewind(hand_made)
    ax = figure.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["100% remaining", "51.2% remaining", "stable below (2 pp)"]
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [6.0, 1.0])
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["0", "500"]
    figure = stability_figures.instability_vs_remaining(hand_made)
    left, right = figure.axes
    assert left.get_ylabel().startswith("Instability") and right.get_ylabel().startswith("Test")
    np.testing.assert_allclose(right.get_lines()[0].get_ydata(), [89.0, 85.0])
    assert left.get_legend() is not None and figure.get_suptitle()
    plt.close("all")


def test_summary_view_gives_mean_and_std_and_the_verdict(hand_made):
    view = stability_figures.stability_view(hand_made)
    assert view.loc[(3, 0), "instability pp"] == "6.00 ± 1.41"
    assert list(view["stable"]) == [True, True, False, True]
    assert view.loc[(3, 500), "copies' test acc. %"] == "88.50 ± 0.00"


def test_sentences_say_what_the_figures_show(hand_made):
    assert stability_figures.path_text(hand_made) == (
        "At 51.2% remaining (round 3, means over 2 trials), the test error along the path: "
        "for k = 0, 15.00% at the ends and 21.00% at worst (α = 0.50), an instability of "
        "6.00 pp (unstable); for k = 500, 11.50% at the ends and 12.50% at worst (α = 0.50), "
        "an instability of 1.00 pp (stable)."
    )
    assert stability_figures.rewind_text(hand_made) == (
        "Instability (means over 2 trials; stable below 2 pp, the paper's threshold): at 100% "
        "remaining, 0.60 pp at k = 0, 0.40 pp at k = 500: stable at every k; at 51.2% "
        "remaining, 6.00 pp at k = 0, 1.00 pp at k = 500: stable at k = 500 only."
    )
    assert stability_figures.remaining_text(hand_made) == (
        "With k = 0 the subnetworks are stable at 1 of 2 sparsities, the sparsest 100%; with "
        "k = 500 the subnetworks are stable at 2 of 2 sparsities, the sparsest 51.2%. Test "
        "accuracy of the sparse "
        "subnetworks against the dense network at the same k, averaged over 1 stable "
        "(sparsity, k) pairs: -0.50 pp; over 1 unstable (sparsity, k) pairs: -4.00 pp."
    )


def test_a_round_that_was_not_analysed_is_named(hand_made):
    with pytest.raises(
        ValueError, match=r"round 5 was not analysed; stability_rounds has \[0, 3\]"
    ):
        stability_figures.path_text(hand_made, 5)


def test_the_notebook_runs_the_analysis_and_draws_its_figures(tiny_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LTHNB_HEADLESS", "1")
    values = yaml.safe_load((REPO / "params" / "test.yaml").read_text())
    values.update(
        data_dir=str(tiny_data_dir), output_dir=str(tmp_path / "run"), rounds=1,
        stability_rewind_iterations=[0, 5], stability_rounds=[0, 1], stability_points=3,
    )  # fmt: skip
    run_experiment(load_params(values), progress=False)
    output = tmp_path / "07.ipynb"
    papermill.execute_notebook(
        str(REPO / "notebooks" / "07_stability.ipynb"), str(output), parameters=values,
        kernel_name="python3", cwd=str(REPO), progress_bar=False,
    )  # fmt: skip
    units = pd.read_csv(tmp_path / "run" / "stability" / "instability.csv")
    assert len(units) == 4
    for name in ("stability_path", "instability_vs_rewind", "instability_vs_remaining"):
        assert (tmp_path / "run" / "figures" / f"{name}.png").stat().st_size > 0
    text = output.read_text()
    assert "the test error along the path: for k = 0" in text
    assert "Test accuracy of the sparse subnetworks against the dense network" in text
    assert "The network has no batch norm" in text


def test_a_second_process_is_refused_while_one_writes_the_analysis(tmp_path):
    folder = RunPaths(tmp_path).stability
    with (
        stability_tables.analysis_writer(folder),
        pytest.raises(RunFolderError, match="being written by another process"),
        stability_tables.analysis_writer(folder),
    ):
        pass


def test_the_reproduction_cli_writes_the_analysis_of_a_run_folder_as_markdown(hand_made, tmp_path):
    book = StabilityBook.open(RunPaths(tmp_path).stability, points=3, batch_norm="none")
    for unit_row in hand_made.instability.to_dict("records"):
        unit = Unit(unit_row["trial"], unit_row["round"], unit_row["rewind_iteration"])
        points = hand_made.path_points
        book.add(
            unit, points[(points[UNIT_COLUMNS] == list(unit.row.values())).all(axis=1)], unit_row
        )
    reproduction.main([str(tmp_path), "--stability", "--output", str(tmp_path / "summary.md")])
    text = (tmp_path / "summary.md").read_text()
    assert "| round | k | % left | trials | instability pp |" in text
    assert "| 3 | 0 | 51.2 | 2 | 6.00 ± 1.41 | 6.00 ± 1.41 | 85.00 ± 0.00 | no |" in text
    assert "| 3 | 500 | 51.2 | 2 | 1.00 ± 0.00 | 1.00 ± 0.00 | 88.50 ± 0.00 | yes |" in text
    for sentence in (
        stability_figures.path_text(hand_made),
        stability_figures.rewind_text(hand_made),
        stability_figures.remaining_text(hand_made),
    ):
        assert f"\n{sentence}\n" in text


def test_the_path_figure_shows_the_round_with_the_largest_instability_the_sparsest_on_ties(
    hand_made,
):
    assert stability_figures.path_round(hand_made) == 3  # 6 and 1 pp against 0.6 and 0.4
    dense_worst = hand_made.instability.assign(
        instability=np.where(hand_made.instability["round"] == 0, 0.05, 0.01)
    )
    assert (
        stability_figures.path_round(dataclasses.replace(hand_made, instability=dense_worst)) == 0
    )
    ties = hand_made.instability.assign(instability=0.01)
    assert stability_figures.path_round(dataclasses.replace(hand_made, instability=ties)) == 3
    assert stability_figures.path_round(hand_made, 0) == 0
