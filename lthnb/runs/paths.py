"""Every file of a run folder, named in one place.

<run_dir>/params.yaml            resolved parameters of the run
<run_dir>/evaluations.csv        metrics at every evaluation point, all trials merged
<run_dir>/rounds.csv             per-round results, all trials merged
<run_dir>/trials/trial_000/      one folder per trial:
    state.npz                    theta0, rewind point, masks, progress (for resuming)
    evaluations.csv, rounds.csv  this trial's rows
    ticket.keras, ticket_masks.npz  the final winning ticket (stripped of tfmot wrappers)
    ticket.json                  its sizes
    rounds/round_001.npz         each ticket round's masks and trained kernels
    writer.lock                  held while a process trains this trial
<run_dir>/stability/             the instability analysis (07_stability):
    path_points.csv              one row per (trial, round, k, alpha) on a linear path
    instability.csv              one row per (trial, round, k)
    completed.json               the units whose rows count, and the points per path
    writer.lock                  held while a process runs the analysis
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class _Tables:
    """A folder holding the two tables: a run (all trials merged) or one trial."""

    root: Path

    @property
    def evaluations(self) -> Path:
        return self.root / "evaluations.csv"

    @property
    def rounds(self) -> Path:
        return self.root / "rounds.csv"


@dataclass(frozen=True)
class RunPaths(_Tables):
    @property
    def params(self) -> Path:
        return self.root / "params.yaml"

    @property
    def merge_lock(self) -> Path:
        return self.root / "merge.lock"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def dataset(self) -> Path:
        return self.root / "dataset"

    @property
    def decoded_images(self) -> Path:
        """An image-folder data set, decoded once (a rerun reads this instead)."""
        return self.dataset / "decoded_images.npz"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def stability(self) -> StabilityPaths:
        return StabilityPaths(self.root / "stability")

    def trial(self, trial: int) -> TrialPaths:
        return TrialPaths(self.root / "trials" / f"trial_{trial:03d}")

    def trials(self) -> list[TrialPaths]:
        return [TrialPaths(path) for path in sorted((self.root / "trials").glob("trial_*"))]


@dataclass(frozen=True)
class TrialPaths(_Tables):
    @property
    def state(self) -> Path:
        return self.root / "state.npz"

    def round_record(self, round_index: int) -> Path:
        return self.root / "rounds" / f"round_{round_index:03d}.npz"

    @property
    def ticket(self) -> Path:
        return self.root / "ticket.keras"

    @property
    def ticket_masks(self) -> Path:
        return self.root / "ticket_masks.npz"

    @property
    def ticket_info(self) -> Path:
        return self.root / "ticket.json"

    @property
    def lock(self) -> Path:
        return self.root / "writer.lock"


@dataclass(frozen=True)
class StabilityPaths:
    """The instability analysis's folder (lthnb.analysis.stability)."""

    root: Path

    @property
    def path_points(self) -> Path:
        return self.root / "path_points.csv"

    @property
    def instability(self) -> Path:
        return self.root / "instability.csv"

    @property
    def completed(self) -> Path:
        return self.root / "completed.json"

    @property
    def lock(self) -> Path:
        return self.root / "writer.lock"
