"""Several networks of one architecture held as one: every weight gets a leading network axis.

On a CPU a LeNet step is dominated by per-op overhead and small matmuls; stacking the networks
of a round (all trials, tickets and controls) makes one batched matmul per layer serve them all.
Each network's slice is computed on its own (batched matmuls, one convolution per network,
per-network dropout seeds), so the networks never mix. Float rounding still depends on how many
share a stack (to about 1e-7), which is why a resumed run retrains an interrupted round with
the same company (see `Experiment._round_units`).

Masks: pruned weights are 0 when a network is loaded and their gradients are multiplied by the
mask, so the optimizer never moves them: with Adam and SGD an update whose gradient and slots
are 0 is exactly 0. For the surviving weights this is what tfmot's wrapper computes (it zeroes
the pruned weights before each forward pass); the tests compare the engine with tfmot.
A kernel that is still dense in every network of the stack (all of round 0) skips the multiply.

Precision: with `mixed_bfloat16` each layer computes in bfloat16 (inputs, kernels and biases cast
on the way in) while the variables, the gradients' updates and the loss stay float32, as Keras's
mixed precision does; a pruned weight is 0 in either type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf
import tf_keras

from lthnb.nets.weights import Weights

Activations = tf.Tensor | list[tf.Tensor]  # stacked, or one tensor per network
LayerStep = Callable[[Activations, bool, tf.Tensor], Activations]


class NetworkStack:
    """`size` networks shaped like `template` (an unwrapped model from `build_model`)."""

    def __init__(
        self, template: tf_keras.Model, size: int, compute_dtype: tf.DType = tf.float32
    ) -> None:
        self.size = size
        self.compute_dtype = compute_dtype
        self.kernels: dict[str, tf.Variable] = {}
        self.biases: dict[str, tf.Variable] = {}
        self.dropout_layers = 0
        self._steps = [self._layer_step(layer) for layer in template.layers]

        # per kernel: 1 where a weight survives, 0 where it is pruned
        self.gradient_masks = [
            tf.Variable(tf.ones_like(kernel), trainable=False) for kernel in self.kernels.values()
        ]

    @property
    def variables(self) -> list[tf.Variable]:
        """The trainable variables: kernels then biases."""
        return [*self.kernels.values(), *self.biases.values()]

    def masked_gradients(
        self, gradients: list[tf.Tensor], pruned_kernels: tuple[bool, ...]
    ) -> list[tf.Tensor]:
        """Gradients in `variables` order, the kernels' multiplied by their masks where
        `pruned_kernels` says some network of the stack has pruned weights in that kernel."""
        kernels = len(self.gradient_masks)
        masked = [
            g * mask if pruned else g
            for g, mask, pruned in zip(gradients, self.gradient_masks, pruned_kernels, strict=False)
        ]
        return masked + list(gradients[kernels:])

    def pruned_kernels(self) -> tuple[bool, ...]:
        """Per kernel: does any network of the stack have a pruned weight there?"""
        return tuple(not bool(tf.reduce_all(mask == 1.0)) for mask in self.gradient_masks)

    def _add_weights(self, layer: tf_keras.layers.Layer) -> None:
        name = layer.name
        shape = (self.size, *layer.kernel.shape)
        self.kernels[name] = tf.Variable(tf.zeros(shape), name=f"{name}_kernel")
        if layer.use_bias:  # shaped to broadcast over the batch (and image) axes
            bias_shape = (self.size, *[1] * (len(layer.output_shape) - 1), *layer.bias.shape)
            self.biases[name] = tf.Variable(tf.zeros(bias_shape), name=f"{name}_bias")

    def _layer_step(self, layer: tf_keras.layers.Layer) -> LayerStep:
        """The layer applied to activations: stacked (networks, batch, ...), or a list with one
        (batch, ...) tensor per network in the convolutional part (see `_networks`)."""
        if isinstance(layer, tf_keras.layers.Dense):
            self._add_weights(layer)
            return self._dense(layer)
        if isinstance(layer, tf_keras.layers.Conv2D):
            self._add_weights(layer)
            return self._conv(layer)
        if isinstance(layer, tf_keras.layers.MaxPooling2D):
            padding = layer.padding.upper()
            return lambda x, training, seeds: [
                tf.nn.max_pool2d(images, layer.pool_size, layer.strides, padding)
                for images in self._networks(x)
            ]
        if isinstance(layer, tf_keras.layers.Flatten):
            return lambda x, training, seeds: _flatten(_stacked(x))
        if isinstance(layer, tf_keras.layers.Dropout):
            self.dropout_layers += 1
            return self._dropout(layer.rate, self.dropout_layers - 1)
        raise TypeError(f"layer {layer.name}: {type(layer).__name__} cannot be stacked")

    def _networks(self, x: Activations) -> list[tf.Tensor]:
        """One tensor per network. Unstacked, never sliced: the gradient of each slice would be
        a zero tensor the size of the whole stack. Convolutions and pooling stay per network
        from layer to layer, so TensorFlow fuses each convolution with its bias and ReLU."""
        return x if isinstance(x, list) else tf.unstack(x, num=self.size)

    def _dense(self, layer: tf_keras.layers.Dense) -> LayerStep:
        name = layer.name

        def step(x: Activations, training: bool, seeds: tf.Tensor) -> tf.Tensor:
            out = tf.matmul(self._compute(_stacked(x)), self._compute(self.kernels[name]))
            if name in self.biases:
                out += self._compute(self.biases[name])
            return layer.activation(out)

        return step

    def _conv(self, layer: tf_keras.layers.Conv2D) -> LayerStep:
        name = layer.name
        padding = layer.padding.upper()

        def step(x: Activations, training: bool, seeds: tf.Tensor) -> list[tf.Tensor]:
            kernels = tf.unstack(self._compute(self.kernels[name]), num=self.size)
            outputs = [
                tf.nn.conv2d(self._compute(images), kernel, layer.strides, padding)
                for images, kernel in zip(self._networks(x), kernels, strict=True)
            ]
            if name in self.biases:
                bias = self._compute(self.biases[name])
                biases = tf.unstack(tf.reshape(bias, (self.size, -1)), num=self.size)
                outputs = [
                    tf.nn.bias_add(out, bias) for out, bias in zip(outputs, biases, strict=True)
                ]
            return [layer.activation(out) for out in outputs]

        return step

    def _dropout(self, rate: float, position: int) -> LayerStep:
        def step(x: Activations, training: bool, seeds: tf.Tensor) -> Activations:
            if not training:
                return x
            return [
                tf.nn.experimental.stateless_dropout(
                    network_x, rate, seed=seeds[index] * [1, self.dropout_layers] + [0, position]
                )
                for index, network_x in enumerate(self._networks(x))
            ]

        return step

    def logits(self, x: tf.Tensor, training: bool, seeds: tf.Tensor) -> tf.Tensor:
        """Logits (networks, batch, classes), float32, for inputs (networks, batch, ...).

        `seeds` (networks, 2): each network's seed and the step's count, for dropout masks.
        """
        activations: Activations = x
        for step in self._steps:
            activations = step(activations, training, seeds)
        return tf.cast(_stacked(activations), tf.float32)

    def _compute(self, value: tf.Tensor) -> tf.Tensor:
        """`value` in the compute type (no op at float32)."""
        return tf.cast(value, self.compute_dtype)

    def load(self, index: int, weights: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray]):
        """Put one network into slot `index`: its weights with pruned kernels zeroed, its masks."""
        for name, kernel in self.kernels.items():
            assign_slot(kernel, index, weights[f"{name}/kernel"] * masks[name])
        for name, bias in self.biases.items():
            assign_slot(bias, index, weights[f"{name}/bias"].reshape(bias.shape[1:]))
        for gradient_mask, name in zip(self.gradient_masks, self.kernels, strict=True):
            assign_slot(gradient_mask, index, masks[name].astype(np.float32))

    def take(self, source: NetworkStack, slots: list[int]) -> None:
        """Fill this stack with `source`'s networks in `slots` (weights and masks), in order."""
        for mine, theirs in zip(
            self.variables + self.gradient_masks,
            source.variables + source.gradient_masks,
            strict=True,
        ):
            mine.assign(tf.gather(theirs.read_value(), slots))

    def weights(self, index: int, variables: list[tf.Variable] | None = None) -> Weights:
        """Slot `index`'s weights by '<layer>/kernel' and '<layer>/bias', read from `variables`
        (a copy shaped like `self.variables`, e.g. the best weights) or the stack itself."""
        names = [f"{name}/kernel" for name in self.kernels]
        names += [f"{name}/bias" for name in self.biases]
        read = dict(zip(names, variables or self.variables, strict=True))
        weights = {}
        for name in self.kernels:
            weights[f"{name}/kernel"] = read[f"{name}/kernel"][index].numpy()
            if name in self.biases:
                weights[f"{name}/bias"] = read[f"{name}/bias"][index].numpy().ravel()
        return weights


def assign_slot(variable: tf.Variable, index: int, value) -> None:
    """variable[index] = value, written as a whole-variable assignment.

    A sliced assignment (`variable[index].assign`) puts TensorFlow's variable into copy-on-read
    mode for good: every later read copies it, which cost a LeNet stack 15% of its step time.
    """
    variable.assign(tf.tensor_scatter_nd_update(variable, [[index]], [value]))


def _stacked(x: Activations) -> tf.Tensor:
    return tf.stack(x) if isinstance(x, list) else x


def _flatten(x: tf.Tensor) -> tf.Tensor:
    """(networks, batch, ...) -> (networks, batch, features), with the feature count static."""
    return tf.reshape(x, (x.shape[0], -1, int(np.prod(x.shape[2:]))))
