"""A container's compiled chunk of training, with its in-graph evaluation and best-weights copy.

One chunk trains every network of the container from one pause point to the next (each on its
own batches, at the clock's learning rates), then evaluates them on the validation split in the
same graph and copies each improved network's weights, batch norm statistics included.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from lthnb.nets.names import Weights
from lthnb.params import Params
from lthnb.training.inputs import DataTensors, augment
from lthnb.training.optimizer import StackOptimizer
from lthnb.training.stacked_weights import StackedWeights

if TYPE_CHECKING:
    from lthnb.training.engine import NetworkJob

EVAL_IMAGES = 2000  # images per evaluation batch, over all networks of the stack


class StackRunner:
    """A stack's compiled chunk of training (with its evaluation) and its best-weights copy."""

    def __init__(self, stack: StackedWeights, params: Params) -> None:
        self.stack = stack
        self.optimizer = StackOptimizer(params, stack.variables)
        self.weight_decay = params.weight_decay
        self.augmentation = tuple(params.augmentation)
        self.eval_batch = max(1, EVAL_IMAGES // stack.size)
        self.best = [tf.Variable(tf.zeros_like(v), trainable=False) for v in stack.all_variables]
        self.best_loss = tf.Variable(tf.fill([stack.size], tf.constant(math.inf, tf.float64)))
        self.pruned_weights = stack.pruned_weights()

    def start(self, jobs: Sequence[NetworkJob]) -> None:
        """Load one job per slot; a fresh optimizer and no best point yet."""
        self.stack.load([job.weights for job in jobs], [job.masks for job in jobs])
        self.optimizer.reset()
        for best, variable in zip(self.best, self.stack.all_variables, strict=True):
            best.assign(variable)
        self.best_loss.assign(tf.fill([self.stack.size], tf.constant(math.inf, tf.float64)))
        self.pruned_weights = self.stack.pruned_weights()

    def take(self, source: StackRunner, slots: list[int]) -> None:
        """Continue `source`'s networks in `slots` here, in order."""
        self.stack.take(source.stack, slots)
        self.optimizer.take(source.optimizer, slots)
        for mine, theirs in zip(self.best, source.best, strict=True):
            mine.assign(tf.gather(theirs.read_value(), slots))
        self.best_loss.assign(tf.gather(source.best_loss.read_value(), slots))
        self.pruned_weights = self.stack.pruned_weights()

    def best_weights(self, slot: int) -> Weights:
        return self.stack.weights(slot, self.best)

    def chunk(
        self,
        data: DataTensors,
        indices: np.ndarray,
        offsets: np.ndarray,
        seeds: np.ndarray,
        rates: np.ndarray,
        evaluate: bool,
    ) -> np.ndarray:
        """Train iterations whose batches are `indices[:, offsets[i]:offsets[i + 1]]`, then
        evaluate if asked; rows (networks), columns train loss, accuracy, val loss, accuracy."""
        metrics = self._chunk(
            data.x_train,
            data.y_train,
            data.x_val,
            data.y_val,
            tf.constant(indices),
            tf.constant(offsets),
            tf.constant(seeds, tf.int64),
            tf.constant(rates),
            evaluate,
            self.pruned_weights,
        )
        return tf.stack(metrics, axis=1).numpy()

    @tf.function(reduce_retracing=True)
    def _chunk(
        self, x, y, x_val, y_val, indices, offsets, seeds, rates, evaluate, pruned_weights
    ) -> tuple[tf.Tensor, ...]:
        loss_sum = tf.zeros(self.stack.size, tf.float64)
        correct = tf.zeros(self.stack.size, tf.float64)
        variables = self.stack.variables
        for step in tf.range(tf.shape(offsets)[0] - 1):
            batch = indices[:, offsets[step] : offsets[step + 1]]
            labels = tf.gather(y, batch)
            seeds += tf.constant([0, 1], seeds.dtype)  # each step draws new dropout masks
            with tf.GradientTape() as tape:
                images = tf.gather(x, batch)
                if self.augmentation:
                    images = augment(images, seeds, self.augmentation)
                logits = self.stack.logits(images, True, seeds)
                losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
                # the sum of the networks' mean losses: each network gets its own gradient
                total = tf.reduce_sum(tf.reduce_mean(losses, axis=1))
            gradients = self.stack.gradients(tape, total)
            if self.weight_decay:
                gradients = [
                    g + self.weight_decay * v for g, v in zip(gradients, variables, strict=False)
                ]
            self.optimizer.apply(
                self.stack.masked_gradients(gradients, pruned_weights), rates[step]
            )
            loss_sum += _per_network_sums(losses)
            correct += _correct(labels, logits)
        images = tf.cast(offsets[-1], tf.float64)
        train = (loss_sum / images, correct / images)
        if not evaluate:
            nothing = tf.fill([self.stack.size], tf.constant(math.nan, tf.float64))
            return (*train, nothing, nothing)
        val_loss, val_accuracy = self._evaluate(x_val, y_val)
        self._keep_best(val_loss)
        return (*train, val_loss, val_accuracy)

    def _keep_best(self, val_loss: tf.Tensor) -> None:
        """Copy the weights of networks whose validation loss fell (NaN never counts)."""
        improved = val_loss < self.best_loss
        self.best_loss.assign(tf.where(improved, val_loss, self.best_loss))
        for best, variable in zip(self.best, self.stack.all_variables, strict=True):
            shape = [self.stack.size] + [1] * (len(variable.shape) - 1)
            best.assign(tf.where(tf.reshape(improved, shape), variable, best))

    def _evaluate(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Per-network mean loss and accuracy over a whole split (the same for every network)."""
        size = tf.shape(x)[0]
        loss_sum = tf.zeros(self.stack.size, tf.float64)
        correct = tf.zeros(self.stack.size, tf.float64)
        networks = self.stack.size
        for start in tf.range(0, size, self.eval_batch):
            images = x[start : start + self.eval_batch]
            shared = tf.tile(images[None], [networks] + [1] * len(x.shape))
            labels = tf.tile(y[None, start : start + self.eval_batch], [networks, 1])
            logits = self.stack.logits(shared, False, tf.zeros((networks, 2), tf.int64))
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            loss_sum += _per_network_sums(losses)
            correct += _correct(labels, logits)
        count = tf.cast(size, tf.float64)
        return loss_sum / count, correct / count

    @tf.function(reduce_retracing=True)
    def evaluate(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return self._evaluate(x, y)


def _per_network_sums(values: tf.Tensor) -> tf.Tensor:
    """Sums over each network's batch, in float64: how float32 sums round depends on how many
    networks share the stack, and a network's metrics must not."""
    return tf.reduce_sum(tf.cast(values, tf.float64), axis=1)


def _correct(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    predictions = tf.argmax(logits, axis=-1, output_type=labels.dtype)
    return _per_network_sums(tf.equal(predictions, labels))
