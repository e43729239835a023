"""Keras's Adam and SGD update rules for a network stack, as TensorFlow's fused kernels.

tf_keras's optimizers update a variable with several element-wise ops, each a pass over memory;
on a stack of ten LeNets that costs more than the matmuls. The fused kernels compute the same
rules in one pass: Adam with epsilon outside the square root and bias correction folded into
the step size, SGD momentum as `m = momentum * m - lr * g; w += m` (tf_keras's form).
The learning rate is an input of every step (the clock's schedule); Adam's bias correction
counts the steps since the round began, as a fresh optimizer of a rewound round would.
"""

from __future__ import annotations

import tensorflow as tf

from lthnb.params import Params

ADAM_BETA_1, ADAM_BETA_2, ADAM_EPSILON = 0.9, 0.999, 1e-7  # tf_keras.optimizers.Adam defaults


class StackOptimizer:
    """One optimizer state for all networks of a stack (they always take the same steps)."""

    def __init__(self, params: Params, variables: list[tf.Variable]) -> None:
        self.kind = params.optimizer
        self.momentum = params.momentum
        self.variables = variables
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False)
        names = {"adam": ("m", "v"), "sgd": ("momentum",) if params.momentum > 0 else ()}
        self.slots = [
            {
                name: tf.Variable(tf.zeros_like(variable), trainable=False)
                for name in names[self.kind]
            }
            for variable in variables
        ]

    def reset(self) -> None:
        """A fresh state, as a new tf_keras optimizer would have."""
        self.iterations.assign(0)
        for slots in self.slots:
            for slot in slots.values():
                slot.assign(tf.zeros_like(slot))

    def take(self, source: StackOptimizer, slots: list[int]) -> None:
        """Continue `source`'s state for its networks in `slots`, in order."""
        self.iterations.assign(source.iterations)
        for mine, theirs in zip(self.slots, source.slots, strict=True):
            for name, slot in mine.items():
                slot.assign(tf.gather(theirs[name].read_value(), slots))

    def apply(self, gradients: list[tf.Tensor], learning_rate: tf.Tensor) -> None:
        self.iterations.assign_add(1)
        step = tf.cast(self.iterations, tf.float32)
        beta1_power, beta2_power = tf.pow(ADAM_BETA_1, step), tf.pow(ADAM_BETA_2, step)
        for variable, slots, gradient in zip(self.variables, self.slots, gradients, strict=True):
            if self.kind == "adam":
                tf.raw_ops.ResourceApplyAdam(
                    var=variable.handle,
                    m=slots["m"].handle,
                    v=slots["v"].handle,
                    beta1_power=beta1_power,
                    beta2_power=beta2_power,
                    lr=learning_rate,
                    beta1=ADAM_BETA_1,
                    beta2=ADAM_BETA_2,
                    epsilon=ADAM_EPSILON,
                    grad=gradient,
                )
            elif slots:
                tf.raw_ops.ResourceApplyKerasMomentum(
                    var=variable.handle,
                    accum=slots["momentum"].handle,
                    lr=learning_rate,
                    grad=gradient,
                    momentum=self.momentum,
                )
            else:
                tf.raw_ops.ResourceApplyGradientDescent(
                    var=variable.handle, alpha=learning_rate, delta=gradient
                )
