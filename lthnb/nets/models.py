"""The paper's networks, built with tf_keras from the parameters and the data's shape.

Layers get stable names (conv1.., dense1.., output) so masks, tables and state files can refer
to them, and each prunable layer has a kind (conv / dense / output) that selects its rate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import tf_keras

from lthnb.nets.registry import network

if TYPE_CHECKING:
    from lthnb.params import Params

POOL = "pool"
CONV_BLOCKS: dict[str, list[int | str]] = {
    "conv2": [64, 64, POOL],
    "conv4": [64, 64, POOL, 128, 128, POOL],
    "conv6": [64, 64, POOL, 128, 128, POOL, 256, 256, POOL],
}
PRUNABLE_TYPES = (tf_keras.layers.Dense, tf_keras.layers.Conv2D)


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


def lenet(params: Params, num_classes: int, seed: int) -> list[tf_keras.layers.Layer]:
    return _dense_head(params, num_classes, seed)


def _conv_net(params: Params, arch: str, num_classes: int, seed: int) -> list:
    return _conv_layers(params, CONV_BLOCKS[arch], seed) + _dense_head(params, num_classes, seed)


def conv2(params: Params, num_classes: int, seed: int) -> list[tf_keras.layers.Layer]:
    return _conv_net(params, "conv2", num_classes, seed)


def conv4(params: Params, num_classes: int, seed: int) -> list[tf_keras.layers.Layer]:
    return _conv_net(params, "conv4", num_classes, seed)


def conv6(params: Params, num_classes: int, seed: int) -> list[tf_keras.layers.Layer]:
    return _conv_net(params, "conv6", num_classes, seed)


def build_model(
    params: Params, input_shape: tuple[int, ...], num_classes: int, seed: int
) -> tf_keras.Sequential:
    """The network of `params.arch`, outputting logits, with weights drawn from `seed`."""
    layers = network(params.arch).layers_builder()(params, num_classes, seed)
    model = tf_keras.Sequential([tf_keras.Input(shape=input_shape), *layers], name=params.arch)
    return model


def layer_kind(layer: tf_keras.layers.Layer) -> str | None:
    """conv / dense / output for prunable layers, None for the rest."""
    if isinstance(layer, tf_keras.layers.Conv2D):
        return "conv"
    if isinstance(layer, tf_keras.layers.Dense):
        return "output" if layer.name == "output" else "dense"
    return None


def prunable_layers(model: tf_keras.Model) -> dict[str, tf_keras.layers.Layer]:
    """Prunable layers by name, in order; wrapped layers are unwrapped."""
    inner = [getattr(layer, "layer", layer) for layer in model.layers]
    return {layer.name: layer for layer in inner if layer_kind(layer) is not None}


def layer_kinds(model: tf_keras.Model) -> dict[str, str]:
    return {name: layer_kind(layer) for name, layer in prunable_layers(model).items()}


def kernel_sizes(model: tf_keras.Model) -> dict[str, int]:
    """Number of kernel weights (the prunable ones) per prunable layer."""
    return {
        name: int(layer.kernel.shape.num_elements())
        for name, layer in prunable_layers(model).items()
    }


def layer_table(model: tf_keras.Model, rates: dict[str, float]) -> pd.DataFrame:
    """One row per layer: kind, output shape, weights, prunable weights and pruning rate."""
    rows = []
    for layer in model.layers:
        kind = layer_kind(layer)
        rows.append(
            {
                "layer": layer.name,
                "kind": kind or "-",
                "output_shape": tuple(layer.output_shape[1:]),
                "weights": layer.count_params(),
                "prunable_weights": int(layer.kernel.shape.num_elements()) if kind else 0,
                "rate": rates.get(layer.name, 0.0),
            }
        )
    return pd.DataFrame(rows)
