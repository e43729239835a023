"""Memory over a long run: resident memory after every round of 20 (not a test).

One engine (one stack, one compiled chunk per size) serves every round of the same size, so memory
should level off instead of growing per round. Two trials with controls: round 0 stacks two
networks, later rounds four.

    .venv/bin/python bench/memory.py [data_dir]
"""

from __future__ import annotations

import sys
import tempfile

import psutil

import lthnb.lottery.experiment as experiment
from lthnb.params import load_params

ROUNDS = 20


def main() -> None:
    process = psutil.Process()
    rss_mib: list[float] = []
    run_round = experiment.Experiment._run_round

    def measured(self, *args) -> None:
        run_round(self, *args)
        rss_mib.append(process.memory_info().rss / 2**20)
        print(f"round {len(rss_mib) - 1:3d}: RSS {rss_mib[-1]:7.1f} MiB", flush=True)

    experiment.Experiment._run_round = measured
    with tempfile.TemporaryDirectory() as folder:
        params = load_params(
            dataset="fashion_mnist",
            data_dir=sys.argv[1] if len(sys.argv) > 1 else None,
            dense_units=[100, 30],
            rounds=ROUNDS,
            trials=2,
            controls=["reinit"],
            iterations=50,
            eval_every=10,
            train_subset=3000,
            validation_size=1000,
            output_dir=folder,
        )
        experiment.run_experiment(params, progress=False)
    first_half = rss_mib[: len(rss_mib) // 2]
    growth = (rss_mib[-1] - rss_mib[len(first_half)]) / (len(rss_mib) - len(first_half))
    print(
        f"rounds: {ROUNDS}; RSS after round 1: {rss_mib[1]:.0f} MiB, after the last: "
        f"{rss_mib[-1]:.0f} MiB, growth over the second half: {growth:.2f} MiB per round"
    )


if __name__ == "__main__":
    main()
