"""Figures readable where students see them: no text under 9 pt, no figure wider than the column.

The course's figures are PNGs at matplotlib's 100 dpi. The site (``make site``) and JupyterLab
show a figure at its own size up to the width of their column (1,026 px on a 1,280 px laptop
screen, measured in Chromium by ``tests/browser/test_site.py``) and shrink a wider one to fit, its
text with it: notebook 00's family tree, 16 inches wide, had its 8 pt labels drawn 7 px tall.
So a figure is at most :data:`COLUMN_INCHES` wide and its smallest text :data:`MIN_FONT_PT`
(12.5 px), which is what ``tests/test_figure_text.py`` checks in every source and every executed
figure.

>>> fit_width(16.0), fit_width(6.0)
(10.2, 6.0)
>>> smallest_text_pt(_demo()) >= MIN_FONT_PT
True
"""
from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.text import Text

#: The widest figure shown at its own size: 10.2 in x 100 dpi ~ the site's 1,026 px column.
COLUMN_INCHES = 10.2
#: The smallest text a figure may have, in points (12.5 px at 100 dpi).
MIN_FONT_PT = 9.0


def fit_width(width: float) -> float:
    """``width`` in inches, capped at :data:`COLUMN_INCHES`."""
    return min(float(width), COLUMN_INCHES)


def smallest_text_pt(fig: Figure) -> float:
    """The size in points of the smallest visible, non-empty text of ``fig`` (inf when none).

    Draws the figure first, so tick labels and legends exist.
    """
    fig.canvas.draw()
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes, default=float("inf"))


def _demo() -> Figure:
    fig = Figure(figsize=(4, 3))
    ax = fig.subplots()
    ax.plot([0, 1], label="a line")
    ax.legend()
    return fig
