"""Read and check the data sets' file formats: Keras .npz, gzipped IDX and CIFAR-10 pickles,
and the checks shared with one's own data sets (lthnb.data.custom, lthnb.data.folders).

Kept apart from lthnb.data.loaders (which finds the files and splits them) so each format's
parsing and checks can be read on their own; this module must not import lthnb.data.loaders.
"""

from __future__ import annotations

import gzip
import math
import pickle
import struct
import zipfile
import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

# --- shared with lthnb.data.loaders, which re-exports these ---------------------------------

RawArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""x_train, y_train int64, x_test, y_test int64; images are uint8 (0..255) or, from one's own
.npz, float in [0, 1]; gray images may lack the channel axis."""

MAX_FLOAT32_BYTES = 4 * 2**30
"""The largest data set of one's own that is loaded: its train and test images as float32 (as
the models get them), judged before any image is loaded. The registered ones are far smaller."""


class DatasetError(ValueError):
    """A data set problem the user can fix; the message alone says what and how."""


class DatasetNotFoundError(DatasetError):
    """No copy of the data set anywhere; the message lists every place looked."""


class DatasetFormatError(DatasetError):
    """A data file exists but is corrupt or wrongly shaped; the message names it."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a data set looks like once loaded, so models can be built before loading it."""

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    train_size: int
    test_size: int
    class_names: tuple[str, ...] | None = None  # where the data names them (image folders)


# --- reading and checking the formats ---------------------------------------------------------
#
# Every file is checked before use so a corrupt or wrongly shaped file fails with one message
# naming it, instead of a shape error deep inside training.


def _stored_image_shape(info: DatasetInfo) -> tuple[int, ...]:
    """Files store grayscale images without the channel axis the models get."""
    return info.input_shape[:-1] if info.input_shape[-1] == 1 else info.input_shape


def _check_images(x: np.ndarray, info: DatasetInfo, where: str) -> np.ndarray:
    expected = _stored_image_shape(info)
    if x.dtype != np.uint8 or x.shape[1:] != expected:
        raise DatasetFormatError(
            f"{where}: expected uint8 images of shape (n, {', '.join(map(str, expected))}), "
            f"got {x.dtype} of shape {x.shape}"
        )
    return x


def check_labels(y: np.ndarray, count: int, num_classes: int, where: str) -> np.ndarray:
    """Labels as a flat int64 vector, one per image, each a valid class index."""
    y = np.ravel(y)  # tf_keras gives CIFAR labels as (n, 1)
    if not np.issubdtype(y.dtype, np.integer):
        raise DatasetFormatError(f"{where}: expected integer labels, got {y.dtype}")
    if len(y) != count:
        raise DatasetFormatError(f"{where}: {len(y)} labels for {count} images")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise DatasetFormatError(
            f"{where}: labels must be in [0, {num_classes}), found {y.min()}..{y.max()}"
        )
    return y.astype(np.int64)


def check_arrays(raw: RawArrays, info: DatasetInfo, where: str) -> RawArrays:
    x_train, y_train, x_test, y_test = raw
    return (
        _check_images(x_train, info, f"{where} [x_train]"),
        check_labels(y_train, len(x_train), info.num_classes, f"{where} [y_train]"),
        _check_images(x_test, info, f"{where} [x_test]"),
        check_labels(y_test, len(x_test), info.num_classes, f"{where} [y_test]"),
    )


def check_own_info(info: DatasetInfo, where: str) -> None:
    """What a data set of one's own must be, checked from its shapes before its images load:
    two classes at least, and float32 images within MAX_FLOAT32_BYTES."""
    if info.num_classes < 2:
        raise DatasetFormatError(
            f"{where}: {info.num_classes} class found; a classifier needs at least 2"
        )
    size = (info.train_size + info.test_size) * math.prod(info.input_shape) * 4
    if size > MAX_FLOAT32_BYTES:
        raise DatasetError(
            f"{where}: {info.train_size + info.test_size} images of {info.input_shape} take "
            f"{size / 2**30:.3g} GiB as float32, over the {MAX_FLOAT32_BYTES / 2**30:.3g} GiB "
            "limit (lthnb.data.formats.MAX_FLOAT32_BYTES); use fewer or smaller images"
        )


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
NPZ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error)
"""What reading a corrupt .npz raises."""


def unreadable_npz(path: Path, err: Exception) -> DatasetFormatError:
    return DatasetFormatError(
        f"{path}: not a readable .npz archive ({type(err).__name__}: {err}); expected "
        f"arrays {', '.join(NPZ_KEYS)} as written by tf.keras.datasets"
    )


def check_npz_keys(path: Path, present: Collection[str]) -> None:
    missing = [key for key in NPZ_KEYS if key not in present]
    if missing:
        raise DatasetFormatError(
            f"{path}: missing arrays {', '.join(missing)}; expected {', '.join(NPZ_KEYS)}"
        )


def read_npz(paths: Sequence[Path], info: DatasetInfo) -> RawArrays:
    """The archive tf.keras.datasets.mnist caches: arrays x_train, y_train, x_test, y_test."""
    (path,) = paths
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files if key in NPZ_KEYS}
    except NPZ_ERRORS as err:
        raise unreadable_npz(path, err) from None
    check_npz_keys(path, arrays)
    return check_arrays(tuple(arrays[key] for key in NPZ_KEYS), info, str(path))


_IDX_IMAGES_MAGIC = 2051  # 0x0803: unsigned bytes, 3 dimensions
_IDX_LABELS_MAGIC = 2049  # 0x0801: unsigned bytes, 1 dimension
IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def read_idx_set(paths: Sequence[Path], info: DatasetInfo) -> RawArrays:
    """The original (Fashion-)MNIST distribution: four gzipped IDX files, in IDX_FILES order."""
    train_images, train_labels, test_images, test_labels = paths
    x_train = _check_images(_read_idx(train_images, _IDX_IMAGES_MAGIC), info, str(train_images))
    x_test = _check_images(_read_idx(test_images, _IDX_IMAGES_MAGIC), info, str(test_images))
    y_train = _read_idx(train_labels, _IDX_LABELS_MAGIC)
    y_test = _read_idx(test_labels, _IDX_LABELS_MAGIC)
    return (
        x_train,
        check_labels(
            y_train, len(x_train), info.num_classes, f"{train_labels} (for {train_images.name})"
        ),
        x_test,
        check_labels(
            y_test, len(x_test), info.num_classes, f"{test_labels} (for {test_images.name})"
        ),
    )


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """One gzipped IDX file: big-endian magic, one uint32 per dimension, then the bytes."""
    data = _gunzip(path)
    ndim = magic & 0xFF
    header = struct.Struct(f">{ndim + 1}I")
    found = int.from_bytes(data[:4], "big")
    if len(data) < header.size or found != magic:
        raise DatasetFormatError(
            f"{path}: expected an IDX file with magic number {magic} ({ndim}-D unsigned bytes), "
            f"found {found} in a {len(data)}-byte file"
        )
    dims = header.unpack_from(data)[1:]
    values = np.frombuffer(data, np.uint8, offset=header.size)
    if values.size != math.prod(dims):
        raise DatasetFormatError(
            f"{path}: header promises {math.prod(dims)} values {dims}, file has {values.size}"
        )
    return values.reshape(dims)


def _gunzip(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as stream:
            return stream.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DatasetFormatError(
            f"{path}: cannot decompress ({type(err).__name__}: {err}); expected a complete "
            "gzip-compressed IDX file"
        ) from None


CIFAR_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


def read_cifar(paths: Sequence[Path], info: DatasetInfo) -> RawArrays:
    """The official "python version": five training batches and a test batch, as pickles."""
    *train_paths, test_path = paths
    train = [_read_cifar_batch(p, info) for p in train_paths]
    x_test, y_test = _read_cifar_batch(test_path, info)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return x_train, y_train, x_test, y_test


def _read_cifar_batch(path: Path, info: DatasetInfo) -> tuple[np.ndarray, np.ndarray]:
    """One batch: b"data" uint8 rows of 3072 = the R, G, B 32x32 planes; b"labels" ints."""
    try:
        with path.open("rb") as stream:
            batch = _load_restricted_pickle(stream)
    except Exception as err:  # a corrupt pickle can fail in many ways; all mean "bad file"
        raise DatasetFormatError(
            f"{path}: not a readable CIFAR-10 batch ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(batch, dict) or not {b"data", b"labels"} <= batch.keys():
        raise DatasetFormatError(f'{path}: expected a pickled dict with keys b"data", b"labels"')
    height, width, channels = info.input_shape
    rows = np.asarray(batch[b"data"])
    if rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != height * width * channels:
        raise DatasetFormatError(
            f'{path}: expected b"data" as uint8 rows of {height * width * channels} values '
            f"({channels}x{height}x{width}, channels first), got {rows.dtype} {rows.shape}"
        )
    images = rows.reshape(-1, channels, height, width).transpose(0, 2, 3, 1)
    labels = np.asarray(batch[b"labels"])
    return images, check_labels(labels, len(images), info.num_classes, str(path))


# A pickle can run any importable callable while loading; CIFAR batches need only plain
# containers and NumPy's array reconstruction (under NumPy 1.x and 2.x module names;
# _frombuffer is what pickle protocol 5 uses).
_PICKLE_GLOBALS = frozenset(
    {
        *(("builtins", t) for t in ("dict", "list", "bytes", "str", "int")),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        *((f"numpy.{core}.multiarray", "_reconstruct") for core in ("core", "_core")),
        *((f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")),
    }
)


class _RestrictedUnpickler(pickle.Unpickler):
    """Refuses every global outside _PICKLE_GLOBALS, so loading a file cannot execute code."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return super().find_class(module, name)


def _load_restricted_pickle(stream: BinaryIO) -> object:
    # encoding="bytes": the official batches were pickled by Python 2 (keys are bytes).
    return _RestrictedUnpickler(stream, encoding="bytes").load()
