"""The figures' colours stay distinct for readers with a colour-vision deficiency (issue 17)."""
import itertools
import re
from pathlib import Path

import matplotlib.colors as mc
import numpy as np
import pytest

from cl_teach import palette

cs = pytest.importorskip("colorspacious")
ROOT = Path(__file__).resolve().parent.parent
DICHROMACIES = ("protanomaly", "deuteranomaly", "tritanomaly")     # severity 100: full dichromacy
MIN_DELTA_E = 10                                                     # CAM02-UCS units


def closest_pair(colours, kind):
    """The smallest CAM02-UCS distance between two of ``colours`` as a ``kind`` dichromat sees them
    (Machado, Oliveira & Fernandes 2009's simulation, as colorspacious implements it)."""
    space = {"name": "sRGB1+CVD", "cvd_type": kind, "severity": 100}
    seen = [np.clip(cs.cspace_convert(np.array(mc.to_rgb(c)), space, "sRGB1"), 0, 1) for c in colours]
    return min(cs.deltaE(a, b, input_space="sRGB1") for a, b in itertools.combinations(seen, 2))


@pytest.mark.parametrize("kind", DICHROMACIES)
@pytest.mark.parametrize("name", ["CYCLE", "MANY"])
def test_palette_stays_distinct_under_colour_blindness(name, kind):
    colours = palette.CYCLE[:7] if name == "CYCLE" else palette.MANY      # yellow: last, on white
    assert closest_pair(colours, kind) > MIN_DELTA_E, f"{name} under {kind}"


def test_the_check_catches_matplotlibs_default_colours():
    """The same check fails matplotlib's default tab10 (orange and green merge for a protanope)."""
    tab10 = list(mc.TABLEAU_COLORS.values())
    assert min(closest_pair(tab10, k) for k in DICHROMACIES) < MIN_DELTA_E
    assert closest_pair(["tab:red", "tab:green"], "deuteranomaly") < MIN_DELTA_E


def test_plotting_makes_the_palette_the_default_cycle():
    import matplotlib

    from cl_teach import plotting  # noqa: F401  (importing it applies the palette)
    assert matplotlib.rcParams["axes.prop_cycle"].by_key()["color"] == palette.CYCLE


def test_no_figure_picks_matplotlibs_tab_colours():
    pattern = re.compile(r"""["']tab:[a-z]+["']|colormaps\[["']tab(10|20)""")
    files = [*(ROOT / "cl_teach").rglob("*.py"), *(ROOT / "notebooks" / "src").glob("*.py")]
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in files
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if pattern.search(line)]
    assert not offenders, f"use cl_teach.palette.PALETTE (colour-blind-safe) instead: {offenders}"
