"""Widgets in JupyterLab, plain output when headless (papermill reports, logs, tests).

A notebook cannot tell whether papermill runs it, so the Makefile and the tests set
LTHNB_HEADLESS=1: progress bars become text (widget bars leave nothing readable in a rendered
report) and the explorer draws a static figure (interactive widgets can stall papermill).
"""

from __future__ import annotations

import os
from typing import Any

import tqdm.auto
import tqdm.std


def headless() -> bool:
    """True when LTHNB_HEADLESS=1: nobody is there to click a widget."""
    return os.environ.get("LTHNB_HEADLESS") == "1"


def progress_bar(*args: Any, **kwargs: Any) -> tqdm.std.tqdm:
    """tqdm.auto's bar, or a text bar when headless."""
    if headless():
        return tqdm.std.tqdm(*args, **kwargs)
    return tqdm.auto.tqdm(*args, **kwargs)
