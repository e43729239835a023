"""Controls: each keeps all but one property of its ticket, trains beside it, and resumes."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import run_tiny

from lthnb.controls.kinds import (
    CONTROLS,
    KINDS,
    RANDOM_MASK,
    REGISTRY,
    REINIT,
    RESHUFFLE,
    SAME_SIGN,
    TICKET,
    control_of,
    kind_of,
)
from lthnb.controls.starts import random_masks, reshuffled, same_sign
from lthnb.params import ParamsError, load_params
from lthnb.runs.paths import RunPaths
from lthnb.runs.state import load_state, save_state
from lthnb.runs.tables import RunFolderError

SHAPES = {"dense1": (40, 30), "output": (30, 10)}


def _ticket(seed: int = 0, density: float = 0.3):
    rng = np.random.default_rng(seed)
    masks = {n: (rng.random(s) < density).astype(np.float32) for n, s in SHAPES.items()}
    start = {f"{n}/kernel": rng.normal(size=s).astype(np.float32) for n, s in SHAPES.items()}
    start.update({f"{n}/bias": rng.normal(size=s[1]).astype(np.float32) for n, s in SHAPES.items()})
    return masks, start


def test_the_registry_refuses_unknown_kinds_instead_of_falling_through_to_another():
    with pytest.raises(ValueError, match=r"unknown kind 'reinit2'; known kinds: ticket, reinit"):
        control_of("reinit2")
    with pytest.raises(ValueError, match="'ticket' is not a control"):
        control_of(TICKET)
    with pytest.raises(ValueError, match="unknown kind"):
        kind_of(None)


def test_every_registered_kind_has_its_own_seed_code_label_and_style():
    """Seed codes are part of the results: two kinds sharing one would share random streams."""
    kinds = list(REGISTRY.values())
    for attribute in ("seed_code", "label", "description"):
        assert len({getattr(kind, attribute) for kind in kinds}) == len(kinds), attribute
    assert len({(kind.style["linestyle"], kind.style["marker"]) for kind in kinds}) == len(kinds)
    assert KINDS[0] == TICKET and set(CONTROLS) == set(KINDS) - {TICKET}
    assert [kind_of(name).seed_code for name in KINDS] == [1, 2, 3, 4, 5]  # never renumbered


def test_the_controls_parameter_accepts_exactly_the_registered_controls():
    assert load_params(controls=list(CONTROLS)).controls == list(CONTROLS)
    with pytest.raises(ParamsError, match="controls: 'ticket' unknown; known: reinit"):
        load_params(controls=[TICKET])


def test_random_masks_keep_each_layers_count_at_new_positions():
    masks, _ = _ticket()
    drawn = random_masks(masks, np.random.default_rng(1))
    for name, mask in masks.items():
        assert drawn[name].shape == mask.shape and set(np.unique(drawn[name])) <= {0.0, 1.0}
        assert drawn[name].sum() == mask.sum()
        assert not np.array_equal(drawn[name], mask)
    other = random_masks(masks, np.random.default_rng(2))
    assert not np.array_equal(other["dense1"], drawn["dense1"])


def test_reshuffle_permutes_the_survivors_values_within_each_layer():
    masks, start = _ticket()
    weights = reshuffled(start, masks, np.random.default_rng(3))
    for name, mask in masks.items():
        kept = mask > 0
        before, after = start[f"{name}/kernel"][kept], weights[f"{name}/kernel"][kept]
        np.testing.assert_array_equal(np.sort(after), np.sort(before))  # same multiset
        assert np.mean(after != before) > 0.5  # but moved
        np.testing.assert_array_equal(weights[f"{name}/bias"], start[f"{name}/bias"])
    assert np.array_equal(start["dense1/kernel"], _ticket()[1]["dense1/kernel"])  # not in place


def test_same_sign_keeps_signs_and_takes_fresh_magnitudes():
    masks, start = _ticket()
    _, fresh = _ticket(seed=9)
    weights = same_sign(start, fresh, masks)
    for name in masks:
        kernel = weights[f"{name}/kernel"]
        np.testing.assert_array_equal(np.sign(kernel), np.sign(start[f"{name}/kernel"]))
        np.testing.assert_array_equal(np.abs(kernel), np.abs(fresh[f"{name}/kernel"]))
        assert not np.allclose(np.abs(kernel), np.abs(start[f"{name}/kernel"]))


def _units(spy_calls, params):
    """Spy calls by (round, kind), in the order the experiment trains them (one trial)."""
    keys = [(0, TICKET)] + [
        (round_index, kind)
        for round_index in range(1, params.rounds + 1)
        for kind in (TICKET, *params.controls)
    ]
    return dict(zip(keys, spy_calls, strict=True))


@pytest.mark.parametrize("rewind_iteration", [0, 7])
def test_every_control_starts_as_defined_and_keeps_pruned_weights_at_zero(
    tiny_params, tiny_splits, spy, rewind_iteration
):
    params = tiny_params.replace(
        rounds=2, controls=list(CONTROLS), rewind_iteration=rewind_iteration
    )
    _, rounds = run_tiny(params, tiny_splits)
    units = _units(spy, params)
    start = spy[0]["outcome"].rewind_weights if rewind_iteration else spy[0]["weights"]
    for round_index in (1, 2):
        ticket = units[round_index, TICKET]
        for kind in CONTROLS:
            control = units[round_index, kind]
            for name, ticket_mask in ticket["masks"].items():
                mask, kernel = control["masks"][name], control["weights"][f"{name}/kernel"]
                theta = start[f"{name}/kernel"]
                final = control["outcome"].final_weights[f"{name}/kernel"]
                assert np.all(final[mask == 0] == 0) and np.all(kernel[mask == 0] == 0)
                assert mask.sum() == ticket_mask.sum()
                kept = mask == 1
                if kind == RANDOM_MASK:
                    assert not np.array_equal(mask, ticket_mask)
                    np.testing.assert_array_equal(kernel[kept], theta[kept])
                    continue
                np.testing.assert_array_equal(mask, ticket_mask)
                if kind == RESHUFFLE:
                    np.testing.assert_array_equal(np.sort(kernel[kept]), np.sort(theta[kept]))
                    assert not np.array_equal(kernel[kept], theta[kept])
                elif kind == SAME_SIGN:
                    np.testing.assert_array_equal(np.sign(kernel[kept]), np.sign(theta[kept]))
                    assert not np.allclose(np.abs(kernel[kept]), np.abs(theta[kept]))
                else:  # reinit: fresh values of either sign
                    assert np.mean(np.sign(kernel[kept]) != np.sign(theta[kept])) > 0.2
    assert list(rounds["kind"]) == [TICKET] + [TICKET, *CONTROLS] * 2
    assert rounds.loc[rounds["round"] > 0, "start_iteration"].eq(rewind_iteration).all()


def test_random_masks_are_drawn_per_trial_and_round(tiny_params, tiny_splits, spy):
    params = tiny_params.replace(rounds=2, trials=2, controls=[RANDOM_MASK])
    run_tiny(params, tiny_splits)
    # round 0: two tickets; rounds 1 and 2: (ticket, random mask) of trial 0, then of trial 1
    randoms = [spy[index]["masks"]["dense1"] for index in (3, 5, 7, 9)]
    for index, first in enumerate(randoms):
        for second in randoms[index + 1 :]:
            assert not np.array_equal(first, second)


def _add_same_sign(tiny_params, tiny_splits, spy, forget_stacks: bool = False):
    """A finished run with reinit controls, then same_sign added; checks that the old rows stay
    exactly as they were. Returns round 1's ticket mask; `spy` then holds only what the second
    run trained."""
    _, before = run_tiny(tiny_params.replace(rounds=2, controls=[REINIT]), tiny_splits)
    round1_ticket_mask = spy[1]["masks"]["dense1"]
    if forget_stacks:  # as a run folder from before the round's stacks were recorded
        path = RunPaths(tiny_params.run_dir).trial(0).state
        save_state(path, dataclasses.replace(load_state(path), companies={}))
    spy.clear()
    _, after = run_tiny(tiny_params.replace(rounds=2, controls=[REINIT, SAME_SIGN]), tiny_splits)
    old_rows = after[after["kind"] != SAME_SIGN].reset_index(drop=True)
    pd.testing.assert_frame_equal(old_rows, before, check_exact=True)
    assert list(after.loc[after["kind"] == SAME_SIGN, "round"]) == [1, 2]
    return round1_ticket_mask


def test_controls_added_to_a_finished_run_train_its_finished_rounds(tiny_params, tiny_splits, spy):
    round1_ticket_mask = _add_same_sign(tiny_params, tiny_splits, spy)
    assert len(spy) == 2  # same_sign alone in rounds 1 and 2: the finished units stay as saved
    np.testing.assert_array_equal(spy[0]["masks"]["dense1"], round1_ticket_mask)
    stored = yaml.safe_load(RunPaths(tiny_params.run_dir).params.read_text())
    assert stored["controls"] == [REINIT, SAME_SIGN]
    with pytest.raises(RunFolderError, match=r"has same_sign results; controls must keep"):
        run_tiny(tiny_params.replace(rounds=2, controls=[REINIT]), tiny_splits)


def test_a_run_folder_without_recorded_stacks_retrains_its_last_round_as_if_cut_off(
    tiny_params, tiny_splits, spy
):
    _add_same_sign(tiny_params, tiny_splits, spy, forget_stacks=True)
    assert len(spy) == 1 + 3  # round 2: ticket and reinit again, beside same_sign


def test_a_run_folder_from_before_controls_reads_random_reinit_as_reinit(
    tiny_params, tiny_splits, spy
):
    run_tiny(tiny_params.replace(rounds=1, controls=[REINIT]), tiny_splits)
    paths = RunPaths(tiny_params.run_dir)
    stored = yaml.safe_load(paths.params.read_text())
    del stored["controls"]
    stored["random_reinit"] = True
    paths.params.write_text(yaml.safe_dump(stored, sort_keys=False))
    spy.clear()
    _, rounds = run_tiny(tiny_params.replace(rounds=1, controls=[REINIT]), tiny_splits)
    assert len(spy) == 0 and len(rounds) == 3  # nothing to train: the same run
    with pytest.raises(RunFolderError, match="has reinit results"):
        run_tiny(tiny_params.replace(rounds=1, controls=[]), tiny_splits)


@pytest.mark.parametrize(
    ("controls", "message"),
    [
        (["reinit", "shuffle"], r"controls: 'shuffle' unknown; known: reinit, random_mask, "),
        (["reinit", "reinit"], r"controls: reinit given twice; list each once"),
        ("reinit", r"controls: 'reinit' must be a list of strings"),
    ],
)
def test_bad_controls_are_refused_naming_the_known_ones(controls, message):
    with pytest.raises(ParamsError, match=message):
        load_params({"controls": controls})


def test_random_reinit_names_its_replacement():
    with pytest.raises(ParamsError, match=r"random_reinit: no longer a parameter.*controls: \["):
        load_params({"random_reinit": True})
