"""Train the networks of a round together: one compiled epoch steps every network of a stack.

Each network keeps its own shuffle order, dropout seeds, optimizer slots and early stopping;
when a network stops, the others go on in a smaller stack.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import tensorflow as tf

from lthnb.params import Params
from lthnb.stack import NetworkStack
from lthnb.stack_optimizer import StackOptimizer
from lthnb.training import (
    EVAL_BATCH,
    DataTensors,
    NetworkJob,
    RoundOutcome,
    RoundTracker,
    steps_per_epoch,
)


class StackRunner:
    """Compiled training epoch and batched evaluation for a network stack."""

    def __init__(self, stack: NetworkStack, params: Params) -> None:
        self.stack = stack
        self.batch_size = params.batch_size
        self.optimizer = StackOptimizer(params, stack.variables)

    def take(self, source: StackRunner, slots: list[int]) -> None:
        """Continue training `source`'s networks in `slots` here."""
        self.stack.take(source.stack, slots)
        self.optimizer.take(source.optimizer, slots)

    @tf.function(reduce_retracing=True)
    def train_epoch(
        self, x: tf.Tensor, y: tf.Tensor, orders: tf.Tensor, seeds: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """One epoch of every network; orders (networks, images); per-network loss, accuracy.

        `seeds` (networks, 2) holds each network's dropout seed and this epoch's first step.
        """
        size = tf.shape(orders)[1]
        steps = (size + self.batch_size - 1) // self.batch_size
        loss_sum = tf.zeros(self.stack.size, tf.float64)
        correct = tf.zeros(self.stack.size, tf.float64)
        variables = self.stack.variables
        for step in tf.range(steps):
            batch = orders[
                :, step * self.batch_size : tf.minimum((step + 1) * self.batch_size, size)
            ]
            labels = tf.gather(y, batch)
            if self.stack.dropout_layers:  # each step draws new dropout masks
                seeds += tf.constant([0, 1], seeds.dtype)
            with tf.GradientTape() as tape:
                logits = self.stack.logits(tf.gather(x, batch), True, seeds)
                losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
                # the sum of the networks' mean losses: each network gets its own gradient
                total = tf.reduce_sum(tf.reduce_mean(losses, axis=1))
            gradients = tape.gradient(total, variables)
            self.optimizer.apply(self.stack.masked_gradients(gradients))
            loss_sum += _per_network_sums(losses)
            correct += _correct(labels, logits)
        count = tf.cast(size, tf.float64)
        return loss_sum / count, correct / count

    @tf.function(reduce_retracing=True)
    def _evaluate_batch(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        shared = tf.tile(x[None], [self.stack.size] + [1] * len(x.shape))
        labels = tf.tile(y[None], [self.stack.size, 1])
        logits = self.stack.logits(shared, False, tf.zeros((self.stack.size, 2), tf.int64))
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        return _per_network_sums(losses), _correct(labels, logits)

    def evaluate(self, x: tf.Tensor, y: tf.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Per-network mean loss and accuracy over a whole split (shared by all networks)."""
        size = int(x.shape[0])
        batch = max(1, EVAL_BATCH // self.stack.size)
        loss_sum = np.zeros(self.stack.size)
        correct = np.zeros(self.stack.size)
        for start in range(0, size, batch):
            batch_loss, batch_correct = self._evaluate_batch(
                x[start : start + batch], y[start : start + batch]
            )
            loss_sum += batch_loss.numpy()
            correct += batch_correct.numpy()
        return loss_sum / size, correct / size


def _per_network_sums(values: tf.Tensor) -> tf.Tensor:
    """Sums over each network's batch, in float64: how float32 sums round depends on how many
    networks share the stack, and a network's metrics must not."""
    return tf.reduce_sum(tf.cast(values, tf.float64), axis=1)


def _correct(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    predictions = tf.argmax(logits, axis=-1, output_type=labels.dtype)
    return _per_network_sums(tf.equal(predictions, labels))


def train_together(
    runner_for: Callable[[int], StackRunner],
    data: DataTensors,
    params: Params,
    jobs: list[NetworkJob],
    on_epoch: Callable[[int, dict], None] | None = None,
) -> list[RoundOutcome]:
    """Train `jobs` as `train_round` trains one network, all at once.

    `runner_for(size)` gives a runner for a stack of `size` networks. When networks stop early,
    the others move on in a smaller stack, weights and optimizer state and all, so stopped
    networks cost nothing. `on_epoch(job index, record)` reports every epoch of every network.
    """
    runner = runner_for(len(jobs))
    runner.optimizer.reset()
    steps = steps_per_epoch(data.train_size, params.batch_size)
    trackers = []
    for index, job in enumerate(jobs):
        runner.stack.load(index, job.weights, job.masks)
        trackers.append(
            RoundTracker(params, job.seed, job.rewind_epoch, steps, runner.stack.weights(index))
        )
    training = list(range(len(jobs)))  # job index of each slot of the current stack
    for epoch in range(params.max_epochs):
        orders = tf.stack([trackers[index].order(data.train_size) for index in training])
        seeds = tf.constant([[jobs[index].seed, epoch * steps] for index in training], tf.int64)
        train = runner.train_epoch(data.x_train, data.y_train, orders, seeds)
        validation = runner.evaluate(data.x_val, data.y_val)
        metrics = np.stack([*(value.numpy() for value in train), *validation], axis=1)
        going_on = []
        for slot, index in enumerate(training):
            tracker = trackers[index]
            record = tracker.add_epoch(metrics[slot], partial(runner.stack.weights, slot))
            if on_epoch is not None:
                on_epoch(index, record)
            if tracker.stopped:
                tracker.outcome.final_weights = runner.stack.weights(slot)
            else:
                going_on.append(slot)
        if len(going_on) < len(training):
            training = [training[slot] for slot in going_on]
            if not training:
                break
            smaller = runner_for(len(training))
            smaller.take(runner, going_on)
            runner = smaller
    for slot, index in enumerate(training):  # those still training after max_epochs
        trackers[index].outcome.final_weights = runner.stack.weights(slot)
    _evaluate_best(runner_for(len(jobs)), data, jobs, trackers)
    return [tracker.outcome for tracker in trackers]


def _evaluate_best(runner: StackRunner, data: DataTensors, jobs, trackers) -> None:
    """Test metrics of every network at its early-stop epoch, all in one stack."""
    for index, (job, tracker) in enumerate(zip(jobs, trackers, strict=True)):
        runner.stack.load(index, tracker.best_weights, job.masks)
    test_losses, test_accuracies = runner.evaluate(data.x_test, data.y_test)
    for tracker, loss, accuracy in zip(trackers, test_losses, test_accuracies, strict=True):
        tracker.outcome.test_loss, tracker.outcome.test_accuracy = float(loss), float(accuracy)
