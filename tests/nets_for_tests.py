"""Builders the tests name as `arch: nets_for_tests:<function>`, as a user names their own."""

from __future__ import annotations

import tf_keras
from tensorflow_model_optimization.sparsity.keras import PrunableLayer

layers = tf_keras.layers


def _init(seed: int, index: int) -> tf_keras.initializers.Initializer:
    return tf_keras.initializers.GlorotNormal(seed=seed * 1000 + index)


def bn_shortcut(params, input_shape, num_classes, seed) -> tf_keras.Model:
    """A small residual network: conv-BN-ReLU, a block with a shortcut, global pooling, a dense
    layer with batch norm, logits. Every layer is one the stack computes."""
    inputs = tf_keras.Input(shape=input_shape)
    x = layers.Conv2D(6, 3, padding="same", use_bias=False, kernel_initializer=_init(seed, 1))(
        inputs
    )
    x = layers.BatchNormalization(momentum=0.8)(x)
    x = layers.ReLU()(x)
    y = layers.Conv2D(6, 3, padding="same", use_bias=False, kernel_initializer=_init(seed, 2))(x)
    y = layers.BatchNormalization(momentum=0.8)(y)
    x = layers.ReLU()(layers.Add()([x, y]))
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(12, use_bias=False, kernel_initializer=_init(seed, 3))(x)  # BN follows
    x = layers.BatchNormalization(momentum=0.8)(x)
    x = layers.Activation("relu")(x)
    outputs = layers.Dense(num_classes, kernel_initializer=_init(seed, 4))(x)
    return tf_keras.Model(inputs, outputs, name="bn_shortcut")


class Scale(layers.Layer):
    """A layer of the user's own: one trainable factor per channel (tfmot cannot prune it)."""

    def build(self, input_shape) -> None:
        self.factor = self.add_weight("factor", (input_shape[-1],), initializer="ones")

    def call(self, inputs):
        return inputs * self.factor


def custom_layer(params, input_shape, num_classes, seed) -> tf_keras.Model:
    """A network with a layer the stack does not know: it trains in the Keras container."""
    inputs = tf_keras.Input(shape=input_shape)
    x = layers.Conv2D(4, 3, kernel_initializer=_init(seed, 1))(inputs)
    x = Scale(name="scale")(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(num_classes, kernel_initializer=_init(seed, 2))(x)
    return tf_keras.Model(inputs, outputs)


def not_a_model(params, input_shape, num_classes, seed):
    return [layers.Dense(num_classes)]


def wrong_outputs(params, input_shape, num_classes, seed) -> tf_keras.Model:
    inputs = tf_keras.Input(shape=input_shape)
    return tf_keras.Model(inputs, layers.Dense(num_classes + 1)(layers.Flatten()(inputs)))


def nothing_to_prune(params, input_shape, num_classes, seed) -> tf_keras.Model:
    inputs = tf_keras.Input(shape=input_shape)
    x = layers.GlobalAveragePooling2D()(inputs)
    return tf_keras.Model(
        inputs, layers.Lambda(lambda t: tf_keras.backend.tile(t, [1, num_classes]))(x)
    )


def raises(params, input_shape, num_classes, seed):
    raise RuntimeError("the user's builder failed\nwith a second line")


class UserDense(layers.Layer, PrunableLayer):
    """A user's dense layer that tells tfmot which weight to prune (`get_prunable_weights`)."""

    def __init__(self, units: int, seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units, self.seed = units, seed

    def build(self, input_shape) -> None:
        self.kernel = self.add_weight(
            "kernel", (input_shape[-1], self.units), initializer=_init(self.seed, 9)
        )
        self.bias = self.add_weight("bias", (self.units,), initializer="zeros")

    def call(self, inputs):
        return tf_keras.activations.relu(inputs @ self.kernel + self.bias)

    def get_prunable_weights(self) -> list:
        return [self.kernel]


def every_layer_kind(params, input_shape, num_classes, seed) -> tf_keras.Model:
    """One layer of each kind tfmot's registry treats its own way, named for the assertions:
    depthwise (nothing prunable), separable (only the pointwise kernel), transposed convolution,
    batch norm (never pruned), a user's PrunableLayer, logits followed by a linear Activation."""
    inputs = tf_keras.Input(shape=input_shape)
    x = layers.Conv2D(4, 3, name="conv", kernel_initializer=_init(seed, 1))(inputs)
    x = layers.DepthwiseConv2D(3, name="depthwise", depthwise_initializer=_init(seed, 2))(x)
    x = layers.SeparableConv2D(
        6,
        3,
        strides=2,
        name="separable",
        depthwise_initializer=_init(seed, 3),
        pointwise_initializer=_init(seed, 4),
    )(x)
    x = layers.BatchNormalization(momentum=0.8, name="bn")(x)
    transpose = layers.Conv2DTranspose(4, 3, 2, name="transpose", kernel_initializer=_init(seed, 5))
    x = transpose(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dense(8, activation="relu", name="hidden", kernel_initializer=_init(seed, 6))(x)
    x = UserDense(8, seed, name="user")(x)
    x = layers.Dense(num_classes, name="logits", kernel_initializer=_init(seed, 7))(x)
    return tf_keras.Model(inputs, layers.Activation("linear", name="linear")(x))


def unnamed(params, input_shape, num_classes, seed) -> tf_keras.Model:
    """A user's network whose layers Keras names (conv2d, dense, ...), weights from `seed`."""
    inputs = tf_keras.Input(shape=input_shape)
    x = layers.Conv2D(3, 3, kernel_initializer=_init(seed, 1))(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Flatten()(layers.MaxPooling2D(4)(x))
    x = layers.Dense(6, kernel_initializer=_init(seed, 2))(x)
    return tf_keras.Model(inputs, layers.Dense(num_classes, kernel_initializer=_init(seed, 3))(x))


def sequential_without_input(params, input_shape, num_classes, seed) -> tf_keras.Sequential:
    """A Sequential that leaves its input shape to Keras, as users often write it."""
    return tf_keras.Sequential(
        [layers.Flatten(), layers.Dense(num_classes, kernel_initializer=_init(seed, 1))]
    )


def fixed_input(params, input_shape, num_classes, seed) -> tf_keras.Model:
    """A network written for 32x32 colour images, whatever the data's shape."""
    inputs = tf_keras.Input(shape=(32, 32, 3))
    return tf_keras.Model(inputs, layers.Dense(num_classes)(layers.Flatten()(inputs)))


def nested_head(params, input_shape, num_classes, seed) -> tf_keras.Model:
    """A convolution, then the logits from a nested Sequential head (its layers 'head/...')."""
    inputs = tf_keras.Input(shape=input_shape)
    x = layers.Flatten()(
        layers.Conv2D(3, 3, 2, name="conv", kernel_initializer=_init(seed, 1))(inputs)
    )
    head = tf_keras.Sequential(
        [
            layers.Dense(8, "relu", name="hidden", kernel_initializer=_init(seed, 2)),
            layers.Dense(num_classes, name="logits", kernel_initializer=_init(seed, 3)),
            layers.Activation("linear"),
        ],
        name="head",
    )
    return tf_keras.Model(inputs, head(x))
