"""Pruning scores: name -> how much each weight is worth keeping, as a pure numpy function.

A score sees a layer's weights and its current mask and returns one float per weight; the
highest scores are kept. Pruned weights score -inf, so a mask only ever shrinks (masks are
nested). Magnitude is IMP's score; pruning at initialisation registers its scores here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ScoreFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Score:
    name: str
    help: str
    function: ScoreFunction  # (kernel, mask) -> scores, flat, float64


def magnitude(kernel: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """|w| for survivors, -inf for pruned weights so they are never kept again."""
    return np.where(mask > 0, np.abs(kernel).astype(np.float64), -np.inf).ravel()


SCORES: dict[str, Score] = {
    score.name: score
    for score in (
        Score("magnitude", "|w| of the trained weights (Frankle & Carbin 2019)", magnitude),
    )
}


def score_of(name: str) -> Score:
    """The registered score called `name`; a clear error for any other."""
    try:
        return SCORES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown pruning score {name!r}; known: {', '.join(SCORES)}") from None
