"""The training engine: zeros stay zero, the tfmot oracle agrees, early stops on the iteration
grid, late rewinding, divergence, and each network's numbers independent of its stack."""

import math

import numpy as np
import pandas as pd
import pytest
import tf_keras
from oracle import TfmotOracle

from lthnb.nets.build import build_model
from lthnb.nets.names import kernels_of, masked
from lthnb.nets.prunable import layer_kinds
from lthnb.nets.tfmot import set_masks, wrap_for_pruning
from lthnb.nets.weights import get_weights
from lthnb.pruning.masks import prune_layerwise
from lthnb.training.engine import DataTensors, Engine, NetworkJob, should_stop
from lthnb.training.stack import NetworkStack


def _job(params, splits, seed, fraction=0.5) -> NetworkJob:
    """A network drawn from `seed` with `fraction` of each layer's kernel kept (random mask)."""
    model = build_model(params, splits.input_shape, 10, seed)
    weights = get_weights(model)
    kernels = kernels_of(weights, layer_kinds(model))
    scores = np.random.default_rng(seed).random
    keep = {name: int(kernel.size * fraction) for name, kernel in kernels.items()}
    masks = prune_layerwise(
        {name: scores(kernel.shape) for name, kernel in kernels.items()},
        {name: np.ones_like(kernel) for name, kernel in kernels.items()},
        keep,
    )
    return NetworkJob(weights, masks, seed=1000 + seed)


def _template(params, splits):
    tf_keras.backend.clear_session()
    return build_model(params, splits.input_shape, 10, 0)


def _engine(params, splits) -> Engine:
    return Engine(params, _template(params, splits), DataTensors.from_splits(splits))


def _train(params, splits, jobs, **kwargs):
    return _engine(params, splits).train(jobs, **kwargs)


def _table(outcome) -> pd.DataFrame:
    return pd.DataFrame(outcome.evaluations)


def _assert_same_weights(ours, theirs, atol=0.0):
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        np.testing.assert_allclose(ours[key], value, rtol=0, atol=atol, err_msg=key)


def test_load_zeroes_pruned_weights_and_keeps_survivors_exact(tiny_params, tiny_splits):
    stack = NetworkStack(_template(tiny_params, tiny_splits), 3)
    jobs = [_job(tiny_params, tiny_splits, seed) for seed in range(3)]
    polluted = [{key: value + 7.0 for key, value in job.weights.items()} for job in jobs]
    stack.load(polluted, [job.masks for job in jobs])  # no zeros anywhere before the masks
    for index, job in enumerate(jobs):
        loaded = stack.weights(index)
        expected = masked({key: value + 7.0 for key, value in job.weights.items()}, job.masks)
        _assert_same_weights(loaded, expected)
        assert np.all(loaded["dense1/kernel"][job.masks["dense1"] == 0] == 0.0)


def test_pruned_weights_stay_exactly_zero_under_adam_and_weight_decay(tiny_params, tiny_splits):
    params = tiny_params.replace(iterations=40, learning_rate=0.01, weight_decay=0.01)
    jobs = [_job(params, tiny_splits, seed) for seed in (1, 2)]
    for job, outcome in zip(jobs, _train(params, tiny_splits, jobs), strict=True):
        for name, mask in job.masks.items():
            for weights in (outcome.final_weights, outcome.best_weights):
                kernel = weights[f"{name}/kernel"]
                assert np.all(kernel[mask == 0] == 0.0)
                assert np.all(kernel[mask == 1] != job.weights[f"{name}/kernel"][mask == 1])


def test_the_tfmot_wrapper_masks_every_forward_pass(tiny_params, tiny_splits):
    """The oracle's premise: garbage written into a wrapped kernel at pruned positions, after
    the mask was set, does not reach the output of a training forward pass."""
    model = wrap_for_pruning(_template(tiny_params, tiny_splits))
    job = _job(tiny_params, tiny_splits, 0)
    set_masks(model, job.masks)
    x = tiny_splits.x_train[:8]
    clean = model(x, training=True).numpy()
    kernel = model.get_layer("prune_low_magnitude_dense1").layer.kernel
    kernel.assign(np.where(job.masks["dense1"] == 0, 5.0, kernel.numpy()))
    assert np.count_nonzero(kernel.numpy()[job.masks["dense1"] == 0]) > 0
    np.testing.assert_allclose(model(x, training=True).numpy(), clean, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("arch", "optimizer", "momentum", "schedule", "tolerance"),
    [
        ("lenet", "sgd", 0.9, {}, 1e-6),
        ("lenet", "adam", 0.0, {"warmup_iterations": 6, "lr_milestones": [15]}, 1e-4),
        ("conv2", "sgd", 0.0, {}, 1e-5),
    ],
    ids=["lenet-sgd", "lenet-adam-schedule", "conv2-sgd"],
)
def test_engine_matches_the_tfmot_oracle(
    tiny_params, tiny_splits, arch, optimizer, momentum, schedule, tolerance
):
    """Same jobs, the engine (stacked) and tfmot's wrappers with tf_keras's optimizer, one by
    one. Float rounding differs (batched matmuls, fused updates), so they agree within
    `tolerance`; the rewound start checks that the schedule continues from k."""
    params = tiny_params.replace(
        arch=arch,
        optimizer=optimizer,
        momentum=momentum,
        learning_rate=0.01,
        iterations=25,  # ends inside the third epoch
        **schedule,
    )
    jobs = [_job(params, tiny_splits, seed) for seed in (1, 2)]
    for start in (0, 7):
        ours = _train(params, tiny_splits, jobs, start=start)
        oracle = TfmotOracle(
            params, _template(params, tiny_splits), DataTensors.from_splits(tiny_splits)
        )
        for mine, job in zip(ours, jobs, strict=True):
            theirs = oracle.train(job, start=start)
            pd.testing.assert_frame_equal(_table(mine), _table(theirs), rtol=tolerance, atol=0)
            assert mine.early_stop_iteration == theirs.early_stop_iteration
            assert mine.test_loss == pytest.approx(theirs.test_loss, rel=tolerance)
            _assert_same_weights(mine.final_weights, theirs.final_weights, atol=tolerance)
            for name, mask in job.masks.items():
                assert np.all(mine.final_weights[f"{name}/kernel"][mask == 0] == 0.0)
                assert np.all(theirs.final_weights[f"{name}/kernel"][mask == 0] == 0.0)


def test_test_metrics_come_from_the_min_val_loss_point_not_the_last(tiny_params, tiny_splits):
    params = tiny_params.replace(iterations=60, eval_every=5, learning_rate=0.3)  # noisy
    job = _job(params, tiny_splits, 3)
    engine = _engine(params, tiny_splits)
    [outcome] = engine.train([job])
    losses = [row["val_loss"] for row in outcome.evaluations]
    iterations = [row["iteration"] for row in outcome.evaluations]
    assert iterations == list(range(5, 61, 5))
    assert outcome.early_stop_iteration == iterations[int(np.argmin(losses))]
    assert outcome.early_stop_iteration < 60  # the best point is not the last here
    assert outcome.val_loss == min(losses)
    # the same network trained only up to the early-stop iteration: the best weights, exactly
    short = params.replace(iterations=int(outcome.early_stop_iteration))
    [until_best] = Engine(short, engine.template, engine.data).train([job])
    _assert_same_weights(outcome.best_weights, until_best.final_weights)
    assert outcome.test_loss == until_best.test_loss != _test_loss_of(engine, outcome, job)


def _test_loss_of(engine, outcome, job) -> float:
    """The test loss of the final (not the best) weights."""
    runner = engine.runner(1)
    runner.start([NetworkJob(outcome.final_weights, job.masks, job.seed)])
    return float(runner.evaluate(engine.data.x_test, engine.data.y_test)[0].numpy()[0])


def test_early_stopping_counts_evaluations_with_min_delta(tiny_params, tiny_splits):
    params = tiny_params.replace(
        iterations=100, eval_every=5, early_stopping=True, patience=2, min_delta=100.0
    )
    [outcome] = _train(params, tiny_splits, [_job(params, tiny_splits, 1)])
    # evaluation 1 improves on inf; 2 and 3 fail the huge min_delta
    assert [row["iteration"] for row in outcome.evaluations] == [5, 10, 15]
    assert outcome.iterations_trained == 15


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


def test_late_rewinding_records_the_weights_after_k_iterations(tiny_params, tiny_splits):
    params = tiny_params.replace(iterations=20)
    job = _job(params, tiny_splits, 1, fraction=1.0)
    engine = _engine(params, tiny_splits)
    [outcome] = engine.train([job], record_at=7)  # k = 7 is not on the evaluation grid
    [until_k] = Engine(params.replace(iterations=7), engine.template, engine.data).train([job])
    _assert_same_weights(outcome.rewind_weights, until_k.final_weights)
    assert not np.array_equal(outcome.rewind_weights["dense1/kernel"], job.weights["dense1/kernel"])
    assert not np.array_equal(
        outcome.rewind_weights["dense1/kernel"], outcome.final_weights["dense1/kernel"]
    )
    assert [row["iteration"] for row in outcome.evaluations] == [5, 10, 15, 20]


def test_a_rewound_round_trains_iterations_minus_k_on_the_absolute_clock(tiny_params, tiny_splits):
    params = tiny_params.replace(iterations=20)
    [outcome] = _train(params, tiny_splits, [_job(params, tiny_splits, 1)], start=7)
    assert outcome.start_iteration == 7
    assert outcome.iterations_trained == 20 - 7
    assert [row["iteration"] for row in outcome.evaluations] == [10, 15, 20]
    assert outcome.early_stop_iteration >= 7


def test_a_diverged_network_leaves_and_the_others_go_on(tiny_params, tiny_splits):
    params = tiny_params.replace(iterations=20)
    healthy = _job(params, tiny_splits, 1)
    broken = NetworkJob(
        {key: value * 1e30 for key, value in healthy.weights.items()}, healthy.masks, 77
    )
    diverged, together = _train(params, tiny_splits, [broken, healthy])
    assert diverged.diverged and not together.diverged
    assert math.isnan(diverged.early_stop_iteration) and math.isnan(diverged.test_accuracy)
    assert diverged.evaluations == []  # its first evaluation was already not finite
    [alone] = _train(params, tiny_splits, [healthy])
    pd.testing.assert_frame_equal(_table(together), _table(alone), rtol=1e-5, atol=0)
    assert together.early_stop_iteration == alone.early_stop_iteration > 0


def test_networks_that_stop_leave_the_stack_and_the_others_go_on(tiny_params, tiny_splits):
    """Early stopping per network: as networks stop, the others continue in a smaller stack
    (weights, masks, best weights and optimizer state moved over); each gets its numbers."""
    params = tiny_params.replace(iterations=120, early_stopping=True, patience=1, min_delta=0.02)
    jobs = [
        _job(params, tiny_splits, seed, fraction) for seed, fraction in enumerate([1, 0.5, 0.1])
    ]
    together = _train(params, tiny_splits, jobs)
    trained = [outcome.iterations_trained for outcome in together]
    assert min(trained) < max(trained)  # they stopped apart
    for job, stacked in zip(jobs, together, strict=True):
        [alone] = _train(params, tiny_splits, [job])
        assert stacked.iterations_trained == alone.iterations_trained
        pd.testing.assert_frame_equal(_table(stacked), _table(alone), rtol=1e-5, atol=0)
        _assert_same_weights(stacked.final_weights, alone.final_weights, atol=1e-5)
        _assert_same_weights(stacked.best_weights, alone.best_weights, atol=1e-5)
        assert stacked.test_loss == pytest.approx(alone.test_loss, rel=1e-5)


def test_a_network_alone_or_stacked_gets_the_same_numbers(tiny_params, tiny_splits):
    """Stack company changes only float rounding (measured here: 1e-7 relative)."""
    params = tiny_params.replace(iterations=40, dropout=0.3)
    jobs = [_job(params, tiny_splits, seed) for seed in range(3)]
    together = _train(params, tiny_splits, jobs)
    for job, stacked in zip(jobs, together, strict=True):
        [alone] = _train(params, tiny_splits, [job])
        pd.testing.assert_frame_equal(_table(stacked), _table(alone), rtol=1e-5, atol=0)
        assert stacked.test_loss == pytest.approx(alone.test_loss, rel=1e-5)


def test_dropout_is_drawn_per_network_seed(tiny_params, tiny_splits):
    params = tiny_params.replace(dropout=0.5, iterations=10)
    job = _job(params, tiny_splits, 0)
    reseeded = NetworkJob(job.weights, job.masks, seed=job.seed + 1)
    first, again, other = _train(params, tiny_splits, [job, job, reseeded])
    [without] = _train(params.replace(dropout=0.0), tiny_splits, [job])
    kernel = first.final_weights["dense1/kernel"]
    np.testing.assert_allclose(again.final_weights["dense1/kernel"], kernel, rtol=0, atol=1e-6)
    for different in (other, without):  # far beyond rounding
        assert np.abs(different.final_weights["dense1/kernel"] - kernel).max() > 1e-3


def test_a_reused_engine_trains_like_a_new_one(tiny_params, tiny_splits):
    """Optimizer state, best point and streams are reset per round, so reuse changes nothing."""
    params = tiny_params.replace(dropout=0.3)
    job = _job(params, tiny_splits, 2)
    engine = _engine(params, tiny_splits)
    [first] = engine.train([job])
    [second] = engine.train([job])
    assert first.evaluations == second.evaluations
    _assert_same_weights(first.final_weights, second.final_weights)
    _assert_same_weights(first.best_weights, second.best_weights)


def test_dense_kernels_skip_the_mask_multiply(tiny_params, tiny_splits):
    dense = _job(tiny_params, tiny_splits, 0, fraction=1.0)
    pruned = _job(tiny_params, tiny_splits, 1, fraction=0.5)
    runner = _engine(tiny_params, tiny_splits).runner(2)
    runner.start([dense, dense])
    assert runner.pruned_weights == (False, False, False)
    runner.start([dense, pruned])
    assert runner.pruned_weights == (True, True, True)
