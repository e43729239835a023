"""A user's own network through lthnb: one-line refusals of what cannot train, prunable weights
as tfmot's registry says, stable names and seeds, and whole experiments in which rewinding
resets batch norm's state and the exported ticket is the plain network (no tfmot wrappers)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tf_keras
from conftest import run_tiny
from nets_for_tests import Scale
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import (
    PruneLowMagnitude,
)

from lthnb.data.loaders import Splits
from lthnb.nets.build import build_model
from lthnb.nets.names import masked, weight_key
from lthnb.nets.prunable import kernel_sizes, layer_kinds, layer_table, prunable_weights
from lthnb.nets.registry import NetworkError
from lthnb.nets.tfmot import wrap_for_pruning
from lthnb.nets.weights import get_weights, named_layers, variable_name
from lthnb.params import Params, ParamsError, load_params
from lthnb.report.inspect_round import rewind_check, same_bits
from lthnb.runs.paths import RunPaths
from lthnb.runs.state import TrialState, load_state, read_round_record
from lthnb.training.engine import DataTensors, Engine, NetworkJob

SHAPE = (28, 28, 1)
BN_SHORTCUT = "nets_for_tests:bn_shortcut"
CUSTOM = "nets_for_tests:custom_layer"
EVERY_KIND = "nets_for_tests:every_layer_kind"
UNNAMED = "nets_for_tests:unnamed"
BN_LAYERS = ("batch_normalization", "batch_normalization_1", "batch_normalization_2")
BN_VARIABLES = [
    f"{layer}/{variable}"
    for layer in BN_LAYERS
    for variable in ("gamma", "beta", "moving_mean", "moving_variance")
]


def _build(params: Params, arch: str, seed: int = 0) -> tf_keras.Model:
    return build_model(params.replace(arch=arch), SHAPE, 10, seed)


REFUSED = [  # (arch, what its one line says)
    ("no_such_module:f", r"cannot import no_such_module \(ModuleNotFoundError: No module"),
    ("nets_for_tests:missing", r"nets_for_tests has no function missing; name a builder"),
    # the exception's type and first line, not its second
    ("nets_for_tests:raises", r"raised RuntimeError: the user's builder failed$"),
    ("nets_for_tests:not_a_model", r"returned list, not a tf_keras\.Model"),
    ("nets_for_tests:wrong_outputs", r"outputs shape \(11,\) per image; it must output 10 "),
    ("nets_for_tests:nothing_to_prune", r"has no weight that tfmot can prune"),
    # an Input written for other images: lthnb's line, not Keras's traceback
    ("nets_for_tests:fixed_input", r"cannot compute images of shape \(28, 28, 1\).*Input 0"),
]


@pytest.mark.parametrize(("arch", "says"), REFUSED, ids=[arch for arch, _ in REFUSED])
def test_a_builder_lthnb_cannot_use_is_refused_in_one_line_naming_arch(
    tiny_params: Params, arch: str, says: str
) -> None:
    with pytest.raises(NetworkError) as raised:
        _build(tiny_params, arch)
    message = str(raised.value)
    assert "\n" not in message and message.startswith("arch: ") and repr(arch) in message
    assert re.search(says, message), message


@pytest.mark.parametrize("arch", ["x", "a b:c", "pkg.mod:", "pkg.mod.fn", "pkg..mod:fn"])
def test_params_refuse_an_arch_that_names_no_network(arch: str) -> None:
    """Before TensorFlow is touched: neither registered nor written as module:function."""
    with pytest.raises(ParamsError) as raised:
        load_params(arch=arch)
    message = str(raised.value)
    assert message.startswith(f"arch: {arch!r} is neither a registered network (lenet, ")
    assert "'package.module:function'" in message and "\n" not in message


def test_params_take_a_builder_they_cannot_import_yet() -> None:
    """The import is the build's to check: params only read the name."""
    assert load_params(arch="pkg.mod:fn").arch == "pkg.mod:fn"


def test_a_sequential_without_an_input_is_built_on_the_datas_images(tiny_params: Params) -> None:
    model = _build(tiny_params, "nets_for_tests:sequential_without_input")
    assert model.input_shape == (None, *SHAPE)
    assert layer_kinds(model) == {"dense": "output"}


def test_the_prunable_weights_are_those_tfmots_wrappers_prune(tiny_params: Params) -> None:
    """Depthwise: nothing (trained unpruned); separable: only its pointwise kernel; batch norm
    never; a user's PrunableLayer its own choice; logits even behind a linear Activation."""
    model = _build(tiny_params, EVERY_KIND)
    found = prunable_weights(model)
    assert {name: (weight.weight, weight.kind) for name, weight in found.items()} == {
        "conv": ("conv/kernel", "conv"),
        "separable/pointwise_kernel": ("separable/pointwise_kernel", "conv"),
        "transpose": ("transpose/kernel", "conv"),
        "hidden": ("hidden/kernel", "dense"),
        "user": ("user/kernel", "dense"),
        "logits": ("logits/kernel", "output"),
    }
    wrappers = wrap_for_pruning(model).layers
    wrapped = [layer for layer in wrappers if isinstance(layer, PruneLowMagnitude)]
    assert sorted(weight.weight for weight in found.values()) == sorted(
        variable_name(wrapper.layer.name, wrapper.layer, variable)
        for wrapper in wrapped
        for variable, _mask, _threshold in wrapper.pruning_vars
    )
    table = layer_table(model, {}).set_index("layer")
    assert table["kind"].to_dict() == {
        "conv": "conv",
        "depthwise": "trained",
        "separable": "conv",
        "bn": "-",
        "transpose": "conv",
        "pool": "-",
        "hidden": "dense",
        "user": "dense",
        "logits": "output",
        "linear": "-",
    }
    assert table.loc["separable", "prunable_weights"] == 4 * 6  # 1x1 kernel, 4 -> 6 channels
    assert table.loc["depthwise", "prunable_weights"] == 0
    assert table.loc["depthwise", "weights"] == 3 * 3 * 4 + 4
    assert table.loc["bn", "weights"] == 2 * 6  # gamma, beta: moving statistics are state


def test_the_logits_of_a_nested_head_are_the_output_kind(tiny_params: Params) -> None:
    """output_rate prunes the layer producing the logits, inside a nested Sequential too."""
    model = _build(tiny_params, "nets_for_tests:nested_head")
    kinds = {"conv": "conv", "head/hidden": "dense", "head/logits": "output"}
    assert layer_kinds(model) == kinds
    assert set(get_weights(model)) == {
        f"{name}/{part}" for name in kinds for part in ("kernel", "bias")
    }


def test_every_layer_kind_trains_with_its_masks(tiny_params: Params, tiny_splits: Splits) -> None:
    """Masks named by weight ('separable/pointwise_kernel') and by layer hold in training; the
    depthwise kernel and batch norm train unpruned."""
    params = tiny_params.replace(arch=EVERY_KIND, iterations=3, eval_every=3)
    tf_keras.backend.clear_session()
    with pytest.warns(UserWarning, match="Keras container"):
        engine = Engine(params, _build(params, EVERY_KIND), DataTensors.from_splits(tiny_splits))
    start = get_weights(_build(params, EVERY_KIND, 1))
    rng = np.random.default_rng(0)
    masks = {
        name: (rng.random(start[weight.weight].shape) < 0.5).astype(np.float32)
        for name, weight in prunable_weights(_build(params, EVERY_KIND)).items()
    }
    [outcome] = engine.train([NetworkJob(start, masks, seed=5)])
    final = outcome.final_weights
    for name, mask in masks.items():
        key = weight_key(name, final)
        assert np.all(final[key][mask == 0] == 0.0), name
        assert not np.array_equal(final[key][mask == 1], start[key][mask == 1]), name
    for name in ("depthwise/depthwise_kernel", "separable/depthwise_kernel", "bn/moving_mean"):
        assert not np.allclose(final[name], start[name]), name


def test_a_seed_gives_the_same_weights_by_the_same_names_whatever_was_built_before(
    tiny_params: Params,
) -> None:
    """Weights are saved and loaded by name: Keras's numbering of unnamed layers restarts."""
    first = get_weights(_build(tiny_params, UNNAMED, 3))
    _build(tiny_params, BN_SHORTCUT)
    inputs = tf_keras.Input(SHAPE)
    tf_keras.Model(inputs, tf_keras.layers.Dense(3)(tf_keras.layers.Conv2D(2, 3)(inputs)))
    again = get_weights(_build(tiny_params, UNNAMED, 3))
    assert list(again) == list(first)
    assert {"conv2d/kernel", "batch_normalization/moving_mean", "dense_1/kernel"} <= set(first)
    for name, value in first.items():
        assert same_bits(again[name], value), name
    other = get_weights(_build(tiny_params, UNNAMED, 4))
    for name in ("conv2d/kernel", "dense/kernel", "dense_1/kernel"):
        assert not np.allclose(other[name], first[name]), name


def _trial_state(params: Params) -> TrialState:
    state = load_state(RunPaths(params.run_dir).trial(0).state)
    assert state is not None
    return state


def _check_pruned_are_zero(calls: list[dict]) -> None:
    for call in calls:
        outcome = call["outcome"]
        for name, mask in call["masks"].items():
            key = weight_key(name, outcome.final_weights)
            assert np.all(outcome.final_weights[key][mask == 0] == 0.0), name
            assert np.all(outcome.best_weights[key][mask == 0] == 0.0), name


def _check_ticket(params: Params, state: TrialState, **custom_objects: type) -> None:
    """ticket.keras loads as a plain tf_keras network holding the rewound start times the
    final masks bit for bit, every weight (batch norm's moving statistics included)."""
    paths = RunPaths(params.run_dir).trial(0)
    last = state.last_ticket_round
    np.testing.assert_equal(read_round_record(paths.round_record(last))[0], state.masks)
    ticket = tf_keras.models.load_model(
        paths.ticket, compile=False, custom_objects=custom_objects or None
    )
    assert not any(isinstance(layer, PruneLowMagnitude) for layer in ticket.layers)
    modules = {type(layer).__module__.split(".")[0] for layer in ticket.layers}
    assert modules <= {"tf_keras", "nets_for_tests"}
    expected = masked(state.rewind if state.rewind is not None else state.theta0, state.masks)
    exported = get_weights(ticket)
    assert set(exported) == set(expected)
    for name, value in expected.items():
        assert same_bits(exported[name], value), name
    assert ticket(np.zeros((3, *SHAPE), np.float32)).shape == (3, 10)


def test_an_experiment_rewinds_batch_norm_to_theta0_and_exports_the_plain_ticket(
    tiny_params: Params, tiny_splits: Splits, spy: list[dict]
) -> None:
    params = tiny_params.replace(arch=BN_SHORTCUT, iterations=10, controls=["reinit"])
    run_tiny(params, tiny_splits)
    assert len(spy) == 5  # round 0; rounds 1 and 2: the ticket and its reinit control
    state = _trial_state(params)
    built = get_weights(build_model(params, SHAPE, 10, params.seed))
    assert list(state.theta0) == list(built) and set(BN_VARIABLES) <= set(built)
    for name, value in built.items():
        assert same_bits(state.theta0[name], value), name
    trained = spy[0]["outcome"].final_weights
    for name in BN_VARIABLES:  # round 0 moved all of batch norm's state
        assert not np.allclose(trained[name], state.theta0[name]), name
    for call in spy[1:]:  # the tickets and the reinit controls: batch norm's start is θ0's
        for name in BN_VARIABLES:
            assert same_bits(call["weights"][name], state.theta0[name]), name
    for ticket in (spy[1], spy[3]):
        for name, value in masked(state.theta0, ticket["masks"]).items():
            assert same_bits(ticket["weights"][name], value), name
    _check_pruned_are_zero(spy)
    _check_ticket(params, state)
    table = rewind_check(params.run_dir, 0, 2)
    assert set(table["rewound to"]) == {"θ0"}
    assert table.iloc[:-1].drop(columns=["rewound to"]).all().all()
    assert table.iloc[-1]["layer"] == "layers never pruned"  # batch norm's, checked bit for bit
    assert table.iloc[-1]["other weights: same bits"] is True


def test_late_rewinding_restarts_batch_norm_from_theta_k(
    tiny_params: Params, tiny_splits: Splits, spy: list[dict]
) -> None:
    params = tiny_params.replace(arch=BN_SHORTCUT, iterations=10, rewind_iteration=5, rounds=1)
    run_tiny(params, tiny_splits)
    state = _trial_state(params)
    theta_k = state.rewind
    assert theta_k is not None and set(theta_k) == set(state.theta0)
    for name, value in spy[0]["outcome"].rewind_weights.items():
        assert same_bits(theta_k[name], value), name
    for name in BN_VARIABLES:  # five iterations moved batch norm's state off θ0's
        assert not np.allclose(theta_k[name], state.theta0[name]), name
    ticket = spy[1]
    assert ticket["outcome"].start_iteration == 5
    for name, value in masked(theta_k, ticket["masks"]).items():
        assert same_bits(ticket["weights"][name], value), name
    _check_pruned_are_zero(spy)
    _check_ticket(params, state)
    table = rewind_check(params.run_dir, 0, 1)
    assert set(table["rewound to"]) == {"θk"}
    assert table.iloc[:-1].drop(columns=["rewound to"]).all().all()
    assert table.iloc[-1]["other weights: same bits"] is True


def test_a_user_layer_trains_in_the_keras_container_end_to_end(
    tiny_params: Params, tiny_splits: Splits, spy: list[dict]
) -> None:
    params = tiny_params.replace(arch=CUSTOM, iterations=10, rounds=1)
    with pytest.warns(UserWarning, match="Keras container.*layer scale is a Scale"):
        _, rounds = run_tiny(params, tiny_splits)
    assert list(rounds["round"]) == [0, 1]
    state = _trial_state(params)
    assert np.all(state.theta0["scale/factor"] == 1.0)
    for call in spy:  # the user's layer trains in each round, from θ0's factor
        assert same_bits(call["weights"]["scale/factor"], state.theta0["scale/factor"])
        final = call["outcome"].final_weights["scale/factor"]
        assert not np.allclose(final, state.theta0["scale/factor"])
    _check_pruned_are_zero(spy)
    _check_ticket(params, state, Scale=Scale)
    # 04's look inside the ticket finds the user's layer in the builder's module
    table = rewind_check(params.run_dir, 0, 1)
    assert table.drop(columns=["rewound to"]).all().all()


def test_layer_table_of_resnet20_on_fashion_mnist_images() -> None:
    params = load_params(arch="resnet20")
    model = build_model(params, SHAPE, 10, 0)
    table = layer_table(model, {})
    layers = [(path, layer) for path, layer in named_layers(model) if path in set(table["layer"])]
    assert list(table["layer"]) == [path for path, _ in layers]
    assert len(table) == len(named_layers(model)) - 1  # every layer but the Input
    expected = {"Conv2D": "conv", "Dense": "output"}
    assert list(table["kind"]) == [expected.get(type(layer).__name__, "-") for _, layer in layers]
    kinds = table["kind"].value_counts().to_dict()  # 19 3x3 convolutions, 2 1x1 shortcuts
    assert (set(kinds), kinds["conv"], kinds["output"]) == ({"conv", "output", "-"}, 21, 1)
    sizes = kernel_sizes(model)
    assert table["prunable_weights"].sum() == sum(sizes.values())
    rows = table.set_index("layer")
    for name, size in sizes.items():
        assert rows.loc[name, "prunable_weights"] == size
    assert table["weights"].sum() == sum(
        int(w.shape.num_elements()) for w in model.trainable_weights
    )


def test_layer_table_says_a_user_layer_is_trained(tiny_params: Params) -> None:
    rows = layer_table(_build(tiny_params, CUSTOM), {}).set_index("layer")
    assert rows["kind"].to_dict() == {
        "conv2d": "conv",
        "scale": "trained",
        "flatten": "-",
        "dense": "output",
    }
    assert (rows.loc["scale", "weights"], rows.loc["scale", "prunable_weights"]) == (4, 0)
