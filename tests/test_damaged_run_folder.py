"""A damaged run folder or a full disk: what the folder still holds heals a file, with a one-line
notice; anything else is refused in one line naming the file, with every other file as it was."""

from __future__ import annotations

import errno
import os
import pathlib
import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO, run_tiny

from lthnb.analysis import mask_analysis
from lthnb.analysis.stability import run_stability
from lthnb.analysis.stability_tables import read_stability
from lthnb.params import Params, ParamsError, load_params
from lthnb.report import inspect_round, reproduction
from lthnb.runs import reader
from lthnb.runs.paths import RunPaths
from lthnb.runs.tables import RunFolderError

RETRAIN = "delete {trial} to train that trial again"
PARAMS_FIX = "run 04_train with the run's parameters to write it again"
ANALYSIS_FIX = "delete {stability} to compute the analysis again"


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_splits) -> Params:
    """A finished tiny run (one trial, rounds 0-2) with its analysis, trained once."""
    folder = tmp_path_factory.mktemp("finished") / "run"
    params = load_params(
        REPO / "params" / "test.yaml", output_dir=str(folder), data_dir=None, stability_points=5
    )
    run_tiny(params, tiny_splits)
    analyse(params, tiny_splits)
    return params


@pytest.fixture
def run(finished: Params, tmp_path: Path) -> Params:
    """A copy of the finished run, its params.yaml naming the copy as 04_train writes it."""
    params = finished.replace(output_dir=str(tmp_path / "run"))
    shutil.copytree(finished.run_dir, params.run_dir)
    RunPaths(params.run_dir).params.write_text(yaml.safe_dump(params.to_dict(), sort_keys=False))
    return params


def analyse(params: Params, splits) -> None:
    run_stability(params, progress=False, load=lambda _: splits)


def contents(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` by its relative path (the writers' lock files aside)."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.suffix != ".lock"
    }


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def cut_last_line(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: data.rindex(b"\n", 0, -1) + 4])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def garbage(path: Path) -> None:
    path.write_bytes(b"\x00\xff not what it should be \xfe\n")


def delete(path: Path) -> None:
    path.unlink()


def ticket_files(trial) -> tuple[Path, ...]:
    """What 04_train exports of a trial's ticket (zip archives carry the time they were made)."""
    return trial.ticket, trial.ticket_masks, trial.ticket_info


def assert_same_arrays(path: Path, other: Path) -> None:
    with np.load(path) as archive, np.load(other) as expected:
        assert archive.files == expected.files
        assert all(np.array_equal(archive[name], expected[name]) for name in archive.files)


def rewrite_arrays(path: Path, change: Callable[[dict], dict]) -> None:
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    with path.open("wb") as handle:
        np.savez(handle, **change(arrays))


def without_completed(arrays: dict) -> dict:
    return {name: value for name, value in arrays.items() if name != "completed"}


def reshaped(prefix: str) -> Callable[[dict], dict]:
    """The first array whose name starts with `prefix`, one row shorter."""

    def change(arrays: dict) -> dict:
        name = next(name for name in arrays if name.startswith(prefix))
        return {**arrays, name: arrays[name][:-1]}

    return change


def assert_refused(action: Callable[[], object], folder: Path, start: str, fix: str) -> None:
    """`action` raises one line starting with `start` (the file and what is wrong with it)
    and giving `fix`, and no file of `folder` changes."""
    before = contents(folder)
    with pytest.raises(RunFolderError) as refusal:
        action()
    message = str(refusal.value)
    assert "\n" not in message
    assert message.startswith(start), message
    assert fix in message, message
    assert contents(folder) == before


def notices(action: Callable[[], object], folder: Path | str) -> list[str]:
    """The warnings `action` gives about files of `folder`, each one line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        action()
    said = [str(warning.message) for warning in caught if str(folder) in str(warning.message)]
    assert all("\n" not in message for message in said)
    return said


# --- healed from what the folder still holds ---


@pytest.mark.parametrize(
    ("name", "damage", "problem"),
    [
        ("ticket", delete, "is missing"),
        ("ticket", truncate, "is truncated"),
        ("ticket_masks", delete, "is missing"),
        ("ticket_masks", empty, "is empty"),
        ("ticket_masks", lambda path: rewrite_arrays(path, reshaped("")), "holds masks of oth"),
        ("ticket_info", delete, "is missing"),
        ("ticket_info", garbage, "is not JSON"),
    ],
)
def test_a_lost_or_damaged_ticket_file_is_exported_again_from_the_state(
    run, finished, tiny_splits, name, damage, problem
):
    trial = RunPaths(run.run_dir).trial(0)
    before = contents(run.run_dir)
    damage(getattr(trial, name))
    said = notices(lambda: run_tiny(run, tiny_splits), run.run_dir)
    assert len(said) == 1 and said[0].startswith(f"{getattr(trial, name)} {problem}")
    assert said[0].endswith(f"; exported the ticket again from {trial.state}")
    exported = {f"trials/trial_000/{path.name}" for path in ticket_files(trial)}
    after = contents(run.run_dir)
    assert {k: v for k, v in after.items() if k not in exported} == {
        k: v for k, v in before.items() if k not in exported
    }
    whole = RunPaths(finished.run_dir).trial(0)
    assert_same_arrays(trial.ticket_masks, whole.ticket_masks)
    healed, original = (inspect_round.ticket_weights(t.ticket, "lenet") for t in (trial, whole))
    assert healed.keys() == original.keys()
    assert all(np.array_equal(healed[key], original[key]) for key in original)
    assert inspect_round.rewind_check(run.run_dir, 0, 2).drop(columns="rewound to").all().all()
    again = notices(lambda: run_tiny(run, tiny_splits), run.run_dir)
    assert again == []  # whole again: nothing to export


@pytest.mark.parametrize(
    ("name", "damage", "problem"),
    [
        ("rounds", garbage, "is corrupt"),
        ("evaluations", cut_last_line, "is truncated (its last line is cut off)"),
    ],
)
def test_a_damaged_run_table_is_refused_by_05_and_rebuilt_by_04(
    run, tiny_splits, name, damage, problem
):
    paths = RunPaths(run.run_dir)
    table = getattr(paths, name)
    before = contents(paths.root)
    damage(table)
    assert_refused(
        lambda: reader.read_run(paths.root), paths.root, f"{table} {problem}", "04_train"
    )
    said = notices(lambda: run_tiny(run, tiny_splits), run.run_dir)
    assert len(said) == 1 and said[0].startswith(f"{table} {problem}")
    assert said[0].endswith(f"; rebuilt it from the trials' {name}.csv")
    assert contents(paths.root) == before


def test_a_lost_params_yaml_is_written_again_from_the_parameters_given(run, tiny_splits):
    paths = RunPaths(run.run_dir)
    before = contents(paths.root)
    delete(paths.params)
    said = notices(lambda: run_tiny(run, tiny_splits), run.run_dir)
    assert said == [f"{paths.params} was missing; wrote it again from the parameters given"]
    assert contents(paths.root) == before


# --- refused where nothing else holds the file ---


def every_reader(params: Params, splits) -> dict[str, Callable[[], object]]:
    """What 04, 05, 06 and 07 do with a run folder."""
    run_dir = params.run_dir
    return {
        "04 trains": lambda: run_tiny(params, splits),
        "04 looks inside": lambda: inspect_round.rewind_check(run_dir, 0, 2),
        "05 reads": lambda: reader.read_run(run_dir),
        "05 explores": lambda: reader.read_round(run_dir),
        "06 analyses": lambda: mask_analysis.sign_changes_of(run_dir),
        "07 analyses": lambda: analyse(params, splits),
    }


def test_a_params_yaml_that_is_not_yaml_is_refused_everywhere(run, tiny_splits):
    paths = RunPaths(run.run_dir)
    paths.params.write_text("arch: lenet\nrounds: [2\n")
    for step in ("04 trains", "05 reads", "06 analyses", "07 analyses"):
        action = every_reader(run, tiny_splits)[step]
        start = f"{paths.params} is not valid YAML: line "
        assert_refused(action, paths.root, start, PARAMS_FIX)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (truncate, "is truncated (its zip directory is cut off)"),
        (empty, "is empty"),
        (garbage, "is not an npz archive"),
        (lambda path: rewrite_arrays(path, without_completed), "lacks arrays ['completed']"),
        (lambda path: rewrite_arrays(path, reshaped("masks:")), "holds masks of other shapes"),
    ],
)
def test_a_damaged_state_is_refused_everywhere(run, tiny_splits, damage, problem):
    trial = RunPaths(run.run_dir).trial(0)
    damage(trial.state)
    for step, action in every_reader(run, tiny_splits).items():
        if step != "05 reads":  # the figures read only the tables
            start = f"{trial.state} {problem}"
            assert_refused(action, Path(run.run_dir), start, RETRAIN.format(trial=trial.root))


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (truncate, "is truncated"),
        (lambda path: rewrite_arrays(path, reshaped("trained:")), "does not hold one mask"),
    ],
)
def test_a_damaged_round_record_is_refused_by_what_reads_it(run, tiny_splits, damage, problem):
    trial = RunPaths(run.run_dir).trial(0)
    record = trial.round_record(2)
    damage(record)
    run_tiny(run, tiny_splits)  # 04 trains on: its state holds what training needs
    for step in ("04 looks inside", "05 explores", "06 analyses"):
        action = every_reader(run, tiny_splits)[step]
        start = f"{record} {problem}"
        assert_refused(action, Path(run.run_dir), start, RETRAIN.format(trial=trial.root))


@pytest.mark.parametrize(
    ("damage", "problem"),
    [(empty, "is empty"), (cut_last_line, "is trunc"), (delete, "is missing")],
)
def test_a_damaged_trial_table_is_refused(run, tiny_splits, damage, problem):
    trial = RunPaths(run.run_dir).trial(0)
    damage(trial.rounds)
    action = every_reader(run, tiny_splits)["04 trains"]
    start = f"{trial.rounds} {problem}"
    assert_refused(action, Path(run.run_dir), start, RETRAIN.format(trial=trial.root))


@pytest.mark.parametrize(
    ("name", "damage", "problem"),
    [
        ("completed", garbage, "is not JSON"),
        ("path_points", cut_last_line, "is truncated"),
        ("instability", delete, "is missing"),
    ],
)
def test_a_damaged_analysis_is_refused_by_07_and_the_reproduction_cli(
    run, tiny_splits, name, damage, problem
):
    stability = RunPaths(run.run_dir).stability
    damage(getattr(stability, name))
    steps = {
        "07 analyses": every_reader(run, tiny_splits)["07 analyses"],
        "07 reads": lambda: read_stability(run.run_dir),
        "reproduction": lambda: reproduction.stability_markdown(run.run_dir),
    }
    for action in steps.values():
        start = f"{getattr(stability, name)} {problem}"
        fix = ANALYSIS_FIX.format(stability=stability.root)
        assert_refused(action, Path(run.run_dir), start, fix)


# --- a full disk ---


@pytest.mark.parametrize("failing_write", [2, 9])
def test_a_full_disk_stops_in_one_line_and_the_same_command_resumes(
    finished, tiny_splits, tmp_path, monkeypatch, failing_write
):
    """The `failing_write`th file written gets half its bytes, then the disk is full."""
    params = finished.replace(output_dir=str(tmp_path / "run"))
    real = pathlib.Path.write_bytes
    written: list[Path] = []
    at_failure: dict[str, bytes] = {}

    def full_disk(path: Path, data: bytes) -> int:
        written.append(path)
        if len(written) < failing_write:
            return real(path, data)
        at_failure.update(contents(params.run_dir))
        real(path, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pathlib.Path, "write_bytes", full_disk)
    with pytest.raises(RunFolderError) as refusal:
        run_tiny(params, tiny_splits)
    target = written[-1].parent.parent / written[-1].name  # the temporary is named as its target
    assert re.fullmatch(
        rf"cannot write {re.escape(str(target))}: No space left on device \([\d,]+ bytes "
        r"needed\); free some space and rerun the same command: it resumes [^\n]*",
        str(refusal.value),
    )
    assert contents(params.run_dir) == at_failure  # no half file, no temporary left behind
    monkeypatch.undo()
    run_tiny(params, tiny_splits)
    resumed, whole = RunPaths(params.run_dir), RunPaths(finished.run_dir)
    for paths in ((resumed, whole), (resumed.trial(0), whole.trial(0))):
        for name in ("evaluations", "rounds"):
            assert getattr(paths[0], name).read_bytes() == getattr(paths[1], name).read_bytes()
    assert_same_arrays(resumed.trial(0).state, whole.trial(0).state)
    assert_same_arrays(resumed.trial(0).round_record(2), whole.trial(0).round_record(2))


# --- path parameters ---


@pytest.mark.parametrize("key", ["data_dir", "output_dir", "compare_with"])
@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("x" * 10_000, r"is not a usable path \(File name too long\); give a shorter one"),
        ("a\0b", "holds a NUL character; remove it"),
    ],
)
def test_an_unusable_path_parameter_is_one_params_error_naming_its_key(key, path, problem):
    value = [path] if key == "compare_with" else path
    with pytest.raises(ParamsError, match=rf"^{key}: '[^\n]{{1,90}}' {problem}$"):
        load_params(REPO / "params" / "test.yaml", **{key: value})
