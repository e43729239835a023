"""Figures as a notebook shows and saves them: once, with alternative text, as PNG and SVG.

Every figure cell ends with `show_figure(...)`, so reports carry each figure once with an alt
text (nbconvert warns about images without one, and screen readers read it).
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from lthnb.runs.tables import atomic_path

DISPLAY_DPI = 150  # saved PNGs and figures shown in notebooks
SCREEN_DPI = 100  # shown at the size matplotlib's inline backend would show them


def save_figure(fig: Figure, folder: str | Path, name: str) -> list[Path]:
    """Write <folder>/<name>.png (150 dpi, for notebooks/HTML) and .svg (for papers), atomically."""
    folder = Path(folder)
    targets = [folder / f"{name}.png", folder / f"{name}.svg"]
    for target in targets:
        with atomic_path(target) as temporary:
            fig.savefig(temporary, format=target.suffix[1:], dpi=DISPLAY_DPI, bbox_inches="tight")
    return targets


@dataclass(frozen=True)
class FigureImage:
    """A rendered figure with its alternative text: what a notebook cell shows for a figure.

    Jupyter shows it as an HTML <img> carrying `alt` (nbconvert warns about images without one,
    and screen readers read it), at the size matplotlib's inline backend would use.
    """

    png: bytes
    alt: str
    width: int  # display width in CSS pixels

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        data = base64.b64encode(self.png).decode("ascii")
        alt = html.escape(self.alt, quote=True)
        tag = f'<img src="data:image/png;base64,{data}" alt="{alt}" width="{self.width}"/>'
        return {"text/html": tag, "text/plain": f"[figure: {self.alt}]"}


def figure_title(fig: Figure) -> str:
    """The figure's title (suptitle, else its axes' titles), one line: the default alt text."""
    titles = [fig.get_suptitle()] if fig.get_suptitle() else []
    titles = titles or [ax.get_title() for ax in fig.axes if ax.get_title()]
    return " ".join(" ".join(titles).split()) or "figure"


def figure_image(fig: Figure, alt: str | None = None) -> FigureImage:
    """Render `fig` as a FigureImage and close it, so Jupyter shows it once, with alt text."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DISPLAY_DPI, bbox_inches="tight")
    png = buffer.getvalue()
    pixels = int.from_bytes(png[16:20], "big")  # the PNG header's width field
    plt.close(fig)
    return FigureImage(png, alt or figure_title(fig), round(pixels * SCREEN_DPI / DISPLAY_DPI))


def show_figure(fig: Figure, folder: str | Path, name: str, alt: str | None = None) -> FigureImage:
    """Save `fig` as <name>.png/.svg in `folder` and return it to show: a figure cell's last line.

    The cell then shows the figure once, with alt text, and prints nothing else.
    """
    save_figure(fig, folder, name)
    return figure_image(fig, alt)
