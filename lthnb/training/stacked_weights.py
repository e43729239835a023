"""Every weight of several networks of one architecture, held with a leading network axis.

Both containers of a round's networks (the stack, which computes the layers itself, and the
Keras container, which runs each network's own model) keep the weights this way, so the
optimizer, the best-weights copy, masks and moving networks between stacks are one code.

Masks: pruned weights are 0 when a network is loaded and their gradients are multiplied by the
mask, so the optimizer never moves them: with Adam and SGD an update whose gradient and slots
are 0 is exactly 0. For the surviving weights this is what tfmot's wrapper computes (it zeroes
the pruned weights before each forward pass); the tests compare the engine with tfmot.
A weight that is still dense in every network of the stack (all of round 0) skips the multiply.

Non-trainable weights (batch norm's moving statistics) are state: loaded, saved, copied with
the best weights and rewound like the others, updated by the forward pass, never by gradients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from lthnb.nets.names import Weights
from lthnb.nets.prunable import prunable_weights
from lthnb.nets.weights import model_variables


class StackedWeights:
    """`size` networks' weights shaped like `template`'s, each with a leading network axis."""

    def __init__(self, template: tf_keras.Model, size: int) -> None:
        self.size = size
        named = model_variables(template)
        self.stacked: dict[str, tf.Variable] = {
            name: tf.Variable(
                tf.zeros((size, *variable.shape), variable.dtype),
                trainable=variable.trainable,
                name=name.replace("/", "_"),
            )
            for name, variable in named.items()
        }
        # the stacked variable of each of the template's variables (the layers' steps look up)
        self.of_template = {variable.ref(): self.stacked[name] for name, variable in named.items()}
        self.trainable_names = [name for name, variable in named.items() if variable.trainable]
        self.state_names = [name for name, variable in named.items() if not variable.trainable]
        prunable = prunable_weights(template)
        self.mask_names = {weight.weight: name for name, weight in prunable.items()}
        # per prunable weight: 1 where a weight survives, 0 where it is pruned
        self.gradient_masks = {
            weight: tf.Variable(tf.ones_like(self.stacked[weight]), trainable=False)
            for weight in self.mask_names
        }

    @property
    def variables(self) -> list[tf.Variable]:
        """The trainable variables, which the optimizer steps."""
        return [self.stacked[name] for name in self.trainable_names]

    @property
    def all_variables(self) -> list[tf.Variable]:
        """Trainable variables, then state: what a best-weights copy keeps."""
        return self.variables + [self.stacked[name] for name in self.state_names]

    def masked_gradients(
        self, gradients: list[tf.Tensor], pruned: tuple[bool, ...]
    ) -> list[tf.Tensor]:
        """Gradients in `variables` order, each prunable weight's multiplied by its mask where
        `pruned` says some network of the stack has pruned entries in it."""
        flags = dict(zip(self.gradient_masks, pruned, strict=True))
        return [
            g * self.gradient_masks[name] if flags.get(name) else g
            for name, g in zip(self.trainable_names, gradients, strict=True)
        ]

    def pruned_weights(self) -> tuple[bool, ...]:
        """Per prunable weight: does any network of the stack have a pruned entry there?"""
        return tuple(not bool(tf.reduce_all(mask == 1.0)) for mask in self.gradient_masks.values())

    def gradients(self, tape: tf.GradientTape, loss: tf.Tensor) -> list[tf.Tensor]:
        """d loss / d `variables` (the Keras container overrides this)."""
        return tape.gradient(loss, self.variables)

    def load(
        self,
        weights: Sequence[Mapping[str, np.ndarray]],
        masks: Sequence[Mapping[str, np.ndarray]],
    ) -> None:
        """Fill every slot, in order: each network's weights with pruned entries zeroed, and its
        masks. One assignment per variable (a slot at a time costs ResNet-20 seconds a round)."""
        if len(weights) != self.size or len(masks) != self.size:
            raise ValueError(f"{len(weights)} networks for a container of {self.size}")
        for network in weights:
            missing = [name for name in self.stacked if name not in network]
            if missing:
                raise ValueError(
                    f"the weights to load lack {', '.join(missing[:3])}: they belong to another "
                    "network (a run folder of another arch or lthnb version?)"
                )
        for name, variable in self.stacked.items():
            mask_name = self.mask_names.get(name)
            values = [
                network[name] * network_masks[mask_name] if mask_name else network[name]
                for network, network_masks in zip(weights, masks, strict=True)
            ]
            variable.assign(np.stack(values).astype(variable.dtype.as_numpy_dtype))
        for name, gradient_mask in self.gradient_masks.items():
            mask_name = self.mask_names[name]
            gradient_mask.assign(np.stack([m[mask_name] for m in masks]).astype(np.float32))

    def take(self, source: StackedWeights, slots: list[int]) -> None:
        """Fill this container with `source`'s networks in `slots` (weights and masks), in order."""
        mine = self.all_variables + list(self.gradient_masks.values())
        theirs = source.all_variables + list(source.gradient_masks.values())
        for variable, other in zip(mine, theirs, strict=True):
            variable.assign(tf.gather(other.read_value(), slots))

    def weights(self, index: int, variables: list[tf.Variable] | None = None) -> Weights:
        """Slot `index`'s weights by name, read from `variables` (a copy shaped like
        `all_variables`, e.g. the best weights) or the container itself."""
        names = self.trainable_names + self.state_names
        read = variables or self.all_variables
        return {name: value[index].numpy() for name, value in zip(names, read, strict=True)}
