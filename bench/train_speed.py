"""How fast lthnb trains, against the old per-batch loop and plain Keras `fit` (not a test).

Times whole calls (never callback timestamps: `fit` was seen returning seconds after its last
epoch ended), the fastest of two after a warm-up call, per trial-epoch of Fashion-MNIST's 60K
training images:
  (A) per-batch Python loop over a compiled GradientTape step, gradients masked (the old code)
  (B) plain Keras `fit` of the unpruned net, batch 60
  (C) lthnb training one network (a stack of one: one compiled graph per epoch, fused
      optimizer, masked gradients), and the same without masks; also the reference path
      (tfmot's wrappers, tf_keras's optimizer), which `trials_together: false` selects
  (D) lthnb training all networks of a round together: the `trials` of the architecture's
      params file (round 0), and twice that (pruned rounds: tickets and their controls)
LeNet runs a full epoch; Conv-2 a subset, scaled to 60K (said in the output). It also measures
a large matmul's GFLOP/s, the compute limit these figures are compared with, and peak RSS.

    .venv/bin/python bench/train_speed.py        (or: make bench)
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

from lthnb.data import load_dataset  # noqa: E402
from lthnb.masked_model import get_weights, kernels_of, set_masks, wrap_for_pruning  # noqa: E402
from lthnb.models import build_model  # noqa: E402
from lthnb.params import load_params  # noqa: E402
from lthnb.pruning import prune_layerwise  # noqa: E402
from lthnb.stack import NetworkStack  # noqa: E402
from lthnb.stack_training import StackRunner  # noqa: E402
from lthnb.training import EpochRunner, make_optimizer  # noqa: E402

PARAMS = Path(__file__).resolve().parent.parent / "params"
FULL = 60_000
CONV2_SUBSET = 5_000


REPEATS = 2


def timed(function, *args) -> float:
    """Seconds for a whole call: the fastest of REPEATS, after a warm-up call (tracing,
    allocation). This machine's timings wander by 15% from call to call; the minimum is the
    steadiest figure."""
    function(*args)
    seconds = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        function(*args)
        seconds.append(time.perf_counter() - start)
    return min(seconds)


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))

    @tf.function(autograph=False)
    def product() -> tf.Tensor:
        return tf.reduce_sum(tf.matmul(a, b))

    product()
    start = time.perf_counter()
    for _ in range(repeats):
        product().numpy()
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def training_gflop_per_image(model: tf_keras.Model) -> float:
    """Forward multiply-adds of Dense and Conv2D layers, x2 FLOPs, x3 for the backward pass."""
    flops = 0
    for layer in model.layers:
        if isinstance(layer, tf_keras.layers.Conv2D):
            out_h, out_w, out_c = layer.output_shape[1:]
            flops += 2 * out_h * out_w * out_c * int(np.prod(layer.kernel.shape[:-1]))
        elif isinstance(layer, tf_keras.layers.Dense):
            flops += 2 * int(np.prod(layer.kernel.shape))
    return 3 * flops / 1e9


def half_masks(model: tf_keras.Model) -> dict[str, np.ndarray]:
    kernels = kernels_of(get_weights(model))
    keep = {name: kernel.size // 2 for name, kernel in kernels.items()}
    return prune_layerwise(kernels, {n: np.ones_like(k) for n, k in kernels.items()}, keep)


def old_loop(model, masks, x, y, batch: int) -> None:
    """(A): the old code's per-batch Python loop with masked gradients."""
    optimizer = tf_keras.optimizers.Adam(1.2e-3)
    loss_fn = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    variables = model.trainable_variables
    mask_of = {
        id(layer.kernel): tf.constant(masks[layer.name])
        for layer in model.layers
        if layer.name in masks
    }

    @tf.function(autograph=False)
    def step(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, variables)
        grads = [
            g * mask_of[id(v)] if id(v) in mask_of else g
            for g, v in zip(grads, variables, strict=True)
        ]
        optimizer.apply_gradients(zip(grads, variables, strict=True))

    def epoch():
        for start in range(0, len(x), batch):
            step(x[start : start + batch], y[start : start + batch])

    return epoch


class UnmaskedStack(NetworkStack):
    """The baseline of the masks' cost: gradients used as they are."""

    def masked_gradients(self, gradients: list[tf.Tensor]) -> list[tf.Tensor]:
        return gradients


def stacked_epoch(params, template, x, y, size: int, masks: bool = True):
    """(C)/(D): a whole epoch of `size` networks, each with its own order and half its weights."""
    stack = (NetworkStack if masks else UnmaskedStack)(template, size)
    weights, masks = get_weights(template), half_masks(template)
    for index in range(size):
        stack.load(index, weights, masks)
    runner = StackRunner(stack, params)
    orders = tf.constant(
        np.stack([np.random.default_rng(i).permutation(len(x)) for i in range(size)]), tf.int32
    )
    seeds = tf.constant([[i, 0] for i in range(size)], tf.int64)
    return lambda: runner.train_epoch(x, y, orders, seeds)


def measure(arch: str, x: np.ndarray, y: np.ndarray, detailed: bool) -> dict[str, float]:
    """Seconds per trial-epoch (one network, 60K images) of each way of training; `detailed`
    adds the old loop, a stack of 2 x trials and that stack without masks."""
    params = load_params(PARAMS / f"{arch}.yaml", batch_size=60)
    scale = FULL / len(x)
    xt, yt = tf.constant(x), tf.constant(y)
    order = tf.constant(np.random.default_rng(0).permutation(len(x)), tf.int32)
    times = {}
    model = build_model(params, x.shape[1:], 10, 0)
    times["gflop_per_epoch"] = training_gflop_per_image(model) * FULL
    if detailed:
        times["A_old_loop"] = timed(old_loop(model, half_masks(model), xt, yt, 60)) * scale
    model = build_model(params, x.shape[1:], 10, 0)
    model.compile(
        make_optimizer(params), tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    times["B_keras_fit"] = scale * timed(
        lambda: model.fit(x, y, batch_size=60, epochs=1, verbose=0, shuffle=True)
    )
    template = build_model(params, x.shape[1:], 10, 0)
    times["C_lthnb_unmasked"] = scale * timed(stacked_epoch(params, template, xt, yt, 1, False))
    times["C_lthnb_masked"] = scale * timed(stacked_epoch(params, template, xt, yt, 1))
    wrapped = wrap_for_pruning(build_model(params, x.shape[1:], 10, 0))
    set_masks(wrapped, half_masks(wrapped))
    reference = EpochRunner(wrapped, make_optimizer(params), 60)
    times["C_reference_tfmot"] = scale * timed(reference.train_epoch, xt, yt, order)
    sizes = (params.trials, 2 * params.trials) if detailed else (params.trials,)
    for size in sizes:
        epoch = stacked_epoch(params, template, xt, yt, size)
        times[f"D_together_{size}"] = scale * timed(epoch) / size
    if detailed:
        epoch = stacked_epoch(params, template, xt, yt, sizes[-1], masks=False)
        times[f"D_unmasked_{sizes[-1]}"] = scale * timed(epoch) / sizes[-1]
    return times


def lthnb_best(figures: dict[str, float]) -> float:
    """lthnb's best seconds per trial-epoch, masked: one network (C) or a round together (D)."""
    return min(
        seconds
        for key, seconds in figures.items()
        if key == "C_lthnb_masked" or key.startswith("D_together")
    )


def main() -> None:
    splits = load_dataset("fashion_mnist", validation_size=1, seed=0)
    x = np.concatenate([splits.x_train, splits.x_val])
    y = np.concatenate([splits.y_train, splits.y_val])
    print(f"machine: {os.cpu_count()} CPU cores; TensorFlow {tf.__version__}")
    limit = matmul_gflops()
    print(f"large matmul: {limit:.1f} GFLOP/s")
    lenet = measure("lenet", x, y, detailed=True)
    rng = np.random.default_rng(0)
    subset = rng.choice(len(x), CONV2_SUBSET, replace=False)
    padded = np.pad(np.repeat(x[subset], 3, axis=-1), ((0, 0), (2, 2), (2, 2), (0, 0)))
    conv2 = measure("conv2", padded, y[subset], detailed=False)
    for name, figures in (("lenet", lenet), ("conv2", conv2)):
        note = "" if name == "lenet" else f" (measured on {CONV2_SUBSET} images, scaled to 60K)"
        print(f"{name}: seconds per trial-epoch of 60K images{note}")
        best = lthnb_best(figures)
        for key, seconds in figures.items():
            if key != "gflop_per_epoch":
                rate = figures["gflop_per_epoch"] / seconds
                print(
                    f"  {key:20s} {seconds:8.2f} s  {rate:6.1f} GFLOP/s "
                    f"({100 * rate / limit:.0f}% of matmul)"
                )
        print(f"  lthnb best          {best:8.2f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MiB")
    masked_over = lenet["C_lthnb_masked"] / lenet["C_lthnb_unmasked"]
    stacked = [key for key in lenet if key.startswith("D_unmasked")][0]
    together = "D_together" + stacked.removeprefix("D_unmasked")
    print(f"masks' cost, {stacked[11:]} networks together: {lenet[together] / lenet[stacked]:.3f}")
    lenet_speedup = lenet["B_keras_fit"] / lthnb_best(lenet)
    conv2_speedup = conv2["B_keras_fit"] / lthnb_best(conv2)
    print(
        f"ratios: masked_over_unmasked={masked_over:.3f} lenet_speedup={lenet_speedup:.2f} "
        f"conv2_speedup={conv2_speedup:.2f}"
    )


if __name__ == "__main__":
    main()
