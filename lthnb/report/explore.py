"""Look inside a run: a chosen layer's mask and weight magnitudes, per trial and round.

In JupyterLab `explorer()` gives dropdowns and a slider; headless (papermill) the same views are
drawn as static figures. No TensorFlow: everything is read from the run folder's .npz files.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from lthnb.notebook.progress import headless
from lthnb.report.display import figure_image
from lthnb.runs.reader import RoundRecord, first_recorded_trial, read_round, recorded_rounds


def as_matrix(kernel: np.ndarray) -> np.ndarray:
    """A kernel as (inputs, outputs): conv kernels (h, w, in, out) fold their window in."""
    return kernel.reshape(-1, kernel.shape[-1])


def layer_view(
    run_dir: str | Path,
    trial: int | None = None,
    round_index: int | None = None,
    layer: str | None = None,
) -> Figure:
    """A layer's mask, and magnitudes of survivors vs pruned weights (trained and at θ0).

    Defaults: the first recorded trial, its sparsest recorded round, the first prunable layer.
    """
    record = read_round(run_dir, trial, round_index)
    layer = layer or next(iter(record.masks))
    mask = record.masks[layer].astype(bool)
    fig, (ax_mask, ax_trained, ax_init) = plt.subplots(
        1, 3, figsize=(13, 3.8), layout="constrained"
    )
    ax_mask.imshow(as_matrix(mask).T, aspect="auto", cmap="gray_r", interpolation="nearest")
    ax_mask.set_title(f"mask of {layer}: {100 * mask.mean():.1f}% kept")
    ax_mask.set_xlabel("input unit")
    ax_mask.set_ylabel("output unit")
    ax_trained.hist(np.abs(record.trained[layer][mask]), bins=50, color="tab:blue")
    ax_trained.set_title(f"trained weights, round {record.round_index} (survivors)")
    ax_trained.set_xlabel("|weight|")
    ax_trained.set_ylabel("count")
    initial = np.abs(record.theta0[layer])
    bins = np.linspace(0, initial.max(), 50)
    ax_init.hist(initial[mask], bins=bins, alpha=0.7, density=True, label="kept")
    if (~mask).any():
        ax_init.hist(initial[~mask], bins=bins, alpha=0.7, density=True, label="pruned")
    ax_init.set_title("initial weights θ0")
    ax_init.set_xlabel("|weight|")
    ax_init.set_ylabel("density")
    ax_init.legend()
    fig.suptitle(f"trial {record.trial}, round {record.round_index}, layer {layer}")
    return fig


def input_connections(first_mask: np.ndarray, image_shape: tuple[int, int]) -> np.ndarray:
    """Surviving connections from each input pixel of a dense first layer, as an image."""
    return first_mask.sum(axis=1).reshape(image_shape)


def input_image(record: RoundRecord) -> np.ndarray | None:
    """`input_connections` of a record's first layer; None unless it is dense on square images."""
    first = next(iter(record.masks.values()))
    side = int(round(np.sqrt(first.shape[0])))
    if first.ndim != 2 or side * side != first.shape[0]:
        return None  # a conv first layer, or inputs that are not a square image
    return input_connections(first, (side, side))


def input_connections_figure(
    run_dir: str | Path, trial: int | None = None, round_index: int | None = None
) -> Figure | None:
    """For LeNet: where the first layer still looks (None for nets that start with a conv)."""
    record = read_round(run_dir, trial, round_index)
    connections = input_image(record)
    if connections is None:
        return None
    fig, ax = plt.subplots(figsize=(5, 4.6), layout="constrained")
    image = ax.imshow(connections, cmap="viridis")
    fig.colorbar(image, ax=ax, label="surviving connections", shrink=0.9)
    ax.set_title(
        f"First layer, trial {record.trial}, round {record.round_index}:\n"
        "surviving connections per input pixel"
    )
    ax.set_xlabel("pixel column")
    ax.set_ylabel("pixel row")
    return fig


def explorer(run_dir: str | Path):
    """Dropdowns for trial and layer and a round slider, redrawing `layer_view` (JupyterLab).

    Headless (LTHNB_HEADLESS=1) it returns the default static view instead, as an image with
    alt text.
    """
    if headless():
        return figure_image(layer_view(run_dir))
    import ipywidgets
    from IPython.display import display

    available = recorded_rounds(run_dir)
    first_trial = first_recorded_trial(run_dir)
    layers = list(read_round(run_dir, first_trial, available[first_trial][0]).masks)
    rounds = available[first_trial]

    def show(trial: int, round_index: int, layer: str) -> None:
        if round_index in available.get(trial, []):
            display(figure_image(layer_view(run_dir, trial, round_index, layer)))

    return ipywidgets.interactive(
        show,
        trial=ipywidgets.Dropdown(options=sorted(available), description="trial"),
        round_index=ipywidgets.IntSlider(
            min=min(rounds), max=max(rounds), value=max(rounds), description="round"
        ),
        layer=ipywidgets.Dropdown(options=layers, description="layer"),
    )
