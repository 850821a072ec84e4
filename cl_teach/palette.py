"""The course's colours: Okabe & Ito's palette, safe for the common colour-vision deficiencies.

Okabe & Ito, *Color Universal Design (CUD): how to make figures and presentations that are
friendly to colorblind people* (2008): eight colours that stay distinct under protanopia,
deuteranopia and tritanopia. Every figure of the kit takes its colours from :data:`PALETTE` by
role ("blue", "red", ...), and :func:`use_palette` makes them matplotlib's default cycle, so a
notebook's own ``ax.plot`` gets them too. Maps of up to ten classes use Paul Tol's "muted"
scheme (*Colour schemes*, SRON technical note, 2021: nine colours distinct under the same
deficiencies) and black (:data:`MANY`); beyond ten, colours repeat.

Example:
    >>> PALETTE["blue"], len(CYCLE)
    ('#0072B2', 8)
"""
from __future__ import annotations

import matplotlib
from cycler import cycler

#: Okabe & Ito's colours by role ("red" is their vermillion, "green" their bluish green).
PALETTE = {"blue": "#0072B2", "orange": "#E69F00", "green": "#009E73", "red": "#D55E00",
           "purple": "#CC79A7", "sky": "#56B4E9", "yellow": "#F0E442", "black": "#000000",
           "grey": "#999999"}

#: The default colour cycle: distinct hues first, yellow (weak on white) and black last.
CYCLE = [PALETTE[k] for k in ("blue", "orange", "green", "red", "purple", "sky", "black", "yellow")]

#: Ten colours for maps of up to ten classes: Tol's "muted" nine, then black.
MANY = ["#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255",
        "#AA4499", "#000000"]


def use_palette() -> None:
    """Make :data:`CYCLE` matplotlib's default colour cycle (idempotent)."""
    matplotlib.rcParams["axes.prop_cycle"] = cycler(color=CYCLE)
