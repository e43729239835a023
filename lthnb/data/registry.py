"""The data sets lthnb loads: name -> what the images look like, where their files sit and how
each layout is read. Declarative, so params can list the names without loading anything.
Any other value names one's own data set by its path (lthnb.data.custom).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lthnb.data.custom import survey
from lthnb.data.formats import (
    CIFAR_FILES,
    IDX_FILES,
    DatasetError,
    DatasetInfo,
    DatasetNotFoundError,
    RawArrays,
    read_cifar,
    read_idx_set,
    read_npz,
)

Reader = Callable[[Sequence[Path], DatasetInfo], RawArrays]


@dataclass(frozen=True)
class Layout:
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


@dataclass(frozen=True)
class Dataset:
    """A data set: its shape and classes, its help line, and the layouts a folder may hold it
    in, first match wins; the first layout is the one tf.keras.datasets writes."""

    info: DatasetInfo
    help: str
    layouts: tuple[Layout, ...]
    apt_package: str | None = None  # the Debian package that installs it, where one does


DATASETS: dict[str, Dataset] = {
    entry.info.name: entry
    for entry in (
        Dataset(
            DatasetInfo("mnist", (28, 28, 1), 10, 60000, 10000),
            "MNIST digits, 28x28 grey",
            (Layout("", ("mnist.npz",), read_npz),),
        ),
        Dataset(
            DatasetInfo("fashion_mnist", (28, 28, 1), 10, 60000, 10000),
            "Fashion-MNIST clothes, 28x28 grey",
            (
                Layout("fashion-mnist", IDX_FILES, read_idx_set),
                Layout("", IDX_FILES, read_idx_set),
                Layout("", ("fashion_mnist.npz",), read_npz),
            ),
            apt_package="dataset-fashion-mnist",
        ),
        Dataset(
            DatasetInfo("cifar10", (32, 32, 3), 10, 50000, 10000),
            "CIFAR-10 objects, 32x32 colour",
            (
                Layout("cifar-10-batches-py", CIFAR_FILES, read_cifar),
                Layout("", CIFAR_FILES, read_cifar),
            ),
        ),
    )
}


def _key(name: str) -> str:
    """Accepts "Fashion-MNIST"-style spellings of the registered names."""
    return name.strip().lower().replace("-", "_") if isinstance(name, str) else name


def dataset(name: str) -> Dataset:
    """The registered data set called `name`; accepts "Fashion-MNIST"-style spellings too."""
    if _key(name) not in DATASETS:
        raise DatasetError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[_key(name)]


def dataset_path(value: str) -> Path | None:
    """None when `value` is a registered name (names win over paths); else the existing .npz
    file or image folder it names, relative to the current folder, made absolute."""
    if _key(value) in DATASETS:
        return None
    path = Path(value).expanduser().absolute()
    if not path.exists():
        raise DatasetNotFoundError(
            f"data set {value!r} is neither a known name ({', '.join(DATASETS)}) nor an "
            f"existing .npz file or image folder ({path} does not exist)"
        )
    return path


def dataset_source_problem(value: str) -> str | None:
    """Why `value` cannot be loaded as a data set, in one line, or None when it looks right:
    a registered name, or a path whose layout, headers and labels check out. Cheap enough to
    validate parameters with: no image is decoded, and registered files are not looked for."""
    try:
        path = dataset_path(value)
        if path is not None:
            survey(path)
    except DatasetError as err:
        return str(err)
    return None
