"""Networks trained together in a stack: same results as the tfmot reference, zeros stay zero,
and each network's numbers do not depend on which others share its stack."""

import numpy as np
import pandas as pd
import pytest
import tf_keras

from lthnb.experiment import run_experiment
from lthnb.masked_model import get_weights, kernels_of, masked
from lthnb.models import build_model
from lthnb.paths import RunPaths
from lthnb.pruning import prune_layerwise
from lthnb.stack import NetworkStack
from lthnb.trainers import SequentialTrainer, StackedTrainer
from lthnb.training import DataTensors, NetworkJob


def _job(params, splits, seed, fraction=0.5) -> NetworkJob:
    """A network drawn from `seed` with `fraction` of each layer's kernel kept (random mask)."""
    weights = get_weights(build_model(params, splits.input_shape, 10, seed))
    kernels = kernels_of(weights)
    scores = np.random.default_rng(seed).random
    keep = {name: int(kernel.size * fraction) for name, kernel in kernels.items()}
    masks = prune_layerwise(
        {name: scores(kernel.shape) for name, kernel in kernels.items()},
        {name: np.ones_like(kernel) for name, kernel in kernels.items()},
        keep,
    )
    return NetworkJob(weights, masks, seed=1000 + seed)


def _train(trainer_class, params, splits, jobs):
    tf_keras.backend.clear_session()
    template = build_model(params, splits.input_shape, 10, 0)
    trainer = trainer_class(params, template, DataTensors.from_splits(splits))
    return trainer.train(jobs, lambda index, record: None)


def _table(outcome) -> pd.DataFrame:
    return pd.DataFrame(outcome.epochs)


def test_load_zeroes_pruned_weights_and_keeps_survivors_exact(tiny_params, tiny_splits):
    template = build_model(tiny_params, tiny_splits.input_shape, 10, 0)
    stack = NetworkStack(template, 3)
    jobs = [_job(tiny_params, tiny_splits, seed) for seed in range(3)]
    for index, job in enumerate(jobs):
        stack.load(index, job.weights, job.masks)
    for index, job in enumerate(jobs):
        loaded = stack.weights(index)
        assert loaded.keys() == job.weights.keys()
        for key, value in masked(job.weights, job.masks).items():
            np.testing.assert_array_equal(loaded[key], value)


@pytest.mark.parametrize(
    ("arch", "optimizer", "momentum", "tolerance"),
    [("lenet", "sgd", 0.9, 1e-6), ("lenet", "adam", 0.0, 1e-4), ("conv2", "sgd", 0.0, 1e-5)],
)
def test_stacked_training_matches_the_tfmot_reference(
    tiny_params, tiny_splits, arch, optimizer, momentum, tolerance
):
    """Same job, two paths: tfmot wrappers + tf_keras optimizer, and the stack.

    Float rounding differs (a batched matmul, a fused update), so the numbers agree within
    `tolerance` (measured: 1e-7 with SGD, 7e-6 with Adam, whose 1/sqrt(v) amplifies rounding).
    """
    params = tiny_params.replace(
        arch=arch, optimizer=optimizer, momentum=momentum, learning_rate=0.01, max_epochs=3
    )
    jobs = [_job(params, tiny_splits, seed) for seed in (1, 2)]
    stacked = _train(StackedTrainer, params, tiny_splits, jobs)
    reference = _train(SequentialTrainer, params, tiny_splits, jobs)
    for ours, theirs, job in zip(stacked, reference, jobs, strict=True):
        pd.testing.assert_frame_equal(_table(ours), _table(theirs), rtol=tolerance, atol=0)
        assert ours.early_stop_epoch == theirs.early_stop_epoch
        assert ours.test_accuracy == pytest.approx(theirs.test_accuracy, abs=0.011)
        assert ours.test_loss == pytest.approx(theirs.test_loss, rel=tolerance)
        for key, value in theirs.final_weights.items():
            np.testing.assert_allclose(ours.final_weights[key], value, rtol=0, atol=tolerance)
        for name, mask in job.masks.items():
            pruned = mask == 0
            assert np.all(ours.final_weights[f"{name}/kernel"][pruned] == 0.0)
            assert np.all(theirs.final_weights[f"{name}/kernel"][pruned] == 0.0)


def test_networks_that_stop_leave_the_stack_and_the_others_go_on(tiny_params, tiny_splits):
    """Early stopping per network: as networks stop, the others continue in a smaller stack
    (weights and optimizer state moved over); each gets the numbers it gets alone."""
    params = tiny_params.replace(max_epochs=12, early_stopping=True, patience=1, min_delta=0.02)
    jobs = [
        _job(params, tiny_splits, seed, fraction) for seed, fraction in enumerate([1, 0.5, 0.1])
    ]
    together = _train(StackedTrainer, params, tiny_splits, jobs)
    trained = [outcome.epochs_trained for outcome in together]
    assert min(trained) < max(trained)  # they stopped apart
    for job, stacked in zip(jobs, together, strict=True):
        [alone] = _train(StackedTrainer, params, tiny_splits, [job])
        assert stacked.epochs_trained == alone.epochs_trained
        pd.testing.assert_frame_equal(_table(stacked), _table(alone), rtol=1e-5, atol=0)
        for key, value in alone.final_weights.items():
            np.testing.assert_allclose(stacked.final_weights[key], value, rtol=0, atol=1e-5)
        assert stacked.test_loss == pytest.approx(alone.test_loss, rel=1e-5)


def test_a_network_alone_or_stacked_gets_the_same_numbers(tiny_params, tiny_splits):
    """Stack company changes only float rounding (measured here: 1e-7 relative)."""
    params = tiny_params.replace(max_epochs=4, dropout=0.3)
    jobs = [_job(params, tiny_splits, seed) for seed in range(3)]
    together = _train(StackedTrainer, params, tiny_splits, jobs)
    for job, stacked in zip(jobs, together, strict=True):
        [alone] = _train(StackedTrainer, params, tiny_splits, [job])
        pd.testing.assert_frame_equal(_table(stacked), _table(alone), rtol=1e-5, atol=0)
        assert stacked.test_loss == pytest.approx(alone.test_loss, rel=1e-5)


def test_dropout_is_drawn_per_network_seed(tiny_params, tiny_splits):
    params = tiny_params.replace(dropout=0.5, max_epochs=1)
    job = _job(params, tiny_splits, 0)
    reseeded = NetworkJob(job.weights, job.masks, seed=job.seed + 1)
    first, again, other = _train(StackedTrainer, params, tiny_splits, [job, job, reseeded])
    [without] = _train(StackedTrainer, params.replace(dropout=0.0), tiny_splits, [job])
    kernel = first.final_weights["dense1/kernel"]
    np.testing.assert_allclose(again.final_weights["dense1/kernel"], kernel, rtol=0, atol=1e-6)
    for different in (other, without):  # far beyond rounding
        assert np.abs(different.final_weights["dense1/kernel"] - kernel).max() > 1e-3


def test_both_paths_find_the_same_masks_and_metrics(tiny_params, tiny_splits, tmp_path):
    """Whole experiments (SGD, so rounding stays at 1e-7): the same masks in every round."""
    params = tiny_params.replace(
        rounds=3, trials=2, random_reinit=True, optimizer="sgd", momentum=0.9, learning_rate=0.01
    )
    runs = {}
    for together in (True, False):
        run = params.replace(trials_together=together, output_dir=str(tmp_path / str(together)))
        runs[together] = (RunPaths(run.run_dir), run_experiment(run, False, lambda _: tiny_splits))
    (stacked_paths, (_, stacked)), (reference_paths, (_, reference)) = runs[True], runs[False]
    pd.testing.assert_frame_equal(stacked, reference, rtol=1e-5)
    for trial in range(2):
        for round_index in range(4):
            with (
                np.load(stacked_paths.trial(trial).round_record(round_index)) as ours,
                np.load(reference_paths.trial(trial).round_record(round_index)) as theirs,
            ):
                for key in (key for key in theirs.files if key.startswith("mask:")):
                    np.testing.assert_array_equal(ours[key], theirs[key])
