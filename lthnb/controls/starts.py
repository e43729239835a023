"""Where each control starts: pure numpy functions of the ticket's masks and starting weights.

A control keeps all but one property of a ticket, so a ticket that beats it owes its accuracy to
the property it lost: `random_mask` loses the mask's positions (open_lth's random pruning),
`reshuffle` the pairing of initial values with positions, `same_sign` the magnitudes (Zhou et
al. 2019), `reinit` all of the initial values (Frankle & Carbin 2019), biases included. The
fresh values come from a newly built network (the initialisers live in the model).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from lthnb.nets.names import weight_key

Arrays = dict[str, np.ndarray]


def random_masks(masks: Mapping[str, np.ndarray], rng: np.random.Generator) -> Arrays:
    """Masks of uniformly random positions, with exactly each layer's count of survivors.

    Drawn afresh for every round rather than nested inside the previous round's random mask:
    the control then depends only on the ticket's per-layer counts at that round, as in
    open_lth's random pruning.
    """
    drawn = {}
    for name, mask in masks.items():
        flat = np.zeros(mask.size, dtype=np.float32)
        flat[rng.choice(mask.size, size=int(np.count_nonzero(mask)), replace=False)] = 1.0
        drawn[name] = flat.reshape(mask.shape)
    return drawn


def reshuffled(
    start: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray], rng: np.random.Generator
) -> Arrays:
    """The survivors' starting values permuted among the survivors' positions, per layer."""
    weights = {key: value.copy() for key, value in start.items()}
    for name, mask in masks.items():
        kernel = weights[weight_key(name, weights)]
        kept = mask > 0
        kernel[kept] = rng.permutation(kernel[kept])
    return weights


def same_sign(
    start: Mapping[str, np.ndarray],
    fresh: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
) -> Arrays:
    """Fresh magnitudes (from the network's initialiser) with each starting weight's sign."""
    weights = {key: value.copy() for key, value in start.items()}
    for name in masks:
        key = weight_key(name, start)
        sign = np.where(start[key] < 0, -1.0, 1.0).astype(start[key].dtype)
        weights[key] = sign * np.abs(fresh[key])
    return weights


def reinit_start(start, masks, draw_fresh, rng) -> tuple[Arrays, Arrays]:
    """Frankle & Carbin 2019: the ticket's mask, every initial value (biases too) fresh."""
    return draw_fresh(), dict(masks)


def random_mask_start(start, masks, draw_fresh, rng) -> tuple[Arrays, Arrays]:
    """open_lth's random pruning: the ticket's start, a random mask of its per-layer counts."""
    return dict(start), random_masks(masks, rng)


def reshuffle_start(start, masks, draw_fresh, rng) -> tuple[Arrays, Arrays]:
    """Zhou et al. 2019; Frankle et al. 2021: the survivors' values permuted, same mask."""
    return reshuffled(start, masks, rng), dict(masks)


def same_sign_start(start, masks, draw_fresh, rng) -> tuple[Arrays, Arrays]:
    """Zhou et al. 2019: fresh magnitudes with the start's signs, same mask."""
    return same_sign(start, draw_fresh(), masks), dict(masks)
