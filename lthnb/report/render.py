"""Executed notebooks as HTML reports: the parameters cells' input left out, since the run header
(`lthnb.report.header`) says what the run was; in JupyterLab those cells stay the interface.

`python -m lthnb.report.render NOTEBOOK.ipynb [...]` writes NOTEBOOK.html beside each one.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from traitlets.config import Config

# The cell a notebook's parameters are written in, and the one papermill injects after it.
HIDDEN_INPUT_TAGS = ("parameters", "injected-parameters")


def render_html(notebook: Path) -> Path:
    """Write `notebook` as HTML beside it, without the parameters cells' input."""
    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_input_tags = set(HIDDEN_INPUT_TAGS)
    exporter = HTMLExporter(config=config)
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    target = notebook.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target


def main(argv: Sequence[str] | None = None) -> None:
    for name in sys.argv[1:] if argv is None else argv:
        render_html(Path(name))


if __name__ == "__main__":
    main()
