"""Which weights of a network are pruned, and at which rate: tfmot's pruning registry decides.

The prunable weights are those `prune_low_magnitude` would prune: the weights tfmot's
`PruneRegistry` lists for a layer it supports (Dense and convolution kernels, separable
convolutions' pointwise kernels, embeddings, ...), or that a layer of the user's implementing
tfmot's `PrunableLayer` returns. Biases and batch norm's parameters never are. A layer with
weights that tfmot cannot prune (a depthwise convolution, a custom layer) trains unpruned.

Each prunable weight has a kind that selects its rate: `conv` for any convolution, `output` for
the layer that produces the logits, `dense` for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import tf_keras
from tensorflow_model_optimization.python.core.sparsity.keras.prunable_layer import PrunableLayer
from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry
from tf_keras.src.layers.convolutional.base_conv import Conv
from tf_keras.src.layers.locally_connected.locally_connected1d import LocallyConnected1D
from tf_keras.src.layers.locally_connected.locally_connected2d import LocallyConnected2D

from lthnb.nets.weights import named_layers, variable_name

CONVOLUTIONS = (Conv, LocallyConnected1D, LocallyConnected2D)
# layers whose weights only follow the data (normalisation): trained, never worth naming
NORMALIZATIONS = (tf_keras.layers.BatchNormalization, tf_keras.layers.LayerNormalization)


@dataclass(frozen=True)
class PrunableWeight:
    """One prunable weight: its mask's name, the weight's name, its layer and its kind."""

    mask_name: str
    weight: str
    layer: str
    kind: str  # conv | dense | output
    size: int


def _tfmot_prunable(layer: tf_keras.layers.Layer) -> list:
    """The variables tfmot would prune in `layer` ([] where it prunes none or cannot)."""
    if isinstance(layer, PrunableLayer):
        return list(layer.get_prunable_weights())
    if not PruneRegistry.supports(layer):
        return []
    return list(PruneRegistry.make_prunable(layer).get_prunable_weights())


def output_layer(model: tf_keras.Model) -> str | None:
    """The path of the layer that produces the logits: the model's last layer, walked back
    through weightless single-input layers (an Activation, a Flatten) to one with weights,
    and into a nested model (a Sequential head) to its own last layer."""
    by_layer = {id(layer): path for path, layer in named_layers(model)}
    layer = _last_layer(model)
    while True:
        if isinstance(layer, tf_keras.Model):
            layer = _last_layer(layer)
        elif not layer.weights and len(layer.inbound_nodes[0].parent_nodes) == 1:
            layer = layer.inbound_nodes[0].parent_nodes[0].layer
        else:
            return by_layer.get(id(layer))


def _last_layer(model: tf_keras.Model) -> tf_keras.layers.Layer:
    return model.outputs[0].node.layer if model.outputs else model.layers[-1]


def prunable_weights(model: tf_keras.Model) -> dict[str, PrunableWeight]:
    """The prunable weights by mask name, in layer order."""
    output = output_layer(model)
    found = {}
    for path, layer in named_layers(model):
        for variable in _tfmot_prunable(layer):
            weight = variable_name(path, layer, variable)
            mask_name = path if weight == f"{path}/kernel" else weight
            kind = "conv" if isinstance(layer, CONVOLUTIONS) else "dense"
            kind = "output" if path == output else kind
            found[mask_name] = PrunableWeight(
                mask_name, weight, path, kind, int(variable.shape.num_elements())
            )
    return found


def unpruned_layers(model: tf_keras.Model) -> list[str]:
    """Layers with weights of their own that tfmot cannot prune, other than normalisation."""
    pruned = {weight.layer for weight in prunable_weights(model).values()}
    return [
        path
        for path, layer in named_layers(model)
        if layer.trainable_weights and path not in pruned and not isinstance(layer, NORMALIZATIONS)
    ]


def layer_kinds(model: tf_keras.Model) -> dict[str, str]:
    """conv / dense / output of each prunable weight, by mask name."""
    return {name: weight.kind for name, weight in prunable_weights(model).items()}


def kernel_sizes(model: tf_keras.Model) -> dict[str, int]:
    """Number of prunable weights, by mask name."""
    return {name: weight.size for name, weight in prunable_weights(model).items()}


def layer_table(model: tf_keras.Model, rates: dict[str, float]) -> pd.DataFrame:
    """One row per layer: kind (conv / dense / output, `trained` for weights tfmot cannot
    prune, - for none), output shape, trainable weights, prunable weights and pruning rate."""
    prunable = prunable_weights(model)
    by_layer: dict[str, list[PrunableWeight]] = {}
    for weight in prunable.values():
        by_layer.setdefault(weight.layer, []).append(weight)
    unpruned = set(unpruned_layers(model))
    rows = []
    for path, layer in named_layers(model):
        if isinstance(layer, tf_keras.layers.InputLayer):
            continue
        weights = by_layer.get(path, [])
        kind = weights[0].kind if weights else ("trained" if path in unpruned else "-")
        rows.append(
            {
                "layer": path,
                "type": type(layer).__name__,
                "kind": kind,
                "output_shape": _shape(layer),
                # trainable: batch norm's moving statistics are state, not parameters
                "weights": sum(int(w.shape.num_elements()) for w in layer.trainable_weights),
                "prunable_weights": sum(weight.size for weight in weights),
                "rate": max((rates.get(weight.mask_name, 0.0) for weight in weights), default=0.0),
            }
        )
    return pd.DataFrame(rows)


def _shape(layer: tf_keras.layers.Layer) -> tuple:
    shape = layer.output_shape
    return tuple(shape[0][1:] if isinstance(shape, list) else shape[1:])
