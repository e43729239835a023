"""Kill-safety: SIGKILL a training process at random moments; resuming gives the same tables."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO

from lthnb.controls.kinds import CONTROLS

TRAIN = (
    "import sys\n"
    "from lthnb.lottery.experiment import run_experiment\n"
    "from lthnb.params import load_params\n"
    "run_experiment(load_params(sys.argv[1]), progress=False)\n"
)


def _params_file(folder: Path, data_dir: Path, name: str, **changes) -> Path:
    values = yaml.safe_load((REPO / "params" / "test.yaml").read_text())
    values.update(
        data_dir=str(data_dir),
        output_dir=str(folder / name),
        rounds=3,
        trials=2,
        controls=list(CONTROLS),
    )
    values.update(changes)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def _start(params_file: Path) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        [sys.executable, "-c", TRAIN, str(params_file)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _progress(run_dir: Path) -> tuple:
    """A fingerprint of the files that change as units complete."""
    files = sorted(run_dir.rglob("*.npz")) + sorted(run_dir.rglob("*.csv"))
    return tuple((str(f), f.stat().st_mtime_ns) for f in files if f.exists())


def _kill_at_random_moments(params_file: Path, run_dir: Path, kills: int, seed: int) -> int:
    """Each kill waits for some progress, then strikes after a random delay."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < kills:
        before = _progress(run_dir) if run_dir.exists() else ()
        process = _start(params_file)
        while process.poll() is None and (not run_dir.exists() or _progress(run_dir) == before):
            time.sleep(0.05)
        if process.poll() is not None:  # finished before we could strike
            return done
        time.sleep(rng.uniform(0.0, 1.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        done += 1
    return done


def _check_kills(tmp_path: Path, data_dir: Path, kills: int, seed: int) -> None:
    reference = _params_file(tmp_path, data_dir, "whole")
    subprocess.run([sys.executable, "-c", TRAIN, str(reference)], cwd=REPO, check=True)
    killed = _params_file(tmp_path, data_dir, "killed")
    run_dir = tmp_path / "killed"
    assert _kill_at_random_moments(killed, run_dir, kills, seed) >= 1
    finish = _start(killed)
    _, errors = finish.communicate(timeout=600)
    assert finish.returncode == 0, errors
    for table in ("rounds.csv", "evaluations.csv"):
        pd.testing.assert_frame_equal(
            pd.read_csv(run_dir / table), pd.read_csv(tmp_path / "whole" / table), check_exact=True
        )
    for trial in ("trial_000", "trial_001"):
        assert (run_dir / "trials" / trial / "ticket.json").exists()


def test_sigkill_then_resume_gives_the_uninterrupted_tables(tmp_path, tiny_data_dir):
    _check_kills(tmp_path, tiny_data_dir, kills=3, seed=0)


@pytest.mark.slow
def test_twenty_kills(tmp_path, tiny_data_dir):
    _check_kills(tmp_path, tiny_data_dir, kills=20, seed=1)


def test_second_process_on_the_same_trial_is_refused_at_once(tmp_path, tiny_data_dir):
    # one long trial, so the first writer is still on it when the second arrives
    params_file = _params_file(
        tmp_path, tiny_data_dir, "shared", trials=1, rounds=12, iterations=400
    )
    lock = tmp_path / "shared" / "trials" / "trial_000" / "writer.lock"
    first = _start(params_file)
    try:
        while first.poll() is None and not (tmp_path / "shared" / "evaluations.csv").exists():
            time.sleep(0.05)
        assert first.poll() is None, "the first writer finished too soon to test the lock"
        started = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-c", TRAIN, str(params_file)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode != 0
        assert "being written by another process" in second.stderr
        assert str(lock) in second.stderr
        assert time.monotonic() - started < 60  # refused at once, not after waiting
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the lock of a killed writer does not stay stuck
    assert subprocess.run([sys.executable, "-c", TRAIN, str(params_file)], cwd=REPO).returncode == 0
