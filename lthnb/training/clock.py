"""The iteration clock: budgets, evaluation points, batches and learning rates, in iterations.

Frankle & Carbin (2019) count training in iterations (mini-batches) and evaluate validation
loss every 100 of them; late rewinding (Frankle et al. 2020, open_lth's `rewinding_steps`)
continues a pruned round from iteration k to the same end T with the learning-rate schedule
continuing from k. Everything here is a pure function of the absolute iteration (counted from
round 0's start), so a network's batches, learning rates and evaluation points do not depend
on where its round started or which networks share its stack.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from lthnb.params import Params


def steps_per_epoch(train_size: int, batch_size: int) -> int:
    """Iterations in one pass over the training set (the last batch may be smaller)."""
    return math.ceil(train_size / batch_size)


def pause_points(
    start: int, end: int, eval_every: int, stops: Iterable[int] = ()
) -> list[tuple[int, bool]]:
    """(iteration, evaluate) where training of [start, end) pauses, in order.

    Evaluations lie on the absolute grid of `eval_every` multiples, plus the budget's end;
    `stops` (the rewind point k) pause without evaluating unless they are on the grid.
    """
    first = (start // eval_every + 1) * eval_every
    points = dict.fromkeys(range(first, end + 1, eval_every), True)
    points[end] = True
    for stop in stops:
        if start < stop < end:
            points.setdefault(stop, False)
    return sorted(points.items())


def batch_bounds(train_size: int, batch_size: int, start: int, end: int) -> np.ndarray:
    """Offsets of iterations start..end-1's batches in `BatchStream.indices(start, end)`: batch
    i spans offsets[i]:offsets[i + 1]. Shared by every network (same sizes, same clock)."""
    steps = steps_per_epoch(train_size, batch_size)
    positions = np.arange(start, end) % steps
    sizes = np.minimum(batch_size, train_size - positions * batch_size)
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)


class BatchStream:
    """One network's mini-batches: every epoch a fresh permutation drawn from (seed, epoch).

    Epoch e's order depends only on the seed and e, so a round that starts at iteration k
    (late rewinding) continues inside epoch k // steps_per_epoch at the right position.
    """

    def __init__(self, train_size: int, batch_size: int, seed: int, shuffle: bool) -> None:
        self.train_size = train_size
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.steps = steps_per_epoch(train_size, batch_size)
        self._cached: tuple[int, np.ndarray] | None = None

    def order(self, epoch: int) -> np.ndarray:
        """The image order of `epoch` (cached: a chunk asks for the same epoch again)."""
        if self._cached is None or self._cached[0] != epoch:
            order = (
                np.random.default_rng([self.seed, epoch]).permutation(self.train_size)
                if self.shuffle
                else np.arange(self.train_size)
            )
            self._cached = (epoch, order.astype(np.int32))
        return self._cached[1]

    def indices(self, start: int, end: int) -> np.ndarray:
        """The image indices of iterations start..end-1, batch after batch."""
        parts = []
        iteration = start
        while iteration < end:
            epoch, position = divmod(iteration, self.steps)
            last = min(end, (epoch + 1) * self.steps)  # this epoch's part of the range
            first_image = position * self.batch_size
            last_image = min(self.train_size, (position + last - iteration) * self.batch_size)
            parts.append(self.order(epoch)[first_image:last_image])
            iteration = last
        return np.concatenate(parts) if parts else np.zeros(0, np.int32)


def learning_rate(params: Params, iteration: int | np.ndarray) -> np.ndarray:
    """The learning rate of step `iteration` (absolute): linear warmup to `learning_rate` over
    `warmup_iterations` (step i gets (i + 1) / w of it, so no step is wasted at 0), then
    multiplied by `lr_gamma` at each of `lr_milestones` passed."""
    iteration = np.asarray(iteration)
    rate = np.full(iteration.shape, params.learning_rate, dtype=np.float64)
    if params.warmup_iterations:
        rate *= np.minimum(1.0, (iteration + 1) / params.warmup_iterations)
    if params.lr_milestones:
        passed = np.searchsorted(np.asarray(params.lr_milestones), iteration, side="right")
        rate *= params.lr_gamma**passed
    return rate.astype(np.float32)
