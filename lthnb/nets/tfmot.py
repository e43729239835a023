"""lthnb's masks held in a network by tfmot's pruning wrappers: the tests' oracle.

tfmot's `prune_low_magnitude` wrapper multiplies each kernel by its mask variable before every
training forward pass. lthnb computes the masks itself (from the trained weights of the previous
round), so the wrappers get a schedule that never updates a mask: tfmot only holds them. The
tests train through them as the oracle the engine is compared with. The exported ticket is
the plain network (lthnb.nets.weights.save_network): its weights are masked already.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import (
    PruneLowMagnitude,
)


class FixedMaskSchedule(tfmot.sparsity.keras.PruningSchedule):
    """A pruning schedule that never prunes: the masks stay exactly what lthnb assigned."""

    def __call__(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.constant(False), tf.constant(0.0)

    def get_config(self) -> dict:
        return {"class_name": type(self).__name__, "config": {}}


def wrap_for_pruning(model: tf_keras.Model) -> tf_keras.Model:
    """Wrap every prunable layer so its weight is multiplied by a mask while training."""
    wrapped = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=FixedMaskSchedule())
    for layer in wrapped.layers:
        if isinstance(layer, PruneLowMagnitude):
            layer.pruning_step.assign(1)  # tfmot asserts that the step counter has started
    return wrapped


def _wrappers(model: tf_keras.Model) -> list[tf_keras.layers.Layer]:
    """The wrappers that hold a mask (tfmot also wraps weightless layers such as Flatten)."""
    return [
        layer
        for layer in model.layers
        if isinstance(layer, PruneLowMagnitude) and layer.pruning_vars
    ]


def mask_variables(model: tf_keras.Model) -> dict[str, tuple[tf.Variable, tf.Variable]]:
    """(kernel, mask) variables of each wrapped layer, by layer name."""
    pairs = {}
    for wrapper in _wrappers(model):
        (kernel, mask, _threshold) = wrapper.pruning_vars[0]
        pairs[wrapper.layer.name] = (kernel, mask)
    return pairs


def set_masks(model: tf_keras.Model, masks: Mapping[str, np.ndarray]) -> None:
    """Load masks into the wrappers and zero the pruned kernel weights now."""
    for name, (kernel, mask) in mask_variables(model).items():
        mask.assign(masks[name].astype(np.float32))
        kernel.assign(kernel * mask)
