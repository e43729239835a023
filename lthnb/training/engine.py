"""The training engine: a round's networks train together as one stack, on the iteration clock.

A single network is a stack of one. Training runs in compiled chunks between pause points
(`lthnb.training.clock.pause_points`: an evaluation every `eval_every` iterations, and the rewind
point k). A chunk ends with the validation evaluation inside the same graph, which also copies each
improved network's weights into a shadow "best" copy: the test set is evaluated once, at the
end, with the weights of the early-stop point. A network leaves the stack when early stopping
says stop or its loss stops being finite (diverged); the others continue in a smaller stack
with their weights, masks and optimizer state.

The networks are held by a container: the stack (lthnb.training.stack), which computes the
layers it knows itself, or, for a network with any other layer, the Keras container
(lthnb.training.keras_container), which runs each network's own Keras model. Everything else is
the same for both; the engine says which one it used and why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf
import tf_keras

from lthnb.nets.names import Weights
from lthnb.params import Params
from lthnb.runs.tables import notice
from lthnb.training.clock import BatchStream, batch_bounds, learning_rate, pause_points
from lthnb.training.inputs import DataTensors
from lthnb.training.keras_container import KerasContainer
from lthnb.training.runner import StackRunner
from lthnb.training.stack import NetworkStack, Unstackable
from lthnb.training.stacked_weights import StackedWeights

COMPUTE_DTYPES = {"float32": tf.float32, "mixed_bfloat16": tf.bfloat16}  # by `precision`
EvaluationReport = Callable[[int, dict], None]
CONTAINER_NAMES = {
    NetworkStack: "stack (the networks computed together)",
    KerasContainer: "Keras container (each network runs its own Keras model)",
}


@dataclass(frozen=True)
class NetworkJob:
    """What one network of a round starts from; `seed` draws its batches and dropout."""

    weights: Weights
    masks: dict[str, np.ndarray]
    seed: int


@dataclass
class UnitOutcome:
    """What training one network for one round produced. Iterations are absolute."""

    start_iteration: int
    evaluations: list[dict] = field(default_factory=list)
    early_stop_iteration: float = math.nan  # an int on the evaluation grid; NaN if diverged
    val_loss: float = math.inf
    val_accuracy: float = math.nan
    test_loss: float = math.nan
    test_accuracy: float = math.nan
    iterations_trained: int = 0
    diverged: bool = False
    final_weights: Weights = field(default_factory=dict)
    best_weights: Weights = field(default_factory=dict)
    rewind_weights: Weights | None = None


def should_stop(val_losses: Sequence[float], patience: int, min_delta: float) -> bool:
    """Keras's rule: stop after `patience` evaluations without a decrease beyond `min_delta`."""
    best, waited = math.inf, 0
    for loss in val_losses:
        if loss < best - min_delta:
            best, waited = loss, 0
        else:
            waited += 1
    return waited >= patience


class Engine:
    """Trains the jobs of a round. One runner (and one trace) per stack size is kept for the
    whole run: sizes are at most the networks of a round, and each new one costs a trace."""

    def __init__(
        self,
        params: Params,
        template: tf_keras.Model,
        data: DataTensors,
        container: type[StackedWeights] | None = None,
    ) -> None:
        """`container`: the stack where it can compute every layer, else the Keras container;
        the tests ask for each in turn."""
        self.params = params
        self.template = template
        self.data = data
        self._runners: dict[int, StackRunner] = {}
        self.container = container or NetworkStack
        try:
            self.runner(1)
            why = "as asked" if container else "every layer is one the stack computes"
        except Unstackable as reason:
            self.container = KerasContainer
            why = f"{reason}, which the stack does not compute; slower than the stack"
        notice(f"{params.arch} trains in the {CONTAINER_NAMES[self.container]}: {why}")

    def runner(self, size: int) -> StackRunner:
        if size not in self._runners:
            dtype = COMPUTE_DTYPES[self.params.precision]
            self._runners[size] = StackRunner(
                self.container(self.template, size, dtype), self.params
            )
        return self._runners[size]

    def train(
        self,
        jobs: Sequence[NetworkJob],
        start: int = 0,
        record_at: int = 0,
        on_evaluation: EvaluationReport | None = None,
    ) -> list[UnitOutcome]:
        """Train `jobs` from iteration `start` to `iterations`; one outcome per job.

        With `record_at` = k > 0 every network's weights at iteration k are kept (the late
        rewinding point), and early stopping waits for it. `on_evaluation(job index, record)`
        reports every evaluation of every network.
        """
        params, data = self.params, self.data
        runner = self.runner(len(jobs))
        runner.start(jobs)
        streams = [
            BatchStream(data.train_size, params.batch_size, job.seed, params.shuffle)
            for job in jobs
        ]
        outcomes = [UnitOutcome(start_iteration=start) for _ in jobs]
        training = list(range(len(jobs)))  # the job index of each slot of the current stack
        position = start
        for pause, evaluate in pause_points(
            start, params.iterations, params.eval_every, [record_at]
        ):
            metrics = runner.chunk(
                data,
                np.stack([streams[index].indices(position, pause) for index in training]),
                batch_bounds(data.train_size, params.batch_size, position, pause),
                np.array([[jobs[index].seed, position] for index in training]),
                learning_rate(params, np.arange(position, pause)),
                evaluate,
            )
            position = pause
            going_on = []
            for slot, index in enumerate(training):
                outcome = outcomes[index]
                outcome.iterations_trained = pause - start
                if pause == record_at:
                    outcome.rewind_weights = runner.stack.weights(slot)
                if self._record(
                    outcome, pause, metrics[slot], evaluate, record_at, on_evaluation, index
                ):
                    going_on.append(slot)
                else:
                    self._leave(outcome, runner, slot)
            if len(going_on) < len(training):
                training = [training[slot] for slot in going_on]
                if not training:
                    break
                smaller = self.runner(len(training))
                smaller.take(runner, going_on)
                runner = smaller
        for slot, index in enumerate(training):  # those that trained to the end
            self._leave(outcomes[index], runner, slot)
        self._test(jobs, outcomes)
        return outcomes

    def _record(self, outcome, iteration, metrics, evaluate, record_at, report, index) -> bool:
        """Book a pause's metrics; False when the network leaves the stack here (early stopping
        never before the rewind point `record_at`)."""
        if not np.all(np.isfinite(metrics[: 4 if evaluate else 2])):
            outcome.diverged = True
            return False
        if not evaluate:
            return True
        train_loss, train_accuracy, val_loss, val_accuracy = (float(value) for value in metrics)
        record = {
            "iteration": iteration,
            "train_loss": train_loss,
            "train_accuracy": train_accuracy,
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
        }
        outcome.evaluations.append(record)
        if val_loss < outcome.val_loss:  # the rule `StackRunner._keep_best` applies in-graph
            outcome.early_stop_iteration = iteration
            outcome.val_loss, outcome.val_accuracy = val_loss, val_accuracy
        if report is not None:
            report(index, record)
        params = self.params
        losses = [row["val_loss"] for row in outcome.evaluations]
        return not (
            params.early_stopping
            and iteration >= record_at
            and should_stop(losses, params.patience, params.min_delta)
        )

    @staticmethod
    def _leave(outcome: UnitOutcome, runner: StackRunner, slot: int) -> None:
        outcome.final_weights = runner.stack.weights(slot)
        outcome.best_weights = runner.best_weights(slot)

    def _test(self, jobs: Sequence[NetworkJob], outcomes: list[UnitOutcome]) -> None:
        """Test metrics of every network at its early-stop point, all in one stack."""
        runner = self.runner(len(jobs))
        runner.start(
            [
                NetworkJob(outcome.best_weights, job.masks, job.seed)
                if not outcome.diverged
                else job  # a stand-in: a diverged network's test metrics stay NaN
                for job, outcome in zip(jobs, outcomes, strict=True)
            ]
        )
        losses, accuracies = (
            value.numpy() for value in runner.evaluate(self.data.x_test, self.data.y_test)
        )
        for outcome, loss, accuracy in zip(outcomes, losses, accuracies, strict=True):
            if outcome.diverged:
                outcome.early_stop_iteration = math.nan
                outcome.val_loss = outcome.val_accuracy = math.nan
            else:
                outcome.test_loss, outcome.test_accuracy = float(loss), float(accuracy)
