"""Optional TensorBoard logs: one run per (trial, round, kind), curves by iteration.

Open them with `.venv/bin/tensorboard --logdir <run folder>/tensorboard`.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

CURVES = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


class UnitLog:
    """Writes a unit's metrics at every evaluation and its sparsity as TensorBoard scalars."""

    def __init__(self, folder: Path, percent_remaining: float) -> None:
        self.writer = tf.summary.create_file_writer(str(folder))
        self.percent_remaining = percent_remaining

    def evaluation(self, record: dict) -> None:
        with self.writer.as_default(step=record["iteration"]):
            for name in CURVES:
                tf.summary.scalar(name, record[name])
            tf.summary.scalar("percent_remaining", self.percent_remaining)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
