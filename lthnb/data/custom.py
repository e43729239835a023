"""One's own data set, given by path instead of a registered name: a Keras-style .npz file or an
image folder (lthnb.data.folders). Its classes and image shape come from the data.

An .npz holds arrays x_train, y_train, x_test, y_test, as tf.keras.datasets.mnist's:
- images shaped (n, H, W) (gray: C = 1) or (n, H, W, C), the same H, W, C in both sets;
  uint8 images are scaled by 1/255, float images are used as they are, so must be finite and
  within [0, 1] (a float array of 0..255 is refused, not guessed at);
- labels integers 0..K-1, one per image, with K = the largest label + 1 over both sets; every
  class needs a training image.
Either kind is refused beyond formats.MAX_FLOAT32_BYTES, judged from the arrays' headers (or
the folder's listing and first image) before any image is loaded.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from lthnb.data.folders import read_folder, survey_folder
from lthnb.data.formats import (
    NPZ_ERRORS,
    NPZ_KEYS,
    DatasetError,
    DatasetFormatError,
    DatasetInfo,
    RawArrays,
    check_labels,
    check_npz_keys,
    check_own_info,
    unreadable_npz,
)

ArrayHeader = tuple[tuple[int, ...], np.dtype]  # shape, dtype


def survey(path: Path) -> DatasetInfo:
    """What the data set at `path` looks like, read cheaply: no image is loaded or decoded
    (an .npz's labels are)."""
    return survey_folder(path).info if path.is_dir() else survey_npz(_npz_file(path))


def read_own(path: Path, cache: Path | None = None) -> tuple[DatasetInfo, RawArrays]:
    """The checked arrays of the data set at `path`; `cache` is used for image folders only."""
    return read_folder(path, cache) if path.is_dir() else read_npz_set(_npz_file(path))


def _npz_file(path: Path) -> Path:
    if path.suffix.lower() != ".npz":
        raise DatasetFormatError(
            f"{path}: not an .npz file; give an .npz archive with arrays {', '.join(NPZ_KEYS)} "
            "or a folder holding train/ and test/ image folders"
        )
    return path


def survey_npz(path: Path) -> DatasetInfo:
    """Shapes from the arrays' headers, classes from the labels; the images stay on disk."""
    headers = _array_headers(path)
    image_shape = _image_shape(path, headers)
    counts = {"y_train": headers["x_train"][0][0], "y_test": headers["x_test"][0][0]}
    labels = dict(zip(counts, _load(path, counts), strict=True))
    num_classes = _num_classes(path, labels, counts)
    info = DatasetInfo(path.stem, image_shape, num_classes, counts["y_train"], counts["y_test"])
    check_own_info(info, str(path))
    return info


def read_npz_set(path: Path) -> tuple[DatasetInfo, RawArrays]:
    """All four arrays, checked; loaded only once the survey has passed."""
    info = survey_npz(path)
    x_train, y_train, x_test, y_test = _load(path, NPZ_KEYS)
    return info, (
        _check_pixels(x_train, f"{path} [x_train]"),
        check_labels(y_train, info.train_size, info.num_classes, f"{path} [y_train]"),
        _check_pixels(x_test, f"{path} [x_test]"),
        check_labels(y_test, info.test_size, info.num_classes, f"{path} [y_test]"),
    )


def _load(path: Path, keys: Iterable[str]) -> list[np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return [archive[key] for key in keys]
    except NPZ_ERRORS as err:
        raise unreadable_npz(path, err) from None


def _array_headers(path: Path) -> dict[str, ArrayHeader]:
    """Each expected array's shape and dtype, read from its .npy header inside the zip."""
    try:
        with zipfile.ZipFile(path) as archive:
            check_npz_keys(path, {name.removesuffix(".npy") for name in archive.namelist()})
            return {key: _array_header(archive, key) for key in NPZ_KEYS}
    except DatasetError:
        raise
    except NPZ_ERRORS as err:
        raise unreadable_npz(path, err) from None


def _array_header(archive: zipfile.ZipFile, key: str) -> ArrayHeader:
    fmt = np.lib.format
    with archive.open(f"{key}.npy") as stream:
        version = fmt.read_magic(stream)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _fortran_order, dtype = read(stream)
    return shape, dtype


def _image_shape(path: Path, headers: dict[str, ArrayHeader]) -> tuple[int, ...]:
    """(H, W, C) shared by x_train and x_test; C = 1 where the arrays have no channel axis."""
    for key in ("x_train", "x_test"):
        shape, dtype = headers[key]
        if len(shape) not in (3, 4) or 0 in shape[1:] or not _is_pixel_dtype(dtype):
            raise DatasetFormatError(
                f"{path} [{key}]: expected uint8 or float images shaped (n, H, W) or "
                f"(n, H, W, C), got {dtype} of shape {shape}"
            )
    train, test = (_with_channel(headers[key][0][1:]) for key in ("x_train", "x_test"))
    if train != test:
        raise DatasetFormatError(
            f"{path} [x_test]: images of shape {test}, unlike the {train} of x_train"
        )
    return train


def _with_channel(shape: tuple[int, ...]) -> tuple[int, ...]:
    return shape if len(shape) == 3 else (*shape, 1)


def _is_pixel_dtype(dtype: np.dtype) -> bool:
    return dtype == np.uint8 or np.issubdtype(dtype, np.floating)


def _num_classes(path: Path, labels: dict[str, np.ndarray], counts: dict[str, int]) -> int:
    """K = the largest label + 1; refused unless every label is valid and every class trains."""
    integer = [y for y in labels.values() if y.size and np.issubdtype(y.dtype, np.integer)]
    num_classes = max((int(y.max()) for y in integer), default=-1) + 1
    for key, y in labels.items():
        check_labels(y, counts[key], num_classes, f"{path} [{key}]")
    untrained = np.setdiff1d(np.arange(num_classes), labels["y_train"])
    if untrained.size:
        raise DatasetFormatError(
            f"{path} [y_train]: no training image of class {', '.join(map(str, untrained))} "
            f"(labels run 0..{num_classes - 1}, so every class needs one)"
        )
    return num_classes


def _check_pixels(x: np.ndarray, where: str) -> np.ndarray:
    """uint8 as it is; float only when finite and within [0, 1], since it is not rescaled."""
    if x.dtype == np.uint8:
        return x
    finite = np.isfinite(x)
    if not finite.all():
        first = int(np.argwhere(~finite)[0][0])
        raise DatasetFormatError(
            f"{where}: {np.count_nonzero(~finite)} NaN or infinite pixels, the first in image "
            f"{first}"
        )
    if x.size and (x.min() < 0 or x.max() > 1):
        raise DatasetFormatError(
            f"{where}: float pixels must lie in [0, 1] (they are not rescaled), found "
            f"{x.min():g}..{x.max():g}; divide them by 255 or store uint8"
        )
    return x
