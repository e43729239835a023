"""lthnb.params: the params files, validation with one-line errors, and the helpers around it."""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import re
import typing
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO

from lthnb.params import (
    PARAMETER_NAMES,
    Params,
    ParamsError,
    load_params,
    parameter_help,
)

PARAMS_DIR = REPO / "params"
PARAMS_FILES = sorted(PARAMS_DIR.glob("*.yaml"))
TEST_YAML = PARAMS_DIR / "test.yaml"
HINTS = typing.get_type_hints(Params)
BAD_VALUES: list[Any] = [-1, 10**12, "x", None, [], {}, 1.5, True, "1e-3"]
# Also values that once slipped through or crashed: nan, ints beyond int64 or float, "".
BAD_VALUES += [math.nan, -math.inf, 2**63, 10**5000, "", [10**5000], {"a": [None]}]


def write(tmp_path: Path, text: str, name: str = "params.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def assert_well_typed(params: Params) -> None:
    """Every value has exactly its declared type (no bools posing as ints, no str floats)."""
    for name in PARAMETER_NAMES:
        value, hint = getattr(params, name), HINTS[name]
        if typing.get_origin(hint) is list:
            item_type = typing.get_args(hint)[0]
            assert type(value) is list and all(type(v) is item_type for v in value), (name, value)
        elif isinstance(hint, type):
            assert type(value) is hint, (name, value)
        else:  # str | None, int | None
            allowed = [t for t in typing.get_args(hint) if t is not type(None)]
            assert value is None or type(value) in allowed, (name, value)
        if type(value) is float:
            assert math.isfinite(value), (name, value)


# --- the params files --------------------------------------------------------------------------


def test_there_are_params_files() -> None:
    names = {path.stem for path in PARAMS_FILES}
    assert {"lenet", "conv2", "conv4", "conv6", "demo", "test"} <= names


@pytest.mark.parametrize("path", PARAMS_FILES, ids=lambda path: path.name)
def test_every_params_file_loads(path: Path) -> None:
    """Its values are valid; that it lists every parameter in order is tests/test_sync.py's."""
    params = load_params(path)
    assert_well_typed(params)
    assert params == load_params(params.to_dict())


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "lenet",
            {
                "arch": "lenet",
                "dataset": "mnist",
                "optimizer": "adam",
                "learning_rate": 1.2e-3,
                "batch_size": 60,
                "dense_units": [300, 100],
                "dense_rate": 0.2,
                "output_rate": 0.1,
                "activation": "relu",
                "kernel_init": "glorot_normal",
            },
        ),
        (
            "conv2",
            {
                "arch": "conv2",
                "dataset": "cifar10",
                "optimizer": "adam",
                "learning_rate": 2e-4,
                "batch_size": 60,
                "dense_units": [256, 256],
                "conv_rate": 0.1,
                "dense_rate": 0.2,
                "output_rate": 0.1,
            },
        ),
        (
            "conv4",
            {
                "arch": "conv4",
                "dataset": "cifar10",
                "learning_rate": 3e-4,
                "batch_size": 60,
                "dense_units": [256, 256],
                "conv_rate": 0.1,
                "dense_rate": 0.2,
                "output_rate": 0.1,
            },
        ),
        (
            "conv6",
            {
                "arch": "conv6",
                "dataset": "cifar10",
                "learning_rate": 3e-4,
                "batch_size": 60,
                "dense_units": [256, 256],
                "conv_rate": 0.15,
                "dense_rate": 0.2,
                "output_rate": 0.1,
            },
        ),
        ("demo", {"arch": "lenet", "dataset": "fashion_mnist", "dense_units": [300, 100]}),
    ],
)
def test_params_files_hold_the_paper_values(name: str, expected: dict[str, Any]) -> None:
    params = load_params(PARAMS_DIR / f"{name}.yaml")
    assert {key: getattr(params, key) for key in expected} == expected


def test_defaults_are_valid_and_the_papers_lenet() -> None:
    """The defaults, written out from the paper (Fig. 2, App. G), not read back from Params."""
    params = load_params()
    paper = {
        "arch": "lenet",
        "dense_units": [300, 100],
        "optimizer": "adam",
        "learning_rate": 1.2e-3,
        "batch_size": 60,
        "iterations": 50_000,
        "eval_every": 100,
        "rewind_iteration": 0,
        "warmup_iterations": 0,
        "lr_milestones": [],
        "weight_decay": 0.0,
        "dense_rate": 0.2,
        "output_rate": 0.1,
        "conv_rate": 0.1,
        "kernel_init": "glorot_normal",
        "early_stopping": False,
        "validation_size": 5000,
    }
    assert {key: getattr(params, key) for key in paper} == paper


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_params(write(tmp_path, "# nothing set\n")) == Params()


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    params = load_params(TEST_YAML, batch_size=7, output_dir=str(tmp_path))
    assert params.batch_size == 7
    assert params.output_dir == str(tmp_path)
    assert params.dense_units == [20, 10]  # from the file


def test_deleting_any_key_still_loads_because_every_key_has_a_default() -> None:
    raw = {**yaml.safe_load(TEST_YAML.read_text()), "iterations": 1000}  # >= default eval_every
    for name in PARAMETER_NAMES:
        values = {key: value for key, value in raw.items() if key != name}
        assert getattr(load_params(values), name) == getattr(Params(), name)


# --- accepted spellings --------------------------------------------------------------------------


def test_ints_are_accepted_where_floats_are_expected() -> None:
    params = load_params(learning_rate=1, min_delta=0)
    assert type(params.learning_rate) is float and params.learning_rate == 1.0
    assert type(params.min_delta) is float


def test_yaml_1e_minus_3_is_a_number_although_pyyaml_reads_a_string(tmp_path: Path) -> None:
    # PyYAML (YAML 1.1) reads `1e-3` as the string "1e-3"; YAML 1.2 and papermill -p read 0.001.
    path = write(tmp_path, "learning_rate: 1e-3\ndropout: 5e-1\n")
    assert yaml.safe_load(path.read_text())["learning_rate"] == "1e-3"
    params = load_params(path)
    assert params.learning_rate == pytest.approx(1e-3)
    assert params.dropout == 0.5


def test_a_tuple_of_units_becomes_a_list() -> None:
    assert load_params(dense_units=(30, 10)).dense_units == [30, 10]


def test_lenet_may_have_no_hidden_layer() -> None:
    assert load_params(dense_units=[]).dense_units == []


def test_an_existing_data_dir_is_accepted(tmp_path: Path) -> None:
    assert load_params(data_dir=str(tmp_path)).data_dir == str(tmp_path)


@pytest.mark.parametrize("name", ["data_dir", "output_dir"])
def test_an_empty_path_means_not_set(name: str) -> None:
    assert getattr(load_params({name: ""}), name) is None


def test_rewind_iteration_may_be_the_last_before_the_budget() -> None:
    assert load_params(rewind_iteration=4, iterations=5, eval_every=5).rewind_iteration == 4
    assert load_params(eval_every=5, iterations=5).eval_every == 5
    assert load_params(lr_milestones=[1, 4], iterations=5, eval_every=1).lr_milestones == [1, 4]


# --- errors: unknown keys, types, ranges ---------------------------------------------------------


def test_an_unknown_key_is_named_with_a_suggestion() -> None:
    with pytest.raises(
        ParamsError, match=r"^learning_rte: unknown parameter; did you mean learning_rate\?"
    ) as caught:
        load_params(learning_rte=0.1)
    assert "known parameters: arch, dataset" in str(caught.value)


def test_unknown_keys_in_a_file_are_all_named(tmp_path: Path) -> None:
    path = write(tmp_path, "arch: lenet\nzzz: 1\nepochs: 3\n")
    with pytest.raises(ParamsError, match=r"^epochs, zzz: unknown parameters;"):
        load_params(path)


def test_a_non_string_key_is_reported_not_crashed_on(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"^1: unknown parameter"):
        load_params(write(tmp_path, "1: 2\narch: lenet\n"))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("batch_size", "60", r"^batch_size: '60' is a str, expected int"),
        ("batch_size", True, r"^batch_size: True is a bool, expected int"),
        ("iterations", 2.5, r"^iterations: 2\.5 is a float, expected int"),
        ("eval_every", 2.0, r"^eval_every: 2\.0 is a float, expected int"),
        ("lr_milestones", [100.5], r"^lr_milestones: \[100\.5\] must be a list of integers"),
        ("seed", None, r"^seed: a value is required \(got null\); default is 0"),
        (
            "dense_units",
            ["300", "100"],
            r"^dense_units: \['300', '100'\] must be a list of integers, e.g\. \[300, 100\]",
        ),
        ("dense_units", 300, r"^dense_units: 300 must be a list of integers"),
        ("dense_units", [300, True], r"^dense_units: \[300, True\] must be a list of integers"),
        ("use_bias", 1, r"^use_bias: 1 is an int, expected bool"),
        ("shuffle", "yes", r"^shuffle: 'yes' is a str, expected bool"),
        ("learning_rate", "fast", r"^learning_rate: 'fast' is a str, expected float"),
        ("learning_rate", True, r"^learning_rate: True is a bool, expected float"),
        ("arch", 3, r"^arch: 3 is an int, expected str"),
        ("data_dir", [], r"^data_dir: \[\] is a list, expected str"),
        ("output_dir", {}, r"^output_dir: \{\} is a dict, expected str"),
    ],
)
def test_a_wrong_type_names_key_value_and_expected_type(
    name: str, value: Any, message: str
) -> None:
    with pytest.raises(ParamsError, match=message):
        load_params({name: value})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("conv_rate", -0.1, r"^conv_rate: -0\.1 is too small; it must be >= 0\.0"),
        ("dense_rate", 1.0, r"^dense_rate: 1\.0 is out of range; it must be in \[0\.0, 1\.0\)"),
        ("output_rate", 10**12, r"^output_rate: 1000000000000\.0 is out of range"),
        ("rounds", -1, r"^rounds: -1 is too small; it must be >= 0"),
        ("trials", 0, r"^trials: 0 is too small; it must be >= 1"),
        ("batch_size", 0, r"^batch_size: 0 is too small; it must be >= 1"),
        ("iterations", 0, r"^iterations: 0 is too small; it must be >= 1"),
        ("eval_every", 0, r"^eval_every: 0 is too small; it must be >= 1"),
        ("rewind_iteration", -1, r"^rewind_iteration: -1 is too small; it must be >= 0"),
        ("warmup_iterations", -5, r"^warmup_iterations: -5 is too small; it must be >= 0"),
        ("lr_milestones", [0], r"^lr_milestones: \[0\] must hold integers >= 1"),
        ("lr_gamma", 0, r"^lr_gamma: 0\.0 must be > 0\.0"),
        ("lr_gamma", 1.5, r"^lr_gamma: 1\.5 is too large; it must be <= 1\.0"),
        ("weight_decay", -1e-4, r"^weight_decay: -0\.0001 is too small; it must be >= 0\.0"),
        ("dropout", 1.0, r"^dropout: 1\.0 is out of range; it must be in \[0\.0, 1\.0\)"),
        ("momentum", 1.0, r"^momentum: 1\.0 is out of range"),
        ("learning_rate", 0, r"^learning_rate: 0\.0 must be > 0\.0"),
        ("learning_rate", -1e-3, r"^learning_rate: -0\.001 must be > 0\.0"),
        ("learning_rate", math.nan, r"^learning_rate: nan is not a finite number"),
        ("dense_rate", math.nan, r"^dense_rate: nan is not a finite number"),
        ("min_delta", math.inf, r"^min_delta: inf is not a finite number"),
        (
            "learning_rate",
            10**400,
            r"^learning_rate: <a 1329-bit integer> is too large for a float",
        ),
        ("learning_rate", "1e999", r"^learning_rate: '1e999' is not a finite number"),
        ("seed", -1, r"^seed: -1 is too small; it must be >= 0"),
        ("seed", 2**31, r"^seed: 2147483648 is too large; it must be <= 2147483647"),
        ("dense_units", [300, 0], r"^dense_units: \[300, 0\] must hold integers >= 1"),
        (
            "arch",
            "vgg",
            r"^arch: 'vgg' is neither a registered network \(lenet, conv2, conv4, conv6, resnet20, "
            r".*\) nor a builder written as 'package\.module:function'",
        ),
        (
            "dataset",
            "svhn",
            r"^dataset: data set 'svhn' is neither a known name \(mnist, fashion_mnist, cifar10\) "
            r"nor an existing \.npz file or image folder",
        ),
        ("optimizer", "rmsprop", r"^optimizer: 'rmsprop' is not allowed; use one of adam \| sgd"),
        ("activation", "gelu", r"^activation: 'gelu' is not allowed; use one of relu \| tanh"),
        ("pruning_scope", "Global", r"^pruning_scope: 'Global' is not allowed"),
        ("device", "tpu", r"^device: 'tpu' is not allowed; use one of auto \| cpu \| gpu"),
        (
            "precision",
            "bfloat16",
            r"^precision: 'bfloat16' is not allowed; use one of float32 \| mixed_bfloat16",
        ),
    ],
)
def test_out_of_range_names_key_and_what_is_allowed(name: str, value: Any, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        load_params({name: value})


def test_ints_must_fit_in_64_bits() -> None:
    with pytest.raises(ParamsError, match=r"^iterations: <a 64-bit integer> is too large; integ"):
        load_params(iterations=2**63)
    with pytest.raises(ParamsError, match=r"^dense_units: <a 65-bit integer> is too large"):
        load_params(dense_units=[300, 2**64])
    assert load_params(patience=2**63 - 1).patience == 2**63 - 1


def test_huge_and_long_values_are_shown_short_on_one_line() -> None:
    # str() of an int over 4300 digits raises ValueError: the message must not.
    with pytest.raises(ParamsError, match=r"^arch: \[<a 16610-bit integer>\] is a list") as caught:
        load_params(arch=[10**5000])
    assert len(str(caught.value)) < 200
    with pytest.raises(ParamsError, match=r"^optimizer: 'aaaa.*\.\.\..*aaa' is not allowed"):
        load_params(optimizer="a" * 10_000)
    with pytest.raises(ParamsError, match=r"^device: 'cpu\\ngpu' is not allowed"):
        load_params(device="cpu\ngpu")


def test_a_missing_data_dir_names_data_dir_and_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "folder"
    with pytest.raises(ParamsError, match=rf"^data_dir: '{re.escape(str(missing))}' is not a"):
        load_params(data_dir=str(missing))


def test_a_data_dir_of_an_unknown_user_is_refused_not_crashed_on() -> None:
    # Path("~nobody/x").expanduser() raises RuntimeError
    with pytest.raises(ParamsError, match=r"^data_dir: '~no_such_user_lthnb/data' is not a"):
        load_params(data_dir="~no_such_user_lthnb/data")


def test_a_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "x", name="mnist.npz")
    with pytest.raises(ParamsError, match=r"^data_dir: .*mnist\.npz' is not a folder"):
        load_params(data_dir=str(path))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"rewind_iteration": 5, "iterations": 5},
            r"^rewind_iteration: 5 must be < iterations \(5\)",
        ),
        ({"eval_every": 101, "iterations": 100}, r"^eval_every: 101 exceeds iterations \(100\)"),
        ({"lr_milestones": [50, 50]}, r"^lr_milestones: \[50, 50\] must be strictly increasing"),
        ({"lr_milestones": [70, 20]}, r"^lr_milestones: \[70, 20\] must be strictly increasing"),
        (
            {"lr_milestones": [50, 100], "iterations": 100},
            r"^lr_milestones: 100 lies beyond the budget; milestones must be < iterations \(100\)",
        ),
    ],
)
def test_the_clock_is_checked_before_training(values: dict, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        load_params(values)


@pytest.mark.parametrize(
    ("key", "replacement"),
    [
        ("max_epochs", "iterations"),
        ("rewind_epochs", "rewind_iteration"),
        ("trials_together", "delete"),
    ],
)
def test_parameters_of_the_epoch_clock_are_refused_naming_their_replacement(
    tmp_path: Path, key: str, replacement: str
) -> None:
    path = write(tmp_path, f"arch: lenet\n{key}: 3\n")
    with pytest.raises(ParamsError, match=rf"^{key}: no longer a parameter; .*{replacement}"):
        load_params(path)


@pytest.mark.parametrize("arch", ["conv2", "conv4", "conv6"])
def test_conv_nets_need_a_hidden_dense_layer(arch: str) -> None:
    with pytest.raises(
        ParamsError, match=rf"^dense_units: {arch} needs at least 1 hidden dense layer,"
    ):
        load_params(arch=arch, dense_units=[])


# --- errors: the file itself ---------------------------------------------------------------------


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ParamsError, match=rf"^parameter file {re.escape(str(missing))} does not"):
        load_params(missing)


def test_a_folder_instead_of_a_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"^parameter file .* cannot be read"):
        load_params(tmp_path)


def test_a_binary_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_bytes(b"\xff\xfe\x00arch")
    with pytest.raises(ParamsError, match=r"cannot be read: it is not UTF-8 text"):
        load_params(path)


def test_invalid_yaml_is_one_line_with_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 1\narch: [unclosed\n")
    with pytest.raises(
        ParamsError, match=r"^parameter file .* is not valid YAML: line 3"
    ) as caught:
        load_params(path)
    assert "\n" not in str(caught.value)


def test_yaml_tabs_are_invalid_yaml_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"is not valid YAML"):
        load_params(write(tmp_path, "arch:\n\t- lenet\n"))


def test_a_yaml_list_instead_of_a_mapping_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "- arch: lenet\n- seed: 1\n")
    with pytest.raises(ParamsError, match=r"must hold `key: value` lines, got a list"):
        load_params(path)


def test_a_yaml_scalar_instead_of_a_mapping_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"must hold `key: value` lines, got a str"):
        load_params(write(tmp_path, "lenet\n"))


def test_null_for_a_required_key_names_the_key_and_its_default(tmp_path: Path) -> None:
    path = write(tmp_path, "arch: null\n")
    with pytest.raises(ParamsError, match=r"^arch: a value is required \(got null\); default is"):
        load_params(path)


def test_null_is_fine_for_optional_paths(tmp_path: Path) -> None:
    params = load_params(write(tmp_path, "data_dir: null\noutput_dir: ~\n"))
    assert params.data_dir is None and params.output_dir is None


# --- fuzzing -------------------------------------------------------------------------------------


def check_outcome(values: dict[str, Any], mutated: set[str], base: dict[str, Any]) -> str:
    """Either a valid Params or a one-line ParamsError about a mutated key; nothing else."""
    try:
        params = load_params(values)
    except ParamsError as error:
        message = str(error)
        assert "\n" not in message, message
        assert any(message.startswith(f"{key}: ") for key in mutated), (values, message)
        return "error"
    assert_well_typed(params)
    assert load_params(params.to_dict()) == params
    for name in PARAMETER_NAMES:
        if name not in mutated:
            assert getattr(params, name) == base[name], name
        elif name not in values:
            assert getattr(params, name) == getattr(Params(), name), name
    return "loaded"


def test_every_bad_value_in_every_key_loads_or_raises_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # so that data_dir "x" is surely not a folder
    base = yaml.safe_load(TEST_YAML.read_text())
    outcomes = Counter()
    for name in PARAMETER_NAMES:
        for bad in BAD_VALUES:
            values = {**base, name: copy.deepcopy(bad)}
            outcomes[check_outcome(values, {name}, base)] += 1
    assert outcomes["error"] > outcomes["loaded"] > 0


def test_random_mutations_of_test_yaml_load_or_raise_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    base = yaml.safe_load(TEST_YAML.read_text())
    rng = random.Random(20190306)  # fixed: a failure is reproducible
    outcomes = Counter()
    for _ in range(200):
        values = copy.deepcopy(base)
        mutated = set()
        for _ in range(rng.randint(1, 3)):
            name = rng.choice(PARAMETER_NAMES)
            mutated.add(name)
            if rng.random() < 0.3:
                values.pop(name, None)
            else:
                values[name] = copy.deepcopy(rng.choice(BAD_VALUES))
        outcomes[check_outcome(values, mutated, base)] += 1
    assert outcomes["error"] > 50 and outcomes["loaded"] > 20, outcomes


# --- helpers -------------------------------------------------------------------------------------


def test_params_are_frozen() -> None:
    params = load_params()
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.arch = "conv2"  # type: ignore[misc]


def test_replace_changes_values_and_revalidates() -> None:
    params = load_params(TEST_YAML)
    changed = params.replace(batch_size=7, arch="conv4", dense_units=[8])
    assert (changed.batch_size, changed.arch, changed.dense_units) == (7, "conv4", [8])
    assert params.batch_size == 30 and params.arch == "lenet"  # the original is untouched
    with pytest.raises(ParamsError, match=r"^batch_size: 0 is too small"):
        params.replace(batch_size=0)
    with pytest.raises(ParamsError, match=r"^batch_sise: unknown parameter"):
        params.replace(batch_sise=7)
    with pytest.raises(ParamsError, match=r"^rewind_iteration: 30 must be < iterations \(20\)"):
        params.replace(rewind_iteration=30)
    with pytest.raises(ParamsError, match=r"^dense_units: conv2 needs at least 1"):
        params.replace(arch="conv2", dense_units=[])


def test_replace_copies_the_unit_list() -> None:
    params = load_params()
    changed = params.replace(seed=1)
    changed.dense_units.append(5)
    assert params.dense_units == [300, 100]


def test_run_dir_defaults_to_runs_arch(tmp_path: Path) -> None:
    assert load_params().run_dir == Path("runs") / "lenet"
    assert load_params(arch="conv4", dense_units=[256, 256]).run_dir == Path("runs/conv4")
    assert load_params(output_dir=str(tmp_path / "mine")).run_dir == tmp_path / "mine"
    assert load_params(PARAMS_DIR / "demo.yaml").run_dir == Path("runs/demo")


def test_parameter_help_covers_every_parameter() -> None:
    rows = parameter_help()
    assert [name for name, _, _ in rows] == list(PARAMETER_NAMES)
    defaults = Params()
    for name, default, help_text in rows:
        assert default == getattr(defaults, name), name
        assert isinstance(help_text, str) and help_text.strip(), name
        assert "\n" not in help_text, name


def test_params_survive_a_yaml_round_trip(tmp_path: Path) -> None:
    params = load_params(PARAMS_DIR / "conv6.yaml", learning_rate=1.2e-3)
    path = write(tmp_path, yaml.safe_dump(params.to_dict(), sort_keys=False))
    assert load_params(path) == params


def test_a_key_given_twice_is_refused_by_name(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys silently; a params file must not."""
    path = write(tmp_path, "arch: lenet\nrounds: 2\narch: conv2\n")
    with pytest.raises(ParamsError, match=r"gives arch twice \(lines 1 and 3\); keep one$"):
        load_params(path)
    with pytest.raises(ParamsError, match=r"gives seed twice"):
        load_params(write(tmp_path, "{seed: 1, seed: 2}\n"))
    assert load_params(write(tmp_path, "compare_with: [a, a]\n")).compare_with == ["a", "a"]


# --- zero pruning rates ---------------------------------------------------------------------------


@pytest.mark.parametrize("pruning_method", ["iterative", "oneshot"])
@pytest.mark.parametrize(
    ("values", "names"),
    [  # LeNet has no conv layers, so its conv_rate cannot prune anything
        (
            {"arch": "lenet", "conv_rate": 0.1, "dense_rate": 0, "output_rate": 0},
            "dense_rate, output_rate",
        ),
        (
            {"arch": "lenet", "dense_units": [], "dense_rate": 0.2, "output_rate": 0},
            "output_rate",
        ),
        (
            {"arch": "conv2", "conv_rate": 0, "dense_rate": 0, "output_rate": 0},
            "conv_rate, dense_rate, output_rate",
        ),
    ],
    ids=["lenet", "lenet_without_hidden_layers", "conv2"],
)
def test_zero_rates_for_every_prunable_layer_are_refused(
    values: dict, names: str, pruning_method: str
) -> None:
    message = rf"^{names}: 0 for every prunable layer of {values['arch']} with rounds: 3, so "
    with pytest.raises(ParamsError, match=message + "nothing could be pruned; set one"):
        load_params(values, rounds=3, pruning_method=pruning_method)


@pytest.mark.parametrize(
    "values",
    [
        {"rounds": 0, "dense_rate": 0, "output_rate": 0},
        {"rounds": 3, "dense_rate": 0, "output_rate": 0.1},
        {"rounds": 3, "dense_rate": 0.2, "output_rate": 0, "pruning_scope": "global"},
        {"rounds": 3, "arch": "conv2", "dense_rate": 0, "output_rate": 0},
    ],
)
def test_a_zero_rate_for_some_layers_or_without_rounds_is_fine(values: dict) -> None:
    assert load_params(values).rounds == values["rounds"]


def test_a_list_given_as_text_by_papermills_p_says_to_use_y() -> None:
    with pytest.raises(
        ParamsError, match=r'^controls: \'\[\]\' is text, not a list; .* -y "controls: \[\]"$'
    ):
        load_params(controls="[]")
    with pytest.raises(ParamsError, match=r'-y "dense_units: \[300, 100\]"$'):
        load_params(dense_units="[300, 100]")
