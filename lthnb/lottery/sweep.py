"""Fan the trials of one run out over processes or machines with dask.distributed.

Trials are independent: each one is a papermill run of `04_train` with `trial` set, writing
into the shared run folder (every trial holds its own lock, the run-level tables are merged
under another). `run_sweep` submits one task per trial to a dask cluster, waits for them all,
then merges the run folder's `evaluations.csv` and `rounds.csv` once more, so `05_plot` sees every
trial. By default the cluster is a `LocalCluster` with `jobs` single-threaded worker processes
on this machine.

On SLURM or PBS, pass a client of a dask-jobqueue cluster instead (`pip install dask-jobqueue`);
its workers need the repository and the run folder on a shared file system:

    cluster = SLURMCluster(cores=4, memory="16GB", walltime="04:00:00")
    cluster.scale(jobs=5)  # one worker per trial
    run_sweep("params/lenet.yaml", jobs=5, client=Client(cluster))

Or from the command line, from the repository root:

    python -m lthnb.lottery.sweep params/lenet.yaml --jobs 4 [--reports reports/lenet]
    python -m lthnb.lottery.sweep params/lenet.yaml --scheduler tcp://host:8786  # running

A script that calls `run_sweep` with the default cluster needs the usual
`if __name__ == "__main__":` guard: dask spawns its worker processes afresh. Running a sweep
again resumes its unfinished trials from their saved state and skips finished units.
`scripts/slurm_sweep.sh` does the same fan-out with a plain SLURM job array and no dask.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lthnb.params import ParamsError, load_params
from lthnb.runs.folder import open_run
from lthnb.runs.merge import merge_trials
from lthnb.runs.paths import RunPaths
from lthnb.runs.tables import RunFolderError

REPO = Path(__file__).resolve().parents[2]
TRAIN_NOTEBOOK = Path("notebooks") / "04_train.ipynb"

log = logging.getLogger(__name__)


class SweepError(RuntimeError):
    """One or more trials of a sweep failed; the message names each and its output notebook."""


class TrialError(SweepError):
    """A trial's notebook raised; the message is the notebook's own error, in one line."""


def trial_notebook_name(trial: int | str) -> str:
    """The executed notebook of one trial, as `scripts/slurm_sweep.sh` names it too."""
    return f"04_train_trial_{trial}.ipynb"


def trial_notebook_run(
    params_file: str | Path,
    trial: int,
    output_notebook: str | Path,
    repo_root: str | Path = REPO,
    overrides: Mapping[str, Any] | None = None,
) -> int:
    """Execute `04_train` with papermill for one trial of the params file; return the trial.

    The notebook gets every parameter (the file's values after `load_params`, with `overrides`
    and `trial` applied) and runs from `repo_root`, so relative paths mean what they mean for
    `make report`. Progress is text (LTHNB_HEADLESS=1) unless the environment says otherwise.
    """
    import papermill  # imported here: the workers need it, the command line's parser does not

    values = load_params(params_file, **{**(overrides or {}), "trial": trial}).to_dict()
    os.environ.setdefault("LTHNB_HEADLESS", "1")
    output = Path(output_notebook)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(Path(repo_root) / TRAIN_NOTEBOOK),
            str(output),
            parameters=values,
            kernel_name="python3",
            cwd=str(repo_root),
            progress_bar=False,
        )
    except papermill.PapermillExecutionError as error:
        # Its repr holds the whole coloured traceback, which dask would log; the notebook has it.
        raise TrialError(f"{error.ename}: {error.evalue}") from None
    return trial


def run_sweep(
    params_file: str | Path,
    jobs: int = 2,
    client: Any = None,
    overrides: Mapping[str, Any] | None = None,
    reports_dir: str | Path | None = None,
    repo_root: str | Path = REPO,
) -> list[int]:
    """Train every trial of `params_file` as its own task on a dask cluster; return the trials.

    - `jobs`: worker processes of the default `LocalCluster`, at most one per trial (ignored
      when `client` is given).
    - `client`: a `dask.distributed.Client` of any cluster (e.g. a dask-jobqueue SLURMCluster).
    - `overrides`: parameter values that replace the file's, as papermill's `-p` would.
    - `reports_dir`: where the executed per-trial notebooks go; `reports/<params file name>`
      under `repo_root` by default, as for `make report`.
    - Relative paths in the parameters are taken from `repo_root`, where the notebooks run;
      call this from there too (as `make sweep` does), since validation checks `data_dir`.

    A `trial` set in the parameters runs that trial alone; null runs 0 .. trials - 1. Before
    any cluster starts, the parameters are validated (`ParamsError`) and an existing run folder
    is checked to have been made with the same ones (`RunFolderError`). All trials run to the
    end even if some fail; then a `SweepError` names each failed trial and its notebook.
    """
    overrides = dict(overrides or {})
    params = load_params(params_file, **overrides)
    if jobs < 1:
        raise ValueError(f"jobs: {jobs} is too small; it must be >= 1")
    repo_root = Path(repo_root).resolve()
    params_file = Path(params_file).resolve()
    reports = Path(reports_dir) if reports_dir else Path("reports") / params_file.stem
    reports = (repo_root / reports).resolve()
    run_dir = repo_root / params.run_dir
    trials = params.selected_trials
    notebooks = {trial: reports / trial_notebook_name(trial) for trial in trials}
    open_run(dataclasses.replace(params, output_dir=str(run_dir)))  # fails early on a mismatch
    log.info("training %d trials into %s", len(trials), run_dir)

    from distributed import Client, LocalCluster

    if client is not None:
        failures = _run_trials(client, params_file, notebooks, repo_root, overrides)
    else:
        with (
            LocalCluster(
                n_workers=min(jobs, len(trials)), threads_per_worker=1, processes=True
            ) as cluster,
            Client(cluster) as own_client,
        ):
            log.info("dask dashboard: %s", own_client.dashboard_link)
            failures = _run_trials(own_client, params_file, notebooks, repo_root, overrides)

    merge_trials(RunPaths(run_dir))
    log.info("per-trial notebooks: %s", reports / trial_notebook_name("*"))
    log.info("run folder: %s", run_dir)
    if failures:
        raise SweepError(
            f"{len(failures)} of {len(trials)} trials failed (run folder {run_dir}):\n"
            + "\n".join(failures)
        )
    return trials


def _run_trials(
    client: Any,
    params_file: Path,
    notebooks: Mapping[int, Path],
    repo_root: Path,
    overrides: Mapping[str, Any],
) -> list[str]:
    """Submit one task per trial, wait for all; return a line per failed trial."""
    from distributed import as_completed

    token = uuid.uuid4().hex[:8]  # unique keys: a shared client may run several sweeps
    futures = {
        client.submit(
            trial_notebook_run,
            str(params_file),
            trial,
            str(notebook),
            str(repo_root),
            dict(overrides),
            key=f"lthnb-trial-{trial}-{token}",
            pure=False,
        ): trial
        for trial, notebook in notebooks.items()
    }
    failures = []
    for future in as_completed(futures):
        trial = futures[future]
        if future.status == "finished":
            log.info("trial %d done: %s", trial, notebooks[trial])
            continue
        error = future.exception()
        log.error("trial %d failed; see %s", trial, notebooks[trial])
        failures.append(
            (trial, f"trial {trial} failed: {_describe(error)} (see {notebooks[trial]})")
        )
    return [line for _, line in sorted(failures)]


def _describe(error: BaseException | None) -> str:
    """One line for an error; a notebook's own exception rather than papermill's whole trace."""
    if error is None:
        return "cancelled"
    if isinstance(error, TrialError):
        return str(error)
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lthnb.lottery.sweep",
        description="Train every trial of a params file in parallel (one papermill run of "
        "04_train per trial) on dask.distributed, then merge the run folder.",
    )
    parser.add_argument("params", help="params file, e.g. params/lenet.yaml")
    parser.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="worker processes on this machine (default 2; not with --scheduler)",
    )
    parser.add_argument(
        "--reports", default=None, help="folder for the per-trial notebooks (reports/<name>)"
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        help="address of a running dask scheduler (tcp://host:8786) instead of local workers",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs: {args.jobs} is too small; it must be >= 1")
    if not log.handlers:  # this module's lines only: dask's own stay at warnings
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    client = None
    try:
        if args.scheduler:
            from distributed import Client

            client = Client(args.scheduler)
        trials = run_sweep(args.params, args.jobs, client=client, reports_dir=args.reports)
    except (ParamsError, RunFolderError, SweepError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        if client is not None:
            client.close()
    print(f"{len(trials)} trials done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
