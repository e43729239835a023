"""Widgets in JupyterLab, plain output when headless (papermill reports, logs, tests).

A notebook cannot tell whether papermill runs it, so the Makefile and the tests set
LTHNB_HEADLESS=1: progress bars become text (widget bars leave nothing readable in a rendered
report) and the explorer draws a static figure (interactive widgets can stall papermill).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import tqdm.auto
import tqdm.std


def headless() -> bool:
    """True when LTHNB_HEADLESS=1: nobody is there to click a widget."""
    return os.environ.get("LTHNB_HEADLESS") == "1"


def progress_bar(*args: Any, detail: bool = False, **kwargs: Any) -> tqdm.std.tqdm:
    """tqdm.auto's bar; headless, one text bar at a time (nested text bars move the cursor,
    which a rendered report shows as garbage), so `detail` bars are switched off, and on
    stdout: a report shows stderr as a red block, which reads as an error."""
    if headless():
        if detail:
            kwargs["disable"] = True
        return tqdm.std.tqdm(*args, **{**kwargs, "leave": True, "file": sys.stdout})
    return tqdm.auto.tqdm(*args, **kwargs)


def iterations_bar(start: int, total: int, enabled: bool) -> tqdm.std.tqdm:
    """The inner bar of a training call: absolute iterations from `start` to `total`."""
    return progress_bar(
        initial=start, total=total, desc="iterations", leave=False, detail=True, disable=not enabled
    )


def advance_to(bar: tqdm.std.tqdm, iteration: int) -> None:
    """Move an iterations bar to an evaluation's absolute iteration."""
    if iteration > bar.n:
        bar.update(iteration - bar.n)
