"""The run header: the first thing a rendered report shows, so that it can be traced to its run.

It names the run folder, the parameters that differ from the network's recipe (all of them one
click away), the data, the code (lthnb's version and git commit, flagged when the tree had local
changes), the TensorFlow and tfmot versions, the device and precision with the CPU's bfloat16
support, and the date. Nothing here imports TensorFlow: versions come from package metadata.
"""

from __future__ import annotations

import html
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import yaml

from lthnb.params import Params, default_values
from lthnb.params.sync import yaml_value

LIBRARIES = ("tensorflow", "tf-keras", "tensorflow-model-optimization")
CPU_FLAGS = {"avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX-BF16"}


@dataclass(frozen=True)
class RunHeader:
    """Rows of (what, value), and every parameter as YAML for the collapsed details."""

    rows: tuple[tuple[str, str], ...]
    parameters: str

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><th style='text-align:left'>{html.escape(label)}</th>"
            f"<td style='text-align:left'>{html.escape(value)}</td></tr>"
            for label, value in self.rows
        )
        every = html.escape(self.parameters)
        return (
            f"<table class='lthnb-run-header'>{cells}</table>"
            f"<details><summary>all parameters</summary><pre>{every}</pre></details>"
        )

    def __repr__(self) -> str:
        return "\n".join(f"{label}: {value}" for label, value in self.rows)


def changed_parameters(params: Params) -> dict[str, object]:
    """The parameters whose value differs from what the network's recipe and the schema give."""
    baseline = default_values(params.arch)
    return {key: value for key, value in params.to_dict().items() if baseline[key] != value}


def code_version(root: Path) -> str:
    """lthnb's version and the git commit of `root`, flagged when tracked files differ from it."""
    version = f"lthnb {metadata.version('lthnb')}"
    commit = _git(root, "rev-parse", "--short=12", "HEAD")
    if commit is None:
        return f"{version}, not a git checkout"
    changed = _git(root, "status", "--porcelain", "--untracked-files=no")
    return f"{version}, commit {commit}" + (" with local changes" if changed else "")


def _git(root: Path, *arguments: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *arguments], cwd=root, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def library_versions() -> str:
    found = []
    for name in LIBRARIES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} missing")
    return ", ".join(found)


def cpu_support(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """Which bfloat16 instructions the CPU has: they decide whether mixed_bfloat16 pays."""
    try:
        flags = set(cpuinfo.read_text().split())
    except OSError:
        return "unknown (no /proc/cpuinfo)"
    present = [label for flag, label in CPU_FLAGS.items() if flag in flags]
    return ", ".join(present) if present else "no bfloat16 instructions (bf16 is emulated)"


def run_header(params: Params, root: Path = Path(".")) -> RunHeader:
    """The header of a notebook run on `params`, from the repository at `root`."""
    changed = changed_parameters(params)
    shown = ", ".join(f"{key}: {yaml_value(value)}" for key, value in changed.items())
    data = params.dataset + (f" from {params.data_dir}" if params.data_dir else "")
    rows = (
        ("run folder", str(params.run_dir)),
        ("network", params.arch),
        ("parameters set", shown or f"none: {params.arch}'s recipe as it is"),
        ("data", data),
        ("code", code_version(root)),
        ("libraries", library_versions()),
        ("device, precision", f"{params.device}, {params.precision}"),
        ("CPU", cpu_support()),
        ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
    )
    return RunHeader(rows, yaml.safe_dump(params.to_dict(), sort_keys=False))
