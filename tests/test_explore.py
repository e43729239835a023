"""Round records, the explorer's views, and TensorBoard logs, from a real tiny run."""

import matplotlib

matplotlib.use("Agg")

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import pytest
import tensorflow as tf
from run_folder import write_run_folder

from lthnb.lottery.experiment import run_experiment
from lthnb.report import display, explore
from lthnb.runs import reader
from lthnb.runs.paths import RunPaths
from lthnb.runs.state import load_state
from lthnb.runs.tables import RunFolderError


@pytest.fixture
def finished_run(tiny_params, tiny_splits):
    params = tiny_params.replace(tensorboard=True, controls=["reinit"])
    run_experiment(params, progress=False, load=lambda _: tiny_splits)
    return params


def test_round_records_hold_the_masks_used_and_sparse_trained_kernels(finished_run):
    run_dir = finished_run.run_dir
    assert reader.recorded_rounds(run_dir) == {0: [0, 1, 2]}
    record = reader.read_round(run_dir, 0, 2)
    state = load_state(RunPaths(run_dir).trial(0).state)
    for name, mask in state.masks.items():
        np.testing.assert_array_equal(record.masks[name], mask)
        assert np.all(record.trained[name][mask == 0] == 0)
        np.testing.assert_array_equal(record.theta0[name], state.theta0[f"{name}/kernel"])
    earlier = reader.read_round(run_dir, 0, 1)
    assert all(np.all(record.masks[n] <= earlier.masks[n]) for n in record.masks)


def test_views(finished_run, monkeypatch):
    run_dir = finished_run.run_dir
    figure = explore.layer_view(run_dir, 0, 2, "dense1")
    assert len(figure.axes) == 3
    assert "dense1" in figure.texts[0].get_text() or "dense1" in figure._suptitle.get_text()
    connections = explore.input_connections(
        reader.read_round(run_dir, 0, 2).masks["dense1"], (28, 28)
    )
    assert connections.shape == (28, 28)
    assert connections.sum() == reader.read_round(run_dir, 0, 2).masks["dense1"].sum()
    assert explore.input_connections_figure(run_dir, 0, 2) is not None
    monkeypatch.delenv("LTHNB_HEADLESS", raising=False)
    widget = explore.explorer(run_dir)
    assert isinstance(widget, ipywidgets.interactive)
    assert [c.description for c in widget.children[:3]] == ["trial", "round", "layer"]
    with pytest.raises(RunFolderError, match="round_009"):
        reader.read_round(run_dir, 0, 9)


def test_tensorboard_logs_have_the_curves(finished_run):
    folder = RunPaths(finished_run.run_dir).tensorboard / "trial_000" / "round_001_reinit"
    events = list(folder.glob("events.out.tfevents.*"))
    assert events
    tags = {
        value.tag
        for event in tf.compat.v1.train.summary_iterator(str(events[0]))
        for value in event.summary.value
    }
    assert {"train_loss", "val_accuracy", "percent_remaining"} <= tags


def test_headless_explorer_is_a_static_figure_with_alt_text(finished_run, monkeypatch):
    monkeypatch.setenv("LTHNB_HEADLESS", "1")
    plt.close("all")
    image = explore.explorer(finished_run.run_dir)
    assert isinstance(image, display.FigureImage)
    assert image.alt == "trial 0, round 2, layer dense1"
    assert 'alt="trial 0, round 2, layer dense1"' in image._repr_mimebundle_()["text/html"]
    assert not plt.get_fignums()  # closed: the inline backend does not show it a second time


def test_trials_are_keyed_by_their_number_not_their_position(tiny_params, monkeypatch):
    run_dir = write_run_folder(tiny_params, trials=(1, 3))
    assert reader.recorded_rounds(run_dir) == {1: [0, 1, 2], 3: [0, 1, 2]}
    record = reader.read_round(run_dir)  # defaults: the first trial there, its last round
    assert (record.trial, record.round_index) == (1, 2)
    assert reader.read_round(run_dir, 3, 1).trial == 3
    assert "trial 1, round 2" in explore.layer_view(run_dir).get_suptitle()
    monkeypatch.delenv("LTHNB_HEADLESS", raising=False)
    widget = explore.explorer(run_dir)
    assert widget.children[0].options == (1, 3)
    with pytest.raises(RunFolderError, match="trial_000.*run 04_train for trial 0"):
        reader.read_round(run_dir, 0)


def test_input_connections_title_clears_its_colorbar(tiny_params):
    run_dir = write_run_folder(tiny_params)
    figure = explore.input_connections_figure(run_dir)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    image_ax, colorbar_ax = figure.axes
    title = image_ax.title.get_window_extent(renderer)
    assert not title.overlaps(colorbar_ax.get_tightbbox(renderer))
    assert figure.bbox.contains(title.x0, title.y0) and figure.bbox.contains(title.x1, title.y1)
    assert colorbar_ax.get_ylabel() == "surviving connections"
