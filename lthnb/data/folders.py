"""Image folders as data sets: train/ and test/, each with one subfolder of PNG or JPEG files
per class, the layout tf.keras.utils.image_dataset_from_directory reads.

The order is fixed so a folder always gives the same arrays: classes are the training
subfolders sorted by name (label i is the i-th), and images are read class by class, files
sorted by name. Hidden entries and files of other types are skipped. All images must have one
size and be all gray (Pillow modes 1, L, LA: one channel) or all colour (P, PA, RGB, RGBA,
CMYK, YCbCr: three channels, alpha dropped). Pillow decodes them (imported only then), never
TensorFlow. Decoding is slow, so the uint8 arrays may be cached in an .npz that is used while
the folder's file names, sizes and modification times stay the same.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lthnb.data.formats import (
    NPZ_ERRORS,
    NPZ_KEYS,
    DatasetError,
    DatasetFormatError,
    DatasetInfo,
    RawArrays,
    check_own_info,
)

if TYPE_CHECKING:
    from PIL.Image import Image

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
GRAY_MODES = frozenset({"1", "L", "LA"})
COLOUR_MODES = frozenset({"P", "PA", "RGB", "RGBA", "CMYK", "YCbCr"})
CACHE_VERSION = "lthnb image folder cache 1"  # part of the key: a new layout rebuilds caches

ImageFormat = tuple[int, int, int]  # height, width, channels


@dataclass(frozen=True)
class ImageFolder:
    """A listed folder: its shape and classes, and each class's files in reading order."""

    root: Path
    info: DatasetInfo
    train: tuple[tuple[Path, ...], ...]  # per class, in info.class_names order
    test: tuple[tuple[Path, ...], ...]

    @property
    def first(self) -> Path:
        """The image whose size and colour mode all others must share."""
        return self.train[0][0]


def survey_folder(root: Path) -> ImageFolder:
    """List and check the layout, reading one image's header only: cheap, decodes nothing."""
    train, test = _class_files(root / "train"), _class_files(root / "test")
    if train.keys() != test.keys():
        missing, extra = sorted(train.keys() - test.keys()), sorted(test.keys() - train.keys())
        raise DatasetFormatError(
            f"{root / 'test'}: classes differ from those of {root / 'train'}: "
            f"missing {', '.join(missing) or 'none'}; extra {', '.join(extra) or 'none'}"
        )
    classes = tuple(train)
    first = train[classes[0]][0]
    with _open_image(first) as image:
        shape = _format_of(first, image)
    info = DatasetInfo(
        root.name,
        shape,
        len(classes),
        sum(map(len, train.values())),
        sum(map(len, test.values())),
        class_names=classes,
    )
    check_own_info(info, str(root))
    return ImageFolder(root, info, tuple(train.values()), tuple(test[name] for name in classes))


def read_folder(root: Path, cache: Path | None = None) -> tuple[DatasetInfo, RawArrays]:
    """The folder's checked uint8 arrays, from `cache` when it matches the folder's files."""
    folder = survey_folder(root)
    if cache is None:
        return folder.info, _decode_folder(folder)
    key = _cache_key(folder)
    raw = _read_cache(cache, key)
    if raw is None:
        raw = _decode_folder(folder)
        _write_cache(cache, key, folder, raw)
    return folder.info, raw


def _class_files(split: Path) -> dict[str, tuple[Path, ...]]:
    """Class name -> its image files, classes and files sorted by name."""
    if not split.is_dir():
        raise DatasetFormatError(
            f"{split}: no such folder; an image folder data set holds train/ and test/, each "
            "with one subfolder of PNG or JPEG images per class"
        )
    classes = sorted(
        (entry for entry in split.iterdir() if entry.is_dir() and not entry.name.startswith(".")),
        key=lambda entry: entry.name,
    )
    if not classes:
        raise DatasetFormatError(
            f"{split}: no class subfolders; put each class's images in a subfolder named after it"
        )
    return {folder.name: _images_in(folder) for folder in classes}


def _images_in(folder: Path) -> tuple[Path, ...]:
    files = sorted(
        (
            entry
            for entry in folder.iterdir()
            if entry.suffix.lower() in IMAGE_SUFFIXES
            and not entry.name.startswith(".")
            and entry.is_file()
        ),
        key=lambda entry: entry.name,
    )
    if not files:
        raise DatasetFormatError(f"{folder}: empty class folder, no PNG or JPEG files in it")
    return tuple(files)


@contextmanager
def _open_image(path: Path) -> Iterator[Image]:
    """The opened image; failing to read or decode it becomes one line naming the file."""
    from PIL import Image  # only where images are read: Pillow is not needed otherwise

    try:
        with Image.open(path) as image:
            yield image
    except DatasetError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise DatasetFormatError(
            f"{path}: not a readable PNG or JPEG image ({type(err).__name__}: {err})"
        ) from None


def _format_of(path: Path, image: Image) -> ImageFormat:
    """Size and channels from the header, without decoding the pixels."""
    if image.mode in GRAY_MODES:
        return image.height, image.width, 1
    if image.mode in COLOUR_MODES:
        return image.height, image.width, 3
    raise DatasetFormatError(
        f"{path}: unsupported image mode {image.mode}; save it as 8-bit gray or colour"
    )


def _describe(shape: ImageFormat) -> str:
    height, width, channels = shape
    return f"{width}x{height} {'gray' if channels == 1 else 'colour'}"


def _decode_image(path: Path, shape: ImageFormat, first: Path) -> np.ndarray:
    """One image as uint8 (H, W) or (H, W, 3), refused unless it has the first one's format."""
    with _open_image(path) as image:
        found = _format_of(path, image)
        if found != shape:
            raise DatasetFormatError(
                f"{path}: {_describe(found)}, but {first} is {_describe(shape)}; all images "
                "must have one size and be all gray or all colour"
            )
        return np.asarray(image.convert("L" if shape[2] == 1 else "RGB"), dtype=np.uint8)


def _decode_folder(folder: ImageFolder) -> RawArrays:
    """Every image, decoded into arrays allocated once (their size was checked beforehand)."""
    shape = folder.info.input_shape
    stored = shape[:2] if shape[2] == 1 else shape  # gray without a channel axis, as IDX

    def decode(per_class: tuple[tuple[Path, ...], ...]) -> tuple[np.ndarray, np.ndarray]:
        files = [path for paths in per_class for path in paths]
        images = np.empty((len(files), *stored), np.uint8)
        for index, path in enumerate(files):
            images[index] = _decode_image(path, shape, folder.first)
        labels = np.repeat(np.arange(len(per_class), dtype=np.int64), list(map(len, per_class)))
        return images, labels

    return (*decode(folder.train), *decode(folder.test))


def _cache_key(folder: ImageFolder) -> str:
    """Changes when a file is added, removed, renamed or rewritten (size or mtime)."""
    digest = hashlib.sha256(CACHE_VERSION.encode())
    for split in (folder.train, folder.test):
        for path in (path for paths in split for path in paths):
            stat = path.stat()
            name = path.relative_to(folder.root)
            digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _read_cache(cache: Path, key: str) -> RawArrays | None:
    """The cached arrays, or None when there is no cache, it is for other files or unreadable."""
    try:
        with np.load(cache, allow_pickle=False) as archive:
            if str(archive["key"]) != key:
                return None
            return tuple(archive[name] for name in NPZ_KEYS)
    except (*NPZ_ERRORS, KeyError):
        return None


def _write_cache(cache: Path, key: str, folder: ImageFolder, raw: RawArrays) -> None:
    """Written to a temporary file renamed into place, so a reader never sees half a cache.

    The cache is itself a Keras-style .npz (plus key and class_names), usable as a data set.
    """
    cache.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=cache.parent, prefix=f".{cache.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(
                stream,
                key=np.array(key),
                class_names=np.array(folder.info.class_names),
                **dict(zip(NPZ_KEYS, raw, strict=True)),
            )
        os.replace(temporary, cache)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
