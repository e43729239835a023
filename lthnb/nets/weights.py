"""Weights as plain arrays: kernels and biases of a network's prunable layers by name.

Every part of lthnb that moves weights between a network and numpy (the engine, the trial
state, the controls, the export) uses these helpers; tfmot's wrappers live in lthnb.nets.tfmot.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tf_keras

from lthnb.nets.models import prunable_layers

Weights = dict[str, np.ndarray]


def get_weights(model: tf_keras.Model) -> Weights:
    """Kernels and biases by '<layer>/kernel' and '<layer>/bias', wrapped or not."""
    weights = {}
    for name, layer in prunable_layers(model).items():
        weights[f"{name}/kernel"] = layer.kernel.numpy()
        if layer.use_bias:
            weights[f"{name}/bias"] = layer.bias.numpy()
    return weights


def set_weights(model: tf_keras.Model, weights: Mapping[str, np.ndarray]) -> None:
    for name, layer in prunable_layers(model).items():
        layer.kernel.assign(weights[f"{name}/kernel"])
        if layer.use_bias:
            layer.bias.assign(weights[f"{name}/bias"])


def kernels_of(weights: Mapping[str, np.ndarray]) -> Weights:
    """Only the kernels (the prunable weights), by layer name."""
    return {key.split("/")[0]: value for key, value in weights.items() if key.endswith("/kernel")}


def masked(weights: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray]) -> Weights:
    """Weights with the pruned kernel entries set to exactly 0; biases untouched."""
    return {
        key: value * masks[key.split("/")[0]] if key.endswith("/kernel") else value
        for key, value in weights.items()
    }
