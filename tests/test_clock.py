"""The iteration clock: pause points, batches across epoch ends, learning-rate schedules."""

import numpy as np
import pytest

from lthnb.params import load_params
from lthnb.training.clock import (
    BatchStream,
    batch_bounds,
    learning_rate,
    pause_points,
    steps_per_epoch,
)


def test_pause_points_lie_on_the_absolute_grid_and_end_at_the_budget():
    assert pause_points(0, 250, 100) == [(100, True), (200, True), (250, True)]
    # a rewound round starting at k = 130 evaluates at the same absolute points
    assert pause_points(130, 250, 100) == [(200, True), (250, True)]
    # the rewind point pauses without evaluating, unless it is on the grid
    assert pause_points(0, 250, 100, [130]) == [(100, True), (130, False), (200, True), (250, True)]
    assert pause_points(0, 250, 100, [200]) == [(100, True), (200, True), (250, True)]
    assert pause_points(0, 250, 100, [0]) == [(100, True), (200, True), (250, True)]


def test_every_epoch_visits_every_image_once_and_reshuffles():
    stream = BatchStream(train_size=25, batch_size=10, seed=3, shuffle=True)
    steps = steps_per_epoch(25, 10)
    assert steps == 3  # batches of 10, 10 and 5
    first, second = stream.indices(0, steps), stream.indices(steps, 2 * steps)
    assert sorted(first) == list(range(25)) and sorted(second) == list(range(25))
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(batch_bounds(25, 10, 0, 4), [0, 10, 20, 25, 35])


def test_a_budget_may_end_inside_an_epoch_and_resume_there():
    """Batches depend only on the seed and the absolute iteration: a round that starts at
    iteration k sees what an uninterrupted round sees from k on."""
    stream = BatchStream(train_size=25, batch_size=10, seed=3, shuffle=True)
    whole = stream.indices(0, 7)
    later = BatchStream(train_size=25, batch_size=10, seed=3, shuffle=True)
    np.testing.assert_array_equal(np.concatenate([later.indices(4, 7)]), whole[35:])
    np.testing.assert_array_equal(
        np.concatenate([stream.indices(0, 2), stream.indices(2, 7)]), whole
    )
    assert len(whole) == int(batch_bounds(25, 10, 0, 7)[-1]) == 60


def test_unshuffled_batches_are_in_order():
    stream = BatchStream(train_size=25, batch_size=10, seed=3, shuffle=False)
    np.testing.assert_array_equal(stream.indices(1, 3), np.arange(10, 25))


def test_learning_rate_warmup_then_step_decay():
    params = load_params(
        learning_rate=0.1, warmup_iterations=4, lr_milestones=[10, 20], lr_gamma=0.5
    )
    rates = learning_rate(params, np.arange(25))
    np.testing.assert_allclose(rates[:5], [0.025, 0.05, 0.075, 0.1, 0.1])
    np.testing.assert_allclose(rates[9:11], [0.1, 0.05])
    np.testing.assert_allclose(rates[19:21], [0.05, 0.025])
    assert learning_rate(load_params(learning_rate=0.3), 12345) == pytest.approx(0.3)
