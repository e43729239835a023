"""Experiment parameters: one frozen, validated object from a YAML file or papermill's values.

Every parameter has a default and a one-line help text beside it, so `02_model` and `04_train`
can print what each one means. Validation errors name the key, the bad value and what is
allowed, and are raised before TensorFlow is touched.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import reprlib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lthnb.controls.kinds import CONTROLS

ARCHITECTURES = ("lenet", "conv2", "conv4", "conv6")
DATASET_NAMES = ("mnist", "fashion_mnist", "cifar10")
PRECISIONS = ("float32", "mixed_bfloat16")
# Seeds reach tf.random as seed * 1000 + layer, which must fit in an int64; 2**31 - 1 is the
# usual ceiling for seeds and leaves plenty of room.
MAX_SEED = 2**31 - 1
# Integers end up in numpy and TensorFlow, which hold them in 64 bits.
MAX_INT = 2**63 - 1
# PyYAML follows YAML 1.1, where `1e-3` (no dot, no exponent sign) is a string; YAML 1.2,
# JSON and papermill's `-p` read it as a number, so float parameters accept such strings.
_FLOAT_TEXT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


class ParamsError(ValueError):
    """A parameter is missing, unknown, of the wrong type or out of range."""


def _param(default: Any, help_text: str, **constraints: Any) -> Any:
    """A dataclass field carrying its help text and its allowed values."""
    if isinstance(default, list):
        return field(
            default_factory=lambda: list(default), metadata={"help": help_text, **constraints}
        )
    return field(default=default, metadata={"help": help_text, **constraints})


@dataclass(frozen=True)
class Params:
    """All knobs of one experiment. Defaults are the paper's LeNet-300-100 on MNIST."""

    arch: str = _param("lenet", "network: lenet | conv2 | conv4 | conv6", choices=ARCHITECTURES)
    dataset: str = _param(
        "mnist", "data set: mnist | fashion_mnist | cifar10", choices=DATASET_NAMES
    )
    data_dir: str | None = _param(
        None, "folder with the data files; null: Keras cache, Debian package, download"
    )
    seed: int = _param(0, "base random seed; trial t uses seed + t", minimum=0, maximum=MAX_SEED)
    trials: int = _param(1, "independent repetitions (seeds) of the whole experiment", minimum=1)
    trial: int | None = _param(
        None, "run only this trial index (fan-out: one process per trial); null: all", minimum=0
    )
    rounds: int = _param(0, "pruning rounds after the dense round 0 (0: no pruning)", minimum=0)
    iterations: int = _param(
        50000, "training iterations (mini-batches) of every round; the paper's T", minimum=1
    )
    eval_every: int = _param(
        100, "iterations between validation evaluations (the early-stop grid)", minimum=1
    )
    batch_size: int = _param(60, "mini-batch size", minimum=1)
    optimizer: str = _param("adam", "adam | sgd", choices=("adam", "sgd"))
    learning_rate: float = _param(1.2e-3, "optimizer learning rate", exclusive_minimum=0.0)
    momentum: float = _param(0.0, "SGD momentum (ignored by adam)", minimum=0.0, below=1.0)
    warmup_iterations: int = _param(
        0, "linear learning-rate warmup over the first iterations (0: none)", minimum=0
    )
    lr_milestones: list[int] = _param(
        [], "iterations at which the learning rate is multiplied by lr_gamma", item_minimum=1
    )
    lr_gamma: float = _param(
        0.1, "learning-rate factor at each milestone", exclusive_minimum=0.0, maximum=1.0
    )
    weight_decay: float = _param(0.0, "L2 penalty added to every gradient (0: off)", minimum=0.0)
    kernel_init: str = _param(
        "glorot_normal",
        "kernel initializer (a tf_keras name)",
        choices=("glorot_normal", "glorot_uniform", "he_normal", "he_uniform"),
    )
    activation: str = _param("relu", "hidden activation: relu | tanh", choices=("relu", "tanh"))
    dense_units: list[int] = _param([300, 100], "hidden fully connected widths", item_minimum=1)
    use_bias: bool = _param(True, "layers have biases (never pruned)")
    dropout: float = _param(
        0.0, "dropout after hidden dense layers (0: off)", minimum=0.0, below=1.0
    )
    shuffle: bool = _param(True, "reshuffle the training set every epoch")
    early_stopping: bool = _param(
        False, "stop a round after `patience` evaluations without val-loss improvement"
    )
    patience: int = _param(5, "evaluations without improvement before early stopping", minimum=1)
    min_delta: float = _param(0.0, "val-loss decrease that counts as improvement", minimum=0.0)
    conv_rate: float = _param(
        0.1, "fraction of surviving conv weights pruned per round", minimum=0.0, below=1.0
    )
    dense_rate: float = _param(
        0.2, "fraction of surviving hidden dense weights pruned per round", minimum=0.0, below=1.0
    )
    output_rate: float = _param(
        0.1, "fraction of surviving output-layer weights pruned per round", minimum=0.0, below=1.0
    )
    pruning_scope: str = _param(
        "layerwise",
        "layerwise: rank per layer | global: one ranking",
        choices=("layerwise", "global"),
    )
    pruning_method: str = _param(
        "iterative",
        "iterative: prune last round's net | oneshot: round 0's net",
        choices=("iterative", "oneshot"),
    )
    rewind_iteration: int = _param(
        0, "rewind survivors to the weights after k iterations of round 0 (0: theta0)", minimum=0
    )
    controls: list[str] = _param(
        [],
        "controls beside each ticket: reinit | random_mask | reshuffle | same_sign",
        item_choices=CONTROLS,
        unique=True,
    )
    stability_rewind_iterations: list[int] = _param(
        [0],
        "07: the two copies start from theta_k for each k listed",
        item_minimum=0,
        unique=True,
    )
    stability_rounds: list[int] = _param(
        [0],
        "07: rounds whose masks are analysed (0: the dense net)",
        item_minimum=0,
        unique=True,
    )
    stability_points: int = _param(30, "07: evenly spaced alphas on each linear path", minimum=2)
    validation_size: int = _param(5000, "training images held out for validation", minimum=1)
    train_subset: int = _param(0, "use only this many training images (0: all)", minimum=0)
    output_dir: str | None = _param(None, "run folder; null: runs/<arch>")
    device: str = _param(
        "auto", "auto | cpu | gpu (gpu: fail if none)", choices=("auto", "cpu", "gpu")
    )
    precision: str = _param(
        "float32",
        "float32 | mixed_bfloat16 (bf16 compute, float32 weights: for CPUs with AMX or "
        "avx512_bf16, and GPUs from Ampere on)",
        choices=PRECISIONS,
    )
    compare_with: list[str] = _param([], "other run folders drawn on 05's figures, for comparison")
    tensorboard: bool = _param(False, "also write TensorBoard logs into <run folder>/tensorboard")

    @property
    def run_dir(self) -> Path:
        """Where the run's files go: `output_dir`, or `runs/<arch>` by default."""
        return Path(self.output_dir) if self.output_dir else Path("runs") / self.arch

    @property
    def selected_trials(self) -> list[int]:
        """The trials this process trains: `trial` alone, or all of them."""
        return list(range(self.trials)) if self.trial is None else [self.trial]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> Params:
        """A validated copy with some values changed."""
        return load_params({**self.to_dict(), **changes})


PARAMETER_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Params))
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


def load_params(source: str | Path | Mapping[str, Any] | None = None, **overrides: Any) -> Params:
    """Read a YAML file or a mapping (what papermill injected), apply overrides, validate."""
    values: dict[str, Any] = {}
    if isinstance(source, Mapping):
        values.update(source)
    elif source is not None:
        values.update(_read_yaml(Path(source)))
    values.update(overrides)
    removed = [key for key in values if key in REMOVED_PARAMETERS]
    if removed:
        raise ParamsError(
            "; ".join(f"{key}: no longer a parameter; {REMOVED_PARAMETERS[key]}" for key in removed)
        )
    unknown = sorted(_key_text(key) for key in values if key not in PARAMETER_NAMES)
    if unknown:
        raise ParamsError(_unknown_message(unknown))
    hints = typing.get_type_hints(Params)
    checked = {}
    for f in dataclasses.fields(Params):
        if f.name in values:
            checked[f.name] = _check_value(f.name, values[f.name], hints[f.name], f.metadata)
    params = Params(**checked)
    _check_consistency(params)
    return params


def _key_text(key: Any) -> str:
    """A key as written in a params file; odd ones (numbers, spaces, newlines) quoted."""
    return key if isinstance(key, str) and key.isidentifier() else repr(key)


def _unknown_message(unknown: list[str]) -> str:
    """`key: unknown parameter`, with the closest known names for typos."""
    matches = {key: difflib.get_close_matches(key, PARAMETER_NAMES, n=1) for key in unknown}
    hints = [
        match[0] if len(unknown) == 1 else f"{key} -> {match[0]}"
        for key, match in matches.items()
        if match
    ]
    plural = "s" if len(unknown) > 1 else ""
    message = f"{', '.join(unknown)}: unknown parameter{plural}"
    if hints:
        message += f"; did you mean {', '.join(hints)}?"
    return f"{message}; known parameters: {', '.join(PARAMETER_NAMES)}"


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ParamsError(
            f"parameter file {path} does not exist; pass a path like params/demo.yaml"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
        raise ParamsError(f"parameter file {path} cannot be read: {reason}") from None
    try:
        loaded = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader
    except _DuplicateKeyError as error:
        raise ParamsError(f"parameter file {path} {error}") from None
    except yaml.YAMLError as error:
        raise ParamsError(
            f"parameter file {path} is not valid YAML: {_yaml_problem(error)}"
        ) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ParamsError(
            f"parameter file {path} must hold `key: value` lines, got a {type(loaded).__name__}"
        )
    return loaded


class _DuplicateKeyError(yaml.YAMLError):
    """A mapping gives one key twice (PyYAML would keep the last value silently)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                first = first_lines.get(key)
            except TypeError:  # an unhashable key: construct_mapping explains it
                break
            if first is not None:
                raise _DuplicateKeyError(
                    f"gives {_key_text(key)} twice (lines {first} and {line}); keep one"
                )
            first_lines[key] = line
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: `line L, column C: problem`."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return " ".join(str(error).split())


def _check_value(name: str, value: Any, hint: Any, rules: Mapping[str, Any]) -> Any:
    value = _check_type(name, value, hint)
    if value is None:
        return value
    if "choices" in rules and value not in rules["choices"]:
        allowed = " | ".join(rules["choices"])
        raise ParamsError(f"{name}: {_show(value)} is not allowed; use one of {allowed}")
    if "minimum" in rules and value < rules["minimum"]:
        raise ParamsError(f"{name}: {_show(value)} is too small; it must be >= {rules['minimum']}")
    if "maximum" in rules and value > rules["maximum"]:
        raise ParamsError(f"{name}: {_show(value)} is too large; it must be <= {rules['maximum']}")
    if "exclusive_minimum" in rules and value <= rules["exclusive_minimum"]:
        raise ParamsError(f"{name}: {_show(value)} must be > {rules['exclusive_minimum']}")
    if "below" in rules and value >= rules["below"]:
        raise ParamsError(
            f"{name}: {_show(value)} is out of range; it must be in [{rules.get('minimum', 0)}, "
            f"{rules['below']})"
        )
    if "item_choices" in rules:
        _check_items(name, value, rules["item_choices"])
    if "item_minimum" in rules and any(item < rules["item_minimum"] for item in value):
        raise ParamsError(f"{name}: {_show(value)} must hold integers >= {rules['item_minimum']}")
    if rules.get("unique"):
        _check_unique(name, value)
    return value


def _check_items(name: str, value: list, choices: tuple[str, ...]) -> None:
    """A list drawn from `choices`."""
    unknown = [item for item in value if item not in choices]
    if unknown:
        raise ParamsError(
            f"{name}: {', '.join(map(_show, unknown))} unknown; known: {', '.join(choices)}"
        )


def _check_unique(name: str, value: list) -> None:
    """Each item at most once (a duplicate would train or analyse the same thing twice)."""
    repeated = sorted({item for item in value if value.count(item) > 1})
    if repeated:
        raise ParamsError(f"{name}: {', '.join(map(str, repeated))} given twice; list each once")


def _check_type(name: str, value: Any, hint: Any) -> Any:
    """Accept exactly the declared type; ints are fine where floats are expected."""
    optional = isinstance(hint, types.UnionType) and type(None) in hint.__args__
    if optional and isinstance(value, str) and not value.strip():
        value = None  # an empty path means "not set", not the current folder
    if value is None:
        if optional:
            return None
        raise ParamsError(f"{name}: a value is required (got null); default is {_default(name)!r}")
    base = next(a for a in hint.__args__ if a is not type(None)) if optional else hint
    if typing.get_origin(base) is list:
        return _check_list(name, value, typing.get_args(base)[0])
    if base is bool:
        if isinstance(value, bool):
            return value
    elif base is int:
        if _is_int(value):
            return _int64(name, value)
    elif base is float:
        if (isinstance(value, int | float) and not isinstance(value, bool)) or (
            isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip())
        ):
            return _finite_float(name, value)
    elif isinstance(value, str):
        return value
    kind = type(value).__name__
    article = "an" if kind[0] in "aeiou" else "a"
    raise ParamsError(
        f"{name}: {_show(value)} is {article} {kind}, expected {base.__name__} "
        f"(default {_default(name)!r})"
    )


def _check_list(name: str, value: Any, item_type: type) -> list:
    """A list of ints (e.g. dense_units) or of strings (e.g. compare_with)."""
    if item_type is int:
        if isinstance(value, list | tuple) and all(_is_int(v) for v in value):
            return [_int64(name, v) for v in value]
        raise ParamsError(f"{name}: {_show(value)} must be a list of integers, e.g. [300, 100]")
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ParamsError(f"{name}: {_show(value)} must be a list of strings, e.g. [runs/conv2]")


def _finite_float(name: str, value: int | float | str) -> float:
    """float(value), refusing nan, inf and ints too large for a float."""
    try:
        number = float(value)
    except OverflowError:
        raise ParamsError(f"{name}: {_show(value)} is too large for a float") from None
    if not math.isfinite(number):
        raise ParamsError(f"{name}: {_show(value)} is not a finite number")
    return number


def _int64(name: str, value: int) -> int:
    if abs(value) > MAX_INT:
        raise ParamsError(f"{name}: {_show(value)} is too large; integers must be <= {MAX_INT}")
    return int(value)


class _ShortRepr(reprlib.Repr):
    """repr() for error messages: one line, shortened, safe for integers of any size."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxlist, self.maxtuple, self.maxdict = 3, 8, 8, 8
        self.maxstring = self.maxother = self.maxlong = 80

    def repr_int(self, x: int, level: int) -> str:
        if abs(x) > MAX_INT:  # str() refuses ints over 4300 digits
            return f"{'-' if x < 0 else ''}<a {x.bit_length()}-bit integer>"
        return super().repr_int(x, level)


_show = _ShortRepr().repr


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _default(name: str) -> Any:
    return getattr(Params(), name)


def _check_consistency(params: Params) -> None:
    """Rules that involve more than one parameter."""
    # os.path.expanduser leaves `~unknown_user` alone where Path.expanduser raises.
    if params.data_dir is not None and not Path(os.path.expanduser(params.data_dir)).is_dir():
        raise ParamsError(
            f"data_dir: {params.data_dir!r} is not a folder; create it with the data files "
            "or set data_dir: null to use the Keras cache"
        )
    if params.trial is not None and params.trial >= params.trials:
        raise ParamsError(
            f"trial: {params.trial} is not a trial of this run; use 0 .. {params.trials - 1} "
            "or null for all"
        )
    if params.rewind_iteration >= params.iterations:
        raise ParamsError(
            f"rewind_iteration: {params.rewind_iteration} must be < iterations "
            f"({params.iterations}); rewind to a point inside round 0's training"
        )
    if params.eval_every > params.iterations:
        raise ParamsError(
            f"eval_every: {params.eval_every} exceeds iterations ({params.iterations}); "
            "evaluate at least once per round"
        )
    _check_stability(params)
    milestones = params.lr_milestones
    if any(later <= earlier for earlier, later in zip(milestones, milestones[1:], strict=False)):
        raise ParamsError(f"lr_milestones: {milestones} must be strictly increasing")
    if milestones and milestones[-1] >= params.iterations:
        raise ParamsError(
            f"lr_milestones: {milestones[-1]} lies beyond the budget; milestones must be "
            f"< iterations ({params.iterations})"
        )
    if params.arch != "lenet" and not params.dense_units:
        raise ParamsError(
            "dense_units: conv nets need at least one hidden dense layer, e.g. [256, 256]"
        )
    rates = _prunable_rates(params)
    if params.rounds > 0 and not any(rates.values()):
        raise ParamsError(
            f"{', '.join(rates)}: 0 for every prunable layer of {params.arch} with rounds: "
            f"{params.rounds}, so nothing could be pruned; set one of them > 0 (a rate of 0 "
            "leaves its layers alone) or rounds: 0"
        )


def _check_stability(params: Params) -> None:
    """The instability analysis needs a unit to study, inside the budget and the run's rounds."""
    for name in ("stability_rewind_iterations", "stability_rounds"):
        if not getattr(params, name):
            raise ParamsError(f"{name}: [] leaves nothing to analyse; give at least one, e.g. [0]")
    late = [k for k in params.stability_rewind_iterations if k >= params.iterations]
    if late:
        raise ParamsError(
            f"stability_rewind_iterations: {_show(late)} must be < iterations "
            f"({params.iterations}); the copies train from iteration k to that end"
        )
    beyond = [r for r in params.stability_rounds if r > params.rounds]
    if beyond:
        raise ParamsError(
            f"stability_rounds: {_show(beyond)} beyond rounds ({params.rounds}); use 0 (dense) "
            f"to {params.rounds}"
        )


def _prunable_rates(params: Params) -> dict[str, float]:
    """The rate parameters of the layer kinds `arch` has (LeNet has no conv layers)."""
    rates = {"conv_rate": params.conv_rate} if params.arch != "lenet" else {}
    if params.dense_units:
        rates["dense_rate"] = params.dense_rate
    return {**rates, "output_rate": params.output_rate}
