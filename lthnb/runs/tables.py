"""Writing a run folder safely: atomic files and tables, and the lock that keeps one writer.

Every write goes to a temporary file that is renamed over the target, so a killed process
leaves either the old or the new file, never half of one. No pickle anywhere: tables are CSV,
arrays are .npz loaded with allow_pickle=False, parameters are YAML/JSON.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import filelock
import numpy as np
import pandas as pd

from lthnb.runs.paths import TrialPaths

Arrays = dict[str, np.ndarray]
# A trial's tables are rebuilt by training it again.
TRIAL_TABLE_ADVICE = "delete that trial's folder to recompute it"


class RunFolderError(RuntimeError):
    """The run folder cannot be used as it is; the message says how to fix it."""


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path next to `target` that replaces it once the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=target.suffix, dir=target.parent
    )
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(target: Path, text: str) -> None:
    with atomic_path(target) as temporary:
        temporary.write_text(text)


def write_table(target: Path, table: pd.DataFrame) -> None:
    with atomic_path(target) as temporary:
        table.to_csv(temporary, index=False)


def read_table(
    path: Path, required: Sequence[str] = (), advice: str = TRIAL_TABLE_ADVICE
) -> pd.DataFrame:
    """A CSV table holding the columns `required`, or one line naming the file, what is wrong
    with it and `advice` on what to do."""
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise RunFolderError(f"{path} is missing; {advice}") from None
    except pd.errors.EmptyDataError:
        raise RunFolderError(f"{path} is empty; {advice}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise RunFolderError(f"{path} is corrupt ({error}); {advice}") from None
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise RunFolderError(f"{path} lacks columns {missing}; {advice}")
    return table


def write_arrays(target: Path, arrays: Arrays) -> None:
    """A compressed .npz, written atomically."""
    with atomic_path(target) as temporary, temporary.open("wb") as handle:
        np.savez_compressed(handle, **arrays)


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
