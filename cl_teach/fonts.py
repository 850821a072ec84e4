"""Chinese in figures: a CJK font appended to matplotlib's font list.

Hashtags and emoji names are then drawn inside the figures instead of printed beside them.

matplotlib (>= 3.6) falls back glyph by glyph along ``rcParams["font.family"]``: Latin text keeps
DejaVu Sans and Chinese characters come from the first CJK family installed. On Debian/Ubuntu
that is Noto Sans CJK (``sudo apt-get install fonts-noto-cjk``; ``scripts/setup.sh`` installs
it); on macOS and Windows a system font (PingFang, Microsoft YaHei, SimHei) is found instead.
Without any, Chinese draws as empty boxes and matplotlib warns "Glyph ... missing from font(s)".

>>> family = use_cjk_fallback()
>>> family is None or family in matplotlib.rcParams["font.family"]
True
"""
from __future__ import annotations

import matplotlib
from matplotlib import font_manager

#: Families tried in order: Debian's Noto CJK, then common macOS / Windows / other Linux fonts.
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK JP", "Source Han Sans SC",
                "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "PingFang SC", "Heiti SC",
                "Microsoft YaHei", "SimHei", "Arial Unicode MS")

HOW = ("no CJK font found for matplotlib (looked for: " + ", ".join(CJK_FAMILIES) + "); Chinese "
       "in figures draws as boxes. Install one: sudo apt-get install fonts-noto-cjk (Debian/Ubuntu; "
       "scripts/setup.sh does this), then restart the kernel.")


def cjk_font() -> str | None:
    """The first family of :data:`CJK_FAMILIES` that matplotlib can find, or ``None``."""
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((family for family in CJK_FAMILIES if family in installed), None)


def use_cjk_fallback() -> str | None:
    """Append the CJK family to ``rcParams["font.family"]`` (once) and return it.

    Returns ``None`` if none is installed (then :data:`HOW` says what to install).
    """
    family = cjk_font()
    if family is not None:
        current = list(matplotlib.rcParams["font.family"])
        if family not in current:
            matplotlib.rcParams["font.family"] = current + [family]
    return family
