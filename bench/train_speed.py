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
ResNet-20 (open_lth's, on the 28x28x1 images as params/resnet20_fashion_mnist.yaml trains it;
its recipe: SGD 0.1, momentum 0.9, weight decay 1e-4, batch 128; no augmentation, as `fit` has
none; one validation of 5K images per epoch, scaled with the epoch) has its own rows, timed in
turns (each repeat runs every row once) so that a machine whose speed drifts moves them alike:
(B) `fit`, (C) one network and (D) a stack of 5, half pruned, in float32 and, on CPUs with
bfloat16 in hardware, the same three at `mixed_bfloat16` (`fit` under Keras's mixed_bfloat16
policy, (E) for lthnb); and (H) the float32 stack of 5 in the Keras container, the engine's way
to train a network with a layer the stack does not compute (its cost against the stack).
LeNet runs a full epoch; Conv-2 and ResNet-20 a subset, scaled to 60K (said in the output). It
also measures a large matmul's GFLOP/s, the compute limit these figures are compared with, and
peak RSS, and with Conv-2 prints bench/conv_options.py's table (layouts, oneDNN, bfloat16 on
Conv-2's costliest layer). The last line holds the ratios of the networks timed.

    .venv/bin/python bench/train_speed.py                   all three networks (or: make bench)
    .venv/bin/python bench/train_speed.py --nets resnet20   ResNet-20's rows alone
    .venv/bin/python bench/train_speed.py --quick           a check that it runs: few images and
                                                            one timed call, figures not meaningful
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
from lthnb.training.keras_container import KerasContainer  # noqa: E402
from lthnb.training.stacked_weights import StackedWeights  # noqa: E402

PARAMS = Path(__file__).resolve().parent.parent / "params"
FULL = 60_000
VALIDATION = 5_000  # images per validation; ResNet-20's rows validate this many per 60K trained
EVAL_BATCHES = (500, 2000, 8000)  # images per evaluation batch, over the whole stack
BF16 = bf16_native("cpu", cpu_flags(), [])
NETS = ("lenet", "conv2", "resnet20")
RESNET_STACK = 5


@dataclass(frozen=True)
class Sizes:
    """Training images each network is timed on (None: the whole training split), and timed
    calls per row after the warm-up."""

    lenet: int | None
    conv2: int
    resnet20: int
    repeats: int


# ResNet-20's rows time 5 iterations per call (640 images, with a validation of 53): 19
# networks' worth of calls (7 rows), 3 calls each, and a trace per row, which adds about 2 to 3
# minutes (an estimate from a busy machine) to the 9 minutes LeNet and Conv-2 take.
DEFAULT = Sizes(lenet=None, conv2=5_000, resnet20=640, repeats=2)
QUICK = Sizes(lenet=3_000, conv2=300, resnet20=256, repeats=1)
REPEATS = DEFAULT.repeats  # main sets the run's


def timed_together(calls: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Seconds of each call: the fastest of REPEATS, after a warm-up call of each (tracing,
    allocation), the repeats taken in turns. A call that returns a float reports its own
    seconds; others are timed whole. This machine's timings wander by 15% from call to call;
    the minimum is the steadiest figure, and taking turns keeps the ratios steadier still."""
    for call in calls.values():
        call()
    best = dict.fromkeys(calls, math.inf)
    for _ in range(REPEATS):
        for name, call in calls.items():
            start = time.perf_counter()
            reported = call()
            seconds = reported if isinstance(reported, float) else time.perf_counter() - start
            best[name] = min(best[name], seconds)
    return best


def timed(function, *args) -> float:
    """Seconds of one call, as `timed_together` times each."""
    return timed_together({"": lambda: function(*args)})[""]


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


def engine_epoch(
    params,
    template,
    data: DataTensors,
    size: int,
    pruned: bool,
    eval_every: int,
    container: type[StackedWeights] | None = None,
):
    """(C)/(D): one epoch of `size` networks through the engine, each with its own batches,
    half pruned or dense, in `container` (None: the engine's choice); the call returns the
    seconds its chunks took."""
    epoch = steps_per_epoch(data.train_size, params.batch_size)
    params = params.replace(iterations=epoch, eval_every=min(eval_every, epoch))
    weights = get_weights(template)
    masks = (
        half_masks(template) if pruned else dense_masks(kernels_of(weights, layer_kinds(template)))
    )
    jobs = [NetworkJob(weights, masks, seed) for seed in range(size)]
    engine = Engine(params, template, data, container)

    def train() -> float:
        ChunkClock.seconds = 0.0
        engine.train(jobs)
        return ChunkClock.seconds

    return train


@contextmanager
def keras_policy(precision: str) -> Iterator[None]:
    """Keras layers built inside compute at `precision` (float32 or mixed_bfloat16, also the
    names of Keras's policies), as lthnb's engine does at that `precision`."""
    previous = tf_keras.mixed_precision.global_policy()
    tf_keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        tf_keras.mixed_precision.set_global_policy(previous)


def keras_optimizer(params) -> tf_keras.optimizers.Optimizer:
    """The Keras optimizer of params' recipe. Keras's weight decay is decoupled, lthnb's adds to
    the gradient: the same cost, one more pass over the weights."""
    decay = params.weight_decay or None
    if params.optimizer == "adam":
        return tf_keras.optimizers.Adam(params.learning_rate, weight_decay=decay)
    return tf_keras.optimizers.SGD(
        params.learning_rate, momentum=params.momentum, weight_decay=decay
    )


def keras_fit(params, x: np.ndarray, y: np.ndarray):
    """(B): one epoch of plain Keras `fit` of the unpruned network at `params.precision`, with
    params' optimizer and batch size, no validation."""
    with keras_policy(params.precision):
        model = build_model(params, x.shape[1:], 10, 0)
    model.compile(
        keras_optimizer(params), tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return lambda: model.fit(x, y, batch_size=params.batch_size, epochs=1, verbose=0, shuffle=True)


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
    times["B_keras_fit"] = scale * timed(keras_fit(params, x, y))
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


def measure_resnet(splits: Splits) -> dict[str, float]:
    """ResNet-20's seconds per trial-epoch: `fit`, one network and a stack of RESNET_STACK in
    each precision the CPU computes in hardware, and the stack in the Keras container."""
    # the recipe at its first learning rate (the bench's epochs end before any milestone)
    params = load_params(PARAMS / "resnet20.yaml", augmentation=[], lr_milestones=[])
    x, y = splits.x_train, splits.y_train
    data = DataTensors.from_splits(splits)
    template = build_model(params, x.shape[1:], 10, 0)
    once = steps_per_epoch(len(x), params.batch_size)  # one validation per epoch, as the recipe

    def in_engine(at, size: int, container: type[StackedWeights] | None = None):
        return engine_epoch(at, template, data, size, True, once, container), size

    rows = {}  # name: (call, networks it trains)
    for precision in ("float32", "mixed_bfloat16") if BF16 else ("float32",):
        at = params.replace(precision=precision)
        tag = "" if precision == "float32" else f"_{precision}"  # bfloat16's lthnb rows are (E)
        rows[f"B_keras_fit{tag}"] = keras_fit(at, x, y), 1
        rows[f"{'E' if tag else 'C'}_lthnb_masked{tag}"] = in_engine(at, 1)
        rows[f"{'E' if tag else 'D'}_together_{RESNET_STACK}{tag}"] = in_engine(at, RESNET_STACK)
    rows[f"H_keras_container_{RESNET_STACK}"] = in_engine(params, RESNET_STACK, KerasContainer)
    seconds = timed_together({name: call for name, (call, _) in rows.items()})
    scale = FULL / len(x)
    times = {"gflop_per_epoch": training_gflop_per_image(template) * FULL}
    times.update({name: scale * seconds[name] / size for name, (_, size) in rows.items()})
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


def subset(
    splits: Splits,
    train: int,
    val: int,
    test: int,
    shape: Callable[[np.ndarray], np.ndarray] = lambda images: images,
) -> Splits:
    """`train` training images drawn at random (seed 0), the first `val` and `test` images of
    the other splits, each reshaped by `shape`."""
    chosen = np.random.default_rng(0).choice(len(splits.x_train), train, replace=False)
    return Splits(
        splits.name,
        "bench",
        shape(splits.x_train[chosen]),
        splits.y_train[chosen],
        shape(splits.x_val[:val]),
        splits.y_val[:val],
        shape(splits.x_test[:test]),
        splits.y_test[:test],
    )


def cifar_shaped(images: np.ndarray) -> np.ndarray:
    """Fashion-MNIST images as Conv-2's 32x32x3 input: channels repeated, 2 pixels padded."""
    return np.pad(np.repeat(images, 3, axis=-1), ((0, 0), (2, 2), (2, 2), (0, 0)))


def print_figures(name: str, figures: dict[str, float], images: int | None, limit: float) -> None:
    """A network's rows: seconds per trial-epoch, and the share of the matmul rate they reach;
    `images`: the subset the rows were measured on (None: a whole epoch)."""
    note = f" (measured on {images} images, scaled to 60K)" if images else ""
    print(f"{name}: seconds per trial-epoch of 60K images{note}")
    for key, seconds in figures.items():
        if key.startswith("F_"):
            print(f"  {key:34s} {seconds:8.3f} s per 1000 images per network")
        elif key != "gflop_per_epoch":
            rate = figures["gflop_per_epoch"] / seconds
            print(
                f"  {key:34s} {seconds:8.2f} s  {rate:6.1f} GFLOP/s "
                f"({100 * rate / limit:.0f}% of matmul)"
            )
    print(f"  lthnb best                         {lthnb_best(figures):8.2f} s")


def lenet_lines(lenet: dict[str, float]) -> None:
    """What LeNet's detailed rows say: the masks', the controls' and the evaluations' costs."""
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
    stacked_evaluation_cost = (
        lenet[f"D_together_{size}"] / lenet[f"D_together_{size}_eval_per_epoch"]
    )
    print(
        "evaluating every 100 iterations against once per epoch: "
        f"{evaluation_cost(lenet):.3f} (one network), {stacked_evaluation_cost:.3f} "
        f"({size} together)"
    )


def evaluation_cost(lenet: dict[str, float]) -> float:
    """One network evaluated every 100 iterations against once per epoch."""
    return lenet["C_lthnb_masked"] / lenet["C_lthnb_masked_eval_per_epoch"]


def ratios(figures: dict[str, dict[str, float]]) -> dict[str, str]:
    """The last line's ratios of the networks measured, in the order the bench always had."""
    lenet, conv2, resnet = (figures.get(name) for name in NETS)
    out = {}
    if lenet:
        out["masked_over_unmasked"] = f"{lenet['C_lthnb_masked'] / lenet['C_lthnb_dense']:.3f}"
        out["lenet_speedup"] = f"{lenet['B_keras_fit'] / lthnb_best(lenet):.2f}"
    if conv2:
        out["conv2_speedup"] = f"{conv2['B_keras_fit'] / lthnb_best(conv2):.2f}"
    if lenet:
        out["eval_every_100_over_per_epoch"] = f"{evaluation_cost(lenet):.3f}"
    if conv2:
        trials = round_zero_stack(conv2)
        stack = conv2[f"D_together_{trials}"]
        out["conv2_crop_flip_over_plain"] = f"{conv2[f'G_together_{trials}_crop_flip'] / stack:.3f}"
        if BF16:
            bf16 = conv2[f"E_together_{trials}_mixed_bfloat16"]
            out["conv2_bf16_over_float32"] = f"{bf16 / stack:.3f}"
    if resnet:
        stack = resnet[f"D_together_{RESNET_STACK}"]
        out["resnet20_speedup"] = f"{resnet['B_keras_fit'] / stack:.2f}"
        if BF16:
            bf16 = resnet[f"E_together_{RESNET_STACK}_mixed_bfloat16"]
            out["resnet20_bf16_speedup"] = f"{resnet['B_keras_fit_mixed_bfloat16'] / bf16:.2f}"
            out["resnet20_bf16_over_float32"] = f"{bf16 / stack:.3f}"
        container = resnet[f"H_keras_container_{RESNET_STACK}"]
        out["resnet20_keras_container_over_stack"] = f"{container / stack:.3f}"
    return out


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--nets", nargs="+", choices=NETS, default=list(NETS), help="networks to time (all)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="few images, one timed call: checks that it runs"
    )
    return parser.parse_args()


def main() -> None:
    global REPEATS
    args = arguments()
    sizes = QUICK if args.quick else DEFAULT
    REPEATS = sizes.repeats
    ChunkClock.install()
    splits = load_dataset("fashion_mnist", validation_size=VALIDATION, seed=0)
    print(f"machine: {os.cpu_count()} CPU cores; TensorFlow {tf.__version__}")
    if args.quick:
        print("--quick: few images and one timed call each; the figures are not meaningful")
    limit = matmul_gflops()
    print(f"large matmul: {limit:.1f} GFLOP/s")
    figures, images = {}, {}
    if "lenet" in args.nets:
        images["lenet"] = sizes.lenet
        lenet_splits = subset(splits, sizes.lenet, VALIDATION, 1000) if sizes.lenet else splits
        figures["lenet"] = measure("lenet", lenet_splits, detailed=True)
    if "conv2" in args.nets:
        images["conv2"] = sizes.conv2
        conv2_splits = subset(splits, sizes.conv2, 1000, 1000, cifar_shaped)
        figures["conv2"] = measure("conv2", conv2_splits, detailed=False)
    if "resnet20" in args.nets:
        images["resnet20"] = sizes.resnet20
        val = max(1, round(VALIDATION * sizes.resnet20 / FULL))  # one 5K validation per 60K epoch
        figures["resnet20"] = measure_resnet(subset(splits, sizes.resnet20, val, 128))
    for name in NETS:  # the order they always had, whatever the order asked
        if name in figures:
            print_figures(name, figures[name], images[name], limit)
    if "conv2" in figures:
        print("\n".join(conv_options_report()))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MiB")
    if "lenet" in figures:
        lenet_lines(figures["lenet"])
    print("ratios: " + " ".join(f"{name}={value}" for name, value in ratios(figures).items()))


if __name__ == "__main__":
    main()
