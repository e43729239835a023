"""precision: mixed_bfloat16 computes in bfloat16 with float32 weights, keeps pruned weights at
exactly 0, and warns where bfloat16 is emulated."""

import warnings

import numpy as np
import pytest
import tensorflow as tf
from test_engine import _job, _template, _train

import lthnb.training.device as device
from lthnb.training.device import bf16_native, check_precision
from lthnb.training.stack import NetworkStack


@pytest.mark.parametrize("arch", ["lenet", "conv2"])
def test_bfloat16_stack_keeps_float32_weights_and_agrees_with_float32(
    tiny_params, tiny_splits, arch
):
    params = tiny_params.replace(arch=arch)
    template = _template(params, tiny_splits)
    job = _job(params, tiny_splits, seed=3)
    x = tf.constant(tiny_splits.x_val[None, :50])
    seeds = tf.zeros((1, 2), tf.int64)
    logits = {}
    for dtype in (tf.float32, tf.bfloat16):
        stack = NetworkStack(template, 1, dtype)
        stack.load([job.weights], [job.masks])
        assert all(variable.dtype == tf.float32 for variable in stack.variables)
        logits[dtype] = stack.logits(x, False, seeds)
        assert logits[dtype].dtype == tf.float32
    full, half = (logits[dtype].numpy() for dtype in (tf.float32, tf.bfloat16))
    assert not np.array_equal(full, half)  # it really computed in bfloat16 (8-bit mantissa)
    scale = np.abs(full).max()
    np.testing.assert_allclose(half, full, rtol=0, atol=0.05 * scale)


def test_mixed_bfloat16_training_learns_and_keeps_pruned_weights_zero(tiny_params, tiny_splits):
    params = tiny_params.replace(precision="mixed_bfloat16", iterations=60, learning_rate=0.005)
    jobs = [_job(params, tiny_splits, seed) for seed in (1, 2)]
    for outcome, job in zip(_train(params, tiny_splits, jobs), jobs, strict=True):
        for name, mask in job.masks.items():
            kernel = outcome.final_weights[f"{name}/kernel"]
            assert kernel.dtype == np.float32
            assert np.all(kernel[mask == 0] == 0.0)
            moved = kernel[mask == 1] != job.weights[f"{name}/kernel"][mask == 1]
            assert moved.mean() > 0.5  # (a dead ReLU unit's weights do not move)
        first, last = outcome.evaluations[0], outcome.evaluations[-1]
        assert last["val_loss"] < first["val_loss"]
        assert outcome.test_accuracy > 0.5  # ten classes: chance is 0.1


@pytest.mark.parametrize(
    ("device_used", "flags", "capabilities", "native"),
    [
        ("cpu", {"avx512f", "avx512_bf16"}, [], True),
        ("cpu", {"avx512f", "amx_bf16"}, [], True),
        ("cpu", {"avx2", "avx512f"}, [], False),
        ("cpu", set(), [], False),
        ("gpu x1", set(), [(8, 0)], True),
        ("gpu x2", {"amx_bf16"}, [(9, 0), (7, 5)], False),
        ("gpu x1", {"amx_bf16"}, [], False),
    ],
)
def test_bf16_native_on_cpus_and_gpus(device_used, flags, capabilities, native):
    assert bf16_native(device_used, flags, capabilities) is native


@pytest.mark.parametrize(("flags", "warns"), [(set(), True), ({"amx_bf16"}, False)])
def test_emulated_bfloat16_warns_once(monkeypatch, flags, warns):
    monkeypatch.setattr(device, "cpu_flags", lambda: flags)
    check_precision.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_precision("mixed_bfloat16", "cpu")
        check_precision("mixed_bfloat16", "cpu")
        check_precision("float32", "cpu")
    check_precision.cache_clear()
    messages = [str(warning.message) for warning in caught]
    if warns:
        assert messages == [
            "precision: mixed_bfloat16 on a CPU without avx512_bf16 or amx_bf16: bfloat16 is "
            "emulated and will be slower than float32; set precision: float32"
        ]
    else:
        assert messages == []


def test_cpu_flags_reads_this_machine():
    flags = device.cpu_flags()
    assert isinstance(flags, set)
    assert not flags or "fpu" in flags  # x86 lists fpu; elsewhere the file may be absent
