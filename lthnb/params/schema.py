"""The schema: every parameter of an experiment, with its default, its help text and its allowed
values. The one place a parameter is written by hand: `python -m lthnb.params.sync` (`make sync`)
regenerates every copy (params files, the notebooks' parameters cells, the README's table).

Allowed names (networks, data sets, controls) are read from their registries when a value is
checked, so a network registered at run time is accepted.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lthnb.controls.kinds import CONTROLS
from lthnb.data.registry import DATASETS, dataset_source_problem
from lthnb.nets.registry import NETWORKS, network_problem

PRECISIONS = ("float32", "mixed_bfloat16")
NORMALIZATIONS = ("unit", "per_channel")
AUGMENTATIONS = ("crop", "flip")  # lthnb.training.inputs applies them
# Seeds reach tf.random as seed * 1000 + layer, which must fit in an int64; 2**31 - 1 is the
# usual ceiling for seeds and leaves plenty of room.
MAX_SEED = 2**31 - 1


def _grouped(names: Iterable[str]) -> str:
    """'lenet, conv2/4/6, resnet20/56/110': the names, those that differ by a number as one."""
    groups: dict[str, list[str]] = {}
    for name in names:
        stem, number = re.fullmatch(r"(.*?)(\d*)", name).groups()
        groups.setdefault(stem, []).append(number)
    return ", ".join(stem + "/".join(numbers) for stem, numbers in groups.items())


class ParamsError(ValueError):
    """A parameter is missing, unknown, of the wrong type or out of range."""


def _param(default: Any, help_text: str, details: str = "", **constraints: Any) -> Any:
    """A dataclass field carrying its help text and its allowed values. `help_text` is the line the
    notebooks show beside the value (it must fit their 100 columns); `details` is what the README's
    table says after it. `resumable=True` marks a parameter that may differ when a run folder is
    resumed: where things are, not what is computed, and how far the run goes (more trials or
    rounds continue it)."""
    metadata = {"help": help_text, "details": details, **constraints}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


# What a zero rate means, for the three per-kind rates.
_RATE_DETAILS = (
    "0: these layers are never pruned, in either scope (global scope leaves them out of the "
    "ranking)"
)


@dataclass(frozen=True)
class Params:
    """All knobs of one experiment. Defaults are the paper's LeNet-300-100 on MNIST."""

    arch: str = _param(
        "lenet",
        f"{_grouped(NETWORKS)} or your package.module:function",
        "each registered one brings its paper's recipe for the keys the params leave out "
        "(below); a builder is (params, input_shape, num_classes, seed) -> tf_keras.Model",
        problem=network_problem,
    )
    dataset: str = _param(
        "mnist",
        f"{' | '.join(DATASETS)}, or your own .npz file or image folder",
        "a path holds x_train, y_train, x_test and y_test (.npz, as Keras's mnist.npz), or "
        "train/ and test/ with one folder of PNG or JPEG images per class; relative paths start "
        "at the repository root",
        problem=dataset_source_problem,
    )
    data_dir: str | None = _param(
        None,
        "folder with the data files; null: Keras cache, Debian package, download",
        "tried in that order",
        resumable=True,
    )
    seed: int = _param(
        0,
        "base random seed; trial t uses seed + t",
        "shuffles, dropout and controls draw their own streams from it",
        minimum=0,
        maximum=MAX_SEED,
    )
    trials: int = _param(
        1,
        "independent repetitions (seeds) of the whole experiment",
        "figures show their mean ± std",
        minimum=1,
        resumable=True,
    )
    trial: int | None = _param(
        None,
        "run only this trial index (fan-out: one process per trial); null: all",
        "see Fan-out, below",
        minimum=0,
        resumable=True,
    )
    rounds: int = _param(
        0, "pruning rounds after the dense round 0 (0: no pruning)", minimum=0, resumable=True
    )
    iterations: int = _param(
        50000,
        "training iterations (mini-batches) of every round; the paper's T",
        "a round may end inside an epoch; each network's recipe (below) has its paper's T",
        minimum=1,
    )
    eval_every: int = _param(
        100, "iterations between validation evaluations (the early-stop grid)", minimum=1
    )
    batch_size: int = _param(60, "mini-batch size", minimum=1)
    optimizer: str = _param(
        "adam", "adam | sgd", "the old scripts used SGD for LeNet", choices=("adam", "sgd")
    )
    learning_rate: float = _param(
        1.2e-3, "optimizer learning rate", "the peak, with warmup or decay", exclusive_minimum=0.0
    )
    momentum: float = _param(0.0, "SGD momentum (ignored by adam)", minimum=0.0, below=1.0)
    warmup_iterations: int = _param(
        0,
        "linear learning-rate warmup over the first iterations (0: none)",
        "with w of them, iteration i < w gets (i + 1)/w of the rate",
        minimum=0,
    )
    lr_milestones: list[int] = _param(
        [], "iterations at which the learning rate is multiplied by lr_gamma", item_minimum=1
    )
    lr_gamma: float = _param(
        0.1, "learning-rate factor at each milestone", exclusive_minimum=0.0, maximum=1.0
    )
    weight_decay: float = _param(
        0.0,
        "L2 penalty added to every gradient (0: off)",
        "as open_lth and PyTorch's optimizers do",
        minimum=0.0,
    )
    kernel_init: str = _param(
        "glorot_normal",
        "kernel initializer (a tf_keras name)",
        "the default is the paper's Gaussian Glorot",
        choices=("glorot_normal", "glorot_uniform", "he_normal", "he_uniform"),
    )
    activation: str = _param(
        "relu",
        "hidden activation: relu | tanh",
        "the old scripts used tanh",
        choices=("relu", "tanh"),
    )
    dense_units: list[int] = _param(
        [300, 100],
        "hidden fully connected widths",
        "the output layer is sized by the data",
        item_minimum=1,
    )
    width: int | None = _param(
        None,
        "ResNet: channels of the first stage; null: the network's own (16)",
        "open_lth's cifar_resnet_20_64 is resnet20 with width 64; the other stages double it",
        minimum=1,
        maximum=1024,
    )
    use_bias: bool = _param(True, "layers have biases (never pruned)")
    dropout: float = _param(
        0.0,
        "dropout after hidden dense layers (0: off)",
        "the paper also ran its conv nets with 0.5",
        minimum=0.0,
        below=1.0,
    )
    shuffle: bool = _param(
        True, "reshuffle the training set every epoch", "from a seeded generator"
    )
    early_stopping: bool = _param(
        False,
        "stop a round after `patience` evaluations without val-loss improvement",
        "improvement means a decrease larger than `min_delta`. The paper trains the whole "
        "budget and only *reports* the early-stop point",
    )
    patience: int = _param(5, "evaluations without improvement before early stopping", minimum=1)
    min_delta: float = _param(0.0, "val-loss decrease that counts as improvement", minimum=0.0)
    conv_rate: float = _param(
        0.1,
        "fraction of surviving conv weights pruned per round",
        _RATE_DETAILS,
        minimum=0.0,
        below=1.0,
    )
    dense_rate: float = _param(
        0.2,
        "fraction of surviving hidden dense weights pruned per round",
        _RATE_DETAILS,
        minimum=0.0,
        below=1.0,
    )
    output_rate: float = _param(
        0.1,
        "fraction of surviving output-layer weights pruned per round",
        _RATE_DETAILS,
        minimum=0.0,
        below=1.0,
    )
    pruning_scope: str = _param(
        "layerwise",
        "layerwise: rank per layer | global: one ranking",
        "global ranks all kernels together, removing the same total",
        choices=("layerwise", "global"),
    )
    pruning_method: str = _param(
        "iterative",
        "iterative: prune last round's net | oneshot: round 0's net",
        "oneshot prunes round 0's trained net straight to each round's target",
        choices=("iterative", "oneshot"),
    )
    rewind_iteration: int = _param(
        0,
        "rewind survivors to the weights after k iterations of round 0 (0: theta0)",
        "k > 0 is late rewinding: pruned rounds train from k to `iterations`",
        minimum=0,
    )
    controls: list[str] = _param(
        [],
        f"controls beside each ticket: {' | '.join(CONTROLS)}",
        "described under What an experiment does; the paper's files use `[reinit]`",
        item_choices=CONTROLS,
        unique=True,
    )
    stability_rewind_iterations: list[int] = _param(
        [0],
        "07: the two copies start from theta_k for each k listed",
        "each < `iterations`",
        item_minimum=0,
        unique=True,
        resumable=True,
    )
    stability_rounds: list[int] = _param(
        [0],
        "07: rounds whose masks are analysed (0: the dense net)",
        "at most `rounds`",
        item_minimum=0,
        unique=True,
        resumable=True,
    )
    stability_points: int = _param(
        30,
        "07: evenly spaced alphas on each linear path",
        "at least 2; the paper's 30",
        minimum=2,
        resumable=True,
    )
    stability_batch_norm: str = _param(
        "recompute",
        "07: batch norm statistics on a path: recompute | interpolate",
        "recompute: from training batches at every alpha, as interpolated statistics do not "
        "describe the interpolated network; interpolate: mixed like the weights",
        choices=("recompute", "interpolate"),
        resumable=True,
    )
    validation_size: int = _param(
        5000,
        "training images held out for validation",
        "the test set is never used to choose anything",
        minimum=1,
    )
    train_subset: int = _param(0, "use only this many training images (0: all)", minimum=0)
    normalization: str = _param(
        "unit",
        "pixels: unit (scaled to [0, 1]) | per_channel (mean 0, std 1 per channel)",
        "per_channel is open_lth's CIFAR-10 recipe: every split takes the training split's "
        "statistics",
        choices=NORMALIZATIONS,
    )
    augmentation: list[str] = _param(
        [],
        "training batches only: crop (pad 4, random crop) | flip (random left-right)",
        "drawn in the graph from each network's seed and iteration, so runs stay deterministic "
        "and resumable; validation and test images are never augmented",
        item_choices=AUGMENTATIONS,
        unique=True,
    )
    output_dir: str | None = _param(None, "run folder; null: runs/<arch>", resumable=True)
    device: str = _param(
        "auto",
        "auto | cpu | gpu (gpu: fail if none)",
        "GPU memory grows on demand",
        choices=("auto", "cpu", "gpu"),
        resumable=True,
    )
    precision: str = _param(
        "float32",
        "float32 | mixed_bfloat16 (bf16 compute, float32 weights)",
        "every layer computes in bfloat16 while the weights, their updates and the loss stay "
        "float32 (as Keras's mixed precision). Fast on CPUs with AVX512-BF16 or AMX and on NVIDIA "
        "GPUs from Ampere on; elsewhere bfloat16 is emulated, and a run warns once that it will be "
        "slower than float32 (it still runs: the results are valid)",
        choices=PRECISIONS,
    )
    compare_with: list[str] = _param(
        [],
        "other run folders drawn on 05's figures, for comparison",
        "e.g. conv2 vs conv4",
        resumable=True,
    )
    tensorboard: bool = _param(
        False, "also write TensorBoard logs into <run folder>/tensorboard", resumable=True
    )

    @property
    def run_dir(self) -> Path:
        """Where the run's files go: `output_dir`, or `runs/<arch>` by default."""
        folder = self.arch.replace(":", ".")  # a user's builder "package.module:function"
        return Path(self.output_dir) if self.output_dir else Path("runs") / folder

    @property
    def selected_trials(self) -> list[int]:
        """The trials this process trains: `trial` alone, or all of them."""
        return list(range(self.trials)) if self.trial is None else [self.trial]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> Params:
        """A validated copy with some values changed."""
        from lthnb.params.loading import load_params  # loading builds on this schema

        return load_params({**self.to_dict(), **changes})


PARAMETER_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Params))
# The parameters that may change on an existing run folder (besides `controls`, which may grow).
RESUMABLE_PARAMETERS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(Params) if f.metadata.get("resumable")
)
# Parameters of earlier lthnb versions: what replaced each, for a one-line error.
REMOVED_PARAMETERS = {
    "max_epochs": "the iteration clock replaced it; set iterations (e.g. 50000 for LeNet)",
    "rewind_epochs": "the iteration clock replaced it; set rewind_iteration (0: rewind to theta0)",
    "trials_together": "every round now trains as one stack; delete the line",
    "random_reinit": "controls replaced it; write controls: [reinit] for true, controls: [] "
    "for false",
}


def parameter_help() -> list[tuple[str, Any, str]]:
    """(name, default, help) for every parameter, in declaration order."""
    return [
        (f.name, Params().__getattribute__(f.name), f.metadata["help"])
        for f in dataclasses.fields(Params)
    ]


def network_defaults(arch: Any) -> dict[str, Any]:
    """The values `arch`'s recipe sets where the schema's (LeNet's) differ; {} for unknown names."""
    return dict(NETWORKS[arch].defaults) if isinstance(arch, str) and arch in NETWORKS else {}


def default_values(arch: Any) -> dict[str, Any]:
    """Every parameter's value where a params source names only `arch`: the network's recipe,
    then the schema's defaults (what a run folder older than a parameter had for it)."""
    recipe = network_defaults(arch)
    named = {"arch": arch} if isinstance(arch, str) and arch in NETWORKS else {}
    return {**Params().to_dict(), **named, **recipe}
