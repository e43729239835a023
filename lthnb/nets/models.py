"""The 2019 paper's networks (LeNet-300-100, Conv-2/4/6) as tf_keras builders.

Layers get stable names (conv1.., dense1.., output) so masks, tables and state files can refer
to them across lthnb versions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import tf_keras

if TYPE_CHECKING:
    from lthnb.params import Params

POOL = "pool"
CONV_BLOCKS: dict[str, list[int | str]] = {
    "conv2": [64, 64, POOL],
    "conv4": [64, 64, POOL, 128, 128, POOL],
    "conv6": [64, 64, POOL, 128, 128, POOL, 256, 256, POOL],
}


def _initializer(params: Params, seed: int, layer_index: int) -> tf_keras.initializers.Initializer:
    """A seeded initializer per layer, so theta0 depends only on the seed."""
    return tf_keras.initializers.get(
        {"class_name": params.kernel_init, "config": {"seed": seed * 1000 + layer_index}}
    )


def _conv_layers(params: Params, blocks: list[int | str], seed: int) -> list[tf_keras.layers.Layer]:
    layers: list[tf_keras.layers.Layer] = []
    convs = 0
    for block in blocks:
        if block == POOL:
            layers.append(tf_keras.layers.MaxPooling2D(2, name=f"pool{convs // 2}"))
            continue
        convs += 1
        layers.append(
            tf_keras.layers.Conv2D(
                int(block),
                3,
                padding="same",
                activation=params.activation,
                use_bias=params.use_bias,
                kernel_initializer=_initializer(params, seed, convs),
                name=f"conv{convs}",
            )
        )
    return layers


def _dense_head(params: Params, num_classes: int, seed: int) -> list[tf_keras.layers.Layer]:
    layers: list[tf_keras.layers.Layer] = [tf_keras.layers.Flatten(name="flatten")]
    for index, units in enumerate(params.dense_units, start=1):
        layers.append(
            tf_keras.layers.Dense(
                units,
                activation=params.activation,
                use_bias=params.use_bias,
                kernel_initializer=_initializer(params, seed, 100 + index),
                name=f"dense{index}",
            )
        )
        if params.dropout > 0:
            layers.append(
                tf_keras.layers.Dropout(
                    params.dropout,
                    seed=seed * 1000 + 500 + index,
                    rng_type="stateful",  # a tf.random.Generator, which training reseeds per round
                    name=f"dropout{index}",
                )
            )
    layers.append(
        tf_keras.layers.Dense(
            num_classes,
            use_bias=params.use_bias,
            kernel_initializer=_initializer(params, seed, 999),
            name="output",
        )
    )
    return layers


def _sequential(
    params: Params, input_shape: tuple[int, ...], layers: list[tf_keras.layers.Layer]
) -> tf_keras.Sequential:
    return tf_keras.Sequential([tf_keras.Input(shape=input_shape), *layers], name=params.arch)


def lenet(
    params: Params, input_shape: tuple[int, ...], num_classes: int, seed: int
) -> tf_keras.Sequential:
    return _sequential(params, input_shape, _dense_head(params, num_classes, seed))


def _conv_net(
    params: Params, arch: str, input_shape: tuple[int, ...], num_classes: int, seed: int
) -> tf_keras.Sequential:
    layers = _conv_layers(params, CONV_BLOCKS[arch], seed) + _dense_head(params, num_classes, seed)
    return _sequential(params, input_shape, layers)


def conv2(
    params: Params, input_shape: tuple[int, ...], num_classes: int, seed: int
) -> tf_keras.Sequential:
    return _conv_net(params, "conv2", input_shape, num_classes, seed)


def conv4(
    params: Params, input_shape: tuple[int, ...], num_classes: int, seed: int
) -> tf_keras.Sequential:
    return _conv_net(params, "conv4", input_shape, num_classes, seed)


def conv6(
    params: Params, input_shape: tuple[int, ...], num_classes: int, seed: int
) -> tf_keras.Sequential:
    return _conv_net(params, "conv6", input_shape, num_classes, seed)
