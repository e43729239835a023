"""Shared fixtures: a tiny learnable data set in memory and on disk, tiny parameters."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

import lthnb.lottery.experiment as experiment
from lthnb.data.loaders import Splits
from lthnb.params import Params, load_params
from lthnb.training.engine import Engine, StackRunner

REPO = Path(__file__).resolve().parent.parent


def synthetic_images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """28x28 uint8 images whose class is a bright band at a class-specific row: learnable fast."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, count)
    images = rng.integers(0, 80, (count, 28, 28), dtype=np.uint8)
    for index, label in enumerate(labels):
        images[index, 2 * label + 3 : 2 * label + 6, :] = 230
    return images, labels.astype(np.int64)


@pytest.fixture(scope="session")
def tiny_splits() -> Splits:
    x_train, y_train = synthetic_images(300, 1)
    x_val, y_val = synthetic_images(100, 2)
    x_test, y_test = synthetic_images(100, 3)

    def scale(x: np.ndarray) -> np.ndarray:
        return (x[..., None] / 255.0).astype(np.float32)

    return Splits(
        "mnist", "synthetic", scale(x_train), y_train, scale(x_val), y_val, scale(x_test), y_test
    )


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data_dir holding a small `mnist.npz` in the Keras format (for notebooks)."""
    folder = tmp_path_factory.mktemp("data")
    x_train, y_train = synthetic_images(400, 1)
    x_test, y_test = synthetic_images(100, 3)
    np.savez(folder / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return folder


@pytest.fixture
def tiny_params(tmp_path: Path) -> Params:
    return load_params(
        REPO / "params" / "test.yaml", output_dir=str(tmp_path / "run"), data_dir=None
    )


def run_tiny(params: Params, splits: Splits):
    """Train (or resume) an experiment on in-memory data; (evaluations, rounds)."""
    return experiment.run_experiment(params, progress=False, load=lambda _: splits)


@pytest.fixture
def spy(monkeypatch):
    """Record, per unit in training order, the weights its network really holds when training
    starts, its masks and its outcome; then train for real."""
    calls = []
    loaded = []  # what each runner.start put into the stack (training first, then the test)
    real_start, real_train = StackRunner.start, Engine.train

    def recording_start(self, jobs):
        real_start(self, jobs)
        loaded.append([self.stack.weights(index) for index in range(len(jobs))])

    def train_and_record(self, jobs, *args, **kwargs):
        loaded.clear()
        outcomes = real_train(self, jobs, *args, **kwargs)
        for job, start, outcome in zip(jobs, loaded[0], outcomes, strict=True):
            calls.append({"weights": start, "masks": job.masks, "outcome": outcome})
        return outcomes

    monkeypatch.setattr(StackRunner, "start", recording_start)
    monkeypatch.setattr(Engine, "train", train_and_record)
    return calls
