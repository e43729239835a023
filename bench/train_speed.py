"""How fast lthnb trains, against the old per-batch loop and plain Keras `fit` (not a test).

Per trial-epoch of Fashion-MNIST's 60K training images, the fastest of two after a warm-up call
(never callback timestamps: `fit` was seen returning seconds after its last epoch ended). The
old loop and `fit` are timed as whole calls; lthnb as the time spent in its compiled chunks
(training with its validation evaluations), which leaves out what a round pays once (loading
the stack, the test evaluation, reading weights out): over a real round's 20K-50K iterations
that is negligible, but over the bench's short epochs (scaled x12 for Conv-2) it is not.
  (A) per-batch Python loop over a compiled GradientTape step, gradients masked (the old code)
  (B) plain Keras `fit` of the unpruned net, batch 60, no validation
  (C) lthnb's engine training one network (a stack of one) with half its weights pruned,
      validation (5K images) every 100 iterations as in the paper; the same with one
      evaluation per epoch; and a dense network (round 0: the mask multiply is skipped)
  (D) lthnb's engine training all networks of a round together: the `trials` of the
      architecture's params file (round 0), twice that (tickets and one control each) and five
      times that (tickets and all four controls), evaluated every 100 iterations, pruned and
      dense
  (E) the round-0 stack of (D) at `precision: mixed_bfloat16` (on CPUs with AVX512-BF16 or AMX)
  (F) the validation evaluation alone, with 500, 2000 (lthnb's) and 8000 images per batch
LeNet runs a full epoch; Conv-2 a subset, scaled to 60K (said in the output). It also measures
a large matmul's GFLOP/s, the compute limit these figures are compared with, and peak RSS, and
prints bench/conv_options.py's table (layouts, oneDNN, bfloat16 on Conv-2's costliest layer).

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
from conv_options import report as conv_options_report  # noqa: E402

from lthnb.data.loaders import Splits, load_dataset  # noqa: E402
from lthnb.nets.build import build_model  # noqa: E402
from lthnb.nets.names import kernels_of  # noqa: E402
from lthnb.nets.prunable import layer_kinds  # noqa: E402
from lthnb.nets.weights import get_weights  # noqa: E402
from lthnb.params import load_params  # noqa: E402
from lthnb.pruning.masks import dense_masks, prune_layerwise  # noqa: E402
from lthnb.training.clock import steps_per_epoch  # noqa: E402
from lthnb.training.device import bf16_native, cpu_flags  # noqa: E402
from lthnb.training.engine import DataTensors, Engine, NetworkJob, StackRunner  # noqa: E402

PARAMS = Path(__file__).resolve().parent.parent / "params"
FULL = 60_000
CONV2_SUBSET = 5_000
EVAL_BATCHES = (500, 2000, 8000)  # images per evaluation batch, over the whole stack
BF16 = bf16_native("cpu", cpu_flags(), [])


REPEATS = 2


def timed(function, *args) -> float:
    """Seconds of a call: the fastest of REPEATS, after a warm-up call (tracing, allocation).
    A call that returns a float reports its own seconds; others are timed whole. This
    machine's timings wander by 15% from call to call; the minimum is the steadiest figure."""
    function(*args)
    seconds = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        reported = function(*args)
        seconds.append(reported if isinstance(reported, float) else time.perf_counter() - start)
    return min(seconds)


class ChunkClock:
    """Adds up the seconds spent in `StackRunner.chunk` (training and its evaluations)."""

    seconds = 0.0
    _chunk = StackRunner.chunk

    @classmethod
    def install(cls) -> None:
        def chunk(runner: StackRunner, *args):
            start = time.perf_counter()
            try:
                return cls._chunk(runner, *args)
            finally:
                cls.seconds += time.perf_counter() - start

        StackRunner.chunk = chunk


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
    kernels = kernels_of(get_weights(model), layer_kinds(model))
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


def engine_epoch(params, template, data: DataTensors, size: int, pruned: bool, eval_every: int):
    """(C)/(D): one epoch of `size` networks through the engine, each with its own batches,
    half pruned or dense; the call returns the seconds its chunks took."""
    epoch = steps_per_epoch(data.train_size, params.batch_size)
    params = params.replace(iterations=epoch, eval_every=min(eval_every, epoch))
    weights = get_weights(template)
    masks = (
        half_masks(template) if pruned else dense_masks(kernels_of(weights, layer_kinds(template)))
    )
    jobs = [NetworkJob(weights, masks, seed) for seed in range(size)]
    engine = Engine(params, template, data)

    def train() -> float:
        ChunkClock.seconds = 0.0
        engine.train(jobs)
        return ChunkClock.seconds

    return train


def evaluation(params, template, data: DataTensors, size: int, images: int):
    """(F): one validation evaluation of a stack of `size`, `images` per batch; the call returns
    its seconds per 1000 images per network."""
    runner = Engine(params, template, data).runner(size)  # a fresh runner, not yet traced
    runner.eval_batch = max(1, images // size)  # read when the evaluation is traced
    count = int(data.x_val.shape[0])

    def evaluate() -> float:
        start = time.perf_counter()
        [value.numpy() for value in runner.evaluate(data.x_val, data.y_val)]
        return (time.perf_counter() - start) * 1000 / count

    return evaluate


def measure(arch: str, splits: Splits, detailed: bool) -> dict[str, float]:
    """Seconds per trial-epoch (one network, 60K images) of each way of training; `detailed`
    adds the old loop, one evaluation per epoch, and a stack of 2 x trials."""
    params = load_params(PARAMS / f"{arch}.yaml", batch_size=60)
    x, y = splits.x_train, splits.y_train
    scale = FULL / len(x)
    data = DataTensors.from_splits(splits)
    times = {}
    model = build_model(params, x.shape[1:], 10, 0)
    times["gflop_per_epoch"] = training_gflop_per_image(model) * FULL
    if detailed:
        xt, yt = tf.constant(x), tf.constant(y)
        times["A_old_loop"] = timed(old_loop(model, half_masks(model), xt, yt, 60)) * scale
    model = build_model(params, x.shape[1:], 10, 0)
    model.compile(
        tf_keras.optimizers.Adam(params.learning_rate),
        tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    times["B_keras_fit"] = scale * timed(
        lambda: model.fit(x, y, batch_size=60, epochs=1, verbose=0, shuffle=True)
    )
    template = build_model(params, x.shape[1:], 10, 0)
    times["C_lthnb_dense"] = scale * timed(engine_epoch(params, template, data, 1, False, 100))
    times["C_lthnb_masked"] = scale * timed(engine_epoch(params, template, data, 1, True, 100))
    if detailed:
        once = engine_epoch(params, template, data, 1, True, FULL)
        times["C_lthnb_masked_eval_per_epoch"] = scale * timed(once)
    sizes = (params.trials, 2 * params.trials, 5 * params.trials) if detailed else (params.trials,)
    for size in sizes:
        epoch = engine_epoch(params, template, data, size, True, 100)
        times[f"D_together_{size}"] = scale * timed(epoch) / size
    if BF16:
        half = params.replace(precision="mixed_bfloat16")
        epoch = engine_epoch(half, template, data, params.trials, True, 100)
        times[f"E_together_{params.trials}_mixed_bfloat16"] = scale * timed(epoch) / params.trials
    augmented = params.replace(augmentation=["crop", "flip"])
    epoch = engine_epoch(augmented, template, data, params.trials, True, 100)
    times[f"G_together_{params.trials}_crop_flip"] = scale * timed(epoch) / params.trials
    for images in EVAL_BATCHES:
        per_thousand = timed(evaluation(params, template, data, params.trials, images))
        times[f"F_eval_{images}_images_per_batch"] = per_thousand
    if detailed:
        pair = sizes[1]  # tickets and one control each
        epoch = engine_epoch(params, template, data, pair, False, 100)
        times[f"D_dense_{pair}"] = scale * timed(epoch) / pair
        epoch = engine_epoch(params, template, data, pair, True, FULL)
        times[f"D_together_{pair}_eval_per_epoch"] = scale * timed(epoch) / pair
    return times


def lthnb_best(figures: dict[str, float]) -> float:
    """lthnb's best seconds per trial-epoch, masked: one network (C) or a round together (D)."""
    return min(
        seconds
        for key, seconds in figures.items()
        if key == "C_lthnb_masked"
        or (key.startswith("D_together") and not key.endswith("_eval_per_epoch"))
    )


def round_zero_stack(figures: dict[str, float]) -> int:
    """The smallest stack (D) measured: the params file's trials."""
    return min(int(key.split("_")[2]) for key in figures if key.startswith("D_together_"))


def main() -> None:
    ChunkClock.install()
    splits = load_dataset("fashion_mnist", validation_size=5000, seed=0)
    print(f"machine: {os.cpu_count()} CPU cores; TensorFlow {tf.__version__}")
    limit = matmul_gflops()
    print(f"large matmul: {limit:.1f} GFLOP/s")
    lenet = measure("lenet", splits, detailed=True)
    subset = np.random.default_rng(0).choice(len(splits.x_train), CONV2_SUBSET, replace=False)

    def cifar_shaped(images: np.ndarray) -> np.ndarray:
        return np.pad(np.repeat(images, 3, axis=-1), ((0, 0), (2, 2), (2, 2), (0, 0)))

    conv2_splits = Splits(
        "fashion_mnist",
        "bench",
        cifar_shaped(splits.x_train[subset]),
        splits.y_train[subset],
        cifar_shaped(splits.x_val[:1000]),
        splits.y_val[:1000],
        cifar_shaped(splits.x_test[:1000]),
        splits.y_test[:1000],
    )
    conv2 = measure("conv2", conv2_splits, detailed=False)
    for name, figures in (("lenet", lenet), ("conv2", conv2)):
        note = "" if name == "lenet" else f" (measured on {CONV2_SUBSET} images, scaled to 60K)"
        print(f"{name}: seconds per trial-epoch of 60K images{note}")
        best = lthnb_best(figures)
        for key, seconds in figures.items():
            if key.startswith("F_"):
                print(f"  {key:34s} {seconds:8.3f} s per 1000 images per network")
            elif key != "gflop_per_epoch":
                rate = figures["gflop_per_epoch"] / seconds
                print(
                    f"  {key:34s} {seconds:8.2f} s  {rate:6.1f} GFLOP/s "
                    f"({100 * rate / limit:.0f}% of matmul)"
                )
        print(f"  lthnb best                         {best:8.2f} s")
    print("\n".join(conv_options_report()))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MiB")
    size = max(int(key.rsplit("_", 1)[1]) for key in lenet if key.startswith("D_dense_"))
    print(
        f"masks' cost, {size} networks together: "
        f"{lenet[f'D_together_{size}'] / lenet[f'D_dense_{size}']:.3f}"
    )
    trials = round_zero_stack(lenet)
    print(
        "per-network seconds, tickets with all four controls against one control each: "
        f"{lenet[f'D_together_{5 * trials}'] / lenet[f'D_together_{2 * trials}']:.3f}"
    )
    evaluation_cost = lenet["C_lthnb_masked"] / lenet["C_lthnb_masked_eval_per_epoch"]
    stacked_evaluation_cost = (
        lenet[f"D_together_{size}"] / lenet[f"D_together_{size}_eval_per_epoch"]
    )
    print(
        "evaluating every 100 iterations against once per epoch: "
        f"{evaluation_cost:.3f} (one network), {stacked_evaluation_cost:.3f} ({size} together)"
    )
    masked_over = lenet["C_lthnb_masked"] / lenet["C_lthnb_dense"]
    lenet_speedup = lenet["B_keras_fit"] / lthnb_best(lenet)
    conv2_speedup = conv2["B_keras_fit"] / lthnb_best(conv2)
    trials = round_zero_stack(conv2)
    augmented_over = conv2[f"G_together_{trials}_crop_flip"] / conv2[f"D_together_{trials}"]
    if BF16:
        bf16_over = conv2[f"E_together_{trials}_mixed_bfloat16"] / conv2[f"D_together_{trials}"]
    print(
        f"ratios: masked_over_unmasked={masked_over:.3f} lenet_speedup={lenet_speedup:.2f} "
        f"conv2_speedup={conv2_speedup:.2f} eval_every_100_over_per_epoch={evaluation_cost:.3f}"
        f" conv2_crop_flip_over_plain={augmented_over:.3f}"
        + (f" conv2_bf16_over_float32={bf16_over:.3f}" if BF16 else "")
    )


if __name__ == "__main__":
    main()
