"""Masks and schedules: pure numpy, no TensorFlow."""

from collections.abc import Iterator

import numpy as np
import pytest

from lthnb.params import load_params
from lthnb.pruning.masks import (
    dense_masks,
    next_masks,
    percent_remaining,
    prune_global,
    prune_layerwise,
    total_percent_remaining,
)
from lthnb.pruning.schedule import (
    frozen_layers,
    keep_counts,
    layer_rates,
    schedule_table,
    schedule_totals,
)

# LeNet-300-100 pruned as open_lth does: 20% global, the output layer left alone.
LENET_SHAPES = {"dense1": (784, 300), "dense2": (300, 100), "output": (100, 10)}
LENET_SIZES = {name: rows * columns for name, (rows, columns) in LENET_SHAPES.items()}
OPEN_LTH_RATES = {"dense1": 0.2, "dense2": 0.2, "output": 0.0}
RANKED = ("dense1", "dense2")


def test_layerwise_keeps_the_largest_surviving_magnitudes():
    kernel = np.array([[0.5, -3.0], [2.0, -0.1]])
    masks = prune_layerwise({"a": kernel}, {"a": np.ones((2, 2))}, {"a": 2})
    assert masks["a"].tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_pruned_weights_never_come_back_even_if_large():
    kernel = np.array([100.0, 1.0, 2.0, 3.0])
    mask = np.array([0.0, 1.0, 1.0, 1.0])
    new = prune_layerwise({"a": kernel}, {"a": mask}, {"a": 2})["a"]
    assert new.tolist() == [0.0, 0.0, 1.0, 1.0]


def test_iterated_masks_are_nested_and_hit_the_schedule():
    rng = np.random.default_rng(0)
    sizes = {"dense1": 300, "output": 40}
    rates = {"dense1": 0.2, "output": 0.1}
    masks = dense_masks({name: np.zeros(size) for name, size in sizes.items()})
    for round_index in range(1, 8):
        trained = {name: rng.normal(size=size) for name, size in sizes.items()}
        keep = keep_counts(sizes, rates, round_index)
        new = next_masks(trained, masks, keep, "layerwise")
        for name in sizes:
            assert np.all(new[name] <= masks[name])  # nested
            assert (
                int(new[name].sum())
                == keep[name]
                == round(sizes[name] * (1 - rates[name]) ** round_index)
            )
        masks = new


def test_growing_target_is_refused():
    with pytest.raises(ValueError, match="nested"):
        prune_layerwise({"a": np.ones(4)}, {"a": np.array([1.0, 1.0, 0.0, 0.0])}, {"a": 3})


def test_global_ranks_all_layers_together():
    kernels = {"a": np.array([10.0, 9.0, 8.0]), "b": np.array([1.0, 2.0, 3.0])}
    masks = prune_global(kernels, dense_masks(kernels), 4)
    assert masks["a"].tolist() == [1.0, 1.0, 1.0]
    assert masks["b"].tolist() == [0.0, 0.0, 1.0]


def test_global_scope_keeps_the_layerwise_total():
    rng = np.random.default_rng(1)
    kernels = {"a": rng.normal(size=100), "b": rng.normal(size=50) * 5}
    keep = {"a": 80, "b": 45}
    masks = next_masks(kernels, dense_masks(kernels), keep, "global")
    assert sum(int(m.sum()) for m in masks.values()) == 125
    assert int(masks["b"].sum()) > 45  # larger weights in b win places from a


def test_percent_remaining_counts_kernels():
    masks = {"a": np.array([1.0, 0.0, 0.0, 0.0]), "b": np.ones(4)}
    assert percent_remaining(masks) == {"a": 25.0, "b": 100.0}
    assert total_percent_remaining(masks) == 62.5


def test_rates_follow_layer_kinds():
    params = load_params(conv_rate=0.15, dense_rate=0.2, output_rate=0.1)
    rates = layer_rates({"conv1": "conv", "dense1": "dense", "output": "output"}, params)
    assert rates == {"conv1": 0.15, "dense1": 0.2, "output": 0.1}


def test_schedule_table_and_totals():
    sizes = {"dense1": 1000, "output": 100}
    table = schedule_table(sizes, {"dense1": 0.2, "output": 0.1}, rounds=3)
    assert len(table) == 8
    row = table[(table["round"] == 3) & (table["layer"] == "dense1")].iloc[0]
    assert row["weights_remaining"] == 512 and row["fraction_remaining"] == pytest.approx(0.512)
    totals = schedule_totals(sizes, {"dense1": 0.2, "output": 0.1}, rounds=3)
    assert totals["percent_remaining"].iloc[0] == 100.0
    expected = 100 * (512 + 73) / 1100
    assert totals["percent_remaining"].iloc[3] == pytest.approx(expected)
    assert totals["percent_remaining"].is_monotonic_decreasing


def test_global_schedule_plans_totals_only():
    sizes, rates = {"dense1": 1000, "output": 100}, {"dense1": 0.2, "output": 0.1}
    table = schedule_table(sizes, rates, rounds=2, scope="global")
    assert table.loc[table["round"] == 0, "weights_remaining"].tolist() == [1000, 100]
    assert table.loc[table["round"] > 0, "weights_remaining"].isna().all()
    assert schedule_totals(sizes, rates, 2)["weights_remaining"].tolist() == [
        1100,
        800 + 90,
        640 + 81,
    ]


def global_rounds(rounds: int) -> Iterator[tuple[dict, dict, dict, dict]]:
    """(keep, trained kernels, old masks, new masks) of rounds 1..rounds, global scope.

    Each layer has its own scale, as after training: layer-wise ranking would then keep small
    weights of one layer over larger ones of another, and the output's weights are the
    smallest, so an output layer left in the ranking would lose weights first.
    """
    rng = np.random.default_rng(2)
    scales = {"dense1": 1.0, "dense2": 3.0, "output": 0.1}
    masks = dense_masks({name: np.zeros(shape) for name, shape in LENET_SHAPES.items()})
    for round_index in range(1, rounds + 1):
        trained = {
            name: rng.normal(scale=scales[name], size=shape) for name, shape in LENET_SHAPES.items()
        }
        keep = keep_counts(LENET_SIZES, OPEN_LTH_RATES, round_index)
        new = next_masks(trained, masks, keep, "global", frozen_layers(OPEN_LTH_RATES))
        yield keep, trained, masks, new
        masks = new


@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_a_zero_rate_layer_is_never_pruned_in_either_scope(scope: str) -> None:
    kernels = {"dense1": np.arange(1.0, 11.0), "output": np.full(4, 0.5)}
    rates = {"dense1": 0.2, "output": 0.0}
    keep = keep_counts({"dense1": 10, "output": 4}, rates, 1)
    masks = next_masks(kernels, dense_masks(kernels), keep, scope, frozen_layers(rates))
    assert masks["output"].tolist() == [1.0] * 4
    assert masks["dense1"].tolist() == [0.0, 0.0] + [1.0] * 8


def test_global_scope_keeps_a_zero_rate_output_layer_whole_every_round() -> None:
    for _, _, _, masks in global_rounds(6):
        assert percent_remaining(masks)["output"] == 100.0
        assert masks["output"].dtype == np.float32


def test_global_scope_with_a_frozen_layer_keeps_the_schedules_total() -> None:
    totals = schedule_totals(LENET_SIZES, OPEN_LTH_RATES, 6)["weights_remaining"].tolist()
    for round_index, (keep, _, _, masks) in enumerate(global_rounds(6), start=1):
        kept = sum(int(mask.sum()) for mask in masks.values())
        assert kept == sum(keep.values()) == totals[round_index]


def test_global_scope_prunes_the_smallest_magnitudes_of_the_ranked_layers() -> None:
    for _, trained, old, new in global_rounds(4):
        kept = np.concatenate([np.abs(trained[name][new[name] > 0]) for name in RANKED])
        pruned = np.concatenate(
            [np.abs(trained[name][(old[name] > 0) & (new[name] == 0)]) for name in RANKED]
        )
        assert pruned.size > 0
        assert kept.min() >= pruned.max()
        assert np.all(new["dense1"] <= old["dense1"]) and np.all(new["dense2"] <= old["dense2"])


def test_global_schedule_knows_that_zero_rate_layers_keep_everything() -> None:
    table = schedule_table(LENET_SIZES, OPEN_LTH_RATES, rounds=3, scope="global")
    output = table[table["layer"] == "output"]
    assert output["weights_remaining"].tolist() == [1000] * 4
    assert output["fraction_remaining"].tolist() == [1.0] * 4
    ranked = table[table["layer"].isin(RANKED) & (table["round"] > 0)]
    assert ranked["weights_remaining"].isna().all()
