"""What the networks see: the splits normalised once, and training batches augmented in the graph.

Normalisation (`normalization`): `unit` keeps pixels in [0, 1] as loaded; `per_channel`
subtracts each channel's mean and divides by its standard deviation, both from the training
split and applied to every split (open_lth's CIFAR-10 recipe).

Augmentation (`augmentation`) runs inside the compiled training chunk on the gathered batch of
every network: `crop` pads 4 pixels of zeros on each side and takes a random crop of the
original size, `flip` mirrors half the images left to right (the CIFAR recipe of He et al. and
open_lth). The draws of network n at an iteration depend only on that network's seed pair for
the iteration, so runs stay deterministic and resumable whatever else shares the stack, and
validation and test images are never augmented.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from lthnb.params.schema import NORMALIZATIONS

CROP_PADDING = 4
# Folded into each network's seed pair, so augmentation never shares a stream with dropout.
AUGMENTATION_STREAM = 0x5EED


def normalized(
    splits: Sequence[np.ndarray], normalization: str, train: np.ndarray
) -> list[np.ndarray]:
    """Each of `splits` normalised with statistics of `train` (images, channels last)."""
    if normalization == "unit":
        return list(splits)
    if normalization != "per_channel":
        raise ValueError(f"normalization: {normalization!r}; use one of {NORMALIZATIONS}")
    axes = tuple(range(train.ndim - 1))
    mean = train.mean(axis=axes, dtype=np.float64)
    std = train.std(axis=axes, dtype=np.float64)
    std[std == 0] = 1.0  # a constant channel carries no information; leave it at 0
    return [((images - mean) / std).astype(np.float32) for images in splits]


def augment(images: tf.Tensor, seeds: tf.Tensor, operations: Sequence[str]) -> tf.Tensor:
    """`images` of shape (networks, batch, height, width, channels), each network's batch
    augmented with draws from its own row of `seeds` (networks, 2)."""
    networks, batch = images.shape[0], tf.shape(images)[1]
    draws = tf.concat(
        [
            tf.random.stateless_uniform(
                [batch, 3],
                tf.random.experimental.stateless_fold_in(seeds[n], AUGMENTATION_STREAM),
            )
            for n in range(networks)
        ],
        axis=0,
    )
    flat = tf.reshape(images, tf.concat([[-1], tf.shape(images)[2:]], axis=0))
    if "crop" in operations:
        flat = _random_crop(flat, draws[:, :2])
    if "flip" in operations:
        flipped = draws[:, 2] < 0.5
        flat = tf.where(flipped[:, None, None, None], tf.reverse(flat, axis=[2]), flat)
    return tf.reshape(flat, tf.shape(images))


def _random_crop(images: tf.Tensor, uniform: tf.Tensor) -> tf.Tensor:
    """Each image padded by CROP_PADDING zeros, then cut back to its size at an offset drawn
    uniformly from the 2 * CROP_PADDING + 1 possible rows and columns."""
    height, width = images.shape[1], images.shape[2]
    padding = [[0, 0], [CROP_PADDING, CROP_PADDING], [CROP_PADDING, CROP_PADDING], [0, 0]]
    padded = tf.pad(images, padding)
    offsets = tf.cast(tf.floor(uniform * (2 * CROP_PADDING + 1)), tf.int32)
    rows = offsets[:, :1] + tf.range(height)[None, :]
    columns = offsets[:, 1:] + tf.range(width)[None, :]
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(cropped, columns, axis=2, batch_dims=1)


@dataclass(frozen=True)
class DataTensors:
    """The splits as tensors, converted once per experiment."""

    x_train: tf.Tensor
    y_train: tf.Tensor
    x_val: tf.Tensor
    y_val: tf.Tensor
    x_test: tf.Tensor
    y_test: tf.Tensor

    @classmethod
    def from_splits(cls, splits, normalization: str = "unit") -> DataTensors:
        """The splits' arrays, images normalised with the training split's statistics."""
        images = [splits.x_train, splits.x_val, splits.x_test]
        x_train, x_val, x_test = normalized(images, normalization, splits.x_train)
        arrays = (x_train, splits.y_train, x_val, splits.y_val, x_test, splits.y_test)
        return cls(*(tf.constant(array) for array in arrays))

    @property
    def train_size(self) -> int:
        return int(self.x_train.shape[0])
