"""Masks from scores: pure numpy functions of (weights, current masks, targets, score).

A weight that is already pruned can never come back (masks are nested), because every score
ranks it below every survivor (lthnb.pruning.scores). A frozen layer (rate 0) is never pruned.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np

from lthnb.pruning.scores import ScoreFunction, magnitude, score_of

Masks = dict[str, np.ndarray]


def dense_masks(kernels: Mapping[str, np.ndarray]) -> Masks:
    """All-ones masks: round 0 trains the full network."""
    return {name: np.ones_like(kernel, dtype=np.float32) for name, kernel in kernels.items()}


def _keep_top(scores: np.ndarray, keep: int, shape: tuple[int, ...]) -> np.ndarray:
    """A 0/1 mask keeping the `keep` highest scores (ties: lower index first)."""
    order = np.argsort(-scores, kind="stable")
    mask = np.zeros(scores.size, dtype=np.float32)
    mask[order[:keep]] = 1.0
    return mask.reshape(shape)


def _check_target(name: str, keep: int, mask: np.ndarray) -> None:
    surviving = int(mask.sum())
    if not 0 <= keep <= surviving:
        raise ValueError(
            f"layer {name}: cannot keep {keep} weights when {surviving} survive; "
            "masks must be nested (targets never grow between rounds)"
        )


def prune_layerwise(
    kernels: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    keep: Mapping[str, int],
    score: ScoreFunction = magnitude,
) -> Masks:
    """Keep, in each layer separately, its `keep[layer]` highest-scoring survivors."""
    new_masks = {}
    for name, kernel in kernels.items():
        _check_target(name, keep[name], masks[name])
        new_masks[name] = _keep_top(score(kernel, masks[name]), keep[name], kernel.shape)
    return new_masks


def prune_global(
    kernels: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    keep_total: int,
    score: ScoreFunction = magnitude,
) -> Masks:
    """Keep the `keep_total` highest-scoring survivors ranked across all layers at once."""
    names = list(kernels)
    scores = np.concatenate([score(kernels[name], masks[name]) for name in names])
    surviving = int(sum(masks[name].sum() for name in names))
    if not 0 <= keep_total <= surviving:
        raise ValueError(f"cannot keep {keep_total} weights when {surviving} survive")
    flat = _keep_top(scores, keep_total, scores.shape)
    bounds = np.cumsum([0] + [kernels[name].size for name in names])
    return {
        name: flat[bounds[i] : bounds[i + 1]].reshape(kernels[name].shape)
        for i, name in enumerate(names)
    }


def next_masks(
    kernels: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    keep: Mapping[str, int],
    scope: str,
    frozen: Collection[str] = (),
    score: str = "magnitude",
) -> Masks:
    """The masks of the next round under `scope` (layerwise | global), by a registered score.

    Layers in `frozen` keep their mask: a zero rate means "leave this layer alone" in either
    scope, so global scope ranks only the other layers and keeps their own total.
    """
    ranked = {name: kernel for name, kernel in kernels.items() if name not in frozen}
    function = score_of(score).function
    if scope == "global":
        pruned = prune_global(ranked, masks, sum(keep[name] for name in ranked), function)
    else:
        pruned = prune_layerwise(ranked, masks, keep, function)
    return {
        name: pruned[name] if name in ranked else masks[name].astype(np.float32) for name in kernels
    }


def percent_remaining(masks: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Percent of each layer's kernel weights that survive."""
    return {name: 100.0 * float(np.count_nonzero(mask)) / mask.size for name, mask in masks.items()}


def total_percent_remaining(masks: Mapping[str, np.ndarray]) -> float:
    """Percent of all prunable kernel weights that survive."""
    kept = sum(np.count_nonzero(mask) for mask in masks.values())
    return 100.0 * kept / sum(mask.size for mask in masks.values())


def format_percent(percent: float) -> str:
    """A percent remaining as the paper writes it: 100, 51.2, 21.0, 3.6 (two significant digits
    below 0.1)."""
    if percent >= 99.95:
        return "100"
    return f"{percent:.1f}" if percent >= 0.1 else f"{percent:.2g}"
