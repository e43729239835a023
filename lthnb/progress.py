"""Progress bars: widgets in JupyterLab, plain text when asked for (papermill reports, logs).

A notebook cannot tell whether papermill runs it, so the Makefile and the tests set
LTHNB_PROGRESS=text; widget bars would otherwise leave nothing readable in rendered reports.
"""

from __future__ import annotations

import os
from typing import Any

import tqdm.auto
import tqdm.std


def progress_bar(*args: Any, **kwargs: Any) -> tqdm.std.tqdm:
    """tqdm.auto's bar, or a text bar when LTHNB_PROGRESS=text."""
    if os.environ.get("LTHNB_PROGRESS") == "text":
        return tqdm.std.tqdm(*args, **kwargs)
    return tqdm.auto.tqdm(*args, **kwargs)
