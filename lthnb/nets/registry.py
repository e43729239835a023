"""The networks lthnb builds: name -> builder, with each one's help and its paper recipe.

The registry is declarative so that params can list and describe the networks without importing
TensorFlow: lthnb's builders are named as "module:function" and imported on first use; a
network registered at run time may give the function itself. `arch` may also name a user's
builder as "package.module:function", imported from the repository root or PYTHONPATH.

A builder is `(params, input_shape, num_classes, seed) -> tf_keras.Model`: any tf_keras model,
Sequential or functional, that returns logits, with its initial weights drawn from `seed`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Builder = Callable[..., Any]  # (params, input_shape, num_classes, seed) -> tf_keras.Model
USER_BUILDER = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


class NetworkError(ValueError):
    """`arch` names no buildable network, or its builder made something lthnb cannot train."""


@dataclass(frozen=True)
class Network:
    """One architecture: what it is, how to build it, and the parameters its paper used."""

    name: str
    help: str
    builder: str | Builder  # "module:function", or the function
    # Parameters that differ from the schema's defaults (LeNet's) in this network's recipe;
    # a params mapping that names `arch` and leaves these out gets them (Frankle & Carbin 2019,
    # Fig. 2; open_lth's hparams for the CIFAR networks). A key the mapping gives always wins.
    defaults: Mapping[str, Any] = field(default_factory=dict)
    min_dense_layers: int = 0  # hidden dense layers (dense_units) the network needs
    has_conv: bool = True  # has conv layers, which conv_rate prunes (unknown: assume so)

    def build_function(self) -> Builder:
        """The builder itself; a one-line error naming `arch` where it cannot be imported."""
        if callable(self.builder):
            return self.builder
        module_name, function = self.builder.split(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as error:  # noqa: BLE001 - any import failure is the user's to fix
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise NetworkError(
                f"arch: {self.name!r}: cannot import {module_name} ({type(error).__name__}: "
                f"{first_line}); put the module under the repository root or on PYTHONPATH"
            ) from None
        builder = getattr(module, function, None)
        if not callable(builder):
            raise NetworkError(
                f"arch: {self.name!r}: {module_name} has no function {function}; name a builder "
                "(params, input_shape, num_classes, seed) -> tf_keras.Model"
            )
        return builder


def _conv_network(name: str, help_text: str, iterations: int, **recipe: Any) -> Network:
    """A Conv-2/4/6 of the paper: CIFAR-10, two hidden dense layers of 256, its own budget."""
    return Network(
        name,
        help_text,
        f"lthnb.nets.models:{name}",
        {"dataset": "cifar10", "dense_units": [256, 256], "iterations": iterations, **recipe},
        min_dense_layers=1,
    )


# open_lth's CIFAR-10 recipe for its ResNets and VGGs (models/cifar_resnet.py, cifar_vgg.py):
# SGD 0.1, momentum 0.9, weight decay 1e-4, batch 128, 160 epochs of 391 iterations with the
# rate divided by 10 at epochs 80 and 120, standard augmentation, per-channel normalisation;
# IMP prunes 20% of the weights per round, ranked globally (VGG leaves its output layer alone).
EPOCH = 391  # iterations per epoch: 50,000 CIFAR-10 images in batches of 128
OPEN_LTH_CIFAR = {
    "dataset": "cifar10",
    "optimizer": "sgd",
    "learning_rate": 0.1,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "batch_size": 128,
    "iterations": 160 * EPOCH,
    "eval_every": EPOCH,
    "lr_milestones": [80 * EPOCH, 120 * EPOCH],
    "lr_gamma": 0.1,
    "kernel_init": "he_normal",
    "dense_units": [],
    "conv_rate": 0.2,
    "dense_rate": 0.2,
    "output_rate": 0.2,
    "pruning_scope": "global",
    "augmentation": ["crop", "flip"],
    "normalization": "per_channel",
}


def _cifar_network(name: str, help_text: str, **recipe: Any) -> Network:
    return Network(name, help_text, f"lthnb.nets.cifar:{name}", {**OPEN_LTH_CIFAR, **recipe})


NETWORKS: dict[str, Network] = {
    network.name: network
    for network in (
        Network(
            "lenet",
            "LeNet-300-100: fully connected 300, 100",
            "lthnb.nets.models:lenet",
            has_conv=False,
        ),
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
        *(
            _cifar_network(f"resnet{depth}", f"ResNet-{depth} for CIFAR, batch norm (open_lth)")
            for depth in (20, 56, 110)
        ),
        *(
            _cifar_network(
                f"vgg{depth}", f"VGG-{depth} for CIFAR, batch norm (open_lth)", output_rate=0.0
            )
            for depth in (11, 13, 16, 19)
        ),
    )
}


def register_network(entry: Network) -> None:
    """Make `entry` buildable by its name (`arch`); a name already taken is refused."""
    if entry.name in NETWORKS:
        raise ValueError(f"a network named {entry.name!r} is registered already")
    NETWORKS[entry.name] = entry


def network_problem(arch: Any) -> str | None:
    """Why `arch` names no network (None when it does): a registered name or a user's
    "package.module:function"."""
    if isinstance(arch, str) and (arch in NETWORKS or USER_BUILDER.match(arch)):
        return None
    return (
        f"{arch!r} is neither a registered network ({', '.join(NETWORKS)}) nor a builder "
        "written as 'package.module:function'"
    )


def network(name: str) -> Network:
    """The registered network called `name`, or the user's builder it names; a clear error for
    any other."""
    if isinstance(name, str) and name in NETWORKS:
        return NETWORKS[name]
    problem = network_problem(name)
    if problem:
        raise NetworkError(f"arch: {problem}")
    return Network(name, f"your builder {name}", name)
