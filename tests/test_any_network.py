"""Any tf_keras network in the engine: batch norm and a shortcut, in the stack and in the Keras
container, held against tfmot's oracle; the weights are every variable of the network."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tf_keras
from oracle import TfmotOracle

from lthnb.nets.build import build_model
from lthnb.nets.names import kernels_of, masked
from lthnb.nets.prunable import layer_kinds
from lthnb.nets.weights import get_weights, model_variables, set_weights
from lthnb.pruning.masks import prune_layerwise
from lthnb.training.engine import DataTensors, Engine, NetworkJob
from lthnb.training.keras_container import KerasContainer
from lthnb.training.stack import NetworkStack

BN_SHORTCUT = "nets_for_tests:bn_shortcut"


def _template(params, splits) -> tf_keras.Model:
    tf_keras.backend.clear_session()
    return build_model(params, splits.input_shape, 10, 0)


def _job(params, splits, seed: int, fraction: float = 0.5) -> NetworkJob:
    """A network drawn from `seed`, half of each prunable weight kept (a random mask), its
    batch norm statistics moved off their initial values so that rewinding them shows."""
    model = build_model(params, splits.input_shape, 10, seed)
    weights = get_weights(model)
    rng = np.random.default_rng(seed)
    for name in weights:
        if name.endswith("moving_mean") or name.endswith("moving_variance"):
            weights[name] = weights[name] + rng.uniform(0.1, 0.5, weights[name].shape)
            weights[name] = weights[name].astype(np.float32)
    kernels = kernels_of(weights, layer_kinds(model))
    masks = prune_layerwise(
        {name: rng.random(kernel.shape) for name, kernel in kernels.items()},
        {name: np.ones_like(kernel) for name, kernel in kernels.items()},
        {name: int(kernel.size * fraction) for name, kernel in kernels.items()},
    )
    return NetworkJob(weights, masks, seed=1000 + seed)


def test_batch_norm_state_is_part_of_the_weights(tiny_params, tiny_splits):
    params = tiny_params.replace(arch=BN_SHORTCUT)
    weights = get_weights(_template(params, tiny_splits))
    for layer in ("batch_normalization", "batch_normalization_1", "batch_normalization_2"):
        for variable in ("gamma", "beta", "moving_mean", "moving_variance"):
            assert f"{layer}/{variable}" in weights
    assert layer_kinds(_template(params, tiny_splits)) == {
        "conv2d": "conv",
        "conv2d_1": "conv",
        "dense": "dense",
        "dense_1": "output",
    }


@pytest.mark.parametrize("container", [NetworkStack, KerasContainer], ids=["stack", "keras"])
@pytest.mark.parametrize(
    ("optimizer", "momentum", "budget", "tolerance"),
    [("sgd", 0.9, (10, 5, 7), 1e-5), ("adam", 0.0, (6, 3, 2), 1e-4)],
    ids=["sgd-momentum", "adam"],
)
def test_bn_shortcut_network_matches_the_tfmot_oracle(
    tiny_params, tiny_splits, container, optimizer, momentum, budget, tolerance
):
    """Batch norm (after convolutions and after a dense layer) and an Add shortcut: the engine's
    metrics and every final weight, batch norm's moving statistics included, agree with tfmot's
    wrappers and tf_keras's optimizer, from θ0 and from a rewound start.

    This network amplifies float rounding from step to step: the oracle against itself, its
    weights moved by one part in 1e7, drifts by 5e-6 in validation loss after 25 SGD steps and
    by 2e-3 with Adam, whose normalised steps flip with the sign of a gradient near 0. So the
    budgets (iterations, eval_every, rewind point) end where the oracle still agrees with
    itself within the existing tolerances. A stack of several networks sums in another order
    than Keras (gradients agree to about 1e-5 of their scale), which Adam's sign flips amplify
    past 1e-4 within a few steps: so Adam's networks train one per stack here, where every
    step is Keras's to the bit; SGD's train two per stack.
    """
    iterations, eval_every, rewound = budget
    params = tiny_params.replace(
        arch=BN_SHORTCUT,
        optimizer=optimizer,
        momentum=momentum,
        learning_rate=0.002,
        iterations=iterations,
        eval_every=eval_every,
    )
    jobs = [_job(params, tiny_splits, seed) for seed in (1, 2)]
    data = DataTensors.from_splits(tiny_splits)
    for start in (0, rewound):
        engine = Engine(params, _template(params, tiny_splits), data, container)
        assert engine.container is container
        # Adam: one network per stack, whose steps are Keras's bit for bit (see the docstring)
        stacks = [jobs] if optimizer == "sgd" else [[job] for job in jobs]
        ours = [outcome for stack in stacks for outcome in engine.train(stack, start=start)]
        oracle = TfmotOracle(params, _template(params, tiny_splits), data)
        for mine, job in zip(ours, jobs, strict=True):
            theirs = oracle.train(job, start=start)
            pd.testing.assert_frame_equal(
                pd.DataFrame(mine.evaluations),
                pd.DataFrame(theirs.evaluations),
                rtol=tolerance,
                atol=0,
            )
            assert mine.test_loss == pytest.approx(theirs.test_loss, rel=tolerance)
            assert mine.final_weights.keys() == theirs.final_weights.keys()
            for key, value in theirs.final_weights.items():
                np.testing.assert_allclose(
                    mine.final_weights[key], value, rtol=0, atol=tolerance, err_msg=key
                )
            moved = mine.final_weights["batch_normalization/moving_mean"]
            assert not np.allclose(moved, job.weights["batch_normalization/moving_mean"])
            for name, mask in job.masks.items():
                assert np.all(mine.final_weights[f"{name}/kernel"][mask == 0] == 0.0)


def test_the_stack_and_the_keras_container_agree_on_the_same_jobs(tiny_params, tiny_splits):
    params = tiny_params.replace(
        arch=BN_SHORTCUT, optimizer="sgd", momentum=0.9, learning_rate=0.002, iterations=10
    )
    jobs = [_job(params, tiny_splits, seed) for seed in (1, 2, 3)]
    data = DataTensors.from_splits(tiny_splits)
    template = _template(params, tiny_splits)
    stacked = Engine(params, template, data, NetworkStack).train(jobs)
    one_by_one = Engine(params, template, data, KerasContainer).train(jobs)
    for ours, theirs in zip(stacked, one_by_one, strict=True):
        assert ours.val_loss == pytest.approx(theirs.val_loss, rel=1e-5)
        for key, value in theirs.best_weights.items():
            np.testing.assert_allclose(ours.best_weights[key], value, atol=1e-5, err_msg=key)


def test_a_layer_the_stack_does_not_know_trains_in_the_keras_container(tiny_params, tiny_splits):
    params = tiny_params.replace(arch="nets_for_tests:custom_layer", iterations=10)
    template = _template(params, tiny_splits)
    with pytest.warns(UserWarning, match="Keras container.*layer scale is a Scale"):
        engine = Engine(params, template, DataTensors.from_splits(tiny_splits))
    assert engine.container is KerasContainer
    job = _job(params, tiny_splits, 1)
    [outcome] = engine.train([job])
    assert outcome.evaluations and np.isfinite(outcome.val_loss)
    # the user's layer trains (tfmot cannot prune it), the kernels keep their masks
    assert not np.array_equal(outcome.final_weights["scale/factor"], job.weights["scale/factor"])
    for name, mask in job.masks.items():
        assert np.all(outcome.final_weights[f"{name}/kernel"][mask == 0] == 0.0)


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
def test_a_stack_of_one_computes_what_keras_computes(tiny_params, tiny_splits, training):
    """The stack's own layers against the Keras model itself, one step on one batch: logits,
    every gradient, and (training) the moving statistics after the step."""
    params = tiny_params.replace(arch=BN_SHORTCUT)
    model = _template(params, tiny_splits)
    job = _job(params, tiny_splits, 1)
    stack = NetworkStack(model, 1)
    stack.load([job.weights], [job.masks])
    set_weights(model, masked(job.weights, job.masks))
    images = tiny_splits.x_train[:30]
    with tf.GradientTape(persistent=True) as tape:
        ours = stack.logits(images[None], training, tf.zeros((1, 2), tf.int64))[0]
        theirs = model(images, training=training)
        our_loss, their_loss = tf.reduce_sum(ours**2), tf.reduce_sum(theirs**2)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)
    variables = model_variables(model)
    keras_gradients = tape.gradient(their_loss, [variables[n] for n in stack.trainable_names])
    for name, mine, keras in zip(
        stack.trainable_names,
        tape.gradient(our_loss, stack.variables),
        keras_gradients,
        strict=True,
    ):
        np.testing.assert_allclose(mine[0], keras, rtol=1e-5, atol=1e-5, err_msg=name)
    after = stack.weights(0)
    for name in stack.state_names:
        np.testing.assert_allclose(after[name], variables[name].numpy(), rtol=1e-6, err_msg=name)
        assert training != np.allclose(after[name], job.weights[name])  # moved only in training
