"""Iterative magnitude pruning with rewinding: trials of rounds, each resumable.

A trial is a sequence of units (round, kind): round 0 trains the dense net from iteration 0 to
`iterations`; every later round prunes from the trained weights of the previous round (or of
round 0, one-shot), rewinds the survivors to theta0 or, with late rewinding, to their weights
after k = `rewind_iteration` iterations of round 0, and trains the ticket from iteration k to
the same end. Each of the `controls` (lthnb.controls.starts) trains beside the ticket in the same
stack. After each unit the trial's tables and state are saved, so a rerun continues after the
last completed unit; controls added to a finished run train for its finished rounds.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import pandas as pd
import tf_keras

from lthnb.controls.kinds import TICKET, control_of, kind_of
from lthnb.data.loaders import Splits, load_dataset
from lthnb.nets.build import build_model
from lthnb.nets.names import kernels_of, masked, weight_key
from lthnb.nets.prunable import kernel_sizes, layer_kinds, prunable_weights
from lthnb.nets.weights import deflated_size, get_weights, model_variables, save_network
from lthnb.notebook.progress import advance_to, iterations_bar, progress_bar
from lthnb.params import Params
from lthnb.pruning.masks import (
    dense_masks,
    next_masks,
    percent_remaining,
    total_percent_remaining,
)
from lthnb.pruning.schedule import frozen_layers, keep_counts, layer_rates
from lthnb.runs.folder import open_run
from lthnb.runs.merge import EVALUATION_COLUMNS, completed_rows, merge_trials
from lthnb.runs.paths import RunPaths, TrialPaths
from lthnb.runs.state import (
    TrialState,
    load_state,
    read_round_record,
    read_ticket_info,
    save_state,
    ticket_damage,
    write_round_record,
    write_ticket_info,
)
from lthnb.runs.tables import atomic_path, notice, trial_writer, write_arrays, write_table
from lthnb.runs.tensorboard import UnitLog
from lthnb.training.device import set_up_device
from lthnb.training.engine import DataTensors, Engine, NetworkJob, UnitOutcome


def round_kinds(params: Params, round_index: int) -> list[str]:
    """The units of a round: its ticket, and its controls where there is a mask to control."""
    return [TICKET, *params.controls] if round_index > 0 else [TICKET]


def unit_folder(trial: int, round_index: int, kind: str) -> str:
    """Where a unit's TensorBoard log goes, below the run's tensorboard folder."""
    return f"trial_{trial:03d}/round_{round_index:03d}_{kind}"


def unit_seed(params: Params, trial: int, round_index: int, kind: str) -> int:
    """A seed per (trial, round, kind): shuffles, dropout and controls never share a stream."""
    sequence = np.random.SeedSequence([params.seed + trial, round_index, kind_of(kind).seed_code])
    return int(sequence.generate_state(1)[0] % (2**31))


def load_data(params: Params) -> Splits:
    """The run's data set, registered or a path; an image folder is decoded once per run."""
    return load_dataset(
        params.dataset,
        params.data_dir,
        validation_size=params.validation_size,
        seed=params.seed,
        train_subset=params.train_subset,
        cache=RunPaths(params.run_dir).decoded_images,
    )


@dataclass
class TrialBooks:
    """A trial's files, state and tables while the run holds it."""

    paths: TrialPaths
    state: TrialState
    tables: dict[str, pd.DataFrame]


class Experiment:
    """One run folder's experiment: the data, the network's shape and the trials to train."""

    def __init__(self, params: Params, splits: Splits, progress: bool = True) -> None:
        self.params = params
        self.splits = splits
        self.data = DataTensors.from_splits(splits, params.normalization)
        self.progress = progress
        self.paths: RunPaths = open_run(params)
        tf_keras.backend.clear_session()
        # One engine serves every round (one compiled chunk per stack size): new models per
        # unit would be traced again and again, and TensorFlow keeps every trace.
        self.model = self.build(params.seed)  # the engine's template, shapes and the export
        self.engine = Engine(params, self.model, self.data)
        self.kinds = layer_kinds(self.model)
        self.sizes = kernel_sizes(self.model)
        # trainable weights that are never pruned: biases, batch norm's gamma and beta
        pruned = {weight.weight for weight in prunable_weights(self.model).values()}
        self.unpruned_total = sum(
            int(variable.shape.num_elements())
            for name, variable in model_variables(self.model).items()
            if variable.trainable and name not in pruned
        )
        self.rates = layer_rates(self.kinds, params)

    def build(self, seed: int) -> tf_keras.Model:
        """A fresh network drawn from `seed` (for its initial weights)."""
        return build_model(self.params, self.splits.input_shape, self.splits.num_classes, seed)

    def run(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Train what is not finished yet, round by round; return the merged
        (evaluations, rounds).

        Each round trains the units of all selected trials that still need it together, so a
        trial interrupted one unit behind the others catches up in the next run.
        """
        with ExitStack() as held:
            books = {trial: self._open_trial(trial, held) for trial in self.params.selected_trials}
            rounds = progress_bar(
                range(self.params.rounds + 1), desc="rounds", disable=not self.progress
            )
            for round_index in rounds:
                units = self._round_units(round_index, books)
                if any(not books[trial].state.is_done(round_index, kind) for trial, kind in units):
                    self._run_round(round_index, units, books, rounds)
            for book in books.values():
                self._export_ticket(book)
        return merge_trials(self.paths)

    def _round_units(self, round_index: int, books: dict[int, TrialBooks]) -> list[tuple[int, str]]:
        """The (trial, kind) units trained together in a round: those not done yet and, where
        the saving of the round's stack was cut off, its done units again. Float rounding
        depends on how many networks share a stack, so the same company gives a resumed run
        the numbers of an uninterrupted one. A finished round trains only what was added
        since (a new control, a new trial) and leaves its saved units as they are.
        """
        wanted = [
            (trial, kind)
            for trial, book in books.items()
            if not book.state.ended_before(round_index)
            for kind in round_kinds(self.params, round_index)
        ]
        done = {
            (trial, kind) for trial, kind in wanted if books[trial].state.is_done(round_index, kind)
        }
        cut_off = set().union(
            *(company for company in self._companies(round_index, books, wanted) if company - done)
        )
        return [unit for unit in wanted if unit not in done or unit in cut_off]

    @staticmethod
    def _companies(
        round_index: int, books: dict[int, TrialBooks], wanted: list[tuple[int, str]]
    ) -> list[set[tuple[int, str]]]:
        """The round's stacks, as recorded by the trials that saved a unit of one. A run folder
        from before stacks were recorded: one of every unit of the trials still at this round,
        as if it had been cut off (the only safe reading)."""
        recorded = [
            {(int(trial), kind) for trial, kind in (unit.split("/") for unit in units)}
            for book in books.values()
            if (units := book.state.companies.get(round_index))
        ]
        legacy = {unit for unit in wanted if books[unit[0]].state.last_round == round_index}
        return recorded or [legacy]

    def _open_trial(self, trial: int, held: ExitStack) -> TrialBooks:
        paths = self.paths.trial(trial)
        held.enter_context(trial_writer(paths))
        state = load_state(paths.state) or self._initial_state(trial)
        tables = {
            name: completed_rows(getattr(paths, name), state.completed, ["round", "kind"])
            for name in ("evaluations", "rounds")
        }
        return TrialBooks(paths, state, tables)

    def _initial_state(self, trial: int) -> TrialState:
        theta0 = get_weights(self.build(self.params.seed + trial))
        kernels = kernels_of(theta0, self.kinds)
        return TrialState(theta0=theta0, masks=dense_masks(kernels), trained_kernels=kernels)

    def _ticket_masks(self, round_index: int, book: TrialBooks) -> dict[str, np.ndarray]:
        """The round's ticket masks: new ones, or the saved ones where its ticket is done."""
        state = book.state
        if round_index == 0 or round_index == state.last_ticket_round:
            return state.masks
        if state.is_done(round_index, TICKET):  # controls added to a finished round
            return read_round_record(book.paths.round_record(round_index))[0]
        keep = keep_counts(self.sizes, self.rates, round_index)
        frozen = frozen_layers(self.rates)
        return next_masks(
            state.trained_kernels, state.masks, keep, self.params.pruning_scope, frozen
        )

    def _job(self, trial: int, round_index: int, kind: str, book: TrialBooks) -> NetworkJob:
        state = book.state
        seed = unit_seed(self.params, trial, round_index, kind)
        rewound = state.rewind is not None and round_index > 0
        start = state.rewind if rewound else state.theta0
        masks = self._ticket_masks(round_index, book)
        if kind == TICKET:
            return NetworkJob(start, masks, seed)
        weights, masks = control_of(kind).start(
            start, masks, lambda: get_weights(self.build(seed)), np.random.default_rng(seed)
        )
        return NetworkJob(weights, masks, seed)

    def _run_round(self, round_index: int, units, books: dict[int, TrialBooks], bar) -> None:
        jobs = [self._job(trial, round_index, kind, books[trial]) for trial, kind in units]
        percents = [total_percent_remaining(job.masks) for job in jobs]
        bar.set_postfix({"networks": len(jobs), "remaining": f"{min(percents):.1f}%"})
        logs = [  # none for units retrained only for company: their curves are logged already
            UnitLog(self.paths.tensorboard / unit_folder(trial, round_index, kind), percent)
            if self.params.tensorboard and not books[trial].state.is_done(round_index, kind)
            else None
            for (trial, kind), percent in zip(units, percents, strict=True)
        ]
        outcomes = self._train(round_index, jobs, logs)
        company = [f"{trial}/{kind}" for trial, kind in units]
        for (trial, kind), job, outcome in zip(units, jobs, outcomes, strict=True):
            if books[trial].state.is_done(round_index, kind):
                continue  # saved before the run was interrupted; trained only for company
            books[trial].state.companies[round_index] = company
            self._save_unit(
                books[trial],
                {"trial": trial, "round": round_index, "kind": kind},
                job.masks,
                outcome,
            )
        merge_trials(self.paths)

    def _train(
        self, round_index: int, jobs: list[NetworkJob], logs: list[UnitLog | None]
    ) -> list[UnitOutcome]:
        """Round 0 trains from iteration 0 and records theta_k; later rounds start at k."""
        k = self.params.rewind_iteration
        start, record_at = (0, k) if round_index == 0 else (k, 0)
        bar = iterations_bar(start, self.params.iterations, self.progress)

        def show(index: int, record: dict) -> None:
            advance_to(bar, record["iteration"])
            bar.set_postfix(val_accuracy=f"{record['val_accuracy']:.4f}")
            if logs[index] is not None:
                logs[index].evaluation(record)

        try:
            return self.engine.train(jobs, start, record_at, show)
        finally:
            bar.close()
            for log in logs:
                if log is not None:
                    log.close()

    def _save_unit(self, book: TrialBooks, unit: dict, masks, outcome: UnitOutcome) -> None:
        """Add a trained unit to the trial's tables and state, on disk at once."""
        if outcome.diverged:
            warnings.warn(
                f"trial {unit['trial']} round {unit['round']} {unit['kind']}: the loss became "
                f"NaN or infinite after {outcome.iterations_trained} iterations (diverged); "
                "its metrics are NaN"
                + ("; the trial's later rounds are not trained" if unit["kind"] == TICKET else ""),
                stacklevel=2,
            )
        else:
            _check_pruned_are_zero(outcome.final_weights, masks)
        percent = total_percent_remaining(masks)
        evaluation_rows = pd.DataFrame(
            [{**unit, "percent_remaining": percent, **row} for row in outcome.evaluations],
            columns=EVALUATION_COLUMNS,
        )
        round_row = pd.DataFrame([self._round_row(unit, masks, outcome)])
        tables, paths, state = book.tables, book.paths, book.state
        for name, rows in (("evaluations", evaluation_rows), ("rounds", round_row)):
            tables[name] = pd.concat([tables[name], rows], ignore_index=True)
            write_table(getattr(paths, name), tables[name])
        round_index = unit["round"]
        if unit["kind"] == TICKET:
            write_round_record(
                paths.round_record(round_index), masks, kernels_of(outcome.final_weights, masks)
            )
            state.masks = masks
            if round_index == 0 or self.params.pruning_method == "iterative":
                state.trained_kernels = kernels_of(outcome.final_weights, masks)
            if round_index == 0 and outcome.rewind_weights is not None:
                state.rewind = outcome.rewind_weights
            if outcome.diverged:
                state.diverged_round = round_index
        state.completed.append(TrialState.unit(round_index, unit["kind"]))
        save_state(paths.state, state)

    def _round_row(self, unit: dict, masks, outcome: UnitOutcome) -> dict:
        kernel_total = sum(mask.size for mask in masks.values())
        other_total = self.unpruned_total
        kept = sum(int(mask.sum()) for mask in masks.values())
        return {
            **unit,
            "percent_remaining": total_percent_remaining(masks),
            "percent_remaining_with_biases": 100.0
            * (kept + other_total)
            / (kernel_total + other_total),
            "weights_remaining": kept,
            **{f"remaining_{name}": value for name, value in percent_remaining(masks).items()},
            "start_iteration": outcome.start_iteration,
            "early_stop_iteration": outcome.early_stop_iteration,
            "val_loss": outcome.val_loss,
            "val_accuracy": outcome.val_accuracy,
            "test_loss": outcome.test_loss,
            "test_accuracy": outcome.test_accuracy,
            "iterations_trained": outcome.iterations_trained,
            "diverged": outcome.diverged,
        }

    def _export_ticket(self, book: TrialBooks) -> None:
        """Save the final ticket: the network with the rewound weights times the last mask;
        again when the run grew by rounds since the last export, and when a ticket file is
        missing or damaged (the state holds all it needs)."""
        state, paths = book.state, book.paths
        last_round = state.last_ticket_round
        if last_round < 0:
            return
        damage = ticket_damage(paths, state.masks)
        info = None if damage else read_ticket_info(paths.ticket_info)  # written last
        if info is not None and info["round"] == last_round:
            return
        start = state.rewind if state.rewind is not None else state.theta0
        with atomic_path(paths.ticket) as temporary:
            save_network(self.model, masked(start, state.masks), temporary)
            zipped = deflated_size(temporary)
        write_arrays(paths.ticket_masks, state.masks)
        write_ticket_info(
            paths.ticket_info,
            {
                "round": last_round,
                "percent_remaining": total_percent_remaining(state.masks),
                "zipped_bytes": zipped,
            },
        )
        if damage:
            notice(f"{damage}; exported the ticket again from {paths.state}")


def _check_pruned_are_zero(weights, masks) -> None:
    """Guard the core invariant: a pruned weight is exactly 0 after training."""
    for name, mask in masks.items():
        if np.any(weights[weight_key(name, weights)][mask == 0] != 0):
            raise RuntimeError(f"layer {name}: pruned weights became non-zero during training")


def run_experiment(
    params: Params, progress: bool = True, load: Callable[[Params], Splits] = load_data
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Configure the device, load the data, train (or resume); return (evaluations, rounds)."""
    set_up_device(params.device, params.precision)
    experiment = Experiment(params, load(params), progress=progress)
    return experiment.run()
