"""Could one grouped convolution speed up a stack's convolutions of few channels? (not a test)

The stack (lthnb/training/stack.py) holds a layer's activations as (networks, batch, H, W, C)
and convolves each network apart, one `tf.nn.conv2d` per network. ResNet-20's convolutions are
small (16, 32, 64 channels), so each call keeps the CPU busy only briefly. The idea measured
here: lay the networks side by side on the channel axis, (batch, H, W, networks * C), and
convolve them all at once with a kernel (3, 3, C, networks * C'), which TensorFlow runs as a
grouped convolution (groups = the input's depth / the kernel's input depth). Batch norm, ReLU
and the residual Add work per channel, so a stack could keep that layout from layer to layer.

Each row is one 3x3 convolution C -> C of 5 networks (batch 128, stride 1, "same"), forward and
backward (the input's and the kernels' gradients) as one compiled step, at ResNet-20's stages on
Fashion-MNIST's 28x28 images (16 channels at 28x28, 32 at 14x14, 64 at 7x7), the fastest of a
few repeats after a warm-up, in ms per step and as a multiple of "per network":
  - per network: the stack's way, one `tf.nn.conv2d` per network;
  - grouped: one `tf.nn.conv2d` over the side-by-side layout, kernel (3, 3, C, 5C);
  - grouped+layout: the same with the stack's layout changed to side by side and back around
    it (what it costs if only the convolutions changed layout);
  - block-diagonal: one ordinary convolution 5C -> 5C whose kernel is zero off the networks'
    diagonal blocks: 5 times the multiplications, one large convolution;
  - depthwise+sum: `tf.nn.depthwise_conv2d` with multiplier C' and a sum over each network's C
    inputs: the grouped convolution's multiplications, through a (batch, H, W, 5 C C')
    intermediate.
Every way is first checked against per network (outputs and both gradients). Whether the CPU has
a grouped kernel at all is checked in this process (oneDNN on, TensorFlow's default on x86
Linux, as lthnb runs) and in a child process with TF_ENABLE_ONEDNN_OPTS=0. The last line is a
one-line verdict.

    .venv/bin/python bench/grouped_conv.py               ResNet-20's three shapes
    .venv/bin/python bench/grouped_conv.py --all-shapes  every channels x map size pair
    .venv/bin/python bench/grouped_conv.py --quick       a check that it runs (batch 8, one step)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")  # each way's step is its own tf.function: no retracing notes

from conv_options import json_without_onednn  # noqa: E402

from lthnb.training.device import bf16_native, cpu_flags  # noqa: E402

NETWORKS = 5
RESNET_SHAPES = ((16, 28), (32, 14), (64, 7))  # ResNet-20's (channels, map side) on 28x28 inputs
CHANNELS, SIDES = (16, 32, 64), (28, 14, 7)
INTERMEDIATE_LIMIT = 2**30  # bytes: depthwise+sum's intermediate beyond this is not run
TOLERANCE = {tf.float32: 1e-4, tf.bfloat16: 3e-2}  # relative to the largest value compared
NO_KERNEL = (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError)

Core = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


@dataclass(frozen=True)
class Settings:
    """Images per network in a step, steps per timed repeat, repeats (the fastest is kept)."""

    batch: int
    steps: int
    repeats: int


FULL = Settings(batch=128, steps=5, repeats=3)
QUICK = Settings(batch=8, steps=1, repeats=1)


def side_by_side(x: tf.Tensor) -> tf.Tensor:
    """(networks, batch, H, W, C) -> (batch, H, W, networks * C), network by network."""
    return tf.reshape(tf.transpose(x, [1, 2, 3, 0, 4]), [*x.shape[1:4], -1])


def stacked(y: tf.Tensor) -> tf.Tensor:
    """(batch, H, W, networks * C) -> (networks, batch, H, W, C): `side_by_side` undone."""
    return tf.transpose(tf.reshape(y, [*y.shape[:3], NETWORKS, -1]), [3, 0, 1, 2, 4])


def per_network(x: tf.Tensor, kernels: tf.Tensor) -> tf.Tensor:
    """The stack's way: x (networks, batch, H, W, C), kernels (networks, 3, 3, C, C')."""
    return tf.stack(
        [
            tf.nn.conv2d(images, kernel, 1, "SAME")
            for images, kernel in zip(tf.unstack(x), tf.unstack(kernels), strict=True)
        ]
    )


def grouped(x: tf.Tensor, kernels: tf.Tensor) -> tf.Tensor:
    """x side by side; the kernels (networks, 3, 3, C, C') as one (3, 3, C, networks * C'):
    group n's outputs are channels n*C' to (n+1)*C' - 1, as `side_by_side` lays them."""
    kernel = tf.reshape(tf.transpose(kernels, [1, 2, 3, 0, 4]), [*kernels.shape[1:4], -1])
    return tf.nn.conv2d(x, kernel, 1, "SAME")


def grouped_from_stack(x: tf.Tensor, kernels: tf.Tensor) -> tf.Tensor:
    """`grouped` on the stack's layout, changed there and back."""
    return stacked(grouped(side_by_side(x), kernels))


def block_diagonal(x: tf.Tensor, kernels: tf.Tensor) -> tf.Tensor:
    """x side by side; one dense kernel (3, 3, networks * C, networks * C') holding each
    network's kernel on the diagonal (its gradient reaches only those blocks)."""
    networks, height, width, inputs, outputs = kernels.shape
    blocks = tf.einsum("nhwcd,nm->hwncmd", kernels, tf.eye(networks, dtype=kernels.dtype))
    dense = tf.reshape(blocks, [height, width, networks * inputs, networks * outputs])
    return tf.nn.conv2d(x, dense, 1, "SAME")


def depthwise_sum(x: tf.Tensor, kernels: tf.Tensor) -> tf.Tensor:
    """x side by side; a depthwise convolution with multiplier C' gives every input channel's
    C' contributions, summed over each network's C inputs."""
    networks, height, width, inputs, outputs = kernels.shape
    kernel = tf.reshape(tf.transpose(kernels, [1, 2, 0, 3, 4]), [height, width, -1, outputs])
    terms = tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "SAME")
    batch, rows, columns, _ = terms.shape
    summed = tf.reduce_sum(tf.reshape(terms, [batch, rows, columns, networks, inputs, outputs]), 4)
    return tf.reshape(summed, [batch, rows, columns, networks * outputs])


# name: (core, whether it takes the side-by-side layout)
WAYS: dict[str, tuple[Core, bool]] = {
    "per network": (per_network, False),
    "grouped": (grouped, True),
    "grouped+layout": (grouped_from_stack, False),
    "block-diagonal": (block_diagonal, True),
    "depthwise+sum": (depthwise_sum, True),
}


def compiled_step(core: Core) -> Callable[..., tuple[tf.Tensor, ...]]:
    """Forward and backward of `core`: its output and the gradients of sum(output * weights)
    (arbitrary weights, so that every gradient is a real one) for x and the kernels."""

    @tf.function(autograph=False)
    def step(x: tf.Tensor, kernels: tf.Tensor, weights: tf.Tensor) -> tuple[tf.Tensor, ...]:
        with tf.GradientTape() as tape:
            tape.watch([x, kernels])
            y = core(x, kernels)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * weights)
        return (y, *tape.gradient(loss, [x, kernels]))

    return step


def inputs(channels: int, side: int, batch: int, dtype: tf.DType) -> tuple[tf.Tensor, ...]:
    """The stack's x (networks, batch, side, side, C), kernels and output weights, seeded."""
    generator = tf.random.Generator.from_seed(0)
    x = generator.normal((NETWORKS, batch, side, side, channels))
    kernels = generator.normal((NETWORKS, 3, 3, channels, channels)) / math.sqrt(9 * channels)
    weights = generator.normal((NETWORKS, batch, side, side, channels))
    return tf.cast(x, dtype), tf.cast(kernels, dtype), weights


def disagreement(ours: tuple[tf.Tensor, ...], reference: tuple[tf.Tensor, ...]) -> float:
    """The largest difference of output or gradient, relative to the largest value compared."""
    worst = 0.0
    for a, b in zip(ours, reference, strict=True):
        a, b = (np.asarray(tf.cast(t, tf.float32)) for t in (a, b))
        worst = max(worst, float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)))
    return worst


def check(way: str, channels: int, side: int, dtype: tf.DType) -> str | None:
    """None when `way` gives per network's output and gradients on a small batch (the stack's
    layout both sides, so layout changes are checked too); else why not, in a few words."""
    core, side_layout = WAYS[way]
    whole = (lambda x, k: stacked(core(side_by_side(x), k))) if side_layout else core
    x, kernels, weights = inputs(channels, side, 2, dtype)
    try:
        ours = compiled_step(whole)(x, kernels, weights)
    except NO_KERNEL as error:
        return "no CPU kernel: " + first_line(error)
    reference = compiled_step(per_network)(x, kernels, weights)
    error = disagreement(ours, reference)
    return None if error <= TOLERANCE[dtype] else f"differs by {error:.1e}"


def first_line(error: Exception) -> str:
    """The line of TensorFlow's error that says what went wrong, without its frame."""
    frame = ("Graph execution error", "Detected at node", "File ", "[[")
    lines = [
        re.sub(r"^\{\{[^}]*\}\}\s*", "", line.strip())
        for line in getattr(error, "message", str(error)).splitlines()
    ]
    telling = [line for line in lines if line and not line.startswith(frame)]
    return (telling or [type(error).__name__])[0]


def milliseconds(way: str, channels: int, side: int, dtype: tf.DType, settings: Settings) -> float:
    """ms per forward+backward step of `way` on its own layout: the fastest of the repeats."""
    core, side_layout = WAYS[way]
    x, kernels, weights = inputs(channels, side, settings.batch, dtype)
    if side_layout:
        x, weights = side_by_side(x), side_by_side(weights)
    step = compiled_step(core)
    step(x, kernels, weights)[0].numpy()
    best = math.inf
    for _ in range(settings.repeats):
        start = time.perf_counter()
        for _ in range(settings.steps):
            step(x, kernels, weights)[0].numpy()
        best = min(best, (time.perf_counter() - start) / settings.steps)
    return 1000 * best


def support() -> dict[str, str]:
    """Whether this process's TensorFlow runs a grouped convolution's forward and gradients on
    the CPU: "yes", or the error's first line."""
    x = tf.random.normal((2, 7, 7, NETWORKS * 4))
    kernels = tf.random.normal((NETWORKS, 3, 3, 4, 4))
    found = {}
    try:
        grouped(x, kernels).numpy()
        found["forward"] = "yes"
    except NO_KERNEL as error:
        found["forward"] = first_line(error)
    try:
        compiled_step(grouped)(x, kernels, tf.ones((2, 7, 7, NETWORKS * 4)))[1].numpy()
        found["gradients"] = "yes"
    except NO_KERNEL as error:
        found["gradients"] = first_line(error)
    return found


def support_without_onednn() -> dict[str, str]:
    """`support()` from a child process with oneDNN's kernels off (read at import)."""
    return json_without_onednn(__file__, "--support-json")


def support_line(where: str, found: dict[str, str]) -> str:
    return f"{where}: " + "; ".join(
        f"{part} {'yes' if text == 'yes' else 'no (' + text + ')'}" for part, text in found.items()
    )


def intermediate_bytes(way: str, channels: int, side: int, batch: int, dtype: tf.DType) -> int:
    """The bytes of depthwise+sum's (batch, H, W, networks C C') intermediate (0 for others)."""
    if way != "depthwise+sum":
        return 0
    return batch * side * side * NETWORKS * channels * channels * dtype.size


def table(
    shapes: Sequence[tuple[int, int]], dtypes: list[tf.DType], settings: Settings
) -> dict[tuple, float | str]:
    """ms per step (or why there is none) for each (dtype, channels, side, way); prints rows."""
    cells: dict[tuple, float | str] = {}
    widths = [9, 8, 7] + [17] * len(WAYS)
    header = ["dtype", "channels", "map", *WAYS]
    print("  ".join(f"{text:{width}s}" for text, width in zip(header, widths, strict=True)))
    for dtype in dtypes:
        for channels, side in shapes:
            row = [dtype.name, str(channels), f"{side}x{side}"]
            for way in WAYS:
                size = intermediate_bytes(way, channels, side, settings.batch, dtype)
                if size > INTERMEDIATE_LIMIT:
                    cell: float | str = f"not run ({size / 2**30:.0f} GiB)"
                else:
                    cell = check(way, channels, side, dtype) or milliseconds(
                        way, channels, side, dtype, settings
                    )
                cells[dtype.name, channels, side, way] = cell
                baseline = cells[dtype.name, channels, side, "per network"]
                if isinstance(cell, str):
                    text = cell if len(cell) <= 17 else cell[:16] + "…"
                elif way == "per network" or not isinstance(baseline, float):
                    text = f"{cell:.2f} ms"
                else:
                    text = f"{cell:.2f} ({cell / baseline:.2f}x)"
                row.append(text)
            print("  ".join(f"{text:{width}s}" for text, width in zip(row, widths, strict=True)))
    problems = {cell for cell in cells.values() if isinstance(cell, str)}
    for problem in sorted(problems):
        print(f"  {problem}")
    return cells


def verdict(cells: dict[tuple, float | str], found: dict[str, str]) -> str:
    """One line: can the CPU do it, and is it faster than per network at these shapes."""
    if found["gradients"] != "yes" or found["forward"] != "yes":
        return (
            "verdict: grouped convolution is not supported on this CPU for training "
            f"(forward: {found['forward']}; gradients: {found['gradients']}); "
            "the stack keeps one convolution per network"
        )
    baseline = {key[:3]: cell for key, cell in cells.items() if key[3] == "per network"}
    ratios = {
        key[:3]: cell / baseline[key[:3]]
        for key, cell in cells.items()
        if key[3] == "grouped" and isinstance(cell, float)
        if isinstance(baseline[key[:3]], float)
    }
    if not ratios:
        return "verdict: grouped convolution ran nowhere here (see the table)"
    spans = []
    for dtype in dict.fromkeys(key[0] for key in ratios):
        mine = [ratio for key, ratio in ratios.items() if key[0] == dtype]
        spans.append(f"{min(mine):.2f}-{max(mine):.2f}x ({dtype})")
    if max(ratios.values()) < 0.9:
        advice = "worth trying in the stack (keeping the side-by-side layout between layers)"
    elif min(ratios.values()) > 1.1:
        advice = "slower: the stack keeps one convolution per network"
    else:
        advice = "no clear gain: the stack keeps one convolution per network"
    fastest = Counter(fastest_way(cells, key) for key in ratios)
    wins = ", ".join(f"{way} at {count} of {len(ratios)}" for way, count in fastest.items())
    return (
        f"verdict: grouped convolution trains on this CPU, at {', '.join(spans)} per network's "
        f"time over {len(ratios)} shapes: {advice}; fastest: {wins}"
    )


def fastest_way(cells: dict[tuple, float | str], shape: tuple) -> str:
    """The way with the fewest ms at `shape` (dtype, channels, side)."""
    timed = {way: cells[(*shape, way)] for way in WAYS}
    return min((way for way in timed if isinstance(timed[way], float)), key=timed.__getitem__)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--all-shapes", action="store_true", help="16/32/64 channels x 28/14/7 maps (9 shapes)"
    )
    parser.add_argument("--quick", action="store_true", help="batch 8, one step: a check")
    parser.add_argument("--support-json", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = arguments()
    if args.support_json:
        print(json.dumps(support()))
        return
    settings = QUICK if args.quick else FULL
    shapes = [(c, s) for c in CHANNELS for s in SIDES] if args.all_shapes else RESNET_SHAPES
    bf16 = bf16_native("cpu", cpu_flags(), [])
    dtypes = [tf.float32, tf.bfloat16] if bf16 else [tf.float32]
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"
    found = support()
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores")
    print(support_line(f"grouped conv2d on the CPU, oneDNN {'on' if onednn else 'off'}", found))
    if onednn:
        print(support_line("the same with oneDNN off", support_without_onednn()))
    print(
        f"{NETWORKS} networks, batch {settings.batch}, 3x3 conv C->C, forward+backward: ms per "
        f"step, fastest of {settings.repeats} x {settings.steps} steps (x: of per network)"
        + ("; bfloat16 too (this CPU has it in hardware)" if bf16 else "")
    )
    cells = table(shapes, dtypes, settings)
    print(verdict(cells, found))


if __name__ == "__main__":
    main()
