"""The networks lthnb builds: name -> builder, with each one's help and its paper recipe.

The registry is declarative so that params can list and describe the networks without importing
TensorFlow: lthnb's builders are named as "module:function" and imported on first use; a
network registered at run time may give the function itself. A builder takes (params,
num_classes, seed) and returns the network's tf_keras layers after its input.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Network:
    """One architecture: what it is, how to build it, and the parameters its paper used."""

    name: str
    help: str
    builder: str | Callable[..., list]  # "module:function", or the function
    # Parameters that differ from the schema's defaults (LeNet's) in this network's recipe;
    # a params mapping that names `arch` and leaves these out gets them (Frankle & Carbin 2019,
    # Fig. 2). A key the mapping gives always wins.
    defaults: Mapping[str, Any] = field(default_factory=dict)
    min_dense_layers: int = 0  # hidden dense layers (dense_units) the network needs
    has_conv: bool = False  # has conv layers, which conv_rate prunes

    def layers_builder(self) -> Callable[..., list]:
        if callable(self.builder):
            return self.builder
        module, function = self.builder.split(":")
        return getattr(importlib.import_module(module), function)


def _conv_network(name: str, help_text: str, iterations: int, **recipe: Any) -> Network:
    """A Conv-2/4/6 of the paper: CIFAR-10, two hidden dense layers of 256, its own budget."""
    return Network(
        name,
        help_text,
        f"lthnb.nets.models:{name}",
        {"dataset": "cifar10", "dense_units": [256, 256], "iterations": iterations, **recipe},
        min_dense_layers=1,
        has_conv=True,
    )


NETWORKS: dict[str, Network] = {
    network.name: network
    for network in (
        Network("lenet", "LeNet-300-100: fully connected 300, 100", "lthnb.nets.models:lenet"),
        _conv_network(
            "conv2",
            "Conv-2: conv 64, 64, pool; fully connected 256, 256",
            20000,
            learning_rate=2e-4,
        ),
        _conv_network("conv4", "Conv-4: Conv-2 + conv 128, 128, pool", 25000, learning_rate=3e-4),
        _conv_network(
            "conv6",
            "Conv-6: Conv-4 + conv 256, 256, pool; conv rate 15%",
            30000,
            learning_rate=3e-4,
            conv_rate=0.15,
        ),
    )
}


def register_network(entry: Network) -> None:
    """Make `entry` buildable by its name (`arch`); a name already taken is refused."""
    if entry.name in NETWORKS:
        raise ValueError(f"a network named {entry.name!r} is registered already")
    NETWORKS[entry.name] = entry


def network(name: str) -> Network:
    """The registered network called `name`; a clear error for any other."""
    try:
        return NETWORKS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown network {name!r}; known: {', '.join(NETWORKS)}") from None
