"""The training engine: a round's networks train together as one stack, on the iteration clock.

A single network is a stack of one. Training runs in compiled chunks between pause points
(`lthnb.training.clock.pause_points`: an evaluation every `eval_every` iterations, and the rewind
point k). A chunk ends with the validation evaluation inside the same graph, which also copies each
improved network's weights into a shadow "best" copy: the test set is evaluated once, at the
end, with the weights of the early-stop point. A network leaves the stack when early stopping
says stop or its loss stops being finite (diverged); the others continue in a smaller stack
with their weights, masks and optimizer state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf
import tf_keras

from lthnb.nets.weights import Weights
from lthnb.params import Params
from lthnb.training.clock import BatchStream, batch_bounds, learning_rate, pause_points
from lthnb.training.inputs import augment, normalized
from lthnb.training.optimizer import StackOptimizer
from lthnb.training.stack import NetworkStack

COMPUTE_DTYPES = {"float32": tf.float32, "mixed_bfloat16": tf.bfloat16}  # by `precision`
EVAL_IMAGES = 2000  # images per evaluation batch, over all networks of the stack
EvaluationReport = Callable[[int, dict], None]


@dataclass(frozen=True)
class DataTensors:
    """The splits as tensors, converted once per experiment."""

    x_train: tf.Tensor
    y_train: tf.Tensor
    x_val: tf.Tensor
    y_val: tf.Tensor
    x_test: tf.Tensor
    y_test: tf.Tensor

    @classmethod
    def from_splits(cls, splits, normalization: str = "unit") -> DataTensors:
        """The splits' arrays, images normalised with the training split's statistics."""
        images = [splits.x_train, splits.x_val, splits.x_test]
        x_train, x_val, x_test = normalized(images, normalization, splits.x_train)
        arrays = (x_train, splits.y_train, x_val, splits.y_val, x_test, splits.y_test)
        return cls(*(tf.constant(array) for array in arrays))

    @property
    def train_size(self) -> int:
        return int(self.x_train.shape[0])


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


class StackRunner:
    """A stack's compiled chunk of training (with its evaluation) and its best-weights copy."""

    def __init__(self, stack: NetworkStack, params: Params) -> None:
        self.stack = stack
        self.optimizer = StackOptimizer(params, stack.variables)
        self.weight_decay = params.weight_decay
        self.augmentation = tuple(params.augmentation)
        self.eval_batch = max(1, EVAL_IMAGES // stack.size)
        self.best = [tf.Variable(tf.zeros_like(v), trainable=False) for v in stack.variables]
        self.best_loss = tf.Variable(tf.fill([stack.size], tf.constant(math.inf, tf.float64)))
        self.pruned_kernels = stack.pruned_kernels()

    def start(self, jobs: Sequence[NetworkJob]) -> None:
        """Load one job per slot; a fresh optimizer and no best point yet."""
        for index, job in enumerate(jobs):
            self.stack.load(index, job.weights, job.masks)
        self.optimizer.reset()
        for best, variable in zip(self.best, self.stack.variables, strict=True):
            best.assign(variable)
        self.best_loss.assign(tf.fill([self.stack.size], tf.constant(math.inf, tf.float64)))
        self.pruned_kernels = self.stack.pruned_kernels()

    def take(self, source: StackRunner, slots: list[int]) -> None:
        """Continue `source`'s networks in `slots` here, in order."""
        self.stack.take(source.stack, slots)
        self.optimizer.take(source.optimizer, slots)
        for mine, theirs in zip(self.best, source.best, strict=True):
            mine.assign(tf.gather(theirs.read_value(), slots))
        self.best_loss.assign(tf.gather(source.best_loss.read_value(), slots))
        self.pruned_kernels = self.stack.pruned_kernels()

    def best_weights(self, slot: int) -> Weights:
        return self.stack.weights(slot, self.best)

    def chunk(
        self,
        data: DataTensors,
        indices: np.ndarray,
        offsets: np.ndarray,
        seeds: np.ndarray,
        rates: np.ndarray,
        evaluate: bool,
    ) -> np.ndarray:
        """Train iterations whose batches are `indices[:, offsets[i]:offsets[i + 1]]`, then
        evaluate if asked; rows (networks), columns train loss, accuracy, val loss, accuracy."""
        metrics = self._chunk(
            data.x_train,
            data.y_train,
            data.x_val,
            data.y_val,
            tf.constant(indices),
            tf.constant(offsets),
            tf.constant(seeds, tf.int64),
            tf.constant(rates),
            evaluate,
            self.pruned_kernels,
        )
        return tf.stack(metrics, axis=1).numpy()

    @tf.function(reduce_retracing=True)
    def _chunk(
        self, x, y, x_val, y_val, indices, offsets, seeds, rates, evaluate, pruned_kernels
    ) -> tuple[tf.Tensor, ...]:
        loss_sum = tf.zeros(self.stack.size, tf.float64)
        correct = tf.zeros(self.stack.size, tf.float64)
        variables = self.stack.variables
        for step in tf.range(tf.shape(offsets)[0] - 1):
            batch = indices[:, offsets[step] : offsets[step + 1]]
            labels = tf.gather(y, batch)
            seeds += tf.constant([0, 1], seeds.dtype)  # each step draws new dropout masks
            with tf.GradientTape() as tape:
                images = tf.gather(x, batch)
                if self.augmentation:
                    images = augment(images, seeds, self.augmentation)
                logits = self.stack.logits(images, True, seeds)
                losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
                # the sum of the networks' mean losses: each network gets its own gradient
                total = tf.reduce_sum(tf.reduce_mean(losses, axis=1))
            gradients = tape.gradient(total, variables)
            if self.weight_decay:
                gradients = [
                    g + self.weight_decay * v for g, v in zip(gradients, variables, strict=False)
                ]
            self.optimizer.apply(
                self.stack.masked_gradients(gradients, pruned_kernels), rates[step]
            )
            loss_sum += _per_network_sums(losses)
            correct += _correct(labels, logits)
        images = tf.cast(offsets[-1], tf.float64)
        train = (loss_sum / images, correct / images)
        if not evaluate:
            nothing = tf.fill([self.stack.size], tf.constant(math.nan, tf.float64))
            return (*train, nothing, nothing)
        val_loss, val_accuracy = self._evaluate(x_val, y_val)
        self._keep_best(val_loss)
        return (*train, val_loss, val_accuracy)

    def _keep_best(self, val_loss: tf.Tensor) -> None:
        """Copy the weights of networks whose validation loss fell (NaN never counts)."""
        improved = val_loss < self.best_loss
        self.best_loss.assign(tf.where(improved, val_loss, self.best_loss))
        for best, variable in zip(self.best, self.stack.variables, strict=True):
            shape = [self.stack.size] + [1] * (len(variable.shape) - 1)
            best.assign(tf.where(tf.reshape(improved, shape), variable, best))

    def _evaluate(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Per-network mean loss and accuracy over a whole split (the same for every network)."""
        size = tf.shape(x)[0]
        loss_sum = tf.zeros(self.stack.size, tf.float64)
        correct = tf.zeros(self.stack.size, tf.float64)
        networks = self.stack.size
        for start in tf.range(0, size, self.eval_batch):
            images = x[start : start + self.eval_batch]
            shared = tf.tile(images[None], [networks] + [1] * len(x.shape))
            labels = tf.tile(y[None, start : start + self.eval_batch], [networks, 1])
            logits = self.stack.logits(shared, False, tf.zeros((networks, 2), tf.int64))
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            loss_sum += _per_network_sums(losses)
            correct += _correct(labels, logits)
        count = tf.cast(size, tf.float64)
        return loss_sum / count, correct / count

    @tf.function(reduce_retracing=True)
    def evaluate(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return self._evaluate(x, y)


def _per_network_sums(values: tf.Tensor) -> tf.Tensor:
    """Sums over each network's batch, in float64: how float32 sums round depends on how many
    networks share the stack, and a network's metrics must not."""
    return tf.reduce_sum(tf.cast(values, tf.float64), axis=1)


def _correct(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    predictions = tf.argmax(logits, axis=-1, output_type=labels.dtype)
    return _per_network_sums(tf.equal(predictions, labels))


class Engine:
    """Trains the jobs of a round. One runner (and one trace) per stack size is kept for the
    whole run: sizes are at most the networks of a round, and each new one costs a trace."""

    def __init__(self, params: Params, template: tf_keras.Model, data: DataTensors) -> None:
        self.params = params
        self.template = template
        self.data = data
        self._runners: dict[int, StackRunner] = {}

    def runner(self, size: int) -> StackRunner:
        if size not in self._runners:
            stack = NetworkStack(self.template, size, COMPUTE_DTYPES[self.params.precision])
            self._runners[size] = StackRunner(stack, self.params)
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
