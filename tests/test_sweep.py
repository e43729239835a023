"""Fan-out: trials as dask tasks (one papermill run each), and the SLURM array script."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import filelock
import pandas as pd
import pytest
import yaml
from conftest import REPO

from lthnb.lottery.sweep import SweepError, main, run_sweep
from lthnb.params import ParamsError
from lthnb.runs.paths import RunPaths
from lthnb.runs.tables import read_table


@pytest.fixture
def sweep_params(tiny_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """params/test.yaml with the tiny data and a run folder under tmp_path, as a file."""
    monkeypatch.setenv("LTHNB_HEADLESS", "1")
    values = yaml.safe_load((REPO / "params" / "test.yaml").read_text())
    values.update(data_dir=str(tiny_data_dir), output_dir=str(tmp_path / "run"))
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_two_trials_on_two_worker_processes_merge_into_the_run_folder(sweep_params, tmp_path):
    reports = tmp_path / "reports"
    trials = run_sweep(sweep_params, jobs=2, overrides={"trials": 2}, reports_dir=reports)
    assert trials == [0, 1]
    for trial in trials:
        assert (reports / f"04_train_trial_{trial}.ipynb").stat().st_size > 0
    paths = RunPaths(tmp_path / "run")
    rounds = read_table(paths.rounds)
    assert list(zip(rounds["trial"], rounds["round"], strict=True)) == [
        (trial, round_index) for trial in (0, 1) for round_index in (0, 1, 2)
    ]
    for trial in trials:
        own = read_table(paths.trial(trial).rounds)
        merged = rounds[rounds["trial"] == trial].reset_index(drop=True)
        pd.testing.assert_frame_equal(merged, own)
    assert set(read_table(paths.evaluations)["trial"]) == {0, 1}


def test_a_failed_trial_is_named_with_its_notebook(sweep_params, tmp_path):
    """Another process holding trial 0's lock makes that trial's notebook fail."""
    trial_folder = RunPaths(tmp_path / "run").trial(0)
    trial_folder.root.mkdir(parents=True)
    reports = tmp_path / "reports"
    with filelock.FileLock(trial_folder.lock), pytest.raises(SweepError) as caught:
        run_sweep(sweep_params, jobs=1, reports_dir=reports)
    message = str(caught.value)
    assert "trial 0 failed" in message
    assert str(reports / "04_train_trial_0.ipynb") in message
    assert "being written by another process" in message
    assert (reports / "04_train_trial_0.ipynb").exists()


def test_bad_params_fail_before_any_cluster_starts(tmp_path, monkeypatch, capsys):
    bad = yaml.safe_load((REPO / "params" / "test.yaml").read_text())
    bad["rounds"] = -1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))

    def no_cluster(*args, **kwargs):
        raise AssertionError("a cluster was started")

    monkeypatch.setattr("distributed.LocalCluster", no_cluster)
    monkeypatch.setattr("distributed.Client", no_cluster)
    with pytest.raises(ParamsError, match="rounds"):
        run_sweep(path, jobs=2, reports_dir=tmp_path / "reports")
    with pytest.raises(ParamsError, match="trial"):
        run_sweep(REPO / "params" / "test.yaml", jobs=2, overrides={"trial": 5})
    assert main([str(path), "--jobs", "2"]) == 1
    assert "rounds: -1 is too small" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_slurm_script_is_valid_bash():
    script = REPO / "scripts" / "slurm_sweep.sh"
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    text = script.read_text()
    assert "#SBATCH --array=" in text and "SLURM_ARRAY_TASK_ID" in text
