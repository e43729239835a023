"""How the networks of a round are trained: stacked together (default) or one by one.

Both take the round's jobs and return one outcome per job. The one-by-one trainer is the
reference: tfmot's wrappers hold the masks and tf_keras's optimizer steps one Keras model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import tf_keras

from lthnb.masked_model import masked, set_masks, set_weights, wrap_for_pruning
from lthnb.params import Params
from lthnb.stack import NetworkStack
from lthnb.stack_training import StackRunner, train_together
from lthnb.training import (
    DataTensors,
    EpochRunner,
    NetworkJob,
    RoundOutcome,
    make_optimizer,
    train_round,
)

EpochReport = Callable[[int, dict], None]


class Trainer(Protocol):
    def train(self, jobs: list[NetworkJob], on_epoch: EpochReport) -> list[RoundOutcome]: ...


class StackedTrainer:
    """All jobs of a round in one network stack; one stack (and one trace) per size, kept for
    the whole run: sizes are at most 2 x trials, and each new one costs a trace."""

    def __init__(self, params: Params, template: tf_keras.Model, data: DataTensors) -> None:
        self.params = params
        self.template = template
        self.data = data
        self._runners: dict[int, StackRunner] = {}

    def runner(self, size: int) -> StackRunner:
        if size not in self._runners:
            self._runners[size] = StackRunner(NetworkStack(self.template, size), self.params)
        return self._runners[size]

    def train(self, jobs: list[NetworkJob], on_epoch: EpochReport) -> list[RoundOutcome]:
        return train_together(self.runner, self.data, self.params, jobs, on_epoch)


class SequentialTrainer:
    """The reference path: one job after another in one tfmot-wrapped Keras model."""

    def __init__(self, params: Params, template: tf_keras.Model, data: DataTensors) -> None:
        self.params = params
        self.data = data
        self.model = wrap_for_pruning(template)
        self.runner = EpochRunner(self.model, make_optimizer(params), params.batch_size)

    def train(self, jobs: list[NetworkJob], on_epoch: EpochReport) -> list[RoundOutcome]:
        outcomes = []
        for index, job in enumerate(jobs):
            set_weights(self.model, masked(job.weights, job.masks))
            set_masks(self.model, job.masks)
            tf_keras.utils.set_random_seed(job.seed)
            outcomes.append(
                train_round(
                    self.runner,
                    self.data,
                    self.params,
                    job.seed,
                    job.rewind_epoch,
                    lambda record, index=index: on_epoch(index, record),
                )
            )
        return outcomes


def make_trainer(params: Params, template: tf_keras.Model, data: DataTensors) -> Trainer:
    """The trainer `params.trials_together` asks for."""
    kind = StackedTrainer if params.trials_together else SequentialTrainer
    return kind(params, template, data)
