"""Building the network `arch` names, and refusing in one line what lthnb cannot train.

A builder's layer names must not depend on how many networks were built before it: the weights
of every trial are saved and loaded by name. Keras numbers unnamed layers per session
(dense, dense_1, ...), so each build starts Keras's numbering afresh.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import tf_keras

from lthnb.nets.prunable import prunable_weights
from lthnb.nets.registry import NetworkError, network

if TYPE_CHECKING:
    from lthnb.params import Params


def build_model(
    params: Params, input_shape: tuple[int, ...], num_classes: int, seed: int
) -> tf_keras.Model:
    """The network of `params.arch`, outputting logits, with weights drawn from `seed`."""
    arch = params.arch
    builder = network(arch).build_function()
    tf_keras.backend.reset_uids()
    try:
        model = builder(params, tuple(input_shape), num_classes, seed)
    except NetworkError:
        raise
    except Exception as error:  # noqa: BLE001 - the user's builder: say which and why, in one line
        raise NetworkError(f"arch: the builder {arch!r} raised {_first_line(error)}") from error
    check_model(arch, model, tuple(input_shape), num_classes)
    return model


def check_model(arch: str, model: object, input_shape: tuple[int, ...], num_classes: int) -> None:
    """A model lthnb can train: a tf_keras model, one input, logits (batch, classes), and at
    least one weight tfmot can prune."""
    if not isinstance(model, tf_keras.Model):
        raise NetworkError(
            f"arch: the builder {arch!r} returned {type(model).__name__}, not a tf_keras.Model "
            "(build it with tf_keras, not keras 3, and return the model)"
        )
    if isinstance(model, tf_keras.Sequential) and not model.inputs:
        # a Sequential without an Input: Keras builds it on the first images it sees
        _on_images(arch, input_shape, lambda: model.build((None, *input_shape)))
    if len(model.inputs or []) != 1 or len(model.outputs or []) != 1:
        raise NetworkError(
            f"arch: {arch!r} has {len(model.inputs or [])} inputs and {len(model.outputs or [])} "
            "outputs; lthnb trains a network with one input (the images) and one output (logits)"
        )
    probe = np.zeros((2, *input_shape), np.float32)
    shape = tuple(_on_images(arch, input_shape, lambda: model(probe, training=False)).shape)
    if shape != (2, num_classes):
        raise NetworkError(
            f"arch: {arch!r} outputs shape {shape[1:]} per image; it must output {num_classes} "
            "logits (one per class, no softmax)"
        )
    if not prunable_weights(model):
        raise NetworkError(
            f"arch: {arch!r} has no weight that tfmot can prune (no Dense or convolution kernel)"
        )


def _on_images(arch: str, input_shape: tuple[int, ...], compute: Callable[[], Any]) -> Any:
    """`compute()`, where a model that cannot take the data's images (an Input of another
    shape written into the builder) is a one-line error naming `arch`, not Keras's."""
    try:
        return compute()
    except Exception as error:  # noqa: BLE001 - the user's network: say which and why
        raise NetworkError(
            f"arch: {arch!r} cannot compute images of shape {input_shape} (the data's; build "
            f"the network on input_shape): {_first_line(error)}"
        ) from error


def _first_line(error: BaseException) -> str:
    """'Type: the first line of its message': a user's error in one line."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
