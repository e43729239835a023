"""Choose CPU or GPU before TensorFlow allocates anything (the old code's `enable_gpu`)."""

from __future__ import annotations

import contextlib
import functools
import warnings
from pathlib import Path

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


BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split()}


def bf16_native(device_used: str, flags: set[str], gpu_capabilities: list[tuple[int, int]]) -> bool:
    """Does this device compute bfloat16 in hardware? CPUs with AVX512-BF16 or AMX; NVIDIA
    GPUs of compute capability 8.0 (Ampere) and later. Elsewhere it is emulated, and slow."""
    if device_used.startswith("gpu"):
        return bool(gpu_capabilities) and min(gpu_capabilities) >= (8, 0)
    return any(flag in flags for flag in BF16_CPU_FLAGS)


@functools.cache
def check_precision(precision: str, device_used: str) -> None:
    """Warn, once per process, when `mixed_bfloat16` will be emulated: the results stay valid
    (a warning, not an error), but training is slower than at float32."""
    if precision != "mixed_bfloat16":
        return
    capabilities = [
        tuple(tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)))
        for gpu in tf.config.list_physical_devices("GPU")
    ]
    if not bf16_native(device_used, cpu_flags(), capabilities):
        on_gpu = device_used.startswith("gpu")
        where = "GPU older than Ampere" if on_gpu else "CPU without " + " or ".join(BF16_CPU_FLAGS)
        warnings.warn(
            f"precision: mixed_bfloat16 on a {where}: bfloat16 is emulated and will be slower "
            "than float32; set precision: float32",
            stacklevel=2,
        )


def set_up_device(device: str, precision: str) -> None:
    """Everything a run does before training: the device, the precision check, and
    deterministic ops (a resumed round must retrain to the same numbers)."""
    check_precision(precision, configure_device(device))
    tf.config.experimental.enable_op_determinism()
