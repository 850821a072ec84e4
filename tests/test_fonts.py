"""Figures draw Chinese: cl_teach.fonts' fallback finds a CJK font and matplotlib renders hashtags
without a missing-glyph warning; without the fallback the same figure warns (the check can fail)."""
import io
import os
import warnings

import matplotlib
import pytest
from matplotlib.figure import Figure

from cl_teach import fonts, plotting

TEXT = "#我是歌手# 马航 hashtag"                 # Chinese and Latin in one label


def render(families):
    """Draw TEXT as a title, a tick label and a legend entry with font.family = families; return
    the missing-glyph warnings."""
    with matplotlib.rc_context({"font.family": families}), warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        fig = Figure(figsize=(3, 2))
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1], label=TEXT)
        ax.set_title(TEXT)
        ax.set_xticks([0.5], [TEXT])
        ax.legend()
        fig.savefig(io.BytesIO(), format="png")       # Agg renders (a bare canvas draws nothing)
    return [str(x.message) for x in w if "missing from" in str(x.message)]


@pytest.fixture
def family():
    family = fonts.cjk_font()
    if family is None and os.geteuid() != 0:
        pytest.skip(fonts.HOW)                    # the non-root path: the notebooks say so instead
    assert family is not None, fonts.HOW          # as root, scripts/setup.sh installs fonts-noto-cjk
    return family


def test_plotting_installs_the_fallback(family):
    assert family == plotting.CJK_FONT
    assert family in matplotlib.rcParams["font.family"]


def test_chinese_renders_without_missing_glyphs(family):
    assert render(list(matplotlib.rcParams["font.family"])) == []


def test_without_the_fallback_chinese_is_missing(family):
    """The broken variant: DejaVu Sans alone has no CJK glyphs, and the check above would fail."""
    missing = render(["DejaVu Sans"])
    assert missing and any("\\N{CJK" in m or "CJK" in m for m in missing), missing


def test_use_cjk_fallback_is_idempotent(family):
    before = list(matplotlib.rcParams["font.family"])
    assert fonts.use_cjk_fallback() == family
    assert list(matplotlib.rcParams["font.family"]) == before
