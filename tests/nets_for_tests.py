"""Builders the tests name as `arch: nets_for_tests:<function>`, as a user names their own."""

from __future__ import annotations

import tf_keras

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
