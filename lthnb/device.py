"""Choose CPU or GPU before TensorFlow allocates anything (the old code's `enable_gpu`)."""

from __future__ import annotations

import contextlib

import tensorflow as tf


class DeviceError(RuntimeError):
    """The requested device is not available."""


def configure_device(device: str) -> str:
    """Apply `device` (auto | cpu | gpu) and return what will be used, e.g. 'gpu x1'."""
    gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        raise DeviceError(
            "device: 'gpu' was asked for but TensorFlow sees no GPU; install the CUDA extra "
            "(pip install -e '.[cuda]') or set device: auto"
        )
    # Both settings fail once TensorFlow has initialised its devices; then they stay as they are.
    if device == "cpu" or not gpus:
        with contextlib.suppress(RuntimeError):
            tf.config.set_visible_devices([], "GPU")
        return "cpu"
    for gpu in gpus:
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)
    return f"gpu x{len(gpus)}"
