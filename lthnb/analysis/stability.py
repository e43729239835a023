"""Instability analysis: linear mode connectivity of a run's subnetworks (Frankle, Dziugaite,
Roy & Carbin, ICML 2020, "Linear Mode Connectivity and the Lottery Ticket Hypothesis").

A unit is (trial, round, k): two copies of the round's ticket, survivors at theta_k, train from
iteration k to `iterations` with different SGD noise (batch order and dropout); the network
(1 - alpha) W1 + alpha W2 of their final weights (masks applied, biases interpolated too) is
evaluated at `stability_points` evenly spaced alphas. Instability is the largest test error on
that path minus the mean of its two ends: near 0, SGD noise cannot move the copies out of one
linearly connected basin.

Batch norm (`stability_batch_norm`): with `recompute` the moving statistics of every point, the
ends included, are recomputed from training batches (lthnb.analysis.batch_norm), since mixed
statistics do not describe the mixed network; the ends are then the copies with their statistics
re-estimated, like every other point. With `interpolate` they are mixed like the weights, and
the ends are the copies as trained. A network without batch norm is computed the same either
way, and the analysis records `none`.

theta_k is recomputed, since a run folder keeps only its own `rewind_iteration`'s: round 0's
jobs (each selected trial's theta0, dense masks, its round-0 ticket seed) train for k iterations
together, the company round 0 trained in, so rounding matches and the result equals round 0's
weights at k bit for bit (the tests check it against a run's stored theta_k). A run trained one
trial per process (`make sweep`) gets its theta_k back when the analysis runs with `trial` set.

The units of one (round, k) train as one stack, two networks per trial. After each unit its
rows are written, then it is marked complete (atomic writes): a rerun retrains a group that has
an incomplete unit whole (the same company, the same rounding), keeps the rows of its complete
units and skips complete groups, so its tables equal an uninterrupted run's.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf
import tf_keras

from lthnb.analysis.batch_norm import StatisticsRecomputer, statistics_batches, statistics_method
from lthnb.analysis.stability_tables import POINT_COLUMNS, StabilityBook, Unit, analysis_writer
from lthnb.controls.kinds import TICKET
from lthnb.data.loaders import Splits
from lthnb.lottery.experiment import load_data, unit_seed
from lthnb.nets.build import build_model
from lthnb.nets.names import Weights, kernels_of, masked
from lthnb.nets.prunable import layer_kinds
from lthnb.notebook.progress import advance_to, iterations_bar, progress_bar
from lthnb.params import Params
from lthnb.pruning.masks import dense_masks, total_percent_remaining
from lthnb.runs.folder import open_run, read_run_params
from lthnb.runs.paths import RunPaths
from lthnb.runs.state import TrialState, load_state, read_round_record
from lthnb.runs.tables import RunFolderError
from lthnb.training.device import set_up_device
from lthnb.training.engine import DataTensors, Engine, NetworkJob, UnitOutcome

# Ends the copies' seed entropy, so that it never equals a training unit's (SeedSequence pads
# short entropy with zeros, so only a non-zero entry tells lengths apart).
SEED_TAG = 0x57AB
TRAIN_EVAL_IMAGES = 5000  # train error is measured on this fixed subset of the training split
# The copies' validation metrics are not used: pausing every 1000 iterations keeps the progress
# bar moving while the in-graph evaluation costs little (every 100 costs LeNet about 20%).
COPY_EVAL_EVERY = 1000


# --- pure functions ---


def alpha_grid(points: int) -> np.ndarray:
    """`points` evenly spaced alphas in [0, 1]; the ends are the two copies themselves."""
    return np.linspace(0.0, 1.0, points)


def interpolate(first: Weights, second: Weights, alpha: float, masks: Mapping) -> Weights:
    """(1 - alpha) first + alpha second for every kernel and bias, kernels times their masks:
    a pruned weight is exactly 0 at every point, and alpha 0 (1) gives `first` (`second`)."""
    mixed = {
        name: ((1.0 - alpha) * first[name] + alpha * second[name]).astype(first[name].dtype)
        for name in first
    }
    return masked(mixed, masks)


def instability(errors: Sequence[float]) -> float:
    """The error barrier of a path: its largest error minus the mean of its two ends."""
    errors = np.asarray(errors, dtype=np.float64)
    return float(errors.max() - (errors[0] + errors[-1]) / 2)


def unit_summary(path: pd.DataFrame) -> dict[str, float]:
    """A path's instabilities (test and train error) and its copies' test accuracies."""
    first, second = (1.0 - path["test_error"].iloc[[0, -1]]).tolist()
    return {
        "instability": instability(path["test_error"]),
        "train_instability": instability(path["train_error"]),
        "copy1_test_accuracy": first,
        "copy2_test_accuracy": second,
        "mean_test_accuracy": (first + second) / 2,
    }


def copy_seed(params: Params, unit: Unit, copy: int) -> int:
    """Copy 1's or 2's batch order and dropout, per (trial, round, k, copy); never a training
    unit's seed (`lthnb.lottery.experiment.unit_seed`)."""
    entropy = [params.seed + unit.trial, unit.round_index, unit.rewind_iteration, copy, SEED_TAG]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] % (2**31))


# --- TensorFlow: theta_k, the copies, the path ---


def rewind_points(
    params: Params,
    template: tf_keras.Model,
    data: DataTensors,
    theta0: Mapping[int, Weights],
    k: int,
) -> dict[int, Weights]:
    """theta_k of each trial of `theta0`, trained as round 0 trains: all together from theta0,
    dense, with round 0's ticket seeds, on the same clock."""
    if k == 0:
        return dict(theta0)
    # Not params.replace: a budget of k may be invalid for the run's other settings (milestones,
    # stability_rewind_iterations beyond k) that never act before iteration k.
    budget = dataclasses.replace(
        params, iterations=k, eval_every=min(params.eval_every, k), early_stopping=False
    )
    prunable = layer_kinds(template)
    jobs = [
        NetworkJob(
            weights, dense_masks(kernels_of(weights, prunable)), unit_seed(params, trial, 0, TICKET)
        )
        for trial, weights in theta0.items()
    ]
    outcomes = Engine(budget, template, data).train(jobs)
    return {trial: outcome.final_weights for trial, outcome in zip(theta0, outcomes, strict=True)}


def train_images(data: DataTensors, seed: int) -> tuple[tf.Tensor, tf.Tensor]:
    """A fixed subset of the training split (drawn from `seed`) for the paths' train error."""
    count = min(TRAIN_EVAL_IMAGES, data.train_size)
    chosen = np.sort(np.random.default_rng(seed).permutation(data.train_size)[:count])
    return tf.gather(data.x_train, chosen), tf.gather(data.y_train, chosen)


def path_weights(
    first: Weights,
    second: Weights,
    masks: Mapping,
    alphas: np.ndarray,
    statistics: StatisticsRecomputer | None = None,
) -> list[Weights]:
    """The network at every alpha; with `statistics`, its batch norm statistics recomputed."""
    points = [interpolate(first, second, alpha, masks) for alpha in alphas]
    return points if statistics is None else statistics(points)


def evaluate_path(
    engine: Engine,
    first: Weights,
    second: Weights,
    masks: Mapping,
    alphas: np.ndarray,
    train: tuple[tf.Tensor, tf.Tensor],
    statistics: StatisticsRecomputer | None = None,
) -> pd.DataFrame:
    """Test and train loss and error at every alpha, all points evaluated as one stack."""
    runner = engine.runner(len(alphas))
    points = path_weights(first, second, masks, alphas, statistics)
    runner.start([NetworkJob(weights, masks, 0) for weights in points])
    table = pd.DataFrame({"alpha": alphas})
    for split, (x, y) in (("test", (engine.data.x_test, engine.data.y_test)), ("train", train)):
        loss, accuracy = (value.numpy() for value in runner.evaluate(x, y))
        table[f"{split}_loss"], table[f"{split}_error"] = loss, 1.0 - accuracy
    return table


# --- the run folder ---


def open_stability_run(params: Params) -> tuple[RunPaths, dict[int, TrialState]]:
    """The run folder and its selected trials' states, refusing before any training a folder
    without a run, one made with other parameters (controls may differ) and untrained rounds."""
    paths = RunPaths(params.run_dir)
    if not paths.params.exists():
        raise RunFolderError(
            f"{paths.root} holds no run (no params.yaml); train it with 04_train first"
        )
    open_run(params.replace(controls=read_run_params(paths).controls))  # only its check
    states = {}
    for trial in params.selected_trials:
        state = load_state(paths.trial(trial).state)
        untrained = [
            round_index
            for round_index in params.stability_rounds
            if state is None or not state.is_done(round_index, TICKET)
        ]
        if untrained:
            raise RunFolderError(
                f"stability_rounds: trial {trial} of {paths.root} has not trained round(s) "
                f"{untrained}; train them with 04_train or leave them out"
            )
        states[trial] = state
    return paths, states


class StabilityAnalysis:
    """The units of `params` over one run folder: theta_k, the copies, the paths, the tables."""

    def __init__(
        self,
        params: Params,
        paths: RunPaths,
        states: dict[int, TrialState],
        splits: Splits,
        progress: bool = True,
    ) -> None:
        self.params, self.paths, self.states, self.progress = params, paths, states, progress
        self.data = DataTensors.from_splits(splits, params.normalization)
        tf_keras.backend.clear_session()
        self.template = build_model(params, splits.input_shape, splits.num_classes, params.seed)
        eval_every = min(params.iterations, max(params.eval_every, COPY_EVAL_EVERY))
        copies = params.replace(early_stopping=False, eval_every=eval_every)  # to the end
        self.engine = Engine(copies, self.template, self.data)
        self.train = train_images(self.data, params.seed)
        self.alphas = alpha_grid(params.stability_points)
        self.batch_norm = statistics_method(self.template, params.stability_batch_norm)
        self.statistics = (
            StatisticsRecomputer(
                self.template, statistics_batches(self.data.x_train, params.batch_size)
            )
            if self.batch_norm == "recompute"
            else None
        )

    def run(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Compute every unit not complete yet; return (path_points, instability)."""
        params = self.params
        with analysis_writer(self.paths.stability):
            book = StabilityBook.open(
                self.paths.stability, params.stability_points, self.batch_norm
            )
            pending = {
                k: [
                    round_index
                    for round_index in params.stability_rounds
                    if not all(book.is_done(unit) for unit in self._units(round_index, k))
                ]
                for k in params.stability_rewind_iterations
            }
            groups = sum(map(len, pending.values()))
            theta0 = {trial: state.theta0 for trial, state in self.states.items()}
            with progress_bar(total=groups, desc="paths", disable=not self.progress) as bar:
                for k, rounds in pending.items():
                    if not rounds:
                        continue
                    starts = rewind_points(params, self.template, self.data, theta0, k)
                    for round_index in rounds:
                        bar.set_postfix({"round": round_index, "k": k})
                        self._run_group(book, round_index, k, starts)
                        bar.update()
        return book.path_points, book.instability

    def _units(self, round_index: int, k: int) -> list[Unit]:
        return [Unit(trial, round_index, k) for trial in self.params.selected_trials]

    def _run_group(
        self, book: StabilityBook, round_index: int, k: int, starts: dict[int, Weights]
    ) -> None:
        """Train the copies of a (round, k) over all trials as one stack; book its paths."""
        units = self._units(round_index, k)
        masks = {
            unit.trial: read_round_record(self.paths.trial(unit.trial).round_record(round_index))[0]
            for unit in units
        }
        jobs = [
            NetworkJob(starts[unit.trial], masks[unit.trial], copy_seed(self.params, unit, copy))
            for unit in units
            for copy in (1, 2)
        ]
        outcomes = self._train(jobs, k)
        for index, unit in enumerate(units):
            if book.is_done(unit):
                continue  # trained again only for company
            first, second = outcomes[2 * index : 2 * index + 2]
            path = evaluate_path(
                self.engine,
                first.final_weights,
                second.final_weights,
                masks[unit.trial],
                self.alphas,
                self.train,
                self.statistics,
            )
            diverged = first.diverged or second.diverged
            if diverged:
                warnings.warn(f"unit {unit.row}: a copy diverged; its path is NaN", stacklevel=2)
                path.loc[:, path.columns != "alpha"] = np.nan
            percent = {"percent_remaining": total_percent_remaining(masks[unit.trial])}
            summary = {**unit.row, **percent, **unit_summary(path), "diverged": diverged}
            book.add(unit, path.assign(**unit.row, **percent)[POINT_COLUMNS], summary)

    def _train(self, jobs: list[NetworkJob], k: int) -> list[UnitOutcome]:
        """The copies from iteration k to the end, with an iterations bar."""
        bar = iterations_bar(k, self.params.iterations, self.progress)

        def show(index: int, record: dict) -> None:
            advance_to(bar, record["iteration"])

        try:
            return self.engine.train(jobs, k, on_evaluation=show)
        finally:
            bar.close()


def run_stability(
    params: Params, progress: bool = True, load: Callable[[Params], Splits] = load_data
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check the run folder, then compute (or resume) the analysis: (path_points, instability)."""
    paths, states = open_stability_run(params)
    set_up_device(params.device, params.precision)
    return StabilityAnalysis(params, paths, states, load(params), progress).run()
