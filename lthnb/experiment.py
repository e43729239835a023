"""Iterative magnitude pruning with rewinding: trials of rounds, each resumable.

A trial is a sequence of units (round, kind): round 0 trains the dense net; every later round
prunes from the trained weights of the previous round (or of round 0, one-shot), rewinds the
survivors, and trains the ticket; with `random_reinit` the same mask is also trained from a
fresh initialisation (the control). After each unit the trial's tables and state are saved, so
a rerun continues after the last completed unit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import tensorflow as tf
import tf_keras

from lthnb.data import Splits, load_dataset
from lthnb.device import configure_device
from lthnb.masked_model import (
    export_stripped,
    get_masks,
    get_weights,
    kernels_of,
    masked,
    set_masks,
    set_weights,
    wrap_for_pruning,
)
from lthnb.models import build_model, kernel_sizes, layer_kinds
from lthnb.params import Params
from lthnb.paths import RunPaths, TrialPaths
from lthnb.progress import progress_bar
from lthnb.pruning import dense_masks, next_masks, percent_remaining, total_percent_remaining
from lthnb.results import (
    TrialState,
    completed_rows,
    load_state,
    merge_trials,
    open_run,
    save_state,
    trial_writer,
    write_arrays,
    write_table,
    write_ticket_info,
)
from lthnb.schedule import keep_counts, layer_rates
from lthnb.tensorboard_log import UnitLog
from lthnb.training import (
    DataTensors,
    EpochRunner,
    RoundOutcome,
    make_optimizer,
    steps_per_epoch,
    train_round,
)

TICKET, REINIT = "ticket", "reinit"
KIND_CODES = {TICKET: 1, REINIT: 2}


def planned_units(params: Params) -> list[tuple[int, str]]:
    """(round, kind) in training order; controls exist only for pruned rounds."""
    units = []
    for round_index in range(params.rounds + 1):
        units.append((round_index, TICKET))
        if params.random_reinit and round_index > 0:
            units.append((round_index, REINIT))
    return units


def unit_seed(params: Params, trial: int, round_index: int, kind: str) -> int:
    """A seed per (trial, round, kind): shuffles, dropout and controls never share a stream."""
    sequence = np.random.SeedSequence([params.seed + trial, round_index, KIND_CODES[kind]])
    return int(sequence.generate_state(1)[0] % (2**31))


def load_data(params: Params) -> Splits:
    return load_dataset(
        params.dataset,
        params.data_dir,
        validation_size=params.validation_size,
        seed=params.seed,
        train_subset=params.train_subset,
    )


class Experiment:
    """One run folder's experiment: the data, the network's shape and the trials to train."""

    def __init__(self, params: Params, splits: Splits, progress: bool = True) -> None:
        self.params = params
        self.splits = splits
        self.data = DataTensors.from_splits(splits)
        self.progress = progress
        self.paths: RunPaths = open_run(params)
        tf_keras.backend.clear_session()
        # One wrapped model and one compiled epoch serve every unit: new models per unit would
        # be traced again and again, and TensorFlow keeps every trace (memory grew per round).
        self.model = wrap_for_pruning(self.build(params.seed))
        self.runner = EpochRunner(self.model, make_optimizer(params), params.batch_size)
        self.kinds = layer_kinds(self.model)
        self.sizes = kernel_sizes(self.model)
        self.rates = layer_rates(self.kinds, params)
        self.steps = steps_per_epoch(self.data.train_size, params.batch_size)

    def build(self, seed: int) -> tf_keras.Model:
        """A fresh network drawn from `seed` (for its initial weights)."""
        return build_model(self.params, self.splits.input_shape, self.splits.num_classes, seed)

    def run(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Train the trials that are not finished yet; return the merged (epochs, rounds)."""
        trials = self.params.selected_trials
        for trial in progress_bar(trials, desc="trials", detail=True, disable=not self.progress):
            self.run_trial(trial)
        return merge_trials(self.paths)

    def run_trial(self, trial: int) -> None:
        paths = self.paths.trial(trial)
        with trial_writer(paths):
            state = load_state(paths.state) or self._initial_state(trial)
            tables = {
                "epochs": completed_rows(paths.epochs, state),
                "rounds": completed_rows(paths.rounds, state),
            }
            units = planned_units(self.params)
            bar = progress_bar(units, desc=f"trial {trial}", leave=False, disable=not self.progress)
            for round_index, kind in bar:
                if state.is_done(round_index, kind):
                    continue
                self._run_unit(trial, round_index, kind, state, tables, paths, bar)
                merge_trials(self.paths)
            if not paths.ticket_info.exists():  # written last of the ticket's files
                self._export_ticket(state, paths)

    def _initial_state(self, trial: int) -> TrialState:
        theta0 = get_weights(self.build(self.params.seed + trial))
        masks = dense_masks(kernels_of(theta0))
        return TrialState(theta0=theta0, masks=masks, trained_kernels=kernels_of(theta0))

    def _masks_for(self, round_index: int, kind: str, state: TrialState) -> dict[str, np.ndarray]:
        if kind == REINIT or round_index == 0:
            return state.masks
        keep = keep_counts(self.sizes, self.rates, round_index)
        return next_masks(state.trained_kernels, state.masks, keep, self.params.pruning_scope)

    def _initial_weights(self, trial: int, round_index: int, kind: str, state: TrialState):
        if kind == REINIT:
            return get_weights(self.build(unit_seed(self.params, trial, round_index, kind)))
        return state.rewind if (state.rewind is not None and round_index > 0) else state.theta0

    def _run_unit(self, trial, round_index, kind, state, tables, paths, bar) -> None:
        masks = self._masks_for(round_index, kind, state)
        start = masked(self._initial_weights(trial, round_index, kind, state), masks)
        seed = unit_seed(self.params, trial, round_index, kind)
        model = self.model
        set_weights(model, start)
        set_masks(model, masks)
        tf_keras.utils.set_random_seed(seed)
        percent = total_percent_remaining(masks)
        postfix = {"round": round_index, "kind": kind, "remaining": f"{percent:.1f}%"}
        bar.set_postfix(postfix)
        log_folder = (
            self.paths.tensorboard / f"trial_{trial:03d}" / f"round_{round_index:03d}_{kind}"
        )
        log = UnitLog(log_folder, percent) if self.params.tensorboard else None
        outcome = self._train(seed, round_index, log)
        bar.set_postfix({**postfix, "val_accuracy": f"{outcome.val_accuracy:.4f}"})
        _check_pruned_are_zero(outcome.final_weights, get_masks(model))
        unit = {"trial": trial, "round": round_index, "kind": kind}
        epoch_rows = pd.DataFrame(
            [{**unit, "percent_remaining": percent, **row} for row in outcome.epochs]
        )
        round_row = pd.DataFrame([self._round_row(unit, masks, outcome)])
        tables["epochs"] = pd.concat([tables["epochs"], epoch_rows], ignore_index=True)
        tables["rounds"] = pd.concat([tables["rounds"], round_row], ignore_index=True)
        write_table(paths.epochs, tables["epochs"])
        write_table(paths.rounds, tables["rounds"])
        if kind == TICKET:
            write_arrays(
                paths.round_record(round_index), round_record(masks, outcome.final_weights)
            )
            state.masks = masks
            if round_index == 0 or self.params.pruning_method == "iterative":
                state.trained_kernels = kernels_of(outcome.final_weights)
            if round_index == 0 and outcome.rewind_weights is not None:
                state.rewind = outcome.rewind_weights
        state.completed.append(TrialState.unit(round_index, kind))
        save_state(paths.state, state)

    def _train(self, seed: int, round_index: int, log: UnitLog | None) -> RoundOutcome:
        rewind_epoch = self.params.rewind_epochs if round_index == 0 else 0
        epochs = progress_bar(
            total=self.params.max_epochs,
            desc="epochs",
            leave=False,
            detail=True,
            disable=not self.progress,
        )

        def show(record: dict) -> None:
            epochs.update(1)
            epochs.set_postfix(val_accuracy=f"{record['val_accuracy']:.4f}")
            if log is not None:
                log.epoch(record)

        try:
            return train_round(self.runner, self.data, self.params, seed, rewind_epoch, show)
        finally:
            epochs.close()
            if log is not None:
                log.close()

    def _round_row(self, unit: dict, masks, outcome: RoundOutcome) -> dict:
        kernel_total = sum(mask.size for mask in masks.values())
        bias_total = sum(v.size for k, v in outcome.final_weights.items() if k.endswith("/bias"))
        kept = sum(int(mask.sum()) for mask in masks.values())
        return {
            **unit,
            "percent_remaining": total_percent_remaining(masks),
            "percent_remaining_with_biases": 100.0
            * (kept + bias_total)
            / (kernel_total + bias_total),
            "weights_remaining": kept,
            **{f"remaining_{name}": value for name, value in percent_remaining(masks).items()},
            "early_stop_epoch": outcome.early_stop_epoch,
            "early_stop_iteration": outcome.early_stop_epoch * self.steps,
            "val_loss": outcome.val_loss,
            "val_accuracy": outcome.val_accuracy,
            "test_loss": outcome.test_loss,
            "test_accuracy": outcome.test_accuracy,
            "epochs_trained": outcome.epochs_trained,
        }

    def _export_ticket(self, state: TrialState, paths: TrialPaths) -> None:
        """Save the final ticket: rewound weights times the last mask, wrappers stripped."""
        start = state.rewind if state.rewind is not None else state.theta0
        set_weights(self.model, masked(start, state.masks))
        set_masks(self.model, state.masks)
        zipped = export_stripped(self.model, paths.ticket)
        write_arrays(paths.ticket_masks, state.masks)
        write_ticket_info(
            paths.ticket_info,
            {"percent_remaining": total_percent_remaining(state.masks), "zipped_bytes": zipped},
        )


def round_record(masks, final_weights) -> dict[str, np.ndarray]:
    """What 05's explorer shows of a ticket round: its masks and trained kernels (float16)."""
    record = {f"mask:{name}": mask.astype(np.uint8) for name, mask in masks.items()}
    for name, kernel in kernels_of(final_weights).items():
        record[f"trained:{name}"] = kernel.astype(np.float16)
    return record


def _check_pruned_are_zero(weights, masks) -> None:
    """Guard the core invariant: a pruned weight is exactly 0 after training."""
    for name, mask in masks.items():
        if np.any(weights[f"{name}/kernel"][mask == 0] != 0):
            raise RuntimeError(f"layer {name}: pruned weights became non-zero during training")


def run_experiment(
    params: Params, progress: bool = True, load: Callable[[Params], Splits] = load_data
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Configure the device, load the data, train (or resume) and return (epochs, rounds)."""
    configure_device(params.device)
    tf.config.experimental.enable_op_determinism()
    experiment = Experiment(params, load(params), progress=progress)
    return experiment.run()
