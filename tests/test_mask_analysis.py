"""Mask analyses on hand-made masks with known answers, and once on a tiny run folder."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from run_folder import write_run_folder

from lthnb.analysis import mask_analysis
from lthnb.report import mask_figures
from lthnb.runs.paths import RunPaths
from lthnb.runs.state import load_state


def _mask(*bits: int) -> np.ndarray:
    return np.array(bits, dtype=np.float32)


def test_jaccard_of_identical_disjoint_and_empty_masks():
    a = _mask(1, 1, 0, 1, 0, 0)
    assert mask_analysis.jaccard(a, a) == 1.0
    assert mask_analysis.jaccard(a, 1 - a) == 0.0
    assert mask_analysis.jaccard(a, _mask(1, 0, 1, 1, 0, 0)) == pytest.approx(2 / 4)
    assert mask_analysis.jaccard(np.zeros(4), np.zeros(4)) == 1.0  # the same (empty) mask
    with pytest.raises(ValueError, match="different shapes"):
        mask_analysis.jaccard(a, a[:3])


@pytest.mark.parametrize("density", [0.5, 0.2, 0.05])
def test_random_masks_overlap_at_the_chance_level(density):
    rng = np.random.default_rng(7)
    a, b = (rng.random((1000, 1000)) < density for _ in range(2))
    assert mask_analysis.chance_jaccard(density) == pytest.approx(density / (2 - density))
    assert abs(mask_analysis.jaccard(a, b) - density / (2 - density)) < 0.01


def test_chance_of_masks_of_different_densities():
    rng = np.random.default_rng(8)
    a, b = rng.random((1000, 1000)) < 0.5, rng.random((1000, 1000)) < 0.1
    expected = 0.05 / (0.5 + 0.1 - 0.05)
    assert mask_analysis.chance_jaccard(0.5, 0.1) == pytest.approx(expected)
    assert abs(mask_analysis.jaccard(a, b) - expected) < 0.01


def test_trial_overlap_is_the_mean_and_std_over_pairs_of_trials():
    """Round 1: trials 0 and 2 agree (J = 1), trial 1 shares half with each (J = 2/4): mean 2/3,
    sample std sqrt(1/12). Round 2 only trials 0 and 1 reached: one pair."""
    first, second = _mask(1, 1, 1, 0, 0, 0), _mask(1, 1, 0, 1, 0, 0)
    masks = {
        0: {1: {"a": first, "b": _mask(1, 1, 0, 0)}, 2: {"a": _mask(1, 0, 0, 0, 0, 0)}},
        1: {1: {"a": second, "b": _mask(0, 0, 1, 1)}, 2: {"a": _mask(0, 1, 0, 0, 0, 0)}},
        2: {1: {"a": first, "b": _mask(1, 1, 0, 0)}},
    }
    table = mask_analysis.trial_overlap(masks).set_index(["round", "layer"])
    a = table.loc[(1, "a")]
    assert a["jaccard_mean"] == pytest.approx(2 / 3)
    assert a["jaccard_std"] == pytest.approx(np.sqrt(1 / 12))
    assert (a["pairs"], a["density"], a["chance"]) == (3, 0.5, pytest.approx(1 / 3))
    assert a["over_chance"] == pytest.approx(2.0)
    b = table.loc[(1, "b")]
    assert (b["jaccard_mean"], b["jaccard_std"]) == (
        pytest.approx(1 / 3),
        pytest.approx(1 / 3**0.5),
    )
    assert a["percent_remaining"] == pytest.approx(100 * 5 / 10)
    late = table.loc[(2, "a")]
    assert (late["jaccard_mean"], late["pairs"]) == (0.0, 1) and np.isnan(late["jaccard_std"])
    assert mask_analysis.trial_overlap({0: masks[0]}).empty  # one trial: nothing to pair


def test_run_overlap_pairs_trials_by_index_and_rounds_by_percent_remaining():
    dense = {"a": _mask(1, 1, 1, 1)}
    run = {0: {0: dense, 1: {"a": _mask(1, 1, 0, 0)}, 2: {"a": _mask(1, 0, 0, 0)}}}
    other = {
        0: {0: dense, 3: {"a": _mask(0, 1, 1, 0)}, 4: {"a": _mask(0, 1, 1, 1)}},
        1: {0: dense},  # no trial 1 in `run`: not paired
    }
    table = mask_analysis.run_overlap(run, other).set_index("round")
    assert list(table.index) == [0, 1]  # round 2 (25%) has no round at 25% in `other`
    assert table.loc[1, "round_other"] == 3
    assert table.loc[1, "jaccard_mean"] == pytest.approx(1 / 3)
    assert table.loc[1, "pairs"] == 1


# start: signs +, -, +, -, +, +. Round 0 trains all six; round 1 keeps 0, 1, 3; round 2 keeps 0, 3.
START = {"w": np.array([[1.0, -1.0, 1.0], [-1.0, 1.0, 1.0]])}
MASKS = {
    0: {"w": np.ones((2, 3))},
    1: {"w": np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])},
    2: {"w": np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])},
}
TRAINED = {
    0: {"w": np.array([[2.0, 1.0, -0.5], [-3.0, 0.1, -0.2]])},  # flipped: 1, 2, 5
    1: {"w": np.array([[-1.0, -2.0, 0.0], [3.0, 0.0, 0.0]])},  # flipped: 0, 3
    2: {"w": np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])},
}


def _shares(table) -> dict[tuple[int, str], tuple[int, int]]:
    return {(r.round, r.group): (r.changed, r.weights) for r in table.itertuples()}


def test_sign_changes_read_the_weights_the_pruning_ranked():
    """Round 1 ranked round 0's trained weights: survivors 0, 1, 3 (1 flipped), pruned 2, 4, 5
    (2 and 5 flipped). Round 2 ranked round 1's: survivors 0, 3 (both flipped), pruned 1 (not)."""
    table = mask_analysis.sign_changes(START, MASKS, TRAINED)
    assert _shares(table) == {
        (1, "survivors"): (1, 3),
        (1, "pruned"): (2, 3),
        (2, "survivors"): (2, 2),
        (2, "pruned"): (0, 1),
    }
    assert table.set_index(["round", "group"]).loc[(1, "pruned"), "share"] == pytest.approx(2 / 3)
    oneshot = mask_analysis.sign_changes(START, MASKS, TRAINED, pruning_method="oneshot")
    assert _shares(oneshot)[2, "survivors"] == (0, 2) and _shares(oneshot)[2, "pruned"] == (1, 1)


def test_start_magnitudes_split_survivors_from_the_weights_pruned_in_that_round():
    start = {"w": np.array([0.1, 0.2, 0.3, 0.4, 0.5, -0.6])}
    masks = {
        0: {"w": np.ones(6)},
        1: {"w": _mask(0, 0, 0, 1, 1, 1)},
        2: {"w": _mask(0, 0, 0, 0, 0, 1)},
    }
    table = mask_analysis.start_magnitudes(start, masks).set_index(["round", "group"])
    assert table.loc[(1, "survivors"), "median"] == pytest.approx(0.5)
    assert table.loc[(1, "pruned"), "median"] == pytest.approx(0.2)
    assert table.loc[(2, "survivors"), "median"] == pytest.approx(0.6)
    assert table.loc[(2, "pruned"), "median"] == pytest.approx(0.45)  # 0.4 and 0.5, not 0.1-0.5
    assert table.loc[(2, "pruned"), "weights"] == 2
    assert table.loc[(1, "pruned"), "q25"] == pytest.approx(0.15)


def test_a_run_folder_with_late_rewinding(tiny_params):
    """Reading, the rewind point θk as the start, tables over trials, figures and sentences."""
    run_dir = write_run_folder(tiny_params, trials=(0, 1), rewind=True)
    state = load_state(RunPaths(run_dir).trial(1).state)
    trials = mask_analysis.read_trials(run_dir)
    assert [t.trial for t in trials] == [0, 1] and trials[1].start_name == "θk"
    np.testing.assert_array_equal(trials[1].start["dense1"], state.rewind["dense1/kernel"])
    signs = mask_analysis.sign_changes_of(run_dir)
    record = trials[1]
    expected = mask_analysis.sign_changes(record.start, record.masks, record.trained)
    got = signs[signs["trial"] == 1].drop(columns=["trial", "start"]).reset_index(drop=True)
    assert got.equals(expected)
    overlap = mask_analysis.trial_overlap_of(run_dir)
    assert set(overlap["pairs"]) == {1} and list(overlap["round"].unique()) == [0, 1, 2]
    magnitudes = mask_analysis.start_magnitudes_of(run_dir)
    summary = mask_analysis.over_trials(magnitudes, ["median"])
    assert set(summary["trials"]) == {2}
    assert len(mask_analysis.wide_by_round(summary, "median")) == tiny_params.rounds
    figures = [
        mask_figures.overlap_figure(overlap, "trials"),
        mask_figures.sign_change_figure(signs),
        mask_figures.magnitude_figure(magnitudes),
    ]
    assert [len([ax for ax in f.axes if ax.get_visible()]) for f in figures] == [3, 3, 3]
    assert "θk" in figures[2].get_suptitle()
    plt.close("all")
    assert "θk" in mask_figures.sign_change_sentence(signs)
    assert "dense1" in mask_figures.magnitude_sentence(magnitudes)
    across = mask_analysis.run_overlap_of(run_dir, run_dir)
    assert (across["jaccard_mean"] == 1).all()
    assert "(2 pairs): dense1 " in mask_figures.overlap_sentence(across, "the same run")
