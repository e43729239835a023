"""What goes into an experiment, before any training: the data, the network, the schedule.

Notebooks 01-03 show these tables and figures and save them in the run folder, so a report
can be checked against them later.
"""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lthnb.data.loaders import Splits, dataset_info
from lthnb.nets.build import build_model
from lthnb.nets.prunable import layer_kinds, layer_table
from lthnb.params import Params
from lthnb.pruning.schedule import layer_rates, schedule_table, schedule_totals
from lthnb.report.figures import layer_style, log_percent_axis
from lthnb.runs.paths import RunPaths
from lthnb.runs.tables import write_table, write_text

SPLITS = ("train", "val", "test")


def split_shapes(splits: Splits) -> pd.DataFrame:
    """Images, shape and value range of each split."""
    rows = []
    for split in SPLITS:
        x = getattr(splits, f"x_{split}")
        rows.append(
            {
                "split": split,
                "images": len(x),
                "image_shape": tuple(x.shape[1:]),
                "min": float(x.min()),
                "max": float(x.max()),
            }
        )
    return pd.DataFrame(rows)


def class_balance(splits: Splits) -> pd.DataFrame:
    """Images per class in each split (a skewed split would bias accuracy)."""
    counts = {
        split: np.bincount(getattr(splits, f"y_{split}"), minlength=splits.num_classes)
        for split in SPLITS
    }
    table = pd.DataFrame(counts)
    table.index.name = "class"
    table = table.reset_index()
    if splits.class_names:  # an image folder's classes are its subfolders
        table.insert(1, "name", list(splits.class_names))
    return table


def sample_grid(splits: Splits, per_class: int = 8) -> Figure:
    """The first `per_class` training images of every class, one row per class."""
    classes = splits.num_classes
    fig, axes = plt.subplots(classes, per_class, figsize=(per_class * 0.9, classes * 0.9))
    for label in range(classes):
        indices = np.flatnonzero(splits.y_train == label)[:per_class]
        for column, ax in enumerate(axes[label]):
            ax.axis("off")
            if column < len(indices):
                image = splits.x_train[indices[column]].reshape(splits.input_shape)
                ax.imshow(image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None)
        name = f": {splits.class_names[label]}" if splits.class_names else ""
        axes[label][0].set_title(f"class {label}{name}", fontsize=7, loc="left")
    fig.suptitle(f"{splits.name}: training samples by class")
    fig.tight_layout()
    return fig


def save_dataset_overview(splits: Splits, params: Params) -> None:
    """Provenance, shapes and class balance into <run_dir>/dataset/."""
    folder = RunPaths(params.run_dir).dataset
    provenance = {
        "dataset": splits.name,
        "source": splits.source,
        "seed": params.seed,
        "validation_size": params.validation_size,
        "train_subset": params.train_subset,
    }
    write_text(folder / "provenance.json", json.dumps(provenance, indent=2))
    write_table(folder / "shapes.csv", split_shapes(splits))
    write_table(folder / "class_balance.csv", class_balance(splits))


def network_layers(params: Params) -> pd.DataFrame:
    """The network's per-layer table (kind, shape, weights, prunable, rate) for the dataset."""
    info = dataset_info(params.dataset)
    model = build_model(params, info.input_shape, info.num_classes, params.seed)
    return layer_table(model, layer_rates(layer_kinds(model), params))


def pruning_schedule(params: Params, layers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (round, layer) and per round totals of the weights that remain."""
    prunable = layers[layers["prunable_weights"] > 0]
    sizes = dict(zip(prunable["layer"], prunable["prunable_weights"], strict=True))
    rates = dict(zip(prunable["layer"], prunable["rate"], strict=True))
    table = schedule_table(sizes, rates, params.rounds, params.pruning_scope)
    return table, schedule_totals(sizes, rates, params.rounds)


def schedule_figure(table: pd.DataFrame, totals: pd.DataFrame, params: Params) -> Figure:
    """Percent of weights remaining per layer and in total, by round (log scale)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(totals["round"], totals["percent_remaining"], color="0.6", linewidth=5, alpha=0.5,
            label="total (prunable)", zorder=1)  # fmt: skip
    percents = list(totals["percent_remaining"])
    for index, (layer, rows) in enumerate(table.groupby("layer", sort=False)):
        ax.plot(rows["round"], 100 * rows["fraction_remaining"], label=layer, **layer_style(index))
        percents += list(100 * rows["fraction_remaining"])
    log_percent_axis(ax, percents)
    ax.set_xlabel("Pruning round")
    ax.set_ylabel("Weights remaining (%)")
    ax.set_title(f"{params.arch}: {params.pruning_method} {params.pruning_scope} schedule")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
