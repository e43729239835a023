"""open_lth's CIFAR-10 networks as functional tf_keras models: ResNet-20/56/110 and VGG-11/13/16/19.

The structures are those of facebookresearch/open_lth (models/cifar_resnet.py, cifar_vgg.py),
so that lthnb's tickets of these networks can be compared with the results published from it,
and their trainable parameters count the same as open_lth's PyTorch modules (tests/
test_cifar_nets.py checks this). What follows PyTorch rather than Keras's own defaults:

- Batch norm after every convolution, with PyTorch's running-average momentum 0.1 (Keras's
  momentum 0.9: the share kept of the old average) and epsilon 1e-5. Its scale gamma starts
  uniform in [0, 1) and its offset beta at 0: open_lth's default `batchnorm_init: uniform`
  (models/bn_initializers.py).
- ResNet convolutions have no bias (batch norm's beta stands in for it); VGG's convolutions keep
  theirs, as open_lth's `nn.Conv2d(..., padding=1)` does. `use_bias: false` removes those and the
  output layer's bias.
- A ResNet block whose shape changes (the first of stages 2 and 3) has a 1x1 convolution of
  stride 2 and a batch norm on its shortcut ("option B"), as open_lth has; the others add x.

Every kernel is drawn by `params.kernel_init` (open_lth: kaiming_normal, here he_normal) and every
gamma by a uniform initializer, each with its own seed `seed * 1000 + i` for its place i in the
network, and the output layer with `seed * 1000 + 999`, so theta0 depends only on the seed.

Other inputs than 32x32x3: the first convolution takes the input's channels (open_lth fixes 3),
and both networks end with a global average pool. At 32x32 it is open_lth's pooling (the
ResNets average the 8x8 map; VGG's AvgPool2d(2) averages a 2x2 one); on Fashion-MNIST's 28x28x1
the ResNet stages give 28, 14 and 7 and VGG's max pools 14, 7, 3 and 1, and the average pool
still leaves one value per channel for the output layer.

Not carried over: biases start at 0, not at PyTorch's default uniform draw; Keras's
he_normal is a truncated normal, PyTorch's kaiming_normal_ is not (same variance).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import tf_keras

if TYPE_CHECKING:
    from tf_keras.src.engine.keras_tensor import KerasTensor

    from lthnb.params import Params

RESNET_WIDTH = 16  # open_lth's W when the name gives none (cifar_resnet_20 = cifar_resnet_20_16)
BN_MOMENTUM = 0.9  # Keras's momentum: PyTorch's (and open_lth's) 0.1 of the new batch
BN_EPSILON = 1e-5  # PyTorch's default
OUTPUT_LAYER = 999  # the output layer's seed offset, as in lthnb.nets.models
MAX_POOL = "M"
VGG_PLANS: dict[int, list[int | str]] = {  # open_lth's cifar_vgg plans; "M": max pool 2x2
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    19: [
        *(64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M"),
        *(512, 512, 512, 512, "M", 512, 512, 512, 512),
    ],
}


class _Seeds:
    """One seed per initializer: seed * 1000 + 1, + 2, ... in the order the layers are built."""

    def __init__(self, seed: int) -> None:
        self.base = seed * 1000
        self.count = 0

    def next(self) -> int:
        self.count += 1
        if self.count >= OUTPUT_LAYER:  # never reached: ResNet-110 draws about 220
            raise ValueError("too many initializers for seed * 1000 + layer index")
        return self.base + self.count


def _kernel_init(params: Params, seed: int) -> tf_keras.initializers.Initializer:
    return tf_keras.initializers.get({"class_name": params.kernel_init, "config": {"seed": seed}})


def _conv_bn(
    x: KerasTensor,
    params: Params,
    seeds: _Seeds,
    filters: int,
    names: tuple[str, str],
    kernel_size: int = 3,
    strides: int = 1,
    use_bias: bool = False,
) -> KerasTensor:
    """A convolution and its batch norm, named `names` (conv, bn). Padded as PyTorch pads
    open_lth's convolutions: a 3x3 by one pixel on each side, also where it strides 2 (Keras's
    "same" would pad only after, shifting the window by a pixel against the 1x1 shortcut)."""
    padding = "same"
    if strides > 1 and kernel_size > 1:
        x = tf_keras.layers.ZeroPadding2D(kernel_size // 2, name=f"{names[0]}_pad")(x)
        padding = "valid"
    x = tf_keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer=_kernel_init(params, seeds.next()),
        name=names[0],
    )(x)
    return tf_keras.layers.BatchNormalization(
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        gamma_initializer=tf_keras.initializers.RandomUniform(0.0, 1.0, seed=seeds.next()),
        beta_initializer="zeros",
        name=names[1],
    )(x)


def _head(x: KerasTensor, params: Params, num_classes: int, seed: int) -> KerasTensor:
    """Global average pooling ("pool") and the output layer ("output"), returning logits."""
    x = tf_keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return tf_keras.layers.Dense(
        num_classes,
        use_bias=params.use_bias,
        kernel_initializer=_kernel_init(params, seed * 1000 + OUTPUT_LAYER),
        name="output",
    )(x)


def _resnet_block(
    x: KerasTensor,
    params: Params,
    seeds: _Seeds,
    filters: int,
    strides: int,
    name: str,
) -> KerasTensor:
    """conv3x3-BN-ReLU-conv3x3-BN plus the shortcut, then ReLU (open_lth's Model.Block)."""
    shortcut = x
    x = _conv_bn(x, params, seeds, filters, (f"{name}_conv1", f"{name}_bn1"), strides=strides)
    x = tf_keras.layers.ReLU(name=f"{name}_relu1")(x)
    x = _conv_bn(x, params, seeds, filters, (f"{name}_conv2", f"{name}_bn2"))
    if strides != 1 or shortcut.shape[-1] != filters:
        shortcut = _conv_bn(
            shortcut,
            params,
            seeds,
            filters,
            (f"{name}_shortcut_conv", f"{name}_shortcut_bn"),
            kernel_size=1,
            strides=strides,
        )
    x = tf_keras.layers.Add(name=f"{name}_add")([x, shortcut])
    return tf_keras.layers.ReLU(name=f"{name}_relu2")(x)


def _resnet(
    params: Params, input_shape: tuple[int, ...], num_classes: int, seed: int, depth: int
) -> tf_keras.Model:
    """ResNet-`depth` (6n + 2): a conv, 3 stages of n blocks of widths W, 2W, 4W, the head."""
    if (depth - 2) % 6 != 0:
        raise ValueError(f"a CIFAR ResNet has 6n + 2 layers, not {depth}")
    blocks = (depth - 2) // 6
    width = params.width if params.width is not None else RESNET_WIDTH
    seeds = _Seeds(seed)
    inputs = tf_keras.Input(shape=input_shape, name="input")
    x = _conv_bn(inputs, params, seeds, width, ("conv", "bn"))
    x = tf_keras.layers.ReLU(name="relu")(x)
    for stage, filters in enumerate((width, 2 * width, 4 * width), start=1):
        for block in range(blocks):
            strides = 2 if stage > 1 and block == 0 else 1
            x = _resnet_block(x, params, seeds, filters, strides, f"stage{stage}_block{block}")
    outputs = _head(x, params, num_classes, seed)
    name = f"resnet{depth}" if params.width is None else f"resnet{depth}_{width}"
    return tf_keras.Model(inputs, outputs, name=name)


def _vgg(
    params: Params, input_shape: tuple[int, ...], num_classes: int, seed: int, depth: int
) -> tf_keras.Model:
    """VGG-`depth` with batch norm: open_lth's plan of conv3x3-BN-ReLU and max pools, the head."""
    if params.width is not None:
        raise ValueError(f"width: applies to the ResNets only; set it to null for vgg{depth}")
    seeds = _Seeds(seed)
    inputs = tf_keras.Input(shape=input_shape, name="input")
    x = inputs
    convs = pools = 0
    for spec in VGG_PLANS[depth]:
        if spec == MAX_POOL:
            pools += 1
            x = tf_keras.layers.MaxPooling2D(2, name=f"pool{pools}")(x)
            continue
        convs += 1
        names = (f"conv{convs}", f"bn{convs}")
        x = _conv_bn(x, params, seeds, int(spec), names, use_bias=params.use_bias)
        x = tf_keras.layers.ReLU(name=f"relu{convs}")(x)
    outputs = _head(x, params, num_classes, seed)
    return tf_keras.Model(inputs, outputs, name=f"vgg{depth}")


Builder = Callable[..., tf_keras.Model]  # (params, input_shape, num_classes, seed) -> Model


def _builder(make: Callable[..., tf_keras.Model], name: str, depth: int, doc: str) -> Builder:
    """The registry's builder `name`: `make` at one depth."""

    def build(
        params: Params, input_shape: tuple[int, ...], num_classes: int, seed: int
    ) -> tf_keras.Model:
        return make(params, input_shape, num_classes, seed, depth)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc
    return build


resnet20 = _builder(_resnet, "resnet20", 20, "open_lth's cifar_resnet_20 (_W with `width`)")
resnet56 = _builder(_resnet, "resnet56", 56, "open_lth's cifar_resnet_56: 9 blocks per stage")
resnet110 = _builder(_resnet, "resnet110", 110, "open_lth's cifar_resnet_110: 18 per stage")
vgg11 = _builder(_vgg, "vgg11", 11, "open_lth's cifar_vgg_11: 8 convs")
vgg13 = _builder(_vgg, "vgg13", 13, "open_lth's cifar_vgg_13: 10 convs")
vgg16 = _builder(_vgg, "vgg16", 16, "open_lth's cifar_vgg_16: 13 convs")
vgg19 = _builder(_vgg, "vgg19", 19, "open_lth's cifar_vgg_19: 16 convs")
