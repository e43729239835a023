"""A network's weights as plain arrays: every variable, trainable or not, by a stable name.

A weight's name is '<layer>/<variable>' ('conv1/kernel', 'bn1/moving_mean'): the names the run
folder's files have always used for kernels and biases, now for batch norm's gamma, beta and
moving statistics too, so θ0, θk, the trial state, the round records and the exported ticket
hold the whole state of the network (lthnb.nets.names works on these dictionaries).

Every part of lthnb that moves weights between a network and numpy (the engine, the trial
state, the export) uses these helpers; tfmot's wrappers live in lthnb.nets.tfmot.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import (
    PruneLowMagnitude,
)

from lthnb.nets.names import Weights

Layer = tf_keras.layers.Layer


def named_layers(model: tf_keras.Model, prefix: str = "") -> list[tuple[str, Layer]]:
    """The model's layers by path ('block/conv' inside a nested model), tfmot's wrappers
    replaced by the layer they wrap, nested models replaced by their layers."""
    layers = []
    for layer in model.layers:
        inner = layer.layer if isinstance(layer, PruneLowMagnitude) else layer
        path = f"{prefix}{inner.name}"
        if isinstance(inner, tf_keras.Model):
            layers += named_layers(inner, f"{path}/")
        else:
            layers.append((path, inner))
    return layers


def variable_name(path: str, layer: tf_keras.layers.Layer, variable: tf.Variable) -> str:
    """'<layer path>/<variable>': the variable's own name without its ':0' and layer scope."""
    short = variable.name.split(":")[0]
    return f"{path}/{short.removeprefix(f'{layer.name}/')}"


def model_variables(model: tf_keras.Model) -> dict[str, tf.Variable]:
    """Every variable of `model` once, trainable or not, by its stable name, in layer order."""
    named: dict[str, tf.Variable] = {}
    seen: set = set()
    for path, layer in named_layers(model):
        for variable in layer.weights:
            if variable.ref() in seen:  # a layer used twice, or a variable shared
                continue
            seen.add(variable.ref())
            name = variable_name(path, layer, variable)
            if name in named:
                raise ValueError(f"two weights of {model.name} are both named {name!r}")
            named[name] = variable
    return named


def get_weights(model: tf_keras.Model) -> Weights:
    """Every weight of the network by name, wrapped by tfmot or not."""
    return {name: variable.numpy() for name, variable in model_variables(model).items()}


def set_weights(model: tf_keras.Model, weights: Mapping[str, np.ndarray]) -> None:
    """Load every weight of the network; a weight `weights` lacks is a clear error."""
    variables = model_variables(model)
    missing = [name for name in variables if name not in weights]
    if missing:
        raise ValueError(
            f"the saved weights lack {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''} "
            f"of {model.name}: they were saved from another network"
        )
    for name, variable in variables.items():
        variable.assign(weights[name])


def save_network(model: tf_keras.Model, weights: Mapping[str, np.ndarray], path: Path) -> None:
    """Save `model` with `weights` as a plain tf_keras network (.keras), atomically."""
    set_weights(model, weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name("tmp." + path.name)
    model.save(temporary)
    temporary.replace(path)


def deflated_size(path: Path) -> int:
    """Bytes of `path` once deflated, as in a zip file: what a sparse file would save."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(path, arcname=path.name)
    return buffer.getbuffer().nbytes


def load_network(path: Path, arch: str) -> tf_keras.Model:
    """A saved network back as a tf_keras model. The layers of a user's builder module are
    offered to Keras by name, so a ticket with a layer of the user's own loads too."""
    module_name = arch.split(":")[0] if ":" in arch else None
    custom = {}
    if module_name:
        with contextlib.suppress(Exception):  # the builder's import error is reported elsewhere
            module = importlib.import_module(module_name)
            custom = {
                name: value
                for name, value in vars(module).items()
                if isinstance(value, type) and issubclass(value, tf_keras.layers.Layer)
            }
    try:
        return tf_keras.models.load_model(path, compile=False, custom_objects=custom)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{path} does not load as a tf_keras network ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}); a layer of your own must be "
            "defined in the builder's module or registered with "
            "tf_keras.utils.register_keras_serializable"
        ) from None
