#!/usr/bin/env bash
# The GPU check of issue #15, as one script for a machine with an NVIDIA GPU:
#   1. installs lthnb with the `cuda` extra into .venv-gpu (TensorFlow's CUDA 12 wheels, about
#      3 GB from PyPI) and checks that TensorFlow sees the GPU;
#   2. runs `make bench`'s script on the GPU, then on the CPU alone (CUDA_VISIBLE_DEVICES=""),
#      so the two sets of seconds per network-epoch (LeNet and Conv-2) come from one machine;
#   3. trains a short Conv-2 experiment on the GPU with `device: gpu` (params/conv2_fashion_mnist.yaml,
#      rounds 0-2) through 04_train, as a user would, in float32 and in mixed_bfloat16;
#   4. prints the GPU/CPU ratios.
# Everything lands in $OUT (default: gpu_check/). Fashion-MNIST is found as anywhere else
# (README, "Data sets"): set DATA_DIR to a folder holding its four .gz files where there is no
# internet access. On a machine without PyPI, set WHEELS to a folder of wheels made where pip
# works (`pip download -d wheels --python-version 3.X --only-binary=:all: '.[cuda,dev]' setuptools`
# for that machine's Python 3.X). Usage:
#     bash bench/gpu_check.sh
# It has not run yet. The GPU machine lent in session 6 (an H200) has no TensorFlow and no PyPI,
# ships CUDA 13 libraries where TensorFlow 2.21 needs CUDA 12, and takes 64 MiB of files per call:
# the TensorFlow wheel alone is 546 MiB, before its twelve CUDA 12 wheels (see #15).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check}
DATA_DIR=${DATA_DIR:-}
mkdir -p "$OUT"
export LTHNB_HEADLESS=1 PYTHONUNBUFFERED=1

nvidia-smi | tee "$OUT/nvidia_smi.txt"
if [ ! -x .venv-gpu/bin/python ]; then
    python3 -m venv .venv-gpu
    if [ -n "${WHEELS:-}" ]; then
        .venv-gpu/bin/pip install -q --no-index --find-links "$WHEELS" -e '.[cuda,dev]'
    else
        .venv-gpu/bin/pip install -q --upgrade pip
        .venv-gpu/bin/pip install -q -e '.[cuda,dev]'
    fi
fi
PY=.venv-gpu/bin/python
$PY -c "
import tensorflow as tf
gpus = tf.config.list_physical_devices('GPU')
print('TensorFlow', tf.__version__, 'sees', gpus)
assert gpus, 'TensorFlow sees no GPU: check the driver and the cuda extra'
" | tee "$OUT/devices.txt"

if [ -n "$DATA_DIR" ]; then
    mkdir -p ~/.keras/datasets/fashion-mnist && cp "$DATA_DIR"/*.gz ~/.keras/datasets/fashion-mnist/
fi
$PY bench/train_speed.py 2>&1 | tee "$OUT/bench_gpu.txt"
CUDA_VISIBLE_DEVICES="" $PY bench/train_speed.py 2>&1 | tee "$OUT/bench_cpu.txt"

for precision in float32 mixed_bfloat16; do
    start=$(date +%s)
    .venv-gpu/bin/papermill notebooks/04_train.ipynb "$OUT/04_train_conv2_$precision.ipynb" \
        -f params/conv2_fashion_mnist.yaml -p device gpu -p rounds 2 -p precision "$precision" \
        -p output_dir "$OUT/conv2_$precision" -k python3 --cwd . 2>&1 | tail -3
    echo "conv2 $precision, 3 rounds of 2 trials (ticket + reinit): $(( $(date +%s) - start )) s" \
        | tee -a "$OUT/conv2_runs.txt"
done

$PY - "$OUT" <<'EOF'
"""GPU over CPU, per network-epoch: the best lthnb row of each bench, and Keras fit."""
import re
import sys
from pathlib import Path

def rows(path: Path) -> dict[tuple[str, str], float]:
    figures, arch = {}, None
    for line in path.read_text().splitlines():
        if re.match(r"^(lenet|conv2): seconds per trial-epoch", line):
            arch = line.split(":")[0]
        match = re.match(r"^\s+(\S+|lthnb best)\s+([\d.]+) s", line)
        if arch and match:
            figures[arch, match.group(1)] = float(match.group(2))
    return figures

out = Path(sys.argv[1])
gpu, cpu = rows(out / "bench_gpu.txt"), rows(out / "bench_cpu.txt")
for key in sorted(set(gpu) & set(cpu)):
    print(f"{key[0]:5s} {key[1]:34s} gpu {gpu[key]:8.2f} s  cpu {cpu[key]:8.2f} s  "
          f"cpu/gpu {cpu[key] / gpu[key]:6.1f}")
EOF
