"""Relative paths in parameters mean the same in JupyterLab and under papermill.

JupyterLab starts a notebook's kernel in `notebooks/`, papermill in the folder it was started
from (the repository root, per the README and the Makefile). Each notebook's Setup cell
(`lthnb.notebook.setup_cell.setup`) calls `enter_project_root()` before it validates the
parameters, so `runs/...` and `data/...` resolve from the repository root.
"""

from __future__ import annotations

import os
from pathlib import Path


def enter_project_root(start: Path | None = None) -> Path:
    """From the notebooks folder, change to the project root; elsewhere stay put."""
    here = (start or Path.cwd()).resolve()
    if here.name == "notebooks" and (here.parent / "params").is_dir():
        os.chdir(here.parent)
        return here.parent
    return here
