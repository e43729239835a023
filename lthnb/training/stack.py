"""Several networks of one architecture computed as one: the stack.

On a CPU a small network's step is dominated by per-op overhead and small matmuls; stacking the
networks of a round (all trials, tickets and controls) makes one batched matmul per dense layer
serve them all. Each network's slice is computed on its own (batched matmuls, one convolution
per network, per-network batch statistics and dropout seeds), so the networks never mix. Float
rounding still depends on how many share a stack (to about 1e-7), which is why a resumed run
retrains an interrupted round with the same company (see `Experiment._round_units`).

The stack walks the template's Keras graph (Sequential or functional) node by node and computes
each layer it knows itself (`STEPS`). A network with any other layer, a layer subclassed, or an
option the stack does not compute, is not stackable (`Unstackable`): the engine then runs each
network's own Keras model instead (lthnb.training.keras_container).

Batch norm: in training each network normalises with its own batch's statistics and updates its
own moving averages as Keras does (after a convolution, with the batch variance's Bessel
correction, as Keras's fused kernel; after a dense layer without); at evaluation it uses them.

Precision: with `mixed_bfloat16` each layer computes in bfloat16 (inputs, kernels and biases cast
on the way in) while the variables, the gradients' updates and the loss stay float32, as Keras's
mixed precision does; batch norm computes in float32, as Keras's does; a pruned weight is 0 in
either type.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tf_keras

from lthnb.training.stacked_weights import StackedWeights

Activations = tf.Tensor | list[tf.Tensor]  # stacked, or one tensor per network
Step = Callable[[list[Activations], bool, tf.Tensor], Activations]
layers = tf_keras.layers


class Unstackable(ValueError):
    """The template has a layer (or a use of one) the stack does not compute."""


class NetworkStack(StackedWeights):
    """`size` networks shaped like `template`, computed by the stack's own layer steps."""

    def __init__(
        self, template: tf_keras.Model, size: int, compute_dtype: tf.DType = tf.float32
    ) -> None:
        super().__init__(template, size)
        self.compute_dtype = compute_dtype
        self.dropout_layers = 0
        self._plan = [
            (self._step(node.layer, node), list(node.flat_input_ids), node.flat_output_ids)
            for node in graph_nodes(template)
        ]
        self._input = str(id(template.inputs[0]))
        self._output = str(id(template.outputs[0]))

    def logits(self, x: tf.Tensor, training: bool, seeds: tf.Tensor) -> tf.Tensor:
        """Logits (networks, batch, classes), float32, for inputs (networks, batch, ...).

        `seeds` (networks, 2): each network's seed and the step's count, for dropout masks.
        """
        tensors: dict[str, Activations] = {self._input: x}
        for step, inputs, outputs in self._plan:
            tensors[outputs[0]] = step([tensors[i] for i in inputs], training, seeds)
        return tf.cast(_stacked(tensors[self._output]), tf.float32)

    # --- the layers ---

    def _step(self, layer: tf_keras.layers.Layer, node) -> Step:
        kind = type(layer)
        if kind not in STEPS:
            raise Unstackable(f"layer {layer.name} is a {kind.__name__}")
        options = {key for key in node.call_kwargs if key not in ("training", "mask")}
        if options or len(node.flat_output_ids) != 1:
            raise Unstackable(f"layer {layer.name} is called with {', '.join(options)}")
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise Unstackable(f"layer {layer.name} is channels_first")
        return STEPS[kind](self, layer)

    def _dense(self, layer: layers.Dense) -> Step:
        kernel, bias = self._weight(layer.kernel), self._weight(layer.bias)

        def step(inputs: list[Activations], training: bool, seeds: tf.Tensor) -> tf.Tensor:
            x = self._compute(_stacked(inputs[0]))
            shape = tf.shape(x)
            flat = tf.reshape(x, (self.size, -1, x.shape[-1]))
            out = tf.matmul(flat, self._compute(kernel))
            if bias is not None:
                out += self._compute(bias)[:, None, :]
            out = tf.reshape(out, tf.concat([shape[:-1], [kernel.shape[-1]]], 0))
            return layer.activation(out)

        return step

    def _convolution(self, layer: layers.Conv2D | layers.DepthwiseConv2D) -> Step:
        depthwise = isinstance(layer, layers.DepthwiseConv2D)
        if not depthwise and layer.groups != 1:
            raise Unstackable(f"layer {layer.name} is a grouped convolution")
        kernel = self._weight(layer.depthwise_kernel if depthwise else layer.kernel)
        bias = self._weight(layer.bias)
        padding, strides, dilations = layer.padding.upper(), layer.strides, layer.dilation_rate

        def convolve(images: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
            if depthwise:
                return tf.nn.depthwise_conv2d(
                    images, weights, (1, *strides, 1), padding, dilations=dilations
                )
            return tf.nn.conv2d(images, weights, strides, padding, dilations=dilations)

        def step(inputs: list[Activations], training: bool, seeds: tf.Tensor) -> list[tf.Tensor]:
            kernels = tf.unstack(self._compute(kernel), num=self.size)
            outputs = [
                convolve(self._compute(images), weights)
                for images, weights in zip(self._networks(inputs[0]), kernels, strict=True)
            ]
            if bias is not None:
                biases = tf.unstack(self._compute(bias), num=self.size)
                outputs = [tf.nn.bias_add(out, b) for out, b in zip(outputs, biases, strict=True)]
            return [layer.activation(out) for out in outputs]

        return step

    def _batch_norm(self, layer: layers.BatchNormalization) -> Step:
        axis = layer.axis if isinstance(layer.axis, list) else [layer.axis]
        rank = len(layer.input_shape)
        if axis != [rank - 1] or layer.renorm or layer.virtual_batch_size or layer.adjustment:
            raise Unstackable(f"layer {layer.name} is a batch norm the stack does not compute")
        channels = layer.input_shape[-1]
        ones, zeros = tf.ones((self.size, channels)), tf.zeros((self.size, channels))
        gamma = self._weight(layer.gamma)
        beta = self._weight(layer.beta)
        moving_mean, moving_variance = (
            self._weight(layer.moving_mean),
            self._weight(layer.moving_variance),
        )
        decay, epsilon = 1.0 - layer.momentum, layer.epsilon

        def step(inputs: list[Activations], training: bool, seeds: tf.Tensor) -> Activations:
            scale = ones if gamma is None else gamma
            offset = zeros if beta is None else beta
            if rank == 4:  # per network, Keras's fused kernel (Bessel-corrected moving variance)
                out, means, variances = [], [], []
                per_network = zip(
                    self._networks(inputs[0]),
                    tf.unstack(scale, num=self.size),
                    tf.unstack(offset, num=self.size),
                    tf.unstack(moving_mean, num=self.size),
                    tf.unstack(moving_variance, num=self.size),
                    strict=True,
                )
                for x, network_scale, network_offset, network_mean, network_variance in per_network:
                    y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                        tf.cast(x, tf.float32),
                        network_scale,
                        network_offset,
                        mean=None if training else network_mean,
                        variance=None if training else network_variance,
                        epsilon=epsilon,
                        is_training=training,
                    )
                    out.append(tf.cast(y, self.compute_dtype))
                    means.append(mean)
                    variances.append(variance)
                if training:
                    _update_moving(moving_mean, tf.stack(means), decay)
                    _update_moving(moving_variance, tf.stack(variances), decay)
                return out
            x = tf.cast(_stacked(inputs[0]), tf.float32)
            shape = [self.size] + [1] * (len(x.shape) - 2) + [channels]
            if training:
                mean, variance = tf.nn.moments(x, list(range(1, len(x.shape) - 1)), keepdims=True)
                _update_moving(moving_mean, tf.reshape(mean, (self.size, channels)), decay)
                _update_moving(moving_variance, tf.reshape(variance, (self.size, channels)), decay)
            else:
                mean = tf.reshape(moving_mean, shape)
                variance = tf.reshape(moving_variance, shape)
            y = tf.nn.batch_normalization(
                x, mean, variance, tf.reshape(offset, shape), tf.reshape(scale, shape), epsilon
            )
            return tf.cast(y, self.compute_dtype)

        return step

    def _elementwise(self, layer: tf_keras.layers.Layer) -> Step:
        """ReLU, Activation: the layer's own function, on stacked or per-network tensors."""

        def step(inputs: list[Activations], training: bool, seeds: tf.Tensor) -> Activations:
            x = inputs[0]
            return [layer.call(t) for t in x] if isinstance(x, list) else layer.call(x)

        return step

    def _merge(self, layer: layers.Add | layers.Concatenate) -> Step:
        concatenate = isinstance(layer, layers.Concatenate)

        def step(inputs: list[Activations], training: bool, seeds: tf.Tensor) -> Activations:
            per_network = [self._networks(x) for x in inputs]
            merged = []
            for parts in zip(*per_network, strict=True):
                parts = [self._compute(part) for part in parts]
                merged.append(tf.concat(parts, layer.axis) if concatenate else tf.add_n(parts))
            return merged

        return step

    def _pooling(self, layer: tf_keras.layers.Layer) -> Step:
        pool = tf.nn.max_pool2d if isinstance(layer, layers.MaxPooling2D) else tf.nn.avg_pool2d
        padding = layer.padding.upper()

        def step(inputs: list[Activations], training: bool, seeds: tf.Tensor) -> list[tf.Tensor]:
            return [
                pool(images, layer.pool_size, layer.strides, padding)
                for images in self._networks(inputs[0])
            ]

        return step

    def _global_pooling(self, layer: tf_keras.layers.Layer) -> Step:
        average = isinstance(layer, layers.GlobalAveragePooling2D)
        reduce = tf.reduce_mean if average else tf.reduce_max

        def step(inputs: list[Activations], training: bool, seeds: tf.Tensor) -> list[tf.Tensor]:
            # per network, as Keras reduces: a stacked reduction sums in another order
            return [
                reduce(images, axis=(1, 2), keepdims=layer.keepdims)
                for images in self._networks(inputs[0])
            ]

        return step

    def _flatten(self, layer: layers.Flatten) -> Step:
        def step(inputs: list[Activations], training: bool, seeds: tf.Tensor) -> tf.Tensor:
            x = _stacked(inputs[0])
            return tf.reshape(x, (x.shape[0], -1, int(np.prod(x.shape[2:]))))

        return step

    def _reshape(self, layer: layers.Reshape) -> Step:
        def step(inputs: list[Activations], training: bool, seeds: tf.Tensor) -> tf.Tensor:
            x = _stacked(inputs[0])
            return tf.reshape(x, (self.size, tf.shape(x)[1], *layer.target_shape))

        return step

    def _zero_padding(self, layer: layers.ZeroPadding2D) -> Step:
        (top, bottom), (left, right) = layer.padding
        paddings = [[0, 0], [top, bottom], [left, right], [0, 0]]

        def step(inputs: list[Activations], training: bool, seeds: tf.Tensor) -> list[tf.Tensor]:
            return [tf.pad(images, paddings) for images in self._networks(inputs[0])]

        return step

    def _dropout(self, layer: layers.Dropout) -> Step:
        if layer.noise_shape is not None:
            raise Unstackable(f"layer {layer.name} is a dropout with a noise shape")
        position = self.dropout_layers
        self.dropout_layers += 1

        def step(inputs: list[Activations], training: bool, seeds: tf.Tensor) -> Activations:
            if not training:
                return inputs[0]
            return [
                tf.nn.experimental.stateless_dropout(
                    network_x,
                    layer.rate,
                    seed=seeds[index] * [1, self.dropout_layers] + [0, position],
                )
                for index, network_x in enumerate(self._networks(inputs[0]))
            ]

        return step

    # --- helpers ---

    def _weight(self, variable: tf.Variable | None) -> tf.Variable | None:
        return None if variable is None else self.of_template[variable.ref()]

    def _networks(self, x: Activations) -> list[tf.Tensor]:
        """One tensor per network. Unstacked, never sliced: the gradient of each slice would be
        a zero tensor the size of the whole stack. Convolutions and pooling stay per network
        from layer to layer, so TensorFlow fuses each convolution with its bias and ReLU."""
        return x if isinstance(x, list) else tf.unstack(x, num=self.size)

    def _compute(self, value: tf.Tensor) -> tf.Tensor:
        """`value` in the compute type (no op at float32)."""
        return tf.cast(value, self.compute_dtype)


STEPS: dict[type, Callable[[NetworkStack, tf_keras.layers.Layer], Step]] = {
    layers.Dense: NetworkStack._dense,
    layers.Conv2D: NetworkStack._convolution,
    layers.DepthwiseConv2D: NetworkStack._convolution,
    layers.BatchNormalization: NetworkStack._batch_norm,
    layers.ReLU: NetworkStack._elementwise,
    layers.Activation: NetworkStack._elementwise,
    layers.Add: NetworkStack._merge,
    layers.Concatenate: NetworkStack._merge,
    layers.MaxPooling2D: NetworkStack._pooling,
    layers.AveragePooling2D: NetworkStack._pooling,
    layers.GlobalAveragePooling2D: NetworkStack._global_pooling,
    layers.GlobalMaxPooling2D: NetworkStack._global_pooling,
    layers.Flatten: NetworkStack._flatten,
    layers.Dropout: NetworkStack._dropout,
    layers.ZeroPadding2D: NetworkStack._zero_padding,
    layers.Reshape: NetworkStack._reshape,
}


def graph_nodes(model: tf_keras.Model) -> list:
    """The model's layer calls from input to output, as Keras runs them (deepest first)."""
    if not getattr(model, "_is_graph_network", False) or len(model.inputs) != 1:
        raise Unstackable(f"{model.name} is not a graph of layers with one input")
    nodes = []
    for depth in sorted(model._nodes_by_depth, reverse=True):  # noqa: SLF001 - Keras's own order
        nodes += [node for node in model._nodes_by_depth[depth] if not node.is_input]  # noqa: SLF001
    return nodes


def _update_moving(variable: tf.Variable, value: tf.Tensor, decay: float) -> None:
    """Keras's moving average: variable -= (variable - value) * (1 - momentum)."""
    variable.assign_sub((variable - tf.cast(value, variable.dtype)) * decay)


def _stacked(x: Activations) -> tf.Tensor:
    return tf.stack(x) if isinstance(x, list) else x
