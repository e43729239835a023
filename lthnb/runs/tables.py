"""Reading and writing a run folder's files: the one place a damaged file or a failed write
becomes one line.

Every write goes to a temporary folder next to the target, and its file is renamed over the
target, so a killed process or a full disk leaves either the old or the new file, never half of
one; a failed write is a RunFolderError naming the path (and the bytes needed where known). Every
read of a damaged file is a `DamagedFile` naming it, what is wrong with it (missing, empty,
truncated, not an npz, missing arrays) and the least destructive fix. No pickle anywhere: tables
are CSV, arrays are .npz loaded with allow_pickle=False, parameters are YAML/JSON.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import filelock
import numpy as np
import pandas as pd

from lthnb.params import ParamsError
from lthnb.params.yaml_file import read_yaml
from lthnb.runs.paths import TrialPaths

Arrays = dict[str, np.ndarray]
# How a zip-based file (.npz, .keras) starts; a truncated one keeps it but loses its directory.
_ZIP_START = b"PK\x03\x04"
# What numpy, zipfile and zlib raise for a damaged archive.
_ARCHIVE_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error)
_FULL = (errno.ENOSPC, errno.EDQUOT)


class RunFolderError(RuntimeError):
    """The run folder cannot be used as it is; the message says how to fix it."""


class DamagedFile(RunFolderError):
    """A run-folder file that is missing or does not hold what it should: `what` names it and
    says how (healers print it), the message adds `advice` on what to do."""

    def __init__(self, what: str, advice: str = "") -> None:
        super().__init__(f"{what}; {advice}" if advice else what)
        self.what = what


def trial_advice(folder: Path) -> str:
    """The fix for a trial's file that nothing else in the run folder holds."""
    return f"restore it from a copy, or delete {folder} to train that trial again"


class Notice(UserWarning):
    """What lthnb rebuilt from what; a notebook shows it as its message alone (`brief`)."""

    brief = True


def notice(message: str) -> None:
    """Say in one line what was rebuilt from what."""
    warnings.warn(message, Notice, stacklevel=3)


# --- writing ---


@contextmanager
def atomic_path(target: Path, size: int | None = None) -> Iterator[Path]:
    """A temporary path (named as `target`, in a folder of its own beside it) that replaces
    `target` once the block succeeds; an OSError, such as a full disk, is one line naming
    `target` and the `size` in bytes it needed where known."""
    folder = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        yield folder / target.name
        os.replace(folder / target.name, target)
    except OSError as error:
        raise _write_error(target, error, size) from None
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _write_error(target: Path, error: OSError, size: int | None) -> RunFolderError:
    needed = f" ({size:,} bytes needed)" if size is not None and error.errno in _FULL else ""
    fix = "free some space" if error.errno in _FULL else "fix that"
    return RunFolderError(
        f"cannot write {target}: {error.strerror or error}{needed}; {fix} and rerun the same "
        "command: it resumes from the files kept (each keeps its last complete version)"
    )


def write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target, len(data)) as temporary:
        temporary.write_bytes(data)


def write_text(target: Path, text: str) -> None:
    write_bytes(target, text.encode())


def write_table(target: Path, table: pd.DataFrame) -> None:
    write_text(target, table.to_csv(index=False))


def write_arrays(target: Path, arrays: Arrays) -> None:
    """A compressed .npz, written atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_bytes(target, buffer.getvalue())


# --- reading ---


def read_bytes(path: Path, advice: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DamagedFile(f"{path} is missing", advice) from None
    except OSError as error:
        raise DamagedFile(f"{path} cannot be read ({error.strerror})", advice) from None


def read_table(path: Path, required: Sequence[str] = (), advice: str | None = None) -> pd.DataFrame:
    """A CSV table holding the columns `required`, or one line naming the file, what is wrong
    with it and `advice` on what to do (by default a trial's table: train that trial again)."""
    advice = trial_advice(path.parent) if advice is None else advice
    data = read_bytes(path, advice)
    try:
        table = pd.read_csv(io.BytesIO(data))
    except pd.errors.EmptyDataError:
        raise DamagedFile(f"{path} is empty", advice) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DamagedFile(f"{path} is corrupt ({_one_line(error)})", advice) from None
    if not data.endswith(b"\n"):  # pandas ends every line, the last one too
        raise DamagedFile(f"{path} is truncated (its last line is cut off)", advice)
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise DamagedFile(f"{path} lacks columns {missing}", advice)
    return table


def read_arrays(path: Path, advice: str, required: Sequence[str] = ()) -> Arrays:
    """Every array of an .npz holding `required`, read whole (numpy reads lazily, so damage
    would otherwise surface later, far from the file's name)."""
    with (
        _archive(path, "an npz archive", advice) as buffer,
        np.load(buffer, allow_pickle=False) as archive,
    ):
        arrays = {name: archive[name] for name in archive.files}
    missing = [name for name in required if name not in arrays]
    if missing:
        raise DamagedFile(f"{path} lacks arrays {missing}", advice)
    return arrays


def check_archive(path: Path, kind: str, advice: str) -> None:
    """A zip-based file (such as .keras) whose every member is whole (its checksum holds)."""
    with _archive(path, kind, advice) as buffer, zipfile.ZipFile(buffer) as archive:
        broken = archive.testzip()
    if broken is not None:
        raise DamagedFile(f"{path} is damaged ({broken} fails its checksum)", advice)


@contextmanager
def _archive(path: Path, kind: str, advice: str) -> Iterator[io.BytesIO]:
    """A zip-based file's bytes; what numpy, zipfile or zlib raise while the block reads them
    becomes what is wrong with the file."""
    data = read_bytes(path, advice)
    if not data:
        raise DamagedFile(f"{path} is empty", advice)
    if not data.startswith(_ZIP_START):
        raise DamagedFile(f"{path} is not {kind}", advice)
    try:
        yield io.BytesIO(data)
    except _ARCHIVE_ERRORS as error:
        # zipfile finds its directory at the end: a file cut short is "not a zip file"
        cut = isinstance(error, zipfile.BadZipFile) and "not a zip file" in str(error)
        problem = "truncated (its zip directory is cut off)" if cut else f"damaged ({error})"
        raise DamagedFile(f"{path} is {_one_line(problem)}", advice) from None


def read_json(path: Path, advice: str, required: Sequence[str] = ()) -> dict[str, Any]:
    """A JSON object holding the keys `required`."""
    data = read_bytes(path, advice)
    if not data.strip():
        raise DamagedFile(f"{path} is empty", advice)
    try:
        loaded = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DamagedFile(f"{path} is not JSON ({_one_line(error)})", advice) from None
    if not isinstance(loaded, dict):
        raise DamagedFile(f"{path} holds a {type(loaded).__name__}, not a JSON object", advice)
    missing = [key for key in required if key not in loaded]
    if missing:
        raise DamagedFile(f"{path} lacks keys {missing}", advice)
    return loaded


def read_yaml_mapping(path: Path, advice: str) -> dict[str, Any]:
    """A YAML file of `key: value` lines, read as parameter files are (each key once)."""
    read_bytes(path, advice)  # missing or unreadable: said as for every run-folder file
    try:
        return read_yaml(path)
    except ParamsError as error:  # "parameter file <path> is not valid YAML: line L, ..."
        problem = str(error).removeprefix(f"parameter file {path} ")
        raise DamagedFile(f"{path} {problem}", advice) from None


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


# --- the writer's lock ---


@contextmanager
def exclusive_writer(folder: Path, lock_path: Path, advice: str) -> Iterator[None]:
    """Hold `folder`'s OS file lock: one process writes it at a time, and a process that dies
    releases it. A second writer is refused at once with `advice`."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(lock_path, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise RunFolderError(
            f"{folder} is being written by another process (lock {lock_path}); {advice}"
        ) from None
    try:
        yield
    finally:
        lock.release()


def trial_writer(paths: TrialPaths) -> AbstractContextManager[None]:
    """One process trains a trial at a time."""
    return exclusive_writer(paths.root, paths.lock, "wait for it to finish or run another trial")
