"""One round of masked training: zeros stay zero, tfmot really masks, early stopping."""

import numpy as np
import pytest
import tf_keras

from lthnb.masked_model import (
    get_masks,
    get_weights,
    mask_variables,
    set_masks,
    set_weights,
    wrap_for_pruning,
)
from lthnb.models import build_model
from lthnb.pruning import prune_layerwise
from lthnb.training import DataTensors, EpochRunner, make_optimizer, should_stop, train_round


def _masked_model(params, splits, fraction=0.5, seed=0):
    tf_keras.backend.clear_session()
    model = wrap_for_pruning(build_model(params, splits.input_shape, 10, seed))
    weights = get_weights(model)
    kernels = {k.split("/")[0]: v for k, v in weights.items() if k.endswith("/kernel")}
    keep = {name: int(kernel.size * fraction) for name, kernel in kernels.items()}
    masks = prune_layerwise(kernels, {n: np.ones_like(k) for n, k in kernels.items()}, keep)
    return model, masks


def _train(model, data, params, **kwargs):
    runner = EpochRunner(model, make_optimizer(params), params.batch_size)
    return train_round(runner, data, params, **kwargs)


def test_pruned_weights_are_exactly_zero_after_adam_training(tiny_params, tiny_splits):
    model, masks = _masked_model(tiny_params, tiny_splits)
    set_masks(model, masks)
    outcome = _train(model, DataTensors.from_splits(tiny_splits), tiny_params, seed=1)
    for name, mask in masks.items():
        final = outcome.final_weights[f"{name}/kernel"]
        assert np.all(final[mask == 0] == 0.0)
        assert np.count_nonzero(final[mask == 1]) == mask.sum()  # survivors did train
    assert get_masks(model).keys() == masks.keys()


def test_wrapper_masks_every_forward_pass(tiny_params, tiny_splits):
    """Garbage at pruned positions must not change training: tfmot zeroes them before use."""
    data = DataTensors.from_splits(tiny_splits)
    params = tiny_params.replace(max_epochs=1)
    results = []
    for garbage in (0.0, 5.0):
        model, masks = _masked_model(params, tiny_splits)
        weights = get_weights(model)
        polluted = {
            key: np.where(masks[key.split("/")[0]] == 0, garbage, value)
            if key.endswith("/kernel")
            else value
            for key, value in weights.items()
        }
        set_weights(model, polluted)
        for name, (_kernel, mask) in mask_variables(model).items():
            mask.assign(masks[name])  # the mask only: the kernels keep the garbage
        outcome = _train(model, data, params, seed=1)
        results.append((outcome.epochs[0]["train_loss"], outcome.final_weights))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-6)
    for key, value in results[0][1].items():
        np.testing.assert_allclose(value, results[1][1][key], rtol=1e-5, atol=1e-6)


def test_reports_metrics_from_the_min_val_loss_epoch(tiny_params, tiny_splits):
    params = tiny_params.replace(max_epochs=4, learning_rate=0.05)  # noisy val loss
    model, masks = _masked_model(params, tiny_splits)
    set_masks(model, masks)
    snapshots = {}
    outcome = _train(
        model,
        DataTensors.from_splits(tiny_splits),
        params,
        seed=3,
        on_epoch=lambda row: snapshots.update({row["epoch"]: get_weights(model)}),
    )
    losses = [row["val_loss"] for row in outcome.epochs]
    assert outcome.early_stop_epoch == int(np.argmin(losses)) + 1
    assert outcome.val_loss == min(losses)
    restored = get_weights(model)  # the weights evaluated on the test set
    for key, value in snapshots[outcome.early_stop_epoch].items():
        np.testing.assert_array_equal(restored[key], value)
    assert outcome.epochs[-1]["iteration"] == 4 * 10  # 300 images, batch 30


def test_early_stopping_honours_patience_and_min_delta(tiny_params, tiny_splits):
    params = tiny_params.replace(max_epochs=6, early_stopping=True, patience=2, min_delta=100.0)
    model, masks = _masked_model(params, tiny_splits)
    set_masks(model, masks)
    outcome = _train(model, DataTensors.from_splits(tiny_splits), params, seed=1)
    assert outcome.epochs_trained == 3  # epoch 1 improves on inf; 2 and 3 fail the huge min_delta


@pytest.mark.parametrize(
    ("losses", "patience", "min_delta", "stop"),
    [
        ([1.0, 0.9, 0.8], 1, 0.0, False),
        ([1.0, 1.1], 1, 0.0, True),
        ([1.0, 1.1, 1.2], 3, 0.0, False),
        ([1.0, 0.95, 0.91], 2, 0.1, True),  # decreases, but never by more than min_delta
        ([1.0, 0.95, 0.85], 2, 0.1, False),  # 0.85 < 1.0 - 0.1 resets the count
    ],
)
def test_should_stop(losses, patience, min_delta, stop):
    assert should_stop(losses, patience, min_delta) is stop


def test_a_reused_runner_trains_like_a_new_one(tiny_params, tiny_splits):
    """Optimizer state and dropout streams are reset per round, so reuse changes nothing."""
    params = tiny_params.replace(dropout=0.3)
    model, masks = _masked_model(params, tiny_splits)
    set_masks(model, masks)
    start = get_weights(model)
    runner = EpochRunner(model, make_optimizer(params), params.batch_size)
    data = DataTensors.from_splits(tiny_splits)
    first = train_round(runner, data, params, seed=5)
    set_weights(model, start)
    second = train_round(runner, data, params, seed=5)
    assert first.epochs == second.epochs
    for key, value in first.final_weights.items():
        np.testing.assert_array_equal(value, second.final_weights[key])
