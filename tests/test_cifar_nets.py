"""lthnb.nets.cifar: open_lth's CIFAR ResNets and VGGs, counted against open_lth's definitions."""

from __future__ import annotations

import numpy as np
import pytest
import tf_keras

from lthnb.nets import cifar
from lthnb.nets.registry import network
from lthnb.params import load_params
from lthnb.training.stack import NetworkStack

CIFAR_SHAPE = (32, 32, 3)
FASHION_SHAPE = (28, 28, 1)
# open_lth's VGG plans (models/cifar_vgg.py), written out again so that a slip in VGG_PLANS shows.
OPEN_LTH_VGG = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M"]
    + [512, 512, 512, 512, "M", 512, 512, 512, 512],
}
OPEN_LTH_VGG_NAMES = [f"vgg{depth}" for depth in OPEN_LTH_VGG]
# Totals of trainable parameters on 32x32x3 with 10 classes. Those marked "open_lth" are asserted
# by open_lth's own tests (models/test/test_cifar_resnet.py, test_cifar_vgg.py); the others come
# from the counting functions below.
KNOWN_TOTALS = {
    ("resnet20", None): 272_474,  # open_lth: cifar_resnet_20, "0.27M"
    ("resnet56", None): 855_770,  # formula: 0.86M (1x1 conv shortcuts)
    ("resnet110", None): 1_730_714,  # open_lth: cifar_resnet_110, "1.7M"
    ("resnet20", 64): 4_327_754,  # formula: cifar_resnet_20_64, 4.3M
    ("vgg11", None): 9_231_114,  # open_lth: cifar_vgg_11
    ("vgg13", None): 9_416_010,  # open_lth: cifar_vgg_13
    ("vgg16", None): 14_728_266,  # open_lth: cifar_vgg_16
    ("vgg19", None): 20_040_522,  # open_lth: cifar_vgg_19
}
COUNTED = [
    ("resnet20", None),
    ("resnet56", None),
    ("resnet20", 64),
    ("vgg11", None),
    ("vgg16", None),
    ("vgg19", None),
]


def open_lth_resnet_parameters(depth: int, width: int = 16, channels: int = 3) -> int:
    """Parameters of open_lth's cifar_resnet_<depth>_<width> (models/cifar_resnet.py), module
    by module: conv weights without bias, BatchNorm2d weight and bias, Linear weight and bias."""

    def conv(k: int, f_in: int, f_out: int) -> int:
        return k * k * f_in * f_out  # bias=False

    def bn(f: int) -> int:
        return 2 * f

    blocks = (depth - 2) // 6
    plan = [(width, blocks), (2 * width, blocks), (4 * width, blocks)]
    current = plan[0][0]
    total = conv(3, channels, current) + bn(current)
    for segment, (filters, count) in enumerate(plan):
        for block in range(count):
            downsample = segment > 0 and block == 0
            total += conv(3, current, filters) + bn(filters)  # conv1, bn1
            total += conv(3, filters, filters) + bn(filters)  # conv2, bn2
            if downsample or current != filters:
                total += conv(1, current, filters) + bn(filters)
            current = filters
    return total + current * 10 + 10  # nn.Linear(plan[-1][0], 10)


def open_lth_vgg_parameters(depth: int, channels: int = 3) -> int:
    """Parameters of open_lth's cifar_vgg_<depth> (models/cifar_vgg.py): each ConvModule is an
    nn.Conv2d(3x3) with its bias and a BatchNorm2d; then nn.Linear(512, 10)."""
    total, current = 0, channels
    for spec in OPEN_LTH_VGG[depth]:
        if spec == "M":
            continue
        total += 3 * 3 * current * spec + spec + 2 * spec
        current = spec
    return total + 512 * 10 + 10


def open_lth_parameters(arch: str, width: int | None) -> int:
    depth = int(arch.removeprefix("resnet").removeprefix("vgg"))
    if arch.startswith("resnet"):
        return open_lth_resnet_parameters(depth, width or 16)
    return open_lth_vgg_parameters(depth)


def build(
    arch: str, shape: tuple[int, ...] = CIFAR_SHAPE, seed: int = 0, width: int | None = None
) -> tf_keras.Model:
    params = load_params({"arch": arch, "width": width})
    return getattr(cifar, arch)(params, shape, 10, seed=seed)


def layers_of(model: tf_keras.Model, kind: type) -> list[tf_keras.layers.Layer]:
    return [layer for layer in model.layers if isinstance(layer, kind)]


def trainable_count(model: tf_keras.Model) -> int:
    return sum(int(weight.shape.num_elements()) for weight in model.trainable_weights)


def test_the_counting_functions_give_open_lths_own_totals() -> None:
    for (arch, width), total in KNOWN_TOTALS.items():
        assert open_lth_parameters(arch, width) == total, (arch, width)
    assert open_lth_resnet_parameters(14, 128) == 11_093_130  # open_lth: cifar_resnet_14_128


@pytest.mark.parametrize(("arch", "width"), COUNTED, ids=lambda value: str(value))
def test_trainable_parameters_equal_open_lths(arch: str, width: int | None) -> None:
    model = build(arch, width=width)
    assert trainable_count(model) == open_lth_parameters(arch, width)
    assert trainable_count(model) == KNOWN_TOTALS[(arch, width)]
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize("arch", ["resnet20", "resnet56", "vgg11", "vgg16", "vgg19"])
def test_builds_on_fashion_mnist_and_returns_logits(arch: str) -> None:
    model = build(arch, FASHION_SHAPE)
    images = np.random.default_rng(0).random((2, *FASHION_SHAPE), dtype=np.float32)
    logits = model(images, training=False).numpy()
    assert logits.shape == (2, 10)
    assert np.isfinite(logits).all()
    assert not np.allclose(logits.sum(axis=1), 1.0)  # logits, not probabilities
    assert model.get_layer("output").activation is tf_keras.activations.linear


@pytest.mark.parametrize("arch", [f"resnet{d}" for d in (20, 56, 110)] + OPEN_LTH_VGG_NAMES)
def test_the_registry_names_these_builders(arch: str) -> None:
    assert network(arch).build_function() is getattr(cifar, arch)


def test_builders_return_functional_models_named_after_the_network() -> None:
    for arch, width, name in [("resnet20", None, "resnet20"), ("resnet20", 64, "resnet20_64")]:
        model = build(arch, width=width)
        assert not isinstance(model, tf_keras.Sequential)
        assert model.name == name


def test_resnet_shapes_on_fashion_mnist_follow_the_stages() -> None:
    model = build("resnet20", FASHION_SHAPE)
    assert model.get_layer("stage1_block2_relu2").output_shape == (None, 28, 28, 16)
    assert model.get_layer("stage2_block0_shortcut_conv").output_shape == (None, 14, 14, 32)
    assert model.get_layer("stage3_block2_relu2").output_shape == (None, 7, 7, 64)


def test_resnet110_builds_with_open_lths_count() -> None:
    assert trainable_count(build("resnet110")) == KNOWN_TOTALS[("resnet110", None)]


@pytest.mark.parametrize("arch", ["resnet20", "vgg11"])
def test_weights_come_from_the_seed(arch: str) -> None:
    first, again, other = (build(arch, FASHION_SHAPE, seed) for seed in (3, 3, 4))
    for a, b in zip(first.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    differing = [  # every drawn weight (kernels, gammas) changes with the seed
        not np.array_equal(a, b)
        for a, b in zip(first.get_weights(), other.get_weights(), strict=True)
        if a.std() > 0
    ]
    assert differing and all(differing)


def test_each_layer_draws_its_own_weights() -> None:
    """Initializers have their own seeds: two layers of the same shape start apart."""
    model = build("resnet20")
    one = model.get_layer("stage1_block0_conv1").kernel.numpy()
    two = model.get_layer("stage1_block0_conv2").kernel.numpy()
    assert not np.array_equal(one, two)
    gammas = [model.get_layer(name).gamma.numpy() for name in ("bn", "stage1_block0_bn1")]
    assert not np.array_equal(*gammas)


@pytest.mark.parametrize("arch", ["resnet20", "vgg11"])
def test_batch_norm_follows_pytorch_and_open_lths_init(arch: str) -> None:
    model = build(arch)
    norms = layers_of(model, tf_keras.layers.BatchNormalization)
    convs = layers_of(model, tf_keras.layers.Conv2D)
    assert len(norms) == len(convs) > 0  # one after every convolution, shortcuts' too
    for layer in norms:
        assert layer.momentum == pytest.approx(0.9)
        assert layer.epsilon == pytest.approx(1e-5)
        gamma, beta = layer.gamma.numpy(), layer.beta.numpy()
        assert ((gamma >= 0) & (gamma < 1)).all()  # open_lth's batchnorm_init: uniform
        assert gamma.std() > 0
        np.testing.assert_array_equal(beta, 0)
    assert model.layers[-1].name == "output"
    assert isinstance(model.get_layer("output"), tf_keras.layers.Dense)
    assert model.get_layer("output").use_bias


def test_resnet_layers_are_open_lths() -> None:
    model = build("resnet20")
    adds = layers_of(model, tf_keras.layers.Add)
    assert len(adds) == 9  # 3 stages of 3 blocks
    convs = layers_of(model, tf_keras.layers.Conv2D)
    assert not any(layer.use_bias for layer in convs)  # bias=False throughout
    shortcuts = [layer.name for layer in convs if "shortcut" in layer.name]
    assert shortcuts == ["stage2_block0_shortcut_conv", "stage3_block0_shortcut_conv"]
    assert model.get_layer("stage2_block0_shortcut_conv").strides == (2, 2)
    assert model.get_layer("stage2_block0_conv1").strides == (2, 2)
    assert isinstance(model.get_layer("pool"), tf_keras.layers.GlobalAveragePooling2D)
    # PyTorch pads a strided 3x3 by one pixel on each side: ZeroPadding2D(1), then "valid"
    pad = model.get_layer("stage2_block0_conv1_pad")
    assert pad.padding == ((1, 1), (1, 1))
    assert model.get_layer("stage2_block0_conv1").padding == "valid"
    assert model.get_layer("stage2_block0_conv1").output_shape == (None, 16, 16, 32)
    NetworkStack(model, 2)  # every layer is one the stack computes (Unstackable otherwise)


def test_resnet_width_scales_every_stage() -> None:
    model = build("resnet20", width=64)
    assert model.get_layer("conv").filters == 64
    assert model.get_layer("stage2_block0_conv1").filters == 128
    assert model.get_layer("stage3_block2_conv2").filters == 256


def test_vgg_layers_are_open_lths() -> None:
    model = build("vgg16")
    convs = layers_of(model, tf_keras.layers.Conv2D)
    assert [layer.name for layer in convs] == [f"conv{i}" for i in range(1, 14)]
    assert [layer.filters for layer in convs] == [s for s in OPEN_LTH_VGG[16] if s != "M"]
    assert all(layer.use_bias for layer in convs)  # nn.Conv2d's default bias=True
    pools = [layer.name for layer in layers_of(model, tf_keras.layers.MaxPooling2D)]
    assert pools == ["pool1", "pool2", "pool3", "pool4"]
    assert model.get_layer("pool").input_shape == (None, 2, 2, 512)  # open_lth's AvgPool2d(2)


@pytest.mark.parametrize("arch", ["vgg11", "vgg16"])
def test_vgg_refuses_a_width(arch: str) -> None:
    params = load_params({"arch": arch, "width": 64})
    message = f"width: applies to the ResNets only; set it to null for {arch}"
    with pytest.raises(ValueError, match=message):
        getattr(cifar, arch)(params, CIFAR_SHAPE, 10, seed=0)
