"""Batch norm statistics on the instability analysis's paths: recomputed, or interpolated."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tf_keras
from conftest import REPO, run_tiny

from lthnb.analysis.batch_norm import (
    StatisticsRecomputer,
    batch_norm_layers,
    statistics_batches,
    statistics_method,
)
from lthnb.analysis.stability import alpha_grid, evaluate_path, path_weights, run_stability
from lthnb.analysis.stability_tables import StabilityBook, read_stability
from lthnb.nets.build import build_model
from lthnb.nets.names import kernels_of, masked
from lthnb.nets.prunable import layer_kinds
from lthnb.nets.weights import get_weights, set_weights
from lthnb.params import Params, ParamsError, load_params
from lthnb.pruning.masks import dense_masks
from lthnb.report import stability_figures
from lthnb.runs.paths import RunPaths
from lthnb.runs.tables import RunFolderError
from lthnb.training.engine import DataTensors, Engine, NetworkJob

BN_SHORTCUT = "nets_for_tests:bn_shortcut"
BN_LAYERS = ["batch_normalization", "batch_normalization_1", "batch_normalization_2"]
STATISTICS = ("moving_mean", "moving_variance")


def _is_statistic(name: str) -> bool:
    return name.endswith(STATISTICS)


@pytest.fixture(scope="module")
def copies(tiny_splits):
    """Two copies of bn_shortcut trained 20 iterations from one theta0 with different seeds."""
    params = load_params(REPO / "params" / "test.yaml", arch=BN_SHORTCUT, data_dir=None)
    tf_keras.backend.clear_session()
    template = build_model(params, tiny_splits.input_shape, 10, params.seed)
    data = DataTensors.from_splits(tiny_splits)
    engine = Engine(params, template, data)
    theta0 = get_weights(template)
    masks = dense_masks(kernels_of(theta0, layer_kinds(template)))
    first, second = (
        outcome.final_weights
        for outcome in engine.train([NetworkJob(theta0, masks, seed) for seed in (1, 2)])
    )
    batches = statistics_batches(data.x_train, params.batch_size)
    recomputer = StatisticsRecomputer(template, batches)
    return params, template, engine, first, second, masks, batches, recomputer


def _numpy_statistics(params: Params, input_shape, weights: dict, batches) -> dict:
    """Each batch norm's statistics computed independently: its inputs from a sub-model of a
    fresh network (the layers before it in training mode), their numpy mean and variance per
    batch (Bessel-corrected after a convolution, as Keras's fused kernel keeps it; biased after
    a dense layer), averaged over the batches."""
    model = build_model(params, input_shape, 10, params.seed + 7)
    set_weights(model, weights)
    statistics = {}
    for layer in BN_LAYERS:
        probe = tf_keras.Model(model.inputs, model.get_layer(layer).input)
        means, variances = [], []
        for batch in batches.numpy():
            inputs = probe(batch, training=True).numpy().astype(np.float64)
            axes = tuple(range(inputs.ndim - 1))
            means.append(inputs.mean(axis=axes))
            variances.append(inputs.var(axis=axes, ddof=1 if inputs.ndim == 4 else 0))
        statistics[f"{layer}/moving_mean"] = np.mean(means, axis=0)
        statistics[f"{layer}/moving_variance"] = np.mean(variances, axis=0)
    return statistics


def _assert_statistics(weights: dict, expected: dict) -> None:
    for name, value in expected.items():
        np.testing.assert_allclose(weights[name], value, rtol=2e-5, atol=1e-6, err_msg=name)


def test_the_fixed_batches_are_the_first_training_images_in_whole_batches(tiny_splits):
    x = DataTensors.from_splits(tiny_splits).x_train
    batches = statistics_batches(x, 30)
    assert batches.shape == (10, 30, 28, 28, 1)  # the split's 300 images
    np.testing.assert_array_equal(batches.numpy()[1, 0], x.numpy()[30])
    assert statistics_batches(x, 70).shape == (4, 70, 28, 28, 1)  # 20 images left out
    assert statistics_batches(x[:20], 30).shape == (1, 20, 28, 28, 1)


def test_recomputed_statistics_equal_numpy_statistics_of_each_layers_inputs(copies, tiny_splits):
    """Conv batch norms (Bessel-corrected variance) and a dense one (biased); the template is
    left as it was, its weights and momenta."""
    params, template, _, first, _, _, batches, recomputer = copies
    before = get_weights(template)
    [recomputed] = recomputer([first])
    expected = _numpy_statistics(params, tiny_splits.input_shape, first, batches)
    _assert_statistics(recomputed, expected)
    for name, value in first.items():  # every other weight as given
        if not _is_statistic(name):
            np.testing.assert_array_equal(recomputed[name], value)
    for name in expected:  # not the statistics the copy trained with
        assert not np.allclose(recomputed[name], first[name], rtol=1e-3), name
    # the variance conventions differ enough for the comparison to tell them apart
    conv = expected["batch_normalization/moving_variance"]
    assert not np.allclose(conv * (30 * 28 * 28 - 1) / (30 * 28 * 28), conv, rtol=2e-5)
    after = get_weights(template)
    assert all(np.array_equal(after[name], before[name]) for name in before)
    assert [layer.momentum for layer in batch_norm_layers(template)] == [0.8, 0.8, 0.8]


def test_dropout_is_off_and_a_frozen_batch_norm_keeps_its_statistics():
    """The statistics describe the network as evaluated: no dropout; a batch norm that Keras
    never updates (trainable False) is left as it is; the layers are restored after."""
    layers = tf_keras.layers
    inputs = tf_keras.Input((6, 6, 2))
    x = layers.Conv2D(3, 3, padding="same", name="conv1")(inputs)
    frozen = layers.BatchNormalization(name="frozen")
    x = layers.Dropout(0.5, name="dropout")(frozen(x))
    x = layers.Conv2D(4, 3, padding="same", name="conv2")(x)
    x = layers.BatchNormalization(momentum=0.9, name="bn")(x)
    model = tf_keras.Model(inputs, layers.Dense(3)(layers.GlobalAveragePooling2D()(x)))
    frozen.trainable = False
    weights = get_weights(model)
    weights["frozen/moving_mean"] = np.full(3, 0.3, np.float32)
    weights["frozen/moving_variance"] = np.full(3, 2.0, np.float32)
    batches = np.random.default_rng(0).normal(size=(3, 8, 6, 6, 2)).astype(np.float32)
    [recomputed] = StatisticsRecomputer(model, tf.constant(batches))([weights])
    for name in ("frozen/moving_mean", "frozen/moving_variance"):
        np.testing.assert_array_equal(recomputed[name], weights[name])
    set_weights(model, weights)
    probe = tf_keras.Model(inputs, model.get_layer("conv2").output)  # no dropout, frozen: as is
    inputs_of_bn = [probe(batch, training=False).numpy().astype(np.float64) for batch in batches]
    _assert_statistics(
        recomputed,
        {
            "bn/moving_mean": np.mean([b.mean(axis=(0, 1, 2)) for b in inputs_of_bn], axis=0),
            "bn/moving_variance": np.mean(
                [b.var(axis=(0, 1, 2), ddof=1) for b in inputs_of_bn], axis=0
            ),
        },
    )
    assert model.get_layer("dropout").rate == 0.5 and model.get_layer("bn").momentum == 0.9


def test_batch_renormalization_is_refused_by_name():
    inputs = tf_keras.Input((4,))
    outputs = tf_keras.layers.BatchNormalization(renorm=True, name="renormed")(inputs)
    with pytest.raises(ParamsError, match="of renormed, a batch renormalization; set it to"):
        StatisticsRecomputer(tf_keras.Model(inputs, outputs), tf.zeros((1, 2, 4)))


def test_path_ends_with_recompute_have_their_statistics_re_estimated(copies, tiny_splits):
    params, _, _, first, second, masks, batches, recomputer = copies
    points = path_weights(first, second, masks, alpha_grid(3), recomputer)
    for point, end in ((points[0], first), (points[-1], second)):
        _assert_statistics(point, _numpy_statistics(params, tiny_splits.input_shape, end, batches))
        for name, value in masked(end, masks).items():
            if not _is_statistic(name):
                np.testing.assert_array_equal(point[name], value)
    interpolated = path_weights(first, second, masks, alpha_grid(3))
    np.testing.assert_allclose(  # without recompute: mixed like the weights
        interpolated[1]["batch_normalization/moving_mean"],
        0.5 * first["batch_normalization/moving_mean"]
        + 0.5 * second["batch_normalization/moving_mean"],
    )


def _own_evaluation(engine: Engine, weights: dict, masks: dict) -> tuple[float, float]:
    runner = engine.runner(1)
    runner.start([NetworkJob(weights, masks, 0)])
    loss, accuracy = (v.numpy()[0] for v in runner.evaluate(engine.data.x_test, engine.data.y_test))
    return float(loss), 1.0 - float(accuracy)


def test_interpolated_path_ends_are_the_copies_and_recompute_changes_the_path(copies):
    _, _, engine, first, second, masks, _, recomputer = copies
    alphas, data = alpha_grid(5), engine.data
    train = (data.x_train, data.y_train)
    interpolated = evaluate_path(engine, first, second, masks, alphas, train)
    recomputed = evaluate_path(engine, first, second, masks, alphas, train, recomputer)
    for row, copy in ((0, first), (-1, second)):
        loss, error = _own_evaluation(engine, copy, masks)
        assert interpolated["test_error"].iloc[row] == pytest.approx(error, abs=1e-12)
        assert interpolated["test_loss"].iloc[row] == pytest.approx(loss, rel=1e-5)
    middle = slice(1, -1)
    for column in ("test_loss", "train_loss"):
        assert not np.allclose(interpolated[column][middle], recomputed[column][middle], rtol=1e-3)
    assert not np.array_equal(
        interpolated[["test_error", "train_error"]].to_numpy()[middle],
        recomputed[["test_error", "train_error"]].to_numpy()[middle],
    )


def test_a_network_without_batch_norm_is_evaluated_the_same_either_way(tiny_params, tiny_splits):
    template = build_model(tiny_params, tiny_splits.input_shape, 10, 0)
    assert statistics_method(template, "recompute") == statistics_method(template, "interpolate")
    assert statistics_method(template, "recompute") == "none"
    data = DataTensors.from_splits(tiny_splits)
    recomputer = StatisticsRecomputer(template, statistics_batches(data.x_train, 30))
    weights = get_weights(template)
    assert recomputer([weights])[0] is weights  # nothing computed, nothing copied


# --- the analysis on a tiny run ---


def _tiny_run(tmp_path, splits, **changes) -> Params:
    params = load_params(
        REPO / "params" / "test.yaml", output_dir=str(tmp_path / "run"), data_dir=None,
        rounds=0, iterations=10, stability_points=3, **changes,
    )  # fmt: skip
    run_tiny(params, splits)
    return params


def _analyse(params: Params, splits) -> tuple[pd.DataFrame, pd.DataFrame]:
    return run_stability(params, progress=False, load=lambda _: splits)


def _record(params: Params) -> dict:
    return json.loads(RunPaths(params.run_dir).stability.completed.read_text())


def test_the_analysis_of_a_batch_norm_network_records_its_setting_and_refuses_the_other(
    tiny_splits, tmp_path
):
    params = _tiny_run(tmp_path, tiny_splits, arch=BN_SHORTCUT)
    points, units = _analyse(params, tiny_splits)
    assert len(points) == 3 and len(units) == 1 and not units["diverged"].any()
    assert _record(params)["batch_norm"] == "recompute"
    tables = read_stability(params.run_dir)
    assert tables.batch_norm == "recompute"
    assert "recomputed at every α" in stability_figures.batch_norm_text(tables)
    with pytest.raises(RunFolderError, match="computed with stability_batch_norm: recompute; set"):
        _analyse(params.replace(stability_batch_norm="interpolate"), tiny_splits)


def test_a_network_without_batch_norm_gives_the_same_analysis_under_both_settings(
    tiny_splits, tmp_path
):
    params = _tiny_run(tmp_path, tiny_splits)
    first = _analyse(params, tiny_splits)
    assert _record(params)["batch_norm"] == "none"
    resumed = _analyse(params.replace(stability_batch_norm="interpolate"), tiny_splits)
    pd.testing.assert_frame_equal(first[1], resumed[1])  # not refused: nothing differs
    RunPaths(params.run_dir).stability.completed.unlink()  # computed again, from scratch
    again = _analyse(params.replace(stability_batch_norm="interpolate"), tiny_splits)
    for before, after in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(before, after)
    assert read_stability(params.run_dir).batch_norm == "none"


def test_an_analysis_from_before_the_record_counts_as_interpolated(tmp_path):
    paths = RunPaths(tmp_path).stability
    paths.root.mkdir(parents=True)
    paths.completed.write_text(json.dumps({"stability_points": 3, "units": []}))
    assert StabilityBook.open(paths, 3, "interpolate").batch_norm == "interpolate"
    assert StabilityBook.open(paths, 3, "none").batch_norm == "none"
    with pytest.raises(RunFolderError, match="stability_batch_norm: interpolate; set"):
        StabilityBook.open(paths, 3, "recompute")
    assert read_stability(tmp_path).batch_norm == "unrecorded"
