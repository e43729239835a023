"""lthnb.data.loaders against small files written in each real on-disk format (never downloads)."""

import gzip
import io
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lthnb.data import loaders
from lthnb.data.loaders import (
    DatasetError,
    DatasetFormatError,
    DatasetNotFoundError,
    load_dataset,
)

REAL_DEBIAN_DIR = loaders.DEBIAN_FASHION_MNIST_DIR
N_TRAIN, N_TEST = 40, 12
CIFAR_PER_BATCH = 6  # 5 training batches -> 30 training images


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Keras cache and Debian dir, so only the files a test writes can be found."""
    keras_home = tmp_path / "keras_home"
    keras_home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.setattr(loaders, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "no_debian")
    return keras_home / "datasets"


# --- writers for the real formats ------------------------------------------------------------


def gray_images(count: int, offset: int = 0) -> np.ndarray:
    """28x28 uint8 images whose pixel [0, 0] is a unique id (offset + i); the rest vary."""
    ids = np.arange(offset, offset + count)
    pattern = np.arange(28 * 28).reshape(28, 28)
    images = (ids[:, None, None] * 7 + pattern * 3) % 256
    images[:, 0, 0] = ids
    return images.astype(np.uint8)


def gray_raw() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x_train, x_test = gray_images(N_TRAIN), gray_images(N_TEST, offset=100)
    return x_train, np.arange(N_TRAIN) % 10, x_test, (np.arange(N_TEST) * 3) % 10


def write_npz(path: Path, raw=None) -> Path:
    x_train, y_train, x_test, y_test = gray_raw() if raw is None else raw
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        x_train=x_train,
        y_train=y_train.astype(np.uint8),
        x_test=x_test,
        y_test=y_test.astype(np.uint8),
    )
    return path


def write_idx(path: Path, array: np.ndarray, magic: int | None = None) -> Path:
    """An IDX file as distributed: big-endian magic and dims, then the uint8 values, gzipped."""
    magic = (2051 if array.ndim == 3 else 2049) if magic is None else magic
    header = struct.pack(f">{array.ndim + 1}I", magic, *array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())
    return path


def write_idx_set(folder: Path, raw=None) -> Path:
    x_train, y_train, x_test, y_test = gray_raw() if raw is None else raw
    write_idx(folder / "train-images-idx3-ubyte.gz", x_train)
    write_idx(folder / "train-labels-idx1-ubyte.gz", y_train)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", x_test)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", y_test)
    return folder


def color_planes(image_id: int) -> np.ndarray:
    """3x32x32 (channels first) with distinct R, G, B planes; R[0, 0] is the image id."""
    rows, cols = np.mgrid[0:32, 0:32]
    red = (image_id + rows + 2 * cols) % 256
    green = (60 + image_id + 3 * rows + cols) % 256
    blue = (200 - image_id + rows * cols) % 256
    return np.stack([red, green, blue]).astype(np.uint8)


class _Python2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 strings, as cPickle wrote the official CIFAR batches."""

    def save_python2_str(self, obj: str | bytes) -> None:
        raw = obj if isinstance(obj, bytes) else obj.encode("latin-1")
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch = {**pickle._Pickler.dispatch, bytes: save_python2_str, str: save_python2_str}


def dump_python2_style(obj: object, path: Path) -> None:
    """Protocol 2 with Python 2 strings and NumPy 1.x module names, like the official files."""
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(obj)
    content = buffer.getvalue().replace(b"numpy._core.", b"numpy.core.")
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in content
    path.write_bytes(content)


PICKLE_STYLES = {
    "python2": dump_python2_style,
    "default": lambda obj, path: path.write_bytes(pickle.dumps(obj)),
    "protocol5": lambda obj, path: path.write_bytes(pickle.dumps(obj, protocol=5)),
}


def write_cifar(folder: Path, style: str = "default") -> tuple[np.ndarray, np.ndarray]:
    """Six batches like the official ones; returns all images (channels first) and labels."""
    folder.mkdir(parents=True, exist_ok=True)
    count = 6 * CIFAR_PER_BATCH
    images = np.stack([color_planes(i) for i in range(count)])
    labels = [(i * 7) % 10 for i in range(count)]
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        part = slice(b * CIFAR_PER_BATCH, (b + 1) * CIFAR_PER_BATCH)
        batch = {
            b"batch_label": f"batch {b}".encode(),
            b"labels": labels[part],
            b"data": images[part].reshape(CIFAR_PER_BATCH, 3 * 32 * 32),
            b"filenames": [f"img{i}.png".encode() for i in range(part.start, part.stop)],
        }
        PICKLE_STYLES[style](batch, folder / name)
    return images, np.array(labels)


def ids_of(x: np.ndarray) -> np.ndarray:
    """The unique id each gray image carries in its first pixel."""
    return np.rint(x.reshape(len(x), -1)[:, 0] * 255).astype(int)


def as_uint8(x: np.ndarray) -> np.ndarray:
    return np.rint(x * 255).astype(np.uint8)


# --- loading and splitting -------------------------------------------------------------------


def test_mnist_npz_round_trips_pixels_labels_and_test_set(tmp_path: Path) -> None:
    x_train, y_train, x_test, y_test = gray_raw()
    write_npz(tmp_path / "d" / "mnist.npz")
    splits = load_dataset("mnist", tmp_path / "d", validation_size=10, allow_download=False)

    assert splits.source == str(tmp_path / "d" / "mnist.npz")
    assert splits.x_train.shape == (30, 28, 28, 1) and splits.x_val.shape == (10, 28, 28, 1)
    assert splits.input_shape == (28, 28, 1) and splits.num_classes == 10
    for x in (splits.x_train, splits.x_val, splits.x_test):
        assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
    for x, y in ((splits.x_train, splits.y_train), (splits.x_val, splits.y_val)):
        assert y.dtype == np.int64
        ids = ids_of(x)
        np.testing.assert_array_equal(as_uint8(x)[..., 0], x_train[ids])
        np.testing.assert_array_equal(y, y_train[ids])
    assert splits.x_train[0, 5, 5, 0] == np.float32(x_train[ids_of(splits.x_train)[0], 5, 5]) / 255
    np.testing.assert_array_equal(as_uint8(splits.x_test)[..., 0], x_test)  # order untouched
    np.testing.assert_array_equal(splits.y_test, y_test)


def test_validation_and_training_sets_partition_the_training_images(tmp_path: Path) -> None:
    write_npz(tmp_path / "mnist.npz")
    splits = load_dataset("mnist", tmp_path, validation_size=15, allow_download=False)
    train_ids, val_ids = set(ids_of(splits.x_train)), set(ids_of(splits.x_val))
    assert len(train_ids) == 25 and len(val_ids) == 15
    assert not train_ids & val_ids
    assert train_ids | val_ids == set(range(N_TRAIN))


def test_split_is_seeded(tmp_path: Path) -> None:
    write_npz(tmp_path / "mnist.npz")

    def val_ids(seed: int) -> list[int]:
        splits = load_dataset(
            "mnist", tmp_path, validation_size=10, seed=seed, allow_download=False
        )
        return list(ids_of(splits.x_val))

    assert val_ids(3) == val_ids(3)
    assert val_ids(3) != val_ids(4)
    assert val_ids(3) != list(range(10))  # actually shuffled


def test_train_subset_keeps_the_first_shuffled_training_images(tmp_path: Path) -> None:
    write_npz(tmp_path / "mnist.npz")
    full = load_dataset("mnist", tmp_path, validation_size=10, seed=1, allow_download=False)
    small = load_dataset(
        "mnist", tmp_path, validation_size=10, seed=1, train_subset=7, allow_download=False
    )
    assert small.x_train.shape == (7, 28, 28, 1)
    np.testing.assert_array_equal(small.x_train, full.x_train[:7])
    np.testing.assert_array_equal(small.x_val, full.x_val)
    np.testing.assert_array_equal(small.x_test, full.x_test)


def test_flatten_gives_vectors_even_for_an_empty_validation_set(tmp_path: Path) -> None:
    x_train = gray_raw()[0]
    write_npz(tmp_path / "mnist.npz")
    splits = load_dataset("mnist", tmp_path, validation_size=0, flatten=True, allow_download=False)
    assert splits.x_train.shape == (N_TRAIN, 784) and splits.x_val.shape == (0, 784)
    assert splits.x_test.shape == (N_TEST, 784) and splits.input_shape == (784,)
    ids = ids_of(splits.x_train)
    np.testing.assert_array_equal(as_uint8(splits.x_train), x_train[ids].reshape(N_TRAIN, 784))


@pytest.mark.parametrize(
    ("validation_size", "train_subset", "expected"),
    [
        (N_TRAIN, 0, "validation_size=40"),
        (-1, 0, "validation_size=-1"),
        (10, 31, "train_subset=31"),
    ],
)
def test_impossible_split_sizes_are_refused(
    tmp_path: Path, validation_size: int, train_subset: int, expected: str
) -> None:
    write_npz(tmp_path / "mnist.npz")
    with pytest.raises(DatasetError, match=expected):
        load_dataset(
            "mnist",
            tmp_path,
            validation_size=validation_size,
            train_subset=train_subset,
            allow_download=False,
        )


@pytest.mark.parametrize("subfolder", ["fashion-mnist", ""])
def test_fashion_mnist_gzipped_idx_files(tmp_path: Path, subfolder: str) -> None:
    x_train, y_train, x_test, y_test = gray_raw()
    folder = write_idx_set(tmp_path / "d" / subfolder)
    splits = load_dataset("fashion_mnist", tmp_path / "d", validation_size=5, allow_download=False)

    assert splits.source == str(folder)
    assert splits.x_train.shape == (35, 28, 28, 1)
    ids = ids_of(splits.x_train)
    np.testing.assert_array_equal(as_uint8(splits.x_train)[..., 0], x_train[ids])
    np.testing.assert_array_equal(splits.y_train, y_train[ids])
    np.testing.assert_array_equal(as_uint8(splits.x_test)[..., 0], x_test)
    np.testing.assert_array_equal(splits.y_test, y_test)


def test_fashion_mnist_npz_in_data_dir(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "fashion_mnist.npz")
    splits = load_dataset("Fashion-MNIST", tmp_path, validation_size=5, allow_download=False)
    assert splits.name == "fashion_mnist" and splits.source == str(path)
    assert splits.x_train.shape == (35, 28, 28, 1)


@pytest.mark.parametrize(
    ("subfolder", "style"),
    [("cifar-10-batches-py", "python2"), ("", "default"), ("", "protocol5")],
)
def test_cifar10_batches_keep_channel_order_pixels_and_labels(
    tmp_path: Path, subfolder: str, style: str
) -> None:
    images, labels = write_cifar(tmp_path / "d" / subfolder, style)
    n_train = 5 * CIFAR_PER_BATCH
    splits = load_dataset("cifar10", tmp_path / "d", validation_size=4, allow_download=False)

    assert splits.source == str(tmp_path / "d" / subfolder)
    assert splits.x_train.shape == (n_train - 4, 32, 32, 3) and splits.x_val.shape == (4, 32, 32, 3)
    assert splits.x_test.shape == (CIFAR_PER_BATCH, 32, 32, 3) and splits.num_classes == 10
    assert splits.x_train.dtype == np.float32 and splits.x_train.max() <= 1.0
    for x, y in ((splits.x_train, splits.y_train), (splits.x_val, splits.y_val)):
        ids = np.rint(x[:, 0, 0, 0] * 255).astype(int)  # R[0, 0] is the id
        red, green, blue = (as_uint8(x[..., c]) for c in range(3))
        np.testing.assert_array_equal(red, images[ids, 0])
        np.testing.assert_array_equal(green, images[ids, 1])
        np.testing.assert_array_equal(blue, images[ids, 2])
        np.testing.assert_array_equal(y, labels[ids])
    all_ids = np.rint(np.concatenate([splits.x_train, splits.x_val])[:, 0, 0, 0] * 255)
    assert sorted(all_ids.astype(int)) == list(range(n_train))
    np.testing.assert_array_equal(as_uint8(splits.x_test), images[n_train:].transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(splits.y_test, labels[n_train:])


def test_cifar10_flatten(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    splits = load_dataset(
        "cifar10", tmp_path, validation_size=4, flatten=True, allow_download=False
    )
    assert splits.x_train.shape == (26, 3072) and splits.input_shape == (3072,)


# --- where the data is looked for ------------------------------------------------------------


def test_data_dir_wins_over_the_keras_cache(tmp_path: Path, isolated: Path) -> None:
    write_npz(isolated / "mnist.npz")
    ours = write_npz(tmp_path / "mine" / "mnist.npz")
    splits = load_dataset("mnist", tmp_path / "mine", validation_size=1, allow_download=False)
    assert splits.source == str(ours)


def test_empty_data_dir_falls_back_to_the_keras_home_cache(tmp_path: Path, isolated: Path) -> None:
    cached = write_npz(isolated / "mnist.npz")
    (tmp_path / "empty").mkdir()
    for data_dir in (None, tmp_path / "empty"):
        splits = load_dataset("mnist", data_dir, validation_size=1, allow_download=False)
        assert splits.source == str(cached)


def test_keras_cache_layouts_for_fashion_mnist_and_cifar10(isolated: Path) -> None:
    write_idx_set(isolated / "fashion-mnist")
    write_cifar(isolated / "cifar-10-batches-py")
    fashion = load_dataset("fashion_mnist", validation_size=1, allow_download=False)
    cifar = load_dataset("cifar10", validation_size=1, allow_download=False)
    assert fashion.source == str(isolated / "fashion-mnist")
    assert cifar.source == str(isolated / "cifar-10-batches-py")


def test_loose_idx_files_in_the_keras_cache_are_not_taken_for_fashion_mnist(
    isolated: Path,
) -> None:
    write_idx_set(isolated)  # could be plain MNIST; tf.keras never writes them there
    with pytest.raises(DatasetNotFoundError):
        load_dataset("fashion_mnist", allow_download=False)


def test_fashion_mnist_falls_back_to_the_debian_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    debian = write_idx_set(tmp_path / "debian")
    monkeypatch.setattr(loaders, "DEBIAN_FASHION_MNIST_DIR", debian)
    splits = load_dataset("fashion_mnist", validation_size=1, allow_download=False)
    assert splits.source == str(debian)
    with pytest.raises(DatasetNotFoundError):  # only Fashion-MNIST is packaged there
        load_dataset("mnist", allow_download=False)


def test_download_is_the_last_resort(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_download(info: loaders.DatasetInfo):
        calls.append(info.name)
        x_train, y_train, x_test, y_test = gray_raw()
        return x_train, y_train.reshape(-1, 1), x_test, y_test  # tf_keras-like (n, 1) labels

    monkeypatch.setattr(loaders, "_download", fake_download)
    splits = load_dataset("mnist", validation_size=1)
    assert calls == ["mnist"] and splits.source == loaders.DOWNLOAD_SOURCE
    assert splits.y_train.shape == (N_TRAIN - 1,)


def test_failed_download_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_internet(info: loaders.DatasetInfo):
        raise OSError("Name or service not known")

    monkeypatch.setattr(loaders, "_download", no_internet)
    with pytest.raises(DatasetNotFoundError, match="Name or service not known"):
        load_dataset("mnist")


def test_missing_data_dir_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError, match=str(missing)):
        load_dataset("mnist", missing, allow_download=False)


def test_not_found_lists_every_place_tried_and_how_to_fix(tmp_path: Path, isolated: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError) as caught:
        load_dataset("fashion_mnist", tmp_path / "empty", allow_download=False)
    message = str(caught.value)
    for place in (
        tmp_path / "empty" / "fashion-mnist",
        tmp_path / "empty" / "fashion_mnist.npz",
        isolated / "fashion-mnist",
        tmp_path / "no_debian",
    ):
        assert str(place) in message
    assert "allow_download=False" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert message.count("\n  - ") == 8  # 3 layouts in data_dir and Debian, cache, download


def test_unknown_dataset_lists_the_known_names() -> None:
    with pytest.raises(DatasetError, match="mnist, fashion_mnist, cifar10"):
        load_dataset("imagenet", allow_download=False)


def test_importing_the_module_does_not_import_tensorflow() -> None:
    code = (
        "import sys, lthnb; before = 'tensorflow' in sys.modules; import lthnb.data.loaders; "
        "print(before, 'tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    before, after = result.stdout.split()
    if before == "True":
        pytest.skip("lthnb itself imports TensorFlow")
    assert after == "False"


# --- corrupt and wrongly shaped files --------------------------------------------------------


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_npz_is_a_format_error_naming_the_file(tmp_path: Path, damage: str) -> None:
    path = write_npz(tmp_path / "mnist.npz")
    content = path.read_bytes()
    path.write_bytes(b"not a zip file" if damage == "garbage" else content[: len(content) // 2])
    with pytest.raises(DatasetFormatError, match=str(path)):
        load_dataset("mnist", tmp_path, allow_download=False)


def test_npz_without_the_expected_arrays(tmp_path: Path) -> None:
    np.savez(tmp_path / "mnist.npz", images=gray_images(3))
    with pytest.raises(DatasetFormatError, match="missing arrays x_train"):
        load_dataset("mnist", tmp_path, allow_download=False)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ((gray_images(4)[:, :, :27], np.zeros(4), gray_images(2), np.zeros(2)), r"\(n, 28, 28\)"),
        ((gray_images(4), np.zeros(3), gray_images(2), np.zeros(2)), "3 labels for 4 images"),
        ((gray_images(4), np.full(4, 10), gray_images(2), np.zeros(2)), r"in \[0, 10\)"),
    ],
)
def test_wrongly_shaped_npz_is_a_format_error(tmp_path: Path, raw, expected: str) -> None:
    path = write_npz(tmp_path / "mnist.npz", raw)
    with pytest.raises(DatasetFormatError, match=expected) as caught:
        load_dataset("mnist", tmp_path, validation_size=1, allow_download=False)
    assert str(path) in str(caught.value)


def test_truncated_gzip_is_a_format_error_naming_the_file(tmp_path: Path) -> None:
    write_idx_set(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DatasetFormatError, match=str(path)):
        load_dataset("fashion_mnist", tmp_path, allow_download=False)


@pytest.mark.parametrize(
    ("name", "array", "magic", "expected"),
    [
        ("train-images-idx3-ubyte.gz", gray_images(N_TRAIN), 2049, "magic number 2051"),
        ("t10k-labels-idx1-ubyte.gz", np.zeros(N_TEST), 2051, "magic number 2049"),
        ("train-images-idx3-ubyte.gz", gray_images(N_TRAIN)[:, :27, :], None, r"28, 28"),
        ("train-labels-idx1-ubyte.gz", np.zeros(N_TRAIN - 1), None, "39 labels for 40 images"),
    ],
)
def test_bad_idx_file_is_a_format_error_naming_it(
    tmp_path: Path, name: str, array: np.ndarray, magic: int | None, expected: str
) -> None:
    write_idx_set(tmp_path)
    path = write_idx(tmp_path / name, array, magic)
    with pytest.raises(DatasetFormatError, match=expected) as caught:
        load_dataset("fashion_mnist", tmp_path, allow_download=False)
    assert str(path) in str(caught.value)


def test_idx_payload_shorter_than_its_header_says(tmp_path: Path) -> None:
    write_idx_set(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as stream:
        stream.write(struct.pack(">4I", 2051, N_TEST, 28, 28) + bytes(100))
    with pytest.raises(DatasetFormatError, match="header promises") as caught:
        load_dataset("fashion_mnist", tmp_path, allow_download=False)
    assert str(path) in str(caught.value)


def test_incomplete_idx_set_names_the_missing_file(tmp_path: Path) -> None:
    write_idx_set(tmp_path / "fashion-mnist")
    (tmp_path / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetFormatError, match="missing t10k-labels-idx1-ubyte.gz"):
        load_dataset("fashion_mnist", tmp_path, allow_download=False)


class _RunsCommand:
    """Pickles as a call to os.system, as a malicious batch file would."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_cifar_pickle_with_a_forbidden_global_is_refused_unexecuted(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    marker = tmp_path / "pwned"
    evil = {b"data": _RunsCommand(f"touch {marker}"), b"labels": [0]}
    path = tmp_path / "data_batch_3"
    path.write_bytes(pickle.dumps(evil, protocol=2))
    assert b"system" in path.read_bytes()  # the file really references os.system
    with pytest.raises(DatasetFormatError, match="refused global") as caught:
        load_dataset("cifar10", tmp_path, allow_download=False)
    assert str(path) in str(caught.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        ({b"labels": [0]}, 'keys b"data", b"labels"'),
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "uint8 rows of 3072"),
        ({b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]}, "uint8 rows of 3072"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "1 labels for 2 images"),
    ],
)
def test_wrongly_shaped_cifar_batch_is_a_format_error(
    tmp_path: Path, batch: dict, expected: str
) -> None:
    write_cifar(tmp_path)
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps(batch))
    with pytest.raises(DatasetFormatError, match=expected) as caught:
        load_dataset("cifar10", tmp_path, allow_download=False)
    assert str(path) in str(caught.value)


def test_truncated_cifar_batch_is_a_format_error(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    path = tmp_path / "data_batch_1"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DatasetFormatError, match=str(path)):
        load_dataset("cifar10", tmp_path, allow_download=False)


# --- the real data, where installed ----------------------------------------------------------


@pytest.mark.skipif(
    not REAL_DEBIAN_DIR.is_dir(), reason=f"{REAL_DEBIAN_DIR} missing (dataset-fashion-mnist)"
)
def test_real_debian_fashion_mnist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loaders, "DEBIAN_FASHION_MNIST_DIR", REAL_DEBIAN_DIR)
    splits = load_dataset("fashion_mnist", allow_download=False)
    assert splits.source == str(REAL_DEBIAN_DIR)
    assert len(splits.x_train) + len(splits.x_val) == 60000 and len(splits.x_val) == 5000
    assert splits.x_test.shape == (10000, 28, 28, 1)
    assert set(np.unique(splits.y_train)) == set(range(10)) == set(np.unique(splits.y_test))
    assert splits.x_train.min() >= 0.0 and splits.x_train.max() <= 1.0
