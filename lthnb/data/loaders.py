"""Find and split the image data sets (MNIST, Fashion-MNIST, CIFAR-10, or one's own given by
path): the public data API.

Experiments must run offline, so local copies are preferred over downloading: a given data_dir,
then the Keras cache, then a distribution package, and only then tf_keras' downloader. Reading
and checking the file formats lives in lthnb.data.formats, one's own data sets in
lthnb.data.custom. TensorFlow is imported only for the download.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lthnb.data.custom import read_own, survey

# Re-exported: these are part of lthnb.data.loaders's public API.
from lthnb.data.formats import (
    DatasetError,
    DatasetFormatError,
    DatasetInfo,
    DatasetNotFoundError,
    RawArrays,
    check_arrays,
)
from lthnb.data.registry import Layout, dataset, dataset_path

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's dataset-fashion-mnist package installs the gzipped IDX files."""

DOWNLOAD_SOURCE = "download via tf.keras.datasets"


@dataclass(frozen=True, eq=False, repr=False)
class Splits:
    """Model-ready arrays plus where they came from (so results can record their provenance).

    x arrays are float32 in [0, 1] shaped (n, H, W, C), or (n, H*W*C) when flattened; y arrays
    are int64 class indices. eq=False: comparing whole arrays element-wise is never meant.
    num_classes left None is the registered data set's (so positional constructions from
    arrays keep working); class_names are the classes' names where the data has them.
    """

    name: str
    source: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int | None = None
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.num_classes is None:
            object.__setattr__(self, "num_classes", dataset(self.name).info.num_classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

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
    cache: str | Path | None = None,
) -> Splits:
    """Load a data set and split a seeded validation set off its training set.

    `name` is a registered name or the path of one's own .npz file or image folder (the rules:
    lthnb.data.custom); data_dir and allow_download only concern registered names. `cache` is
    the .npz file that keeps an image folder's decoded pixels between runs (ignored for other
    sources). The test set is returned untouched. train_subset > 0 keeps only that many
    (shuffled) training images, for quick runs.
    """
    path = dataset_path(name)
    if path is None:
        info = dataset_info(name)
        raw, source = find_raw_dataset(info.name, data_dir, allow_download)
    else:
        info, raw = read_own(path, None if cache is None else Path(cache))
        source = str(path)
    return _split(info, raw, source, validation_size, seed, train_subset, flatten)


def dataset_info(name: str) -> DatasetInfo:
    """The DatasetInfo for a registered name ("Fashion-MNIST"-style spellings too) or for the
    path of one's own data set, read from its headers and labels without decoding images."""
    path = dataset_path(name)
    return dataset(name).info if path is None else survey(path)


def keras_cache_dir() -> Path:
    """The folder tf.keras.datasets downloads into: $KERAS_HOME/datasets or ~/.keras/datasets."""
    home = os.environ.get("KERAS_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".keras") / "datasets"


# --- finding the files -------------------------------------------------------------------------


def _search_roots(
    info: DatasetInfo, data_dir: str | Path | None
) -> list[tuple[str, Path, tuple[Layout, ...]]]:
    """The folders to search, in order, each with a label and the layouts accepted there.

    The Keras cache only holds what tf.keras.datasets writes, so only the Keras layout is
    looked for there: loose IDX files in it could be plain MNIST, not Fashion-MNIST.
    """
    layouts = dataset(info.name).layouts
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
    apt_package = dataset(info.name).apt_package
    if apt_package:
        # Read at call time so tests can monkeypatch the constant.
        package = f"Debian package {apt_package}"
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
            return check_arrays(raw, info, DOWNLOAD_SOURCE), DOWNLOAD_SOURCE
    raise DatasetNotFoundError(_not_found_message(info, tried))


def _not_found_message(info: DatasetInfo, tried: list[str]) -> str:
    """Every place looked, then how to provide the data."""
    places = "\n".join(f"  - {t}" for t in tried)
    entry = dataset(info.name)
    wanted = entry.layouts[0].describe(Path())
    apt = ""
    if entry.apt_package:
        apt = f", or run `apt-get install {entry.apt_package}`"
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
        """uint8 scaled by 1/255; float (one's own, checked to lie in [0, 1]) as it is."""
        shape = (math.prod(info.input_shape),) if flatten else info.input_shape
        prepared = x.reshape(len(x), *shape).astype(np.float32)
        if x.dtype == np.uint8:
            prepared /= np.float32(255)
        return prepared

    return Splits(
        name=info.name,
        source=source,
        x_train=prepare(x_train[train_idx]),
        y_train=y_train[train_idx],
        x_val=prepare(x_train[val_idx]),
        y_val=y_train[val_idx],
        x_test=prepare(x_test),
        y_test=y_test,
        num_classes=info.num_classes,
        class_names=info.class_names,
    )
