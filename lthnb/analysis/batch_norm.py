"""Batch norm statistics of a network on a linear path, recomputed from training batches.

Why: mixed like the weights, the moving statistics of (1 - alpha) W1 + alpha W2 are not the
statistics of that network's activations (a mix of two networks' means, variances without the
cross terms), so the network would be evaluated with statistics that describe neither it nor its
ends, and the error barrier would measure the statistics rather than the weights.

What `recompute` computes: the network's population statistics, its training-mode batch
statistics on fixed batches (the first `BATCH_NORM_IMAGES` images of the training split, which
is a seeded shuffle, in batches of `batch_size`, not augmented) averaged over the batches
exactly: what a Keras batch norm layer's running average holds when its momentum at batch k is
k / (k + 1). Each layer keeps what Keras itself accumulates: after a convolution (the fused
kernel) the Bessel-corrected batch variance, after a dense layer the biased one. The Keras model
computes them itself: each batch norm's momentum set to 0, its statistics after a batch are
that batch's, summed in one compiled loop. Dropout is off meanwhile (rate 0): the statistics
describe the network as it is evaluated. A frozen batch norm (trainable False) never updates its
statistics in Keras, so it keeps them here too. They are computed at float32 (the template's
policy) whatever `precision`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import tensorflow as tf
import tf_keras

from lthnb.analysis.stability_tables import NO_BATCH_NORM
from lthnb.nets.names import Weights
from lthnb.nets.weights import get_weights, model_variables, named_layers, set_weights
from lthnb.params import ParamsError

# The first images of the training split (a seeded shuffle) whose batches give the statistics;
# about as many as the paths' train error uses, and the cost of one pass over them per alpha.
BATCH_NORM_IMAGES = 4096

BatchNormalization = tf_keras.layers.BatchNormalization


def batch_norm_layers(model: tf_keras.Model) -> list[BatchNormalization]:
    """The model's batch norm layers, nested models included."""
    return [layer for _, layer in named_layers(model) if isinstance(layer, BatchNormalization)]


def statistics_method(model: tf_keras.Model, setting: str) -> str:
    """What a path does with batch norm statistics: `setting` (recompute | interpolate), or
    'none' for a network without batch norm, whose results are the same under both."""
    return setting if batch_norm_layers(model) else NO_BATCH_NORM


def statistics_batches(x_train: tf.Tensor, batch_size: int) -> tf.Tensor:
    """The fixed batches (batches, batch_size, ...) of the first training images; only whole
    batches, as a smaller batch has other statistics (one batch if the split is smaller)."""
    count = min(BATCH_NORM_IMAGES, int(x_train.shape[0]))
    size = min(batch_size, count)
    batches = count // size
    return tf.reshape(x_train[: batches * size], [batches, size, *x_train.shape[1:]])


class StatisticsRecomputer:
    """Weights of `template`'s network with their batch norm statistics recomputed on `batches`
    (`statistics_batches`); the template is left as it was found."""

    def __init__(self, template: tf_keras.Model, batches: tf.Tensor) -> None:
        self.template, self.batches = template, batches
        self.layers = [layer for layer in batch_norm_layers(template) if layer.trainable]
        for layer in self.layers:
            if layer.renorm:
                raise ParamsError(
                    f"stability_batch_norm: recompute does not compute the statistics of "
                    f"{layer.name}, a batch renormalization; set it to interpolate"
                )
        variables = model_variables(template)
        names = {variable.ref(): name for name, variable in variables.items()}
        self.names = [
            names[variable.ref()]
            for layer in self.layers
            for variable in (layer.moving_mean, layer.moving_variance)
        ]
        self.variables = [variables[name] for name in self.names]
        self.dropouts = [
            layer
            for _, layer in named_layers(template)
            if isinstance(layer, tf_keras.layers.Dropout)
        ]
        self._gather = tf.function(self._gather_statistics)  # one trace per recomputer

    def __call__(self, points: Sequence[Weights]) -> list[Weights]:
        """Each of `points` with its moving statistics replaced by the recomputed ones."""
        if not self.layers:
            return list(points)
        saved = get_weights(self.template)
        recomputed = []
        try:
            with self._gathering():
                for weights in points:
                    set_weights(self.template, weights)
                    values = [value.numpy() for value in self._gather(self.batches)]
                    recomputed.append({**weights, **dict(zip(self.names, values, strict=True))})
        finally:
            set_weights(self.template, saved)
        return recomputed

    @contextmanager
    def _gathering(self) -> Iterator[None]:
        """Momentum 0 (a batch's statistics replace the running ones), dropout off."""
        momenta = [layer.momentum for layer in self.layers]
        rates = [layer.rate for layer in self.dropouts]
        try:
            for layer in self.layers:
                layer.momentum = 0.0
            for layer in self.dropouts:
                layer.rate = 0.0
            yield
        finally:
            for layer, momentum in zip(self.layers, momenta, strict=True):
                layer.momentum = momentum
            for layer, rate in zip(self.dropouts, rates, strict=True):
                layer.rate = rate

    def _gather_statistics(self, batches: tf.Tensor) -> list[tf.Tensor]:
        """The mean over `batches` of each statistic after a training-mode pass of one batch.
        Zeroed before each pass, a statistic then holds exactly that batch's value (Keras's
        update subtracts (old - new) * (1 - momentum), which rounds unless old is 0)."""
        sums = [tf.zeros(variable.shape, tf.float64) for variable in self.variables]
        for index in tf.range(tf.shape(batches)[0]):
            for variable in self.variables:
                variable.assign(tf.zeros_like(variable))
            self.template(batches[index], training=True)
            sums = [
                total + tf.cast(variable.read_value(), tf.float64)
                for total, variable in zip(sums, self.variables, strict=True)
            ]
        count = tf.cast(tf.shape(batches)[0], tf.float64)
        return [
            tf.cast(total / count, variable.dtype)
            for total, variable in zip(sums, self.variables, strict=True)
        ]
