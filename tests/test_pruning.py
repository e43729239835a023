"""Masks and schedules: pure numpy, no TensorFlow."""

import numpy as np
import pytest

from lthnb.params import load_params
from lthnb.pruning import (
    dense_masks,
    next_masks,
    percent_remaining,
    prune_global,
    prune_layerwise,
    total_percent_remaining,
)
from lthnb.schedule import keep_counts, layer_rates, schedule_table, schedule_totals


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
