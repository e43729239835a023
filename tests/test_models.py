"""lthnb.nets.models: the paper's networks, their parameter counts and layer tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tf_keras

from lthnb.nets.build import build_model
from lthnb.nets.prunable import kernel_sizes, layer_kinds, layer_table
from lthnb.params import Params, ParamsError, load_params

MNIST_SHAPE = (28, 28, 1)
CIFAR_SHAPE = (32, 32, 3)
# The paper's conv filters per architecture (Fig. 2), pools after every pair of convs.
PAPER_CONVS = {
    "conv2": [64, 64],
    "conv4": [64, 64, 128, 128],
    "conv6": [64, 64, 128, 128, 256, 256],
}
# Totals from the paper's architectures (weights and biases), as Keras counts them.
PAPER_TOTALS = {
    "lenet": (MNIST_SHAPE, [300, 100], 266_610),
    "conv2": (CIFAR_SHAPE, [256, 256], 4_301_642),
    "conv4": (CIFAR_SHAPE, [256, 256], 2_425_930),
    "conv6": (CIFAR_SHAPE, [256, 256], 2_262_602),
}


def prunable_layers(model) -> dict:
    """The prunable layers by name (each of the paper's networks prunes its layers' kernels)."""
    return {name: model.get_layer(name) for name in layer_kinds(model)}


def build(arch: str, seed: int = 0, **changes) -> tuple[Params, tf_keras.Model]:
    shape, units, _ = PAPER_TOTALS[arch]
    params = load_params(arch=arch, dense_units=units, **changes)
    return params, build_model(params, shape, 10, seed)


def expected_kernels(arch: str) -> dict[str, int]:
    """Kernel weights per prunable layer, worked out by hand from the paper's architecture."""
    shape, units, _ = PAPER_TOTALS[arch]
    height, width, channels = shape
    sizes: dict[str, int] = {}
    for index, filters in enumerate(PAPER_CONVS.get(arch, []), start=1):
        sizes[f"conv{index}"] = 3 * 3 * channels * filters
        channels = filters
        if index % 2 == 0:
            height, width = height // 2, width // 2
    inputs = height * width * channels
    for index, width_out in enumerate(units, start=1):
        sizes[f"dense{index}"] = inputs * width_out
        inputs = width_out
    sizes["output"] = inputs * 10
    return sizes


@pytest.mark.parametrize("arch", list(PAPER_TOTALS))
def test_parameter_counts_match_the_paper(arch: str) -> None:
    _, model = build(arch)
    total = PAPER_TOTALS[arch][2]
    assert model.count_params() == total
    assert kernel_sizes(model) == expected_kernels(arch)
    biases = sum(layer.bias.shape.num_elements() for layer in prunable_layers(model).values())
    assert sum(kernel_sizes(model).values()) + biases == total


def test_lenet_kernel_sizes() -> None:
    _, model = build("lenet")
    assert kernel_sizes(model) == {"dense1": 235_200, "dense2": 30_000, "output": 1_000}
    assert sum(kernel_sizes(model).values()) == 266_200


@pytest.mark.parametrize("arch", list(PAPER_TOTALS))
def test_layer_kinds_in_order(arch: str) -> None:
    _, model = build(arch)
    convs = len(PAPER_CONVS.get(arch, []))
    expected = {f"conv{i}": "conv" for i in range(1, convs + 1)}
    expected |= {"dense1": "dense", "dense2": "dense", "output": "output"}
    kinds = layer_kinds(model)
    assert kinds == expected
    assert list(kinds) == list(expected)
    assert list(prunable_layers(model)) == list(expected)


@pytest.mark.parametrize("arch", ["conv2", "conv4", "conv6"])
def test_convs_are_3x3_same_padding_and_pools_halve(arch: str) -> None:
    _, model = build(arch)
    convs = [layer for layer in model.layers if isinstance(layer, tf_keras.layers.Conv2D)]
    pools = [layer for layer in model.layers if isinstance(layer, tf_keras.layers.MaxPooling2D)]
    assert [layer.filters for layer in convs] == PAPER_CONVS[arch]
    assert len(pools) == len(convs) // 2
    for layer in convs:
        assert layer.kernel_size == (3, 3)
        assert layer.padding == "same"
        assert layer.strides == (1, 1)
        assert layer.input_shape[1:3] == layer.output_shape[1:3]  # 'same' keeps the size
    for layer in pools:
        height, width = layer.input_shape[1:3]
        assert layer.output_shape[1:3] == (height // 2, width // 2)
    assert model.output_shape == (None, 10)


def test_output_is_logits_and_hidden_layers_use_relu_by_default() -> None:
    _, model = build("conv2")
    for name, layer in prunable_layers(model).items():
        expected = "linear" if name == "output" else "relu"
        assert layer.activation.__name__ == expected, name


@pytest.mark.parametrize("arch", ["lenet", "conv4"])
def test_tanh_is_used_when_asked(arch: str) -> None:
    _, model = build(arch, activation="tanh")
    for name, layer in prunable_layers(model).items():
        expected = "linear" if name == "output" else "tanh"
        assert layer.activation.__name__ == expected, name


def test_kernel_init_is_the_named_initializer() -> None:
    _, default = build("conv2")
    _, he = build("conv2", kernel_init="he_uniform")
    for layer in prunable_layers(default).values():
        assert type(layer.kernel_initializer).__name__ == "GlorotNormal"
    for layer in prunable_layers(he).values():
        assert type(layer.kernel_initializer).__name__ == "HeUniform"


def test_layer_table_rows_and_columns() -> None:
    _, model = build("conv2")
    rates = {"conv1": 0.1, "conv2": 0.1, "dense1": 0.2, "dense2": 0.2, "output": 0.1}
    table = layer_table(model, rates)
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == [
        "layer",
        "type",
        "kind",
        "output_shape",
        "weights",
        "prunable_weights",
        "rate",
    ]
    assert list(table["layer"]) == [layer.name for layer in model.layers]
    assert table["weights"].sum() == model.count_params() == 4_301_642
    assert table["prunable_weights"].sum() == sum(kernel_sizes(model).values())
    rows = table.set_index("layer")
    assert rows.loc["conv1", "output_shape"] == (32, 32, 64)
    assert rows.loc["pool1", "output_shape"] == (16, 16, 64)
    assert rows.loc["flatten", "output_shape"] == (16 * 16 * 64,)
    assert rows.loc["output", "output_shape"] == (10,)
    for name, kind in layer_kinds(model).items():
        assert rows.loc[name, "kind"] == kind
        assert rows.loc[name, "rate"] == rates[name]
        assert rows.loc[name, "prunable_weights"] == kernel_sizes(model)[name]
    others = rows[~rows.index.isin(list(rates))]
    assert set(others["kind"]) == {"-"}
    assert (others["prunable_weights"] == 0).all() and (others["rate"] == 0.0).all()
    assert (others["weights"] == 0).all()  # pools and flatten have no weights


def test_layer_table_rate_defaults_to_zero() -> None:
    _, model = build("lenet")
    table = layer_table(model, {})
    assert (table["rate"] == 0.0).all()
    assert table["weights"].sum() == 266_610


@pytest.mark.parametrize("arch", ["lenet", "conv2"])
def test_dropout_follows_each_hidden_dense_layer(arch: str) -> None:
    _, model = build(arch, dropout=0.5)
    names = [layer.name for layer in model.layers]
    dropouts = [layer for layer in model.layers if isinstance(layer, tf_keras.layers.Dropout)]
    assert len(dropouts) == 2
    for index, layer in enumerate(dropouts, start=1):
        assert layer.rate == 0.5
        assert names[names.index(layer.name) - 1] == f"dense{index}"
    assert names[-1] == "output"
    assert model.count_params() == PAPER_TOTALS[arch][2]  # dropout adds no weights
    assert layer_kinds(model) == layer_kinds(build(arch)[1])


def test_no_dropout_layers_without_dropout() -> None:
    _, model = build("lenet")
    assert not any(isinstance(layer, tf_keras.layers.Dropout) for layer in model.layers)


@pytest.mark.parametrize("arch", ["lenet", "conv6"])
def test_use_bias_false_removes_every_bias(arch: str) -> None:
    _, model = build(arch, use_bias=False)
    for layer in prunable_layers(model).values():
        assert layer.bias is None
        assert len(layer.weights) == 1
    assert model.count_params() == sum(expected_kernels(arch).values())


def weights_of(model: tf_keras.Model) -> list[np.ndarray]:
    return [np.asarray(weight) for weight in model.get_weights()]


@pytest.mark.parametrize("arch", ["lenet", "conv2"])
def test_the_same_seed_gives_the_same_initial_weights(arch: str) -> None:
    _, first = build(arch, seed=3)
    tf_keras.backend.clear_session()
    _, second = build(arch, seed=3)
    for a, b in zip(weights_of(first), weights_of(second), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("arch", ["lenet", "conv2"])
def test_another_seed_gives_other_kernels_and_zero_biases(arch: str) -> None:
    _, first = build(arch, seed=3)
    _, other = build(arch, seed=4)
    for a, b in zip(prunable_layers(first).values(), prunable_layers(other).values(), strict=True):
        assert not np.array_equal(np.asarray(a.kernel), np.asarray(b.kernel)), a.name
        assert not np.asarray(a.bias).any() and not np.asarray(b.bias).any()


def test_layers_of_one_model_are_not_drawn_alike() -> None:
    _, model = build("conv2", seed=0)
    convs = [np.asarray(layer.kernel) for layer in prunable_layers(model).values()]
    assert not np.array_equal(convs[1][:3, :3, :3, :3], convs[0][:3, :3, :3, :3])
    dense = np.asarray(prunable_layers(model)["dense2"].kernel)
    assert dense.std() == pytest.approx(np.sqrt(2 / (256 + 256)), rel=0.05)  # Glorot normal


def test_a_model_runs_forward_to_logits() -> None:
    _, model = build("conv2")
    logits = model(np.zeros((2, *CIFAR_SHAPE), dtype=np.float32), training=False)
    assert logits.shape == (2, 10)


def test_each_network_brings_its_paper_recipe_where_the_params_leave_keys_out() -> None:
    """Frankle & Carbin 2019, Fig. 2: `arch: conv2` alone is the paper's Conv-2 experiment."""
    conv2 = load_params(arch="conv2")
    assert (conv2.learning_rate, conv2.iterations, conv2.dense_units) == (2e-4, 20000, [256, 256])
    assert conv2.dataset == "cifar10"
    assert load_params(arch="conv6").conv_rate == 0.15
    assert load_params(arch="conv6", conv_rate=0.1).conv_rate == 0.1  # a given key wins
    assert load_params(arch="lenet") == Params()  # the schema's defaults are LeNet's recipe
    model = build_model(load_params(arch="conv4"), CIFAR_SHAPE, 10, 0)
    assert model.count_params() == PAPER_TOTALS["conv4"][2]


@pytest.mark.parametrize("arch", ["conv2", "conv4", "conv6"])
def test_the_paper_params_files_agree_with_their_networks_recipe(arch: str) -> None:
    from conftest import REPO

    from lthnb.nets.registry import network

    from_file = load_params(REPO / "params" / f"{arch}.yaml")
    for key, value in network(arch).defaults.items():
        assert getattr(from_file, key) == value, key


def test_a_network_registered_at_run_time_is_a_valid_arch_and_builds() -> None:
    from lthnb.nets.registry import NETWORKS, Network, register_network

    def tiny(params: Params, input_shape: tuple, num_classes: int, seed: int) -> tf_keras.Model:
        inputs = tf_keras.Input(shape=input_shape)
        flat = tf_keras.layers.Flatten(name="flatten")(inputs)
        return tf_keras.Model(inputs, tf_keras.layers.Dense(num_classes, name="output")(flat))

    register_network(Network("tiny_test_net", "one dense layer", tiny, {"dense_units": []}))
    try:
        params = load_params(arch="tiny_test_net")
        assert params.dense_units == []
        model = build_model(params, MNIST_SHAPE, 10, 0)
        assert layer_kinds(model) == {"output": "output"}
        with pytest.raises(ValueError, match="registered already"):
            register_network(Network("tiny_test_net", "again", tiny))
    finally:
        del NETWORKS["tiny_test_net"]
    with pytest.raises(ParamsError, match="arch: 'tiny_test_net' is neither a registered network"):
        load_params(arch="tiny_test_net")
