"""What the settings #15 asks about do to Conv-2's costliest layer (not a test).

The layer is Conv-2's second convolution: 64 -> 64 channels, 3x3, on 32x32 images, a batch of
60, forward and backward (the kernel's and the input's gradients), as one compiled step. Each
row is the fastest of a few repeats after a warm-up, in milliseconds per step:
  - channels-last (NHWC, TensorFlow's CPU layout and lthnb's) against channels-first (NCHW);
  - float32 against bfloat16 compute (`precision: mixed_bfloat16`);
  - TensorFlow's oneDNN kernels on (the default on x86 Linux) against off: a setting read at
    import, so that row comes from a child process started with TF_ENABLE_ONEDNN_OPTS=0.
The whole network's figures (bf16 included) are in bench/train_speed.py, which prints these rows.

    .venv/bin/python bench/conv_options.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

BATCH, SIZE, CHANNELS = 60, 32, 64
STEPS, REPEATS = 10, 3


def layer_milliseconds(layout: str, dtype: tf.DType) -> float | None:
    """One forward and backward step of the layer; None where TensorFlow has no such kernel."""
    shape = (BATCH, SIZE, SIZE, CHANNELS) if layout == "NHWC" else (BATCH, CHANNELS, SIZE, SIZE)
    images = tf.cast(tf.random.normal(shape), dtype)
    kernel = tf.cast(tf.random.normal((3, 3, CHANNELS, CHANNELS)), dtype)

    @tf.function
    def step(images: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch([images, kernel])
            out = tf.nn.relu(tf.nn.conv2d(images, kernel, 1, "SAME", data_format=layout))
            total = tf.reduce_sum(tf.cast(out, tf.float32))
        image_gradient, kernel_gradient = tape.gradient(total, [images, kernel])
        return tf.reduce_sum(tf.cast(image_gradient, tf.float32)) + tf.reduce_sum(
            tf.cast(kernel_gradient, tf.float32)
        )

    try:
        step(images, kernel).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
        return None
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(STEPS):
            step(images, kernel).numpy()
        best = min(best, (time.perf_counter() - start) / STEPS)
    return 1000 * best


def rows() -> dict[str, float | None]:
    """This process's rows (oneDNN as TensorFlow was imported with it)."""
    return {
        f"{layout} {dtype.name}": layer_milliseconds(layout, dtype)
        for layout in ("NHWC", "NCHW")
        for dtype in (tf.float32, tf.bfloat16)
    }


def json_without_onednn(script: str, flag: str) -> dict:
    """What `script flag` prints as its last line (JSON), run in a child process with oneDNN's
    kernels off: TensorFlow reads the switch once, at import."""
    child = subprocess.run(
        [sys.executable, script, flag],
        env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0"},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(child.stdout.strip().splitlines()[-1])


def without_onednn() -> dict[str, float | None]:
    """The same rows from a child process with oneDNN's kernels off."""
    return json_without_onednn(__file__, "--json")


def report() -> list[str]:
    """The table's lines: each setting's ms per step and its ratio to NHWC float32 with oneDNN."""
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"
    measured = {("on" if onednn else "off"): rows()}
    if onednn:
        measured["off"] = without_onednn()
    baseline = measured["on"]["NHWC float32"] if onednn else None
    lines = [f"conv 64->64 3x3, 32x32, batch {BATCH}, forward+backward: ms per step"]
    for state, figures in measured.items():
        for setting, milliseconds in figures.items():
            if milliseconds is None:
                text = "no CPU kernel"
            else:
                text = f"{milliseconds:7.2f} ms"
                if baseline:
                    text += f"  {milliseconds / baseline:5.2f} x NHWC float32 with oneDNN"
            lines.append(f"  oneDNN {state:3s} {setting:16s} {text}")
    return lines


if __name__ == "__main__":
    if "--json" in sys.argv:
        print(json.dumps(rows()))
    else:
        print("\n".join(report()))
