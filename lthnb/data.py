"""Find, check and split the image data sets (MNIST, Fashion-MNIST, CIFAR-10).

Experiments must run offline, so local copies are preferred over downloading: a given data_dir,
then the Keras cache, then a distribution package, and only then tf_keras' downloader. Every file
is checked before use so a corrupt or wrongly shaped file fails with one message naming it,
instead of a shape error deep inside training. TensorFlow is imported only for the download.
"""

from __future__ import annotations

import gzip
import math
import os
import pickle
import struct
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

RawArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""x_train uint8, y_train int64, x_test uint8, y_test int64; gray images lack a channel axis."""

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's dataset-fashion-mnist package installs the gzipped IDX files."""

DOWNLOAD_SOURCE = "download via tf.keras.datasets"


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


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo("mnist", (28, 28, 1), 10, 60000, 10000),
    "fashion_mnist": DatasetInfo("fashion_mnist", (28, 28, 1), 10, 60000, 10000),
    "cifar10": DatasetInfo("cifar10", (32, 32, 3), 10, 50000, 10000),
}


@dataclass(frozen=True, eq=False, repr=False)
class Splits:
    """Model-ready arrays plus where they came from (so results can record their provenance).

    x arrays are float32 in [0, 1] shaped (n, H, W, C), or (n, H*W*C) when flattened; y arrays
    are int64 class indices. eq=False: comparing whole arrays element-wise is never meant.
    """

    name: str
    source: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return DATASETS[self.name].num_classes

    def __repr__(self) -> str:
        return (
            f"Splits({self.name!r}, train={self.x_train.shape}, val={self.x_val.shape}, "
            f"test={self.x_test.shape}, source={self.source!r})"
        )


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    validation_size: int = 5000,
    seed: int = 0,
    train_subset: int = 0,
    flatten: bool = False,
    allow_download: bool = True,
) -> Splits:
    """Load a data set and split a seeded validation set off its training set.

    The test set is returned untouched. train_subset > 0 keeps only that many (shuffled)
    training images, for quick runs.
    """
    info = dataset_info(name)
    raw, source = find_raw_dataset(info.name, data_dir, allow_download)
    return _split(info, raw, source, validation_size, seed, train_subset, flatten)


def dataset_info(name: str) -> DatasetInfo:
    """The DatasetInfo for a name; accepts "Fashion-MNIST"-style spellings too."""
    key = name.strip().lower().replace("-", "_")
    if key not in DATASETS:
        raise DatasetError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[key]


def keras_cache_dir() -> Path:
    """The folder tf.keras.datasets downloads into: $KERAS_HOME/datasets or ~/.keras/datasets."""
    home = os.environ.get("KERAS_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".keras") / "datasets"


# --- finding the files -------------------------------------------------------------------------

Reader = Callable[[Sequence[Path], DatasetInfo], RawArrays]


@dataclass(frozen=True)
class _Layout:
    """One way a data set can sit in a folder: which files, in which subfolder, how to read."""

    folder: str  # relative to the searched folder; "" = the folder itself
    files: tuple[str, ...]
    reader: Reader

    def paths(self, root: Path) -> list[Path]:
        return [root / self.folder / f for f in self.files]

    def source(self, root: Path) -> str:
        """The exact file, or the folder holding the files, the data came from."""
        return str(
            root / self.folder / self.files[0] if len(self.files) == 1 else root / self.folder
        )

    def describe(self, root: Path) -> str:
        """What is looked for, with the file names, for error messages."""
        if len(self.files) == 1:
            return self.source(root)
        return f"{root / self.folder}/ ({', '.join(self.files)})"


def _search_roots(
    info: DatasetInfo, data_dir: str | Path | None
) -> list[tuple[str, Path, tuple[_Layout, ...]]]:
    """The folders to search, in order, each with a label and the layouts accepted there.

    The Keras cache only holds what tf.keras.datasets writes, so only the Keras layout is
    looked for there: loose IDX files in it could be plain MNIST, not Fashion-MNIST.
    """
    layouts = _LAYOUTS[info.name]
    roots = []
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise DatasetNotFoundError(
                f"data_dir {folder} does not exist or is not a folder; create it and put the "
                f"{info.name} files there, or pass data_dir=None to use the Keras cache"
            )
        roots.append(("data_dir", folder, layouts))
    roots.append(("Keras cache", keras_cache_dir(), layouts[:1]))
    if info.name in _APT_PACKAGES:
        # Read at call time so tests can monkeypatch the constant.
        package = f"Debian package {_APT_PACKAGES[info.name]}"
        roots.append((package, DEBIAN_FASHION_MNIST_DIR, layouts))
    return roots


def find_raw_dataset(
    name: str, data_dir: str | Path | None = None, allow_download: bool = True
) -> tuple[RawArrays, str]:
    """The checked raw arrays of a data set and the exact file/folder (or download) they came from.

    Raises DatasetNotFoundError listing every place looked when no copy exists, and
    DatasetFormatError when a copy is found but is corrupt or incomplete.
    """
    info = dataset_info(name)
    tried = []
    for label, root, layouts in _search_roots(info, data_dir):
        for layout in layouts:
            paths = layout.paths(root)
            missing = [p.name for p in paths if not p.is_file()]
            if not missing:
                return layout.reader(paths, info), layout.source(root)
            if len(missing) < len(paths):
                raise DatasetFormatError(
                    f"{layout.describe(root)}: incomplete copy of {info.name}, "
                    f"missing {', '.join(missing)}"
                )
            tried.append(f"{label}: {layout.describe(root)}")
    if not allow_download:
        tried.append(f"{DOWNLOAD_SOURCE}: skipped (allow_download=False)")
    else:
        try:
            raw = _download(info)
        except Exception as err:  # no internet shows up as many exception types
            tried.append(f"{DOWNLOAD_SOURCE}: failed ({type(err).__name__}: {err})")
        else:
            return _check_arrays(raw, info, DOWNLOAD_SOURCE), DOWNLOAD_SOURCE
    raise DatasetNotFoundError(_not_found_message(info, tried))


def _not_found_message(info: DatasetInfo, tried: list[str]) -> str:
    """Every place looked, then how to provide the data."""
    places = "\n".join(f"  - {t}" for t in tried)
    wanted = _LAYOUTS[info.name][0].describe(Path())
    apt = ""
    if info.name in _APT_PACKAGES:
        apt = f", or run `apt-get install {_APT_PACKAGES[info.name]}`"
    return (
        f"data set {info.name} not found. Looked in:\n{places}\n"
        f"To provide it, put {wanted} into data_dir or the Keras cache ({keras_cache_dir()})"
        f"{apt}, or allow the download (needs internet)."
    )


def _download(info: DatasetInfo) -> RawArrays:
    """Last resort: tf_keras downloads into the Keras cache, where the next search finds it."""
    import tf_keras  # imports TensorFlow (seconds), so only when actually downloading

    loader = getattr(tf_keras.datasets, info.name)
    (x_train, y_train), (x_test, y_test) = loader.load_data(cache_dir=str(keras_cache_dir().parent))
    return x_train, y_train, x_test, y_test


# --- reading and checking the formats ---------------------------------------------------------


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


def _check_labels(y: np.ndarray, count: int, info: DatasetInfo, where: str) -> np.ndarray:
    """Labels as a flat int64 vector, one per image, each a valid class index."""
    y = np.ravel(y)  # tf_keras gives CIFAR labels as (n, 1)
    if not np.issubdtype(y.dtype, np.integer):
        raise DatasetFormatError(f"{where}: expected integer labels, got {y.dtype}")
    if len(y) != count:
        raise DatasetFormatError(f"{where}: {len(y)} labels for {count} images")
    if y.size and (y.min() < 0 or y.max() >= info.num_classes):
        raise DatasetFormatError(
            f"{where}: labels must be in [0, {info.num_classes}), found {y.min()}..{y.max()}"
        )
    return y.astype(np.int64)


def _check_arrays(raw: RawArrays, info: DatasetInfo, where: str) -> RawArrays:
    x_train, y_train, x_test, y_test = raw
    return (
        _check_images(x_train, info, f"{where} [x_train]"),
        _check_labels(y_train, len(x_train), info, f"{where} [y_train]"),
        _check_images(x_test, info, f"{where} [x_test]"),
        _check_labels(y_test, len(x_test), info, f"{where} [y_test]"),
    )


_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _read_npz(paths: Sequence[Path], info: DatasetInfo) -> RawArrays:
    """The archive tf.keras.datasets.mnist caches: arrays x_train, y_train, x_test, y_test."""
    (path,) = paths
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files if key in _NPZ_KEYS}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as err:
        raise DatasetFormatError(
            f"{path}: not a readable .npz archive ({type(err).__name__}: {err}); expected "
            f"arrays {', '.join(_NPZ_KEYS)} as written by tf.keras.datasets"
        ) from None
    missing = [key for key in _NPZ_KEYS if key not in arrays]
    if missing:
        raise DatasetFormatError(
            f"{path}: missing arrays {', '.join(missing)}; expected {', '.join(_NPZ_KEYS)}"
        )
    return _check_arrays(tuple(arrays[key] for key in _NPZ_KEYS), info, str(path))


_IDX_IMAGES_MAGIC = 2051  # 0x0803: unsigned bytes, 3 dimensions
_IDX_LABELS_MAGIC = 2049  # 0x0801: unsigned bytes, 1 dimension
_IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _read_idx_set(paths: Sequence[Path], info: DatasetInfo) -> RawArrays:
    """The original (Fashion-)MNIST distribution: four gzipped IDX files, in _IDX_FILES order."""
    train_images, train_labels, test_images, test_labels = paths
    x_train = _check_images(_read_idx(train_images, _IDX_IMAGES_MAGIC), info, str(train_images))
    x_test = _check_images(_read_idx(test_images, _IDX_IMAGES_MAGIC), info, str(test_images))
    y_train = _read_idx(train_labels, _IDX_LABELS_MAGIC)
    y_test = _read_idx(test_labels, _IDX_LABELS_MAGIC)
    return (
        x_train,
        _check_labels(y_train, len(x_train), info, f"{train_labels} (for {train_images.name})"),
        x_test,
        _check_labels(y_test, len(x_test), info, f"{test_labels} (for {test_images.name})"),
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


_CIFAR_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


def _read_cifar(paths: Sequence[Path], info: DatasetInfo) -> RawArrays:
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
    return images, _check_labels(np.asarray(batch[b"labels"]), len(images), info, str(path))


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


_LAYOUTS: dict[str, tuple[_Layout, ...]] = {
    "mnist": (_Layout("", ("mnist.npz",), _read_npz),),
    "fashion_mnist": (
        _Layout("fashion-mnist", _IDX_FILES, _read_idx_set),
        _Layout("", _IDX_FILES, _read_idx_set),
        _Layout("", ("fashion_mnist.npz",), _read_npz),
    ),
    "cifar10": (
        _Layout("cifar-10-batches-py", _CIFAR_FILES, _read_cifar),
        _Layout("", _CIFAR_FILES, _read_cifar),
    ),
}
"""How each data set can sit in a searched folder, first match wins; the first is the Keras one."""

_APT_PACKAGES = {"fashion_mnist": "dataset-fashion-mnist"}


# --- splitting ---------------------------------------------------------------------------------


def _split(
    info: DatasetInfo,
    raw: RawArrays,
    source: str,
    validation_size: int,
    seed: int,
    train_subset: int,
    flatten: bool,
) -> Splits:
    """Seeded shuffle of the training set: the first validation_size images validate."""
    x_train, y_train, x_test, y_test = raw
    count = len(x_train)
    if not 0 <= validation_size < count:
        raise DatasetError(
            f"validation_size={validation_size} must be >= 0 and smaller than the {count} "
            f"training images of {info.name} (from {source})"
        )
    order = np.random.default_rng(seed).permutation(count)
    val_idx, train_idx = order[:validation_size], order[validation_size:]
    if not 0 <= train_subset <= len(train_idx):
        raise DatasetError(
            f"train_subset={train_subset} must be between 0 (all) and the {len(train_idx)} "
            f"training images left after taking {validation_size} for validation"
        )
    if train_subset:
        train_idx = train_idx[:train_subset]

    def prepare(x: np.ndarray) -> np.ndarray:
        shape = (math.prod(info.input_shape),) if flatten else info.input_shape
        return x.reshape(len(x), *shape).astype(np.float32) / np.float32(255)

    return Splits(
        name=info.name,
        source=source,
        x_train=prepare(x_train[train_idx]),
        y_train=y_train[train_idx],
        x_val=prepare(x_train[val_idx]),
        y_val=y_train[val_idx],
        x_test=prepare(x_test),
        y_test=y_test,
    )
