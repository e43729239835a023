"""The oracle the engine is tested against: one network at a time, its masks held by tfmot's
pruning wrappers (which zero pruned weights before every forward pass), stepped by tf_keras's
own optimizer. It shares only the clock (batches, learning rates, pause points) with the
engine: everything the engine does in its own way (stacking, fused optimizer, gradient masks,
in-graph evaluation and best-weights copies) is done here the plain Keras way.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras

from lthnb.nets.names import masked
from lthnb.nets.tfmot import mask_variables, set_masks
from lthnb.nets.tfmot import wrap_for_pruning as wrap
from lthnb.nets.weights import get_weights, set_weights
from lthnb.params import Params
from lthnb.training.clock import BatchStream, batch_bounds, learning_rate, pause_points
from lthnb.training.engine import DataTensors, NetworkJob, UnitOutcome, should_stop


class TfmotOracle:
    def __init__(self, params: Params, template: tf_keras.Model, data: DataTensors) -> None:
        self.params = params
        self.data = data
        self.model = wrap(template)
        if params.optimizer == "sgd":
            self.optimizer = tf_keras.optimizers.SGD(params.learning_rate, params.momentum)
        else:
            self.optimizer = tf_keras.optimizers.Adam(params.learning_rate)
        self.loss_fn = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.masked_kernels = list(mask_variables(self.model).values())

    def train(self, job: NetworkJob, start: int = 0, record_at: int = 0) -> UnitOutcome:
        params, data, model = self.params, self.data, self.model
        set_weights(model, masked(job.weights, job.masks))
        set_masks(model, job.masks)
        self.optimizer.build(model.trainable_variables)
        for variable in self.optimizer.variables:  # a fresh optimizer, without a new trace
            variable.assign(tf.zeros_like(variable))
        stream = BatchStream(data.train_size, params.batch_size, job.seed, params.shuffle)
        outcome = UnitOutcome(start_iteration=start)
        best = get_weights(model)
        position = start
        for pause, evaluate in pause_points(
            start, params.iterations, params.eval_every, [record_at]
        ):
            train = self._chunk(
                data.x_train,
                data.y_train,
                tf.constant(stream.indices(position, pause)),
                tf.constant(batch_bounds(data.train_size, params.batch_size, position, pause)),
                tf.constant(learning_rate(params, np.arange(position, pause))),
            )
            outcome.iterations_trained = pause - start
            position = pause
            if pause == record_at:
                outcome.rewind_weights = get_weights(model)
            if not evaluate:
                continue
            val_loss, val_accuracy = self.evaluate(data.x_val, data.y_val)
            outcome.evaluations.append(
                {
                    "iteration": pause,
                    "train_loss": float(train[0]),
                    "train_accuracy": float(train[1]),
                    "val_loss": val_loss,
                    "val_accuracy": val_accuracy,
                }
            )
            if val_loss < outcome.val_loss:
                outcome.early_stop_iteration = pause
                outcome.val_loss, outcome.val_accuracy = val_loss, val_accuracy
                best = get_weights(model)
            losses = [row["val_loss"] for row in outcome.evaluations]
            if (
                params.early_stopping
                and pause >= record_at
                and should_stop(losses, params.patience, params.min_delta)
            ):
                break
        outcome.final_weights = get_weights(model)
        outcome.best_weights = best
        set_weights(model, best)
        outcome.test_loss, outcome.test_accuracy = self.evaluate(data.x_test, data.y_test)
        return outcome

    @tf.function(reduce_retracing=True)
    def _chunk(self, x, y, indices, offsets, rates) -> tuple[tf.Tensor, tf.Tensor]:
        loss_sum = tf.constant(0.0, tf.float64)
        correct = tf.constant(0.0, tf.float64)
        variables = self.model.trainable_variables
        for step in tf.range(tf.shape(offsets)[0] - 1):
            batch = indices[offsets[step] : offsets[step + 1]]
            x_batch, y_batch = tf.gather(x, batch), tf.gather(y, batch)
            with tf.GradientTape() as tape:
                logits = self.model(x_batch, training=True)
                loss = self.loss_fn(y_batch, logits)
            self.optimizer.learning_rate.assign(rates[step])
            self.optimizer.apply_gradients(
                zip(tape.gradient(loss, variables), variables, strict=False)
            )
            losses = tf_keras.losses.sparse_categorical_crossentropy(y_batch, logits, True)
            loss_sum += tf.reduce_sum(tf.cast(losses, tf.float64))
            correct += _correct(logits, y_batch)
        for kernel, mask in self.masked_kernels:  # the last update moved pruned weights too
            kernel.assign(kernel * mask)
        images = tf.cast(offsets[-1], tf.float64)
        return loss_sum / images, correct / images

    def evaluate(self, x: tf.Tensor, y: tf.Tensor) -> tuple[float, float]:
        logits = self.model(x, training=False)
        losses = tf_keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        size = int(x.shape[0])
        loss = float(tf.reduce_sum(tf.cast(losses, tf.float64))) / size
        return loss, float(_correct(logits, y)) / size


def _correct(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    predictions = tf.argmax(logits, axis=-1, output_type=labels.dtype)
    return tf.reduce_sum(tf.cast(tf.equal(predictions, labels), tf.float64))
