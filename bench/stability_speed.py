"""What one unit of the instability analysis costs: a path's evaluation against its training.

LeNet-300-100 on Fashion-MNIST (params/lenet_fashion_mnist_stability.yaml). A path is
`stability_points` = 30 interpolated networks evaluated as one stack over the 10K test images
and the analysis's 5K-image training subset
(`lthnb.analysis.stability.evaluate_path`); its cost does not depend on k, and masks only zero
weights, so it is timed for the dense round and the sparsest.
Training two copies is timed over a short budget of 1000 iterations (the fastest of two after a
warm-up call, as bench/train_speed.py does) and scaled to the 50K - k iterations a copy trains
from iteration k: for one unit's pair alone, and per unit with the three trials' pairs in one
stack of 6, as the analysis trains a (round, k).

    .venv/bin/python bench/stability_speed.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from lthnb.analysis.stability import COPY_EVAL_EVERY, alpha_grid, evaluate_path, train_images  # noqa: E402
from lthnb.data.loaders import load_dataset  # noqa: E402
from lthnb.nets.build import build_model  # noqa: E402
from lthnb.nets.names import kernels_of  # noqa: E402
from lthnb.nets.prunable import kernel_sizes, layer_kinds  # noqa: E402
from lthnb.nets.weights import get_weights  # noqa: E402
from lthnb.params import load_params  # noqa: E402
from lthnb.pruning.masks import dense_masks, prune_layerwise, total_percent_remaining  # noqa: E402
from lthnb.pruning.schedule import keep_counts, layer_rates  # noqa: E402
from lthnb.training.engine import DataTensors, Engine, NetworkJob  # noqa: E402

PARAMS = Path(__file__).resolve().parent.parent / "params" / "lenet_fashion_mnist_stability.yaml"
SHORT_BUDGET = 1000
REPEATS = 2


def fastest(function, *args) -> float:
    """The fastest of REPEATS calls after a warm-up call (tracing, allocation), in seconds."""
    function(*args)
    seconds = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        function(*args)
        seconds.append(time.perf_counter() - start)
    return min(seconds)


def unit_costs(engine: Engine, first, second, masks, alphas, train, trials: int) -> dict:
    """Seconds of a path's evaluation, of two copies' short training alone, and per unit of
    the short training of every trial's pair in one stack."""
    pair = [NetworkJob(first, masks, seed) for seed in (1, 2)]
    stack = [NetworkJob(first, masks, seed) for seed in range(2 * trials)]
    return {
        "path": fastest(evaluate_path, engine, first, second, masks, alphas, train),
        "alone": fastest(engine.train, pair),
        "together": fastest(engine.train, stack) / trials,
    }


def main() -> None:
    tf.config.experimental.enable_op_determinism()
    params = load_params(PARAMS)
    splits = load_dataset("fashion_mnist", validation_size=5000, seed=0)
    data = DataTensors.from_splits(splits)
    template = build_model(params, splits.input_shape, splits.num_classes, 0)
    first, second = get_weights(template), get_weights(build_model(params, (28, 28, 1), 10, 1))
    kernels = kernels_of(first, layer_kinds(template))
    sizes, rates = kernel_sizes(template), layer_rates(layer_kinds(template), params)
    short = params.replace(  # the ks beyond the short budget are scaled to, not trained
        iterations=SHORT_BUDGET, eval_every=COPY_EVAL_EVERY, stability_rewind_iterations=[0]
    )
    engine = Engine(short, template, data)
    alphas, train = alpha_grid(params.stability_points), train_images(data, params.seed)
    trials = params.trials
    print(f"machine: {os.cpu_count()} CPU cores; TensorFlow {tf.__version__}")
    print(
        f"one unit: a path of {len(alphas)} points (10K test + {int(train[1].shape[0])} train "
        f"images); two copies trained {SHORT_BUDGET} iterations (validation every "
        f"{COPY_EVAL_EVERY}), scaled to {params.iterations} - k"
    )
    # Work does not depend on how sparse a mask is, only on whether any kernel has one (round 0
    # skips the gradient multiply): one measurement for the dense round, one for the pruned.
    measured = {}
    for pruned in (False, True):
        round_index = max(params.stability_rounds) if pruned else 0
        masks = prune_layerwise(
            kernels, dense_masks(kernels), keep_counts(sizes, rates, round_index)
        )
        measured[pruned] = unit_costs(engine, first, second, masks, alphas, train, trials)
    print(
        f"{'round':>5} {'% left':>7} {'k':>5}  {'path eval s':>11}  {'2 copies alone s':>16}  "
        f"{f'2 copies, {2 * trials} together s':>26}"
    )
    for round_index in params.stability_rounds:
        masks = prune_layerwise(
            kernels, dense_masks(kernels), keep_counts(sizes, rates, round_index)
        )
        costs = measured[round_index > 0]
        for k in params.stability_rewind_iterations:
            scale = (params.iterations - k) / SHORT_BUDGET
            print(
                f"{round_index:5d} {total_percent_remaining(masks):7.2f} {k:5d}  "
                f"{costs['path']:11.2f}  {costs['alone'] * scale:16.1f}  "
                f"{costs['together'] * scale:26.1f}"
            )
    costs = measured[True]
    share = costs["path"] / (costs["path"] + costs["together"] * params.iterations / SHORT_BUDGET)
    print(f"path evaluation's share of a pruned unit (k = 0, stacked): {share:.2%}")


if __name__ == "__main__":
    main()
