"""The Keras container: a round's networks as their own Keras models, for any layer at all.

A network with a layer the stack does not compute (lthnb.training.stack.Unstackable) still
trains in the same engine: one clock, one compiled chunk, one evaluation, one best-weights copy,
the masks held the same way. Only the container differs: each network is a clone of the
template, whose variables are loaded from the stacked weights before its forward pass. The
gradients with respect to each clone's variables are stacked back for the one optimizer, and
the state the forward pass updated (batch norm's moving statistics) is copied back after it.
It costs a copy of every weight per step, and each network runs alone.

Dropout in the clones draws from Keras's own generators, not from the networks' seeds.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras

from lthnb.nets.weights import model_variables
from lthnb.training.stacked_weights import StackedWeights


class KerasContainer(StackedWeights):
    """`size` clones of `template`, their weights kept stacked like the stack's."""

    def __init__(
        self, template: tf_keras.Model, size: int, compute_dtype: tf.DType = tf.float32
    ) -> None:
        super().__init__(template, size)
        policy = "mixed_bfloat16" if compute_dtype == tf.bfloat16 else "float32"
        previous = tf_keras.mixed_precision.global_policy()
        tf_keras.mixed_precision.set_global_policy(policy)
        try:
            self.clones = [tf_keras.models.clone_model(template) for _ in range(size)]
        finally:
            tf_keras.mixed_precision.set_global_policy(previous)
        for clone in self.clones:
            clone.build(template.inputs[0].shape)
        self._variables = [_by_name(clone, list(self.stacked)) for clone in self.clones]

    def logits(self, x: tf.Tensor, training: bool, seeds: tf.Tensor) -> tf.Tensor:
        """Logits (networks, batch, classes), float32, for inputs (networks, batch, ...)."""
        outputs = []
        for index, (clone, images) in enumerate(
            zip(self.clones, tf.unstack(x, num=self.size), strict=True)
        ):
            for name, variable in self._variables[index].items():
                variable.assign(self.stacked[name][index])
            outputs.append(tf.cast(clone(images, training=training), tf.float32))
        if training:
            for name in self.state_names:
                self.stacked[name].assign(
                    tf.stack([variables[name] for variables in self._variables])
                )
        return tf.stack(outputs)

    def gradients(self, tape: tf.GradientTape, loss: tf.Tensor) -> list[tf.Tensor]:
        """d loss / d `variables`: each clone's gradients, stacked."""
        names = self.trainable_names
        per_clone = [[variables[name] for name in names] for variables in self._variables]
        flat = tape.gradient(loss, [variable for clone in per_clone for variable in clone])
        stacked = []
        for position, name in enumerate(names):
            parts = [flat[clone * len(names) + position] for clone in range(self.size)]
            parts = [
                tf.zeros_like(self.stacked[name][0]) if part is None else tf.cast(part, tf.float32)
                for part in parts
            ]
            stacked.append(tf.stack(parts))
        return stacked


def _by_name(clone: tf_keras.Model, names: list[str]) -> dict[str, tf.Variable]:
    """The clone's variables by the template's names (a clone has the same layers)."""
    variables = model_variables(clone)
    if list(variables) != names:
        raise RuntimeError("a clone of the network names its weights otherwise than the template")
    return variables
