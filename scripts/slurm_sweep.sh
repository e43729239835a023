#!/usr/bin/env bash
# Train the trials of one params file as a SLURM job array: array task i runs trial i.
#
# Set --array to 0..trials-1 of the params file (the `trials:` key), e.g. trials: 5 -> 0-4.
# Submit from the repository root (the run folder and data_dir must be on a shared file
# system; every task writes its own trials/trial_00i/ and merges the run-level tables):
#
#   sbatch --array=0-4 scripts/slurm_sweep.sh params/lenet.yaml
#
# Then plot once all tasks succeeded (the job id is what sbatch printed):
#
#   sbatch --dependency=afterok:<jobid> --wrap \
#     "LTHNB_HEADLESS=1 .venv/bin/papermill notebooks/05_plot.ipynb reports/lenet/05_plot.ipynb \
#      -f params/lenet.yaml -k python3 --cwd ."
#
# A failed or timed-out task resumes where it stopped when run again, e.g.
# `sbatch --array=3 scripts/slurm_sweep.sh params/lenet.yaml`. On GPU nodes add
# `#SBATCH --gres=gpu:1` and install with `pip install -e ".[cuda]"`.
#
#SBATCH --job-name=lthnb-sweep
#SBATCH --array=0-4
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=4
#SBATCH --mem=16G
#SBATCH --time=24:00:00
#SBATCH --output=slurm-%A_%a.out

set -euo pipefail

PARAMS="${1:-${PARAMS:-params/lenet.yaml}}"
VENV="${VENV:-.venv}"  # or any environment with lthnb installed: papermill from PATH
NAME="$(basename "$PARAMS" .yaml)"
REPORTS="${REPORTS:-reports/$NAME}"
TRIAL="${SLURM_ARRAY_TASK_ID:?run this with sbatch --array=0-<trials-1>}"

cd "${SLURM_SUBMIT_DIR:-.}"
mkdir -p "$REPORTS"
export LTHNB_HEADLESS=1
PAPERMILL=papermill
if [ -x "$VENV/bin/papermill" ]; then PAPERMILL="$VENV/bin/papermill"; fi

echo "trial $TRIAL of $PARAMS on $(hostname)"
"$PAPERMILL" notebooks/04_train.ipynb "$REPORTS/04_train_trial_${TRIAL}.ipynb" \
    -f "$PARAMS" -p trial "$TRIAL" -k python3 --cwd . --no-progress-bar --log-output
