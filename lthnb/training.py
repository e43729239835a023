"""Train one network for one round: compiled epochs, per-epoch validation, early stopping.

A whole epoch runs as one TensorFlow graph (batches are sliced in-graph from tensors held in
memory), which avoids Keras `fit`'s per-batch Python overhead. The masks live in tfmot's
wrappers, which zero pruned weights before every forward pass; the last optimizer update of an
epoch is masked explicitly, so pruned weights are exactly 0 whenever an epoch ends.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf
import tf_keras

from lthnb.masked_model import Weights, apply_masks, get_weights, mask_variables, set_weights
from lthnb.params import Params

EVAL_BATCH = 2000


@dataclass(frozen=True)
class DataTensors:
    """The splits as tensors, converted once per experiment."""

    x_train: tf.Tensor
    y_train: tf.Tensor
    x_val: tf.Tensor
    y_val: tf.Tensor
    x_test: tf.Tensor
    y_test: tf.Tensor

    @classmethod
    def from_splits(cls, splits) -> DataTensors:
        return cls(
            *(
                tf.constant(getattr(splits, name))
                for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
            )
        )

    @property
    def train_size(self) -> int:
        return int(self.x_train.shape[0])


@dataclass(frozen=True)
class NetworkJob:
    """What one network of a round starts from; `seed` draws its shuffles and dropout."""

    weights: Weights
    masks: dict[str, np.ndarray]
    seed: int
    rewind_epoch: int = 0


@dataclass
class RoundOutcome:
    """What one round of training produced."""

    epochs: list[dict] = field(default_factory=list)
    early_stop_epoch: int = 0
    val_loss: float = math.inf
    val_accuracy: float = 0.0
    test_loss: float = math.nan
    test_accuracy: float = math.nan
    final_weights: Weights = field(default_factory=dict)
    rewind_weights: Weights | None = None

    @property
    def epochs_trained(self) -> int:
        return len(self.epochs)


def should_stop(val_losses: Sequence[float], patience: int, min_delta: float) -> bool:
    """Keras's rule: stop after `patience` epochs without a decrease larger than `min_delta`."""
    best, waited = math.inf, 0
    for loss in val_losses:
        if loss < best - min_delta:
            best, waited = loss, 0
        else:
            waited += 1
    return waited >= patience


def steps_per_epoch(train_size: int, batch_size: int) -> int:
    return math.ceil(train_size / batch_size)


def make_optimizer(params: Params) -> tf_keras.optimizers.Optimizer:
    if params.optimizer == "sgd":
        return tf_keras.optimizers.SGD(params.learning_rate, momentum=params.momentum)
    return tf_keras.optimizers.Adam(params.learning_rate)


class EpochRunner:
    """Compiled training epoch and batched evaluation for one (wrapped) model."""

    def __init__(
        self, model: tf_keras.Model, optimizer: tf_keras.optimizers.Optimizer, batch_size: int
    ) -> None:
        """Trace once, train many rounds: `reset` restores a fresh optimizer and dropout RNG."""
        self.model = model
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.loss_fn = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self._masked_kernels = list(mask_variables(model).values())

    def reset(self, seed: int) -> None:
        """A fresh optimizer state and reseeded dropout, as if model and optimizer were new."""
        for variable in self.optimizer.variables:
            variable.assign(tf.zeros_like(variable))
        generators = [
            module._random_generator
            for module in self.model.submodules
            if isinstance(module, tf_keras.layers.Dropout)
        ]
        for index, generator in enumerate(generators):
            generator._maybe_init()  # built lazily otherwise, from the layer's own seed
            generator._generator.reset_from_seed(seed + index)

    @tf.function(reduce_retracing=True)
    def train_epoch(
        self, x: tf.Tensor, y: tf.Tensor, order: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        size = tf.size(order)
        steps = (size + self.batch_size - 1) // self.batch_size
        loss_sum = tf.constant(0.0)
        correct = tf.constant(0.0)
        variables = self.model.trainable_variables
        for step in tf.range(steps):
            batch = order[step * self.batch_size : tf.minimum((step + 1) * self.batch_size, size)]
            x_batch, y_batch = tf.gather(x, batch), tf.gather(y, batch)
            with tf.GradientTape() as tape:
                logits = self.model(x_batch, training=True)
                loss = self.loss_fn(y_batch, logits)
            self.optimizer.apply_gradients(
                zip(tape.gradient(loss, variables), variables, strict=True)
            )
            count = tf.cast(tf.size(batch), tf.float32)
            loss_sum += loss * count
            correct += _correct(logits, y_batch)
        for kernel, mask in self._masked_kernels:
            kernel.assign(kernel * mask)
        total = tf.cast(size, tf.float32)
        return loss_sum / total, correct / total

    @tf.function(reduce_retracing=True)
    def _evaluate_batch(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        logits = self.model(x, training=False)
        losses = tf_keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        return tf.reduce_sum(losses), _correct(logits, y)

    def evaluate(self, x: tf.Tensor, y: tf.Tensor) -> tuple[float, float]:
        """Mean loss and accuracy over a whole split, in large batches."""
        size = int(x.shape[0])
        loss_sum, correct = 0.0, 0.0
        for start in range(0, size, EVAL_BATCH):
            batch_loss, batch_correct = self._evaluate_batch(
                x[start : start + EVAL_BATCH], y[start : start + EVAL_BATCH]
            )
            loss_sum += float(batch_loss)
            correct += float(batch_correct)
        return loss_sum / size, correct / size


def _correct(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    predictions = tf.argmax(logits, axis=-1, output_type=labels.dtype)
    return tf.reduce_sum(tf.cast(tf.equal(predictions, labels), tf.float32))


class RoundTracker:
    """One network's round: its shuffles, epoch records, best epoch, rewind point and stop rule.

    Shared by the one-by-one and the stacked training, so both keep the same books.
    """

    def __init__(
        self, params: Params, seed: int, rewind_epoch: int, steps: int, start: Weights
    ) -> None:
        self.params = params
        self.rewind_epoch = rewind_epoch
        self.steps = steps
        self.shuffler = np.random.default_rng(seed)
        self.outcome = RoundOutcome()
        self.best_weights = start

    def order(self, train_size: int) -> tf.Tensor:
        """The next epoch's order of the training images."""
        order = (
            self.shuffler.permutation(train_size) if self.params.shuffle else np.arange(train_size)
        )
        return tf.constant(order, dtype=tf.int32)

    def add_epoch(self, metrics: Sequence[float], weights: Callable[[], Weights]) -> dict:
        """Record (train_loss, train_accuracy, val_loss, val_accuracy) of the epoch just trained;
        `weights` reads the network's weights, only when they are worth keeping."""
        outcome = self.outcome
        epoch = outcome.epochs_trained + 1
        train_loss, train_accuracy, val_loss, val_accuracy = (float(value) for value in metrics)
        record = {
            "epoch": epoch,
            "iteration": epoch * self.steps,
            "train_loss": train_loss,
            "train_accuracy": train_accuracy,
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
        }
        outcome.epochs.append(record)
        if val_loss < outcome.val_loss:
            outcome.early_stop_epoch, outcome.val_loss, outcome.val_accuracy = (
                epoch,
                val_loss,
                val_accuracy,
            )
            self.best_weights = weights()
        if epoch == self.rewind_epoch:
            outcome.rewind_weights = weights()
        return record

    @property
    def stopped(self) -> bool:
        """Early stopping says stop (never before the rewind epoch)."""
        losses = [row["val_loss"] for row in self.outcome.epochs]
        return (
            self.params.early_stopping
            and len(losses) >= self.rewind_epoch
            and should_stop(losses, self.params.patience, self.params.min_delta)
        )


def train_round(
    runner: EpochRunner,
    data: DataTensors,
    params: Params,
    seed: int,
    rewind_epoch: int = 0,
    on_epoch: Callable[[dict], None] | None = None,
) -> RoundOutcome:
    """Train until `max_epochs` or early stopping; report metrics at the min-val-loss epoch.

    With `rewind_epoch` > 0 the weights after that epoch are kept (late rewinding), and training
    does not stop before it.
    """
    model = runner.model
    runner.reset(seed)
    apply_masks(model)
    steps = steps_per_epoch(data.train_size, params.batch_size)
    tracker = RoundTracker(params, seed, rewind_epoch, steps, get_weights(model))
    for _ in range(params.max_epochs):
        train = runner.train_epoch(data.x_train, data.y_train, tracker.order(data.train_size))
        validation = runner.evaluate(data.x_val, data.y_val)
        record = tracker.add_epoch((*train, *validation), lambda: get_weights(model))
        if on_epoch is not None:
            on_epoch(record)
        if tracker.stopped:
            break
    outcome = tracker.outcome
    outcome.final_weights = get_weights(model)
    set_weights(model, tracker.best_weights)
    outcome.test_loss, outcome.test_accuracy = runner.evaluate(data.x_test, data.y_test)
    return outcome
