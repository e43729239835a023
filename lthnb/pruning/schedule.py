"""How many weights each prunable layer keeps in each round: pure arithmetic, no TensorFlow.

Round r keeps round(size * (1 - rate) ** r) kernel weights of a layer: iterative pruning removes
`rate` of the survivors every round, one-shot pruning jumps to the same targets from round 0's
net. With global scope the same total is kept, ranked across all layers together; a layer
whose rate is 0 is frozen: never pruned, in either scope, and left out of the global ranking.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from lthnb.params import Params


def layer_rates(kinds: Mapping[str, str], params: Params) -> dict[str, float]:
    """The per-round pruning rate of each prunable layer, chosen by its kind."""
    by_kind = {"conv": params.conv_rate, "dense": params.dense_rate, "output": params.output_rate}
    return {name: by_kind[kind] for name, kind in kinds.items()}


def frozen_layers(rates: Mapping[str, float]) -> frozenset[str]:
    """Layers whose rate is 0: never pruned (open_lth's `pruning_layers_to_ignore`)."""
    return frozenset(name for name, rate in rates.items() if rate == 0)


def keep_counts(
    sizes: Mapping[str, int], rates: Mapping[str, float], round_index: int
) -> dict[str, int]:
    """Kernel weights each layer keeps in `round_index` (round 0 is dense)."""
    return {
        name: int(round(size * (1.0 - rates[name]) ** round_index)) for name, size in sizes.items()
    }


def schedule_table(
    sizes: Mapping[str, int], rates: Mapping[str, float], rounds: int, scope: str = "layerwise"
) -> pd.DataFrame:
    """One row per (round, layer): rate, weights, weights and fraction remaining.

    With global scope a ranked layer's share is only known once the weights are ranked, so
    its per-layer columns stay empty (NaN) and only the totals are planned; frozen layers
    (rate 0) are not ranked and keep all their weights.
    """
    frozen = frozen_layers(rates)
    rows = []
    for round_index in range(rounds + 1):
        kept = keep_counts(sizes, rates, round_index)
        for name, size in sizes.items():
            known = scope == "layerwise" or round_index == 0 or name in frozen
            rows.append(
                {
                    "round": round_index,
                    "layer": name,
                    "rate": rates[name],
                    "weights": size,
                    "weights_remaining": kept[name] if known else math.nan,
                    "fraction_remaining": kept[name] / size if known else math.nan,
                }
            )
    return pd.DataFrame(rows)


def schedule_totals(
    sizes: Mapping[str, int], rates: Mapping[str, float], rounds: int
) -> pd.DataFrame:
    """Per round: prunable weights remaining in total and as a percentage (any scope)."""
    total = sum(sizes.values())
    rows = []
    for round_index in range(rounds + 1):
        kept = sum(keep_counts(sizes, rates, round_index).values())
        rows.append(
            {
                "round": round_index,
                "weights": total,
                "weights_remaining": kept,
                "percent_remaining": 100.0 * kept / total,
            }
        )
    return pd.DataFrame(rows)
