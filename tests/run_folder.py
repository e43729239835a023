"""A run folder written file by file in the format of lthnb.runs.tables, without training.

The masks are real magnitude-pruning masks (lthnb.pruning.masks on made-up trained weights, on
03's schedule), θ0 is a real tiny LeNet's, and `ticket.keras` is that network with the rewound
weights times the final mask, as 04_train exports it. Tests of the views over a run folder use
it, and plant defects in it that a real run never has.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import tf_keras
import yaml

from lthnb.nets.build import build_model
from lthnb.nets.names import kernels_of, masked
from lthnb.nets.prunable import kernel_sizes, layer_kinds
from lthnb.nets.weights import get_weights, set_weights
from lthnb.params import Params
from lthnb.pruning.masks import (
    dense_masks,
    next_masks,
    percent_remaining,
    total_percent_remaining,
)
from lthnb.pruning.schedule import keep_counts, layer_rates
from lthnb.runs.paths import RunPaths
from lthnb.runs.state import TrialState, save_state, write_round_record
from lthnb.runs.tables import write_arrays, write_table

INPUT_SHAPE, CLASSES = (28, 28, 1), 10
EVALUATIONS = (5, 10, 15, 20)


def write_run_folder(params: Params, trials: tuple[int, ...] = (0,), rewind: bool = False) -> Path:
    """Rounds 0..params.rounds of each trial number in `trials`, tickets and reinit controls."""
    paths = RunPaths(params.run_dir)
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.params.write_text(yaml.safe_dump(params.to_dict(), sort_keys=False))
    rounds, evaluations = [], []
    for trial in trials:
        trial_rounds, trial_evaluations = _write_trial(params, trial, rewind)
        rounds += trial_rounds
        evaluations += trial_evaluations
    write_table(paths.rounds, pd.DataFrame(rounds))
    write_table(paths.evaluations, pd.DataFrame(evaluations))
    return paths.root


def ticket_model(params: Params, weights: dict[str, np.ndarray]) -> tf_keras.Model:
    model = build_model(params, INPUT_SHAPE, CLASSES, params.seed)
    set_weights(model, weights)
    return model


def _write_trial(params: Params, trial: int, rewind: bool) -> tuple[list[dict], list[dict]]:
    paths = RunPaths(params.run_dir).trial(trial)
    model = build_model(params, INPUT_SHAPE, CLASSES, params.seed + trial)
    theta0 = get_weights(model)
    sizes, rates = kernel_sizes(model), layer_rates(layer_kinds(model), params)
    rng = np.random.default_rng(trial)
    start = theta0
    if rewind:  # θk: the weights some iterations into round 0
        start = {key: value + rng.normal(0, 0.01, value.shape).astype(value.dtype)
                 for key, value in theta0.items()}  # fmt: skip
    masks = dense_masks(kernels_of(theta0, sizes))
    trained = kernels_of(theta0, sizes)
    rounds, evaluations, completed = [], [], []
    for round_index in range(params.rounds + 1):
        if round_index:
            masks = next_masks(trained, masks, keep_counts(sizes, rates, round_index), "layerwise")
        final = masked(
            {k: v + rng.normal(0, 0.05, v.shape).astype(v.dtype) for k, v in start.items()}, masks
        )
        write_round_record(paths.round_record(round_index), masks, kernels_of(final, masks))
        for kind in ("ticket", "reinit") if round_index else ("ticket",):
            unit = {"trial": trial, "round": round_index, "kind": kind}
            rounds.append(_round_row(unit, masks, round_index))
            evaluations += [
                {**unit, "percent_remaining": total_percent_remaining(masks), "iteration": step,
                 "train_loss": 1.0, "train_accuracy": 0.5, "val_loss": 1.0 / step,
                 "val_accuracy": 0.5 + step / 100}
                for step in EVALUATIONS
            ]  # fmt: skip
            completed.append(TrialState.unit(round_index, kind))
        trained = kernels_of(final, masks)
    state = TrialState(theta0=theta0, masks=masks, trained_kernels=trained,
                       rewind=start if rewind else None, completed=completed)  # fmt: skip
    save_state(paths.state, state)
    ticket_model(params, masked(start, masks)).save(paths.ticket)
    write_arrays(paths.ticket_masks, masks)
    paths.ticket_info.write_text(json.dumps({"round": params.rounds}))
    return rounds, evaluations


def _round_row(unit: dict, masks: dict[str, np.ndarray], round_index: int) -> dict:
    control = unit["kind"] == "reinit"
    return {
        **unit, "percent_remaining": total_percent_remaining(masks),
        "percent_remaining_with_biases": total_percent_remaining(masks),
        "weights_remaining": sum(int(m.sum()) for m in masks.values()),
        **{f"remaining_{n}": v for n, v in percent_remaining(masks).items()},
        "start_iteration": 0, "early_stop_iteration": 15 if control else 10 + 5 * (round_index % 2),
        "val_loss": 0.5, "val_accuracy": 0.8,
        "test_loss": 0.5, "test_accuracy": 0.7 if control else 0.8 + round_index / 100,
        "iterations_trained": 20, "diverged": False,
    }  # fmt: skip
