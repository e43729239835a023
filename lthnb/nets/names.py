"""Weight dictionaries by name, without TensorFlow: which weight a mask applies to.

A weight's name is '<layer>/<variable>' (lthnb.nets.weights). A mask is named by its layer
('conv1') when it masks the layer's kernel, as every run folder has always named them, or by the
weight's own name ('sep/pointwise_kernel') when it masks another variable of the layer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

Weights = dict[str, np.ndarray]


def weight_key(mask_name: str, weights: Mapping[str, np.ndarray]) -> str:
    """The name of the weight a mask applies to: the layer's kernel, or the weight it names."""
    kernel = f"{mask_name}/kernel"
    return kernel if kernel in weights else mask_name


def kernels_of(weights: Mapping[str, np.ndarray], mask_names: Iterable[str]) -> Weights:
    """The prunable weights, by mask name."""
    return {name: weights[weight_key(name, weights)] for name in mask_names}


def masked(weights: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray]) -> Weights:
    """Weights with the pruned entries set to exactly 0; the other weights untouched."""
    out = dict(weights)
    for name, mask in masks.items():
        key = weight_key(name, weights)
        out[key] = weights[key] * mask
    return out
