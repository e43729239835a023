"""One's own data set given by path: an .npz file or an image folder (lthnb.data.custom and
lthnb.data.folders), loaded like the registered ones, refused with one line when wrong."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, synthetic_images
from PIL import Image
from test_data import write_idx_set

from lthnb.data import custom, folders, formats
from lthnb.data.custom import read_own
from lthnb.data.loaders import (
    DatasetError,
    DatasetFormatError,
    DatasetNotFoundError,
    Splits,
    dataset_info,
    load_dataset,
)
from lthnb.data.registry import dataset_path, dataset_source_problem

Raw = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
FIELDS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def class_name(label: int) -> str:
    """Folder names that sort in label order."""
    return f"class_{label}"


def by_label(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A folder is read class by class, so the arrays it must equal are ordered that way too."""
    order = np.argsort(labels, kind="stable")
    return images[order], labels[order]


def fashion_like() -> Raw:
    """Fashion-MNIST-like 28x28 uint8 images of 10 classes, each present in train and test,
    ordered by label (stable), which is the order an image folder of them is read in."""
    raw = (*by_label(*synthetic_images(50, 0)), *by_label(*synthetic_images(20, 105)))
    assert set(raw[1]) == set(raw[3]) == set(range(10))
    return raw


def write_npz(path: Path, raw: Raw, **arrays: np.ndarray) -> Path:
    """An .npz of raw's four arrays; keyword arrays replace or (as None) drop one of them."""
    contents = dict(zip(("x_train", "y_train", "x_test", "y_test"), raw, strict=True))
    contents.update(arrays)
    np.savez(path, **{key: value for key, value in contents.items() if value is not None})
    return path


def write_folder(root: Path, raw: Raw, suffix: str = ".png") -> Path:
    """train/ and test/, one folder per class, files named by their zero-padded index in the
    split and written in a shuffled order, so only sorting gives back the arrays' order."""
    x_train, y_train, x_test, y_test = raw
    for split, images, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
        for index in np.random.default_rng(5).permutation(len(images)):
            folder = root / split / class_name(labels[index])
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[index]).save(folder / f"{index:05d}{suffix}")
    return root


def first_file(root: Path, split: str = "train", label: int = 0) -> Path:
    return sorted((root / split / class_name(label)).iterdir())[0]


def refusal(error: type[Exception], source: str | Path, **kwargs) -> str:
    """The message load_dataset refuses `source` with: one line, naming what it refers to."""
    with pytest.raises(error) as caught:
        load_dataset(str(source), validation_size=5, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every image decoded, in order."""
    seen: list[Path] = []
    real = folders._decode_image

    def counting(path: Path, *args) -> np.ndarray:
        seen.append(path)
        return real(path, *args)

    monkeypatch.setattr(folders, "_decode_image", counting)
    return seen


# --- the same data in three formats ------------------------------------------------------------


def test_npz_folder_and_registered_idx_files_give_identical_splits(tmp_path: Path) -> None:
    raw = fashion_like()
    npz = write_npz(tmp_path / "own.npz", raw)
    folder = write_folder(tmp_path / "own_folder", raw)
    write_idx_set(tmp_path / "data" / "fashion-mnist", raw)
    options = {"validation_size": 12, "seed": 3, "allow_download": False}
    registered = load_dataset("fashion_mnist", tmp_path / "data", **options)
    for splits in (load_dataset(str(npz), **options), load_dataset(str(folder), **options)):
        for field in FIELDS:
            ours, theirs = getattr(splits, field), getattr(registered, field)
            assert ours.dtype == theirs.dtype, field
            np.testing.assert_array_equal(ours, theirs, err_msg=field)
        assert splits.num_classes == 10 and splits.input_shape == (28, 28, 1)
    assert registered.x_val.shape == (12, 28, 28, 1)
    np.testing.assert_array_equal(registered.x_test[..., 0], raw[2] / np.float32(255))
    np.testing.assert_array_equal(registered.y_test, raw[3])


def test_a_folder_is_read_class_by_class_in_file_name_order(tmp_path: Path) -> None:
    raw = fashion_like()
    info, arrays = read_own(write_folder(tmp_path / "own", raw))
    for ours, written in zip(arrays, raw, strict=True):
        assert ours.dtype == written.dtype
        np.testing.assert_array_equal(ours, written)
    assert info.class_names == tuple(class_name(label) for label in range(10))
    assert (info.input_shape, info.num_classes, info.train_size, info.test_size) == (
        (28, 28, 1),
        10,
        50,
        20,
    )


def test_path_splits_carry_their_name_source_and_classes(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "clothes", fashion_like())
    splits = load_dataset(str(folder), validation_size=5)
    assert (splits.name, splits.source) == ("clothes", str(folder))
    assert splits.class_names == tuple(class_name(label) for label in range(10))
    npz = load_dataset(str(write_npz(tmp_path / "shirts.npz", fashion_like())), validation_size=5)
    assert (npz.name, npz.class_names) == ("shirts", None)


def test_hidden_entries_and_other_files_are_skipped(tmp_path: Path) -> None:
    raw = fashion_like()
    root = write_folder(tmp_path / "own", raw)
    (root / "train" / ".ipynb_checkpoints").mkdir()
    (root / "train" / "README.txt").write_text("about the classes")
    Image.fromarray(raw[0][0]).save(root / "train" / class_name(0) / ".hidden.png")
    (root / "test" / class_name(0) / "labels.csv").write_text("0")
    info, arrays = read_own(root)
    assert info.class_names == tuple(map(class_name, range(10)))
    for ours, written in zip(arrays, raw, strict=True):
        np.testing.assert_array_equal(ours, written)


def test_a_relative_path_is_taken_from_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_npz(tmp_path / "own.npz", fashion_like())
    monkeypatch.chdir(tmp_path)
    assert load_dataset("own.npz", validation_size=5).source == str(tmp_path / "own.npz")


def test_registered_names_win_over_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_folder(tmp_path / "mnist", fashion_like())
    monkeypatch.chdir(tmp_path)
    assert dataset_path("mnist") is None and dataset_path("Fashion-MNIST") is None
    assert dataset_path("./mnist") == tmp_path / "mnist"


def test_splits_built_from_arrays_take_the_class_count_from_the_registry() -> None:
    images, labels = np.zeros((2, 28, 28, 1), np.float32), np.zeros(2, np.int64)
    splits = Splits("cifar10", "hand-built", images, labels, images, labels, images, labels)
    assert splits.num_classes == 10 and splits.class_names is None
    own = Splits("own", "x", images, labels, images, labels, images, labels, num_classes=3)
    assert own.num_classes == 3


# --- channels and pixel types -----------------------------------------------------------------


def colour_raw() -> Raw:
    """12x10 RGB images, 3 classes in label order, with distinct R, G, B values."""
    rng = np.random.default_rng(2)
    x_train, x_test = (rng.integers(0, 256, (n, 12, 10, 3), dtype=np.uint8) for n in (9, 6))
    return x_train, np.repeat(np.arange(3), 3), x_test, np.repeat(np.arange(3), 2)


def test_rgb_folder_and_rgb_npz_keep_their_channels(tmp_path: Path) -> None:
    raw = colour_raw()
    for source in (write_folder(tmp_path / "rgb", raw), write_npz(tmp_path / "rgb.npz", raw)):
        splits = load_dataset(str(source), validation_size=0)
        assert splits.input_shape == (12, 10, 3) and splits.num_classes == 3
        np.testing.assert_array_equal(splits.x_test, raw[2] / np.float32(255))
        assert sorted(map(bytes, np.rint(splits.x_train * 255).astype(np.uint8))) == sorted(
            map(bytes, raw[0])
        )


def test_gray_folder_gets_a_channel_axis_and_jpeg_is_read(tmp_path: Path) -> None:
    raw = fashion_like()
    splits = load_dataset(str(write_folder(tmp_path / "jpeg", raw, ".jpg")), validation_size=5)
    assert splits.x_train.shape == (45, 28, 28, 1) and splits.x_test.shape == (20, 28, 28, 1)
    assert np.abs(splits.x_test[..., 0] - raw[2] / 255).mean() < 0.05  # lossy, but the same


def test_float_npz_in_unit_range_is_used_as_it_is(tmp_path: Path) -> None:
    raw = fashion_like()
    x_train, x_test = (x.astype(np.float64) / 255 for x in (raw[0], raw[2]))
    path = write_npz(tmp_path / "float.npz", raw, x_train=x_train[..., None], x_test=x_test)
    splits = load_dataset(str(path), validation_size=0, seed=1)
    np.testing.assert_array_equal(splits.x_test[..., 0], x_test.astype(np.float32))
    assert splits.input_shape == (28, 28, 1) and splits.x_train.dtype == np.float32
    assert splits.x_train.max() <= 1.0 and splits.x_train.max() > 0.5


# --- bad data: one line naming the file or folder and the problem -------------------------------


def bad_npz(raw: Raw) -> dict[str, tuple[dict[str, np.ndarray | None], str]]:
    """Replacement arrays -> the problem the message must state."""
    x_train, y_train, x_test, y_test = raw
    nan, out_of_range = x_train.astype(np.float32) / 255, x_train.astype(np.float32)
    nan[3, 4, 5] = np.nan
    negative, untrained, test_only = y_train.copy(), y_train.copy(), y_test.copy()
    negative[0] = -1
    untrained[untrained == 4] = 5
    test_only[0] = 10
    return {
        "missing key": ({"y_test": None}, "missing arrays y_test"),
        "lengths": ({"y_train": y_train[:-1]}, "[y_train]: 49 labels for 50 images"),
        "float labels": ({"y_train": y_train.astype(float)}, "expected integer labels"),
        "negative label": ({"y_train": negative}, r"labels must be in [0, 10), found -1..9"),
        "untrained class": ({"y_train": untrained}, "[y_train]: no training image of class 4"),
        "test-only class": (
            {"y_test": test_only},
            "no training image of class 10",
        ),
        "NaN": ({"x_train": nan}, "[x_train]: 1 NaN or infinite pixels, the first in image 3"),
        "infinite": ({"x_test": np.full((20, 28, 28), np.inf)}, "NaN or infinite pixels"),
        "0..255 floats": ({"x_train": out_of_range}, "float pixels must lie in [0, 1]"),
        "mixed shapes": ({"x_test": x_test[:, :27]}, "[x_test]: images of shape (27, 28, 1)"),
        "flat images": ({"x_train": x_train.reshape(50, -1)}, "shaped (n, H, W) or (n, H, W, C)"),
        "int32 images": ({"x_train": x_train.astype(np.int32)}, "expected uint8 or float"),
        "one class": ({"y_train": 0 * y_train, "y_test": 0 * y_test}, "1 class found"),
    }


PIXEL_CASES = {"NaN", "infinite", "0..255 floats"}  # pixel values are checked on loading only


@pytest.mark.parametrize("case", list(bad_npz(fashion_like())))
def test_bad_npz_is_refused_naming_the_file_and_problem(tmp_path: Path, case: str) -> None:
    arrays, problem = bad_npz(fashion_like())[case]
    path = write_npz(tmp_path / "own.npz", fashion_like(), **arrays)
    message = refusal(DatasetFormatError, path)
    assert message.startswith(str(path)) and problem in message
    assert dataset_source_problem(str(path)) == (None if case in PIXEL_CASES else message)


def test_corrupt_or_foreign_files_are_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "own.npz"
    garbage.write_bytes(b"not a zip")
    assert "not a readable .npz archive" in refusal(DatasetFormatError, garbage)
    text = tmp_path / "own.csv"
    text.write_text("1,2\n")
    assert refusal(DatasetFormatError, text).startswith(f"{text}: not an .npz file")


def test_a_missing_path_names_it_and_the_known_names(tmp_path: Path) -> None:
    message = refusal(DatasetNotFoundError, tmp_path / "nowhere.npz")
    assert str(tmp_path / "nowhere.npz") in message and "mnist, fashion_mnist, cifar10" in message


def resize_one(root: Path) -> tuple[Path, str]:
    path = first_file(root, "test", 7)
    Image.fromarray(np.zeros((28, 27), np.uint8)).save(path)
    return path, f"27x28 gray, but {first_file(root)} is 28x28 gray"


def colour_one(root: Path) -> tuple[Path, str]:
    path = first_file(root, "train", 2)
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(path)
    return path, "28x28 colour, but"


def empty_class(root: Path) -> tuple[Path, str]:
    folder = root / "train" / class_name(3)
    for path in folder.iterdir():
        path.unlink()
    (folder / "notes.txt").write_text("not an image")
    return folder, "empty class folder"


def extra_test_class(root: Path) -> tuple[Path, str]:
    first_file(root, "test", 9).parent.rename(root / "test" / "class_x")
    return root / "test", f"classes differ from those of {root / 'train'}: missing class_9; extra"


def missing_test(root: Path) -> tuple[Path, str]:
    (root / "test").rename(root / "elsewhere")
    return root / "test", "no such folder"


def corrupt_image(root: Path) -> tuple[Path, str]:
    path = first_file(root, "train", 5)
    path.write_bytes(b"\x89PNG not really")
    return path, "not a readable PNG or JPEG image"


def sixteen_bit(root: Path) -> tuple[Path, str]:
    path = first_file(root, "train", 0)
    Image.fromarray(np.zeros((28, 28), np.uint16)).save(path)
    return path, "unsupported image mode I;16"


def no_classes(root: Path) -> tuple[Path, str]:
    for folder in (root / "train").iterdir():
        folder.rename(root / folder.name)
    return root / "train", "no class subfolders"


FOLDER_DAMAGE = [
    resize_one,
    colour_one,
    empty_class,
    extra_test_class,
    missing_test,
    corrupt_image,
    sixteen_bit,
    no_classes,
]
DECODED_ONLY = {resize_one, colour_one, corrupt_image}  # a survey reads the first header only


@pytest.mark.parametrize("damage", FOLDER_DAMAGE, ids=lambda damage: damage.__name__)
def test_bad_folder_is_refused_before_a_cache_is_written(tmp_path: Path, damage) -> None:
    root = write_folder(tmp_path / "own", fashion_like())
    named, problem = damage(root)
    cache = tmp_path / "cache" / "own.npz"
    message = refusal(DatasetFormatError, root, cache=cache)
    assert message.startswith(f"{named}: ") and problem in message
    assert not cache.parent.exists()
    assert dataset_source_problem(str(root)) == (None if damage in DECODED_ONLY else message)


@pytest.mark.parametrize("kind", ["npz", "folder"])
def test_too_few_training_images_for_validation_names_the_source(tmp_path: Path, kind: str) -> None:
    raw = fashion_like()
    source = write_npz(tmp_path / "own.npz", raw) if kind == "npz" else write_folder(tmp_path, raw)
    with pytest.raises(DatasetError, match="validation_size=50 must be") as caught:
        load_dataset(str(source), validation_size=50)
    assert f"50 training images of {source.stem} (from {source})" in str(caught.value)


@pytest.mark.parametrize("kind", ["npz", "folder"])
def test_a_data_set_over_the_memory_limit_is_refused_before_loading_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    raw = fashion_like()
    source = write_npz(tmp_path / "own.npz", raw) if kind == "npz" else write_folder(tmp_path, raw)
    loaded: list[str] = []
    real_load = custom._load

    def spy_load(path: Path, keys) -> list[np.ndarray]:
        loaded.extend(keys)
        return real_load(path, keys)

    monkeypatch.setattr(custom, "_load", spy_load)
    monkeypatch.setattr(folders, "_decode_image", lambda *args: loaded.append("image"))
    monkeypatch.setattr(formats, "MAX_FLOAT32_BYTES", 100_000)
    assert refusal(DatasetError, source) == (
        f"{source}: 70 images of (28, 28, 1) take {70 * 784 * 4 / 2**30:.3g} GiB as float32, "
        f"over the {100_000 / 2**30:.3g} GiB limit (lthnb.data.formats.MAX_FLOAT32_BYTES); "
        "use fewer or smaller images"
    )
    assert set(loaded) <= {"y_train", "y_test"}  # the labels give the class count; no image


def test_the_memory_limit_is_4_gib_of_float32() -> None:
    assert formats.MAX_FLOAT32_BYTES == 4 * 2**30


# --- the cache of decoded folders ---------------------------------------------------------------


def test_a_cached_folder_is_not_decoded_again(tmp_path: Path, decodes: list[Path]) -> None:
    root = write_folder(tmp_path / "own", fashion_like())
    cache = tmp_path / "cache" / "own.npz"
    first = load_dataset(str(root), validation_size=5, cache=cache)
    assert len(decodes) == 70 and len(set(decodes)) == 70
    assert [path.name for path in cache.parent.iterdir()] == ["own.npz"]  # temporary renamed
    decodes.clear()
    again = load_dataset(str(root), validation_size=5, cache=str(cache))
    assert decodes == []
    as_npz = load_dataset(str(cache), validation_size=5)  # the cache is a data set itself
    for splits in (again, as_npz):
        for field in FIELDS:
            np.testing.assert_array_equal(getattr(splits, field), getattr(first, field))
    assert again.class_names == first.class_names and again.source == str(root)


@pytest.mark.parametrize("change", ["touch", "add", "remove", "rewrite"])
def test_a_changed_folder_is_decoded_again(
    tmp_path: Path, decodes: list[Path], change: str
) -> None:
    raw = fashion_like()
    root, cache = write_folder(tmp_path / "own", raw), tmp_path / "own.npz"
    load_dataset(str(root), validation_size=5, cache=cache)
    largest = int(np.bincount(raw[1]).argmax())  # a class left with images when one goes
    path = first_file(root, "train", largest)
    new_image = np.full((28, 28), 17, np.uint8)
    if change == "touch":
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    elif change == "add":
        Image.fromarray(new_image).save(path.with_name("99999.png"))
    elif change == "remove":
        path.unlink()
    else:
        Image.fromarray(new_image).save(path)
    decodes.clear()
    splits = load_dataset(str(root), validation_size=0, cache=cache)
    count = {"add": 71, "remove": 69}.get(change, 70)
    assert len(decodes) == count and len(splits.x_train) + len(splits.x_test) == count
    has_new = (splits.x_train[..., 0] == np.float32(17) / 255).all(axis=(1, 2)).any()
    assert has_new == (change in ("add", "rewrite"))
    decodes.clear()
    load_dataset(str(root), validation_size=0, cache=cache)
    assert decodes == []  # the cache was brought up to date


def test_an_unreadable_cache_is_rebuilt(tmp_path: Path, decodes: list[Path]) -> None:
    root, cache = write_folder(tmp_path / "own", fashion_like()), tmp_path / "own.npz"
    cache.write_bytes(b"half a cache")
    load_dataset(str(root), validation_size=5, cache=cache)
    assert len(decodes) == 70
    with np.load(cache) as archive:
        assert archive["x_train"].shape == (50, 28, 28)


def test_the_cache_is_for_image_folders_only(tmp_path: Path) -> None:
    npz = write_npz(tmp_path / "own.npz", fashion_like())
    load_dataset(str(npz), validation_size=5, cache=tmp_path / "cache.npz")
    assert not (tmp_path / "cache.npz").exists()


# --- checking a dataset parameter cheaply ------------------------------------------------------


def test_source_problem_accepts_names_and_good_paths_without_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(folders, "_decode_image", lambda *args: pytest.fail("decoded"))
    npz = write_npz(tmp_path / "own.npz", fashion_like())
    folder = write_folder(tmp_path / "own", fashion_like())
    for value in ("mnist", "Fashion-MNIST", "cifar10", str(npz), str(folder)):
        assert dataset_source_problem(value) is None, value
    problem = dataset_source_problem("imagenet")
    assert problem is not None and "mnist, fashion_mnist, cifar10" in problem


def test_dataset_info_of_a_path_comes_from_the_data_without_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(folders, "_decode_image", lambda *args: pytest.fail("decoded"))
    folder = dataset_info(str(write_folder(tmp_path / "own", fashion_like())))
    assert folder == formats.DatasetInfo(
        "own", (28, 28, 1), 10, 50, 20, tuple(map(class_name, range(10)))
    )
    rgb = dataset_info(str(write_npz(tmp_path / "rgb.npz", colour_raw())))
    assert rgb == formats.DatasetInfo("rgb", (12, 10, 3), 3, 9, 6)
    assert dataset_info("Fashion-MNIST").name == "fashion_mnist"


def test_own_data_sets_train_to_exactly_the_tables_of_the_built_in_loader(
    tmp_path: Path, decodes: list[Path]
) -> None:
    """04's whole path: params name the data, load_data loads it, the experiment trains it."""
    from lthnb.lottery.experiment import run_experiment
    from lthnb.params import load_params
    from lthnb.runs.paths import RunPaths

    raw = fashion_like()
    write_idx_set(tmp_path / "data" / "fashion-mnist", raw)
    sources = {
        "built_in": {"dataset": "fashion_mnist", "data_dir": str(tmp_path / "data")},
        "npz": {"dataset": str(write_npz(tmp_path / "own.npz", raw))},
        "folder": {"dataset": str(write_folder(tmp_path / "own_folder", raw))},
    }
    base = {"validation_size": 12, "iterations": 10, "eval_every": 5, "batch_size": 10}
    tables = {}
    for name, source in sources.items():
        params = load_params(
            REPO / "params" / "test.yaml", **base, **source, output_dir=str(tmp_path / name)
        )
        tables[name] = run_experiment(params, progress=False)[1]
    for name in ("npz", "folder"):
        pd.testing.assert_frame_equal(tables[name], tables["built_in"], check_exact=True)
    assert len(decodes) == len(raw[0]) + len(raw[2])  # the folder, decoded once
    assert RunPaths(tmp_path / "folder").decoded_images.exists()


def test_01s_class_balance_names_a_folders_classes(tmp_path: Path) -> None:
    from lthnb.report.overview import class_balance

    raw = fashion_like()
    splits = load_dataset(str(write_folder(tmp_path / "own", raw)), validation_size=5)
    balance = class_balance(splits)
    assert list(balance["name"]) == [class_name(label) for label in range(10)]
    assert balance["train"].sum() + balance["val"].sum() == len(raw[0])
    assert "name" not in class_balance(
        load_dataset(str(write_npz(tmp_path / "o.npz", raw)), validation_size=5)
    )
