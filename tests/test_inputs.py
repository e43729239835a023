"""What the networks see: per-channel normalisation, and training batches augmented in the graph."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from conftest import run_tiny

from lthnb.params import ParamsError, load_params
from lthnb.training.engine import DataTensors
from lthnb.training.inputs import CROP_PADDING, augment, normalized

RNG = np.random.default_rng(0)


def _images(networks: int = 3, batch: int = 16, size: int = 8, channels: int = 2) -> np.ndarray:
    """Distinct positive pixels, so every crop offset and flip gives a different image."""
    shape = (networks, batch, size, size, channels)
    return (RNG.permutation(np.prod(shape)).reshape(shape) + 1).astype(np.float32)


def _seeds(networks: int = 3, step: int = 0) -> tf.Tensor:
    return tf.constant([[100 + n, step] for n in range(networks)], tf.int64)


def _windows(image: np.ndarray) -> list[np.ndarray]:
    """Every crop of `image` padded by CROP_PADDING zeros, and each crop mirrored."""
    pad = CROP_PADDING
    padded = np.pad(image, [(pad, pad), (pad, pad), (0, 0)])
    size = image.shape[0]
    crops = [
        padded[row : row + size, column : column + size]
        for row in range(2 * pad + 1)
        for column in range(2 * pad + 1)
    ]
    return crops + [crop[:, ::-1] for crop in crops]


def test_crop_cuts_each_image_from_its_zero_padded_copy_at_a_random_offset():
    images = _images()
    cropped = augment(tf.constant(images), _seeds(), ["crop"]).numpy()
    assert cropped.shape == images.shape
    offsets = set()
    for network, index in np.ndindex(images.shape[:2]):
        pad = CROP_PADDING
        padded = np.pad(images[network, index], [(pad, pad), (pad, pad), (0, 0)])
        matches = [
            (row, column)
            for row in range(2 * pad + 1)
            for column in range(2 * pad + 1)
            if np.array_equal(padded[row : row + 8, column : column + 8], cropped[network, index])
        ]
        assert len(matches) == 1
        offsets.add(matches[0])
    assert len(offsets) > 20  # the offsets are drawn, not fixed


def test_flip_mirrors_about_half_of_the_images_left_to_right():
    images = _images(networks=2, batch=200)
    flipped = augment(tf.constant(images), _seeds(2), ["flip"]).numpy()
    mirrored = np.all(flipped == images[:, :, :, ::-1], axis=(2, 3, 4))
    unchanged = np.all(flipped == images, axis=(2, 3, 4))
    assert np.all(mirrored ^ unchanged)
    assert 0.35 < mirrored.mean() < 0.65


def test_each_network_draws_from_its_own_seed_whatever_shares_the_stack():
    images = _images(networks=3)
    both = augment(tf.constant(images), _seeds(3), ["crop", "flip"]).numpy()
    again = augment(tf.constant(images), _seeds(3), ["crop", "flip"]).numpy()
    np.testing.assert_array_equal(both, again)  # deterministic
    alone = augment(tf.constant(images[1:2]), _seeds(3)[1:2], ["crop", "flip"]).numpy()
    np.testing.assert_array_equal(alone[0], both[1])  # its draws do not depend on company
    same_images = np.repeat(images[:1], 3, axis=0)
    per_network = augment(tf.constant(same_images), _seeds(3), ["crop", "flip"]).numpy()
    assert not np.array_equal(per_network[0], per_network[1])  # each network its own draws
    next_step = augment(tf.constant(images), _seeds(3, step=1), ["crop", "flip"]).numpy()
    assert not np.array_equal(next_step, both)  # each iteration new draws
    for network, index in np.ndindex(images.shape[:2]):
        assert any(
            np.array_equal(w, both[network, index]) for w in _windows(images[network, index])
        )


def test_per_channel_normalisation_uses_the_training_splits_statistics_for_every_split():
    train = RNG.uniform(0, 1, (500, 4, 4, 3)).astype(np.float32) * [1.0, 0.5, 0.2]
    test = RNG.uniform(0, 1, (100, 4, 4, 3)).astype(np.float32)
    x_train, x_test = normalized([train, test], "per_channel", train)
    np.testing.assert_allclose(x_train.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(x_train.std(axis=(0, 1, 2)), 1, atol=1e-4)
    mean, std = train.mean(axis=(0, 1, 2)), train.std(axis=(0, 1, 2))
    np.testing.assert_allclose(x_test, (test - mean) / std, rtol=1e-4, atol=1e-5)
    assert x_test.dtype == np.float32
    assert normalized([train, test], "unit", train)[1] is test


def test_data_tensors_are_normalised_as_asked(tiny_splits):
    unit = DataTensors.from_splits(tiny_splits)
    np.testing.assert_array_equal(unit.x_val.numpy(), tiny_splits.x_val)
    standard = DataTensors.from_splits(tiny_splits, "per_channel")
    assert abs(float(tf.reduce_mean(standard.x_train))) < 1e-4
    assert not np.allclose(standard.x_val.numpy(), tiny_splits.x_val)
    np.testing.assert_array_equal(standard.y_train.numpy(), tiny_splits.y_train)


def test_augmented_runs_are_deterministic_resumable_and_differ_from_plain_ones(
    tiny_params, tiny_splits, tmp_path
):
    params = tiny_params.replace(rounds=1, augmentation=["crop", "flip"])
    _, whole = run_tiny(params.replace(output_dir=str(tmp_path / "whole")), tiny_splits)
    _, again = run_tiny(params.replace(output_dir=str(tmp_path / "again")), tiny_splits)
    pd.testing.assert_frame_equal(whole, again, check_exact=True)
    grown = params.replace(output_dir=str(tmp_path / "grown"))
    run_tiny(grown.replace(rounds=0), tiny_splits)  # round 0, then grown by a round
    _, resumed = run_tiny(grown, tiny_splits)
    pd.testing.assert_frame_equal(resumed, whole, check_exact=True)
    plain = params.replace(augmentation=[], output_dir=str(tmp_path / "plain"))
    _, unaugmented = run_tiny(plain, tiny_splits)
    assert not np.allclose(unaugmented["val_loss"], whole["val_loss"])


def test_augmentation_and_normalization_are_checked_by_name():
    assert load_params(augmentation=["flip", "crop"]).augmentation == ["flip", "crop"]
    with pytest.raises(ParamsError, match="augmentation: 'rotate' unknown; known: crop, flip"):
        load_params(augmentation=["rotate"])
    with pytest.raises(ParamsError, match="augmentation: crop given twice"):
        load_params(augmentation=["crop", "crop"])
    with pytest.raises(ParamsError, match="normalization: 'zca' is not allowed; use one of unit"):
        load_params(normalization="zca")
