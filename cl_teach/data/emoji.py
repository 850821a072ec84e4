"""Emoji image-text pairs: glyphs of Google's Noto Color Emoji font with their CLDR short names.

The images are rendered from ``NotoColorEmoji.ttf`` (Debian/Ubuntu package
``fonts-noto-color-emoji``, SIL OFL 1.1: ``sudo apt-get install fonts-noto-color-emoji``); the
English and Chinese names come from the PyPI package ``emoji`` (``pip install emoji``), e.g. 🐶
"dog face" / "狗脸". About 1,380 real pairs, rendered once and cached; nothing is downloaded.

Without the font (macOS, Windows, no root), ``fallback=True`` warns and draws the emoji that
matplotlib's own DejaVu Sans has a glyph for instead: about 170 real glyphs (zodiac signs, faces,
cats, chess and card symbols), black on white, with the same CLDR names, ``is_fallback=True``.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from .._validate import check_positive
from ._paths import find_first, search_path
from .image_text import ImageTextSet, _cache_path, _load_cache, _save_cache, _to_square

__all__ = ["EMOJI_FONT_PATHS", "fallback_font", "load_emoji"]

#: Where :func:`load_emoji` looks for the font (after ``font=`` and ``$CL_TEACH_EMOJI_FONT``).
EMOJI_FONT_PATHS = ("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
                    "/usr/share/fonts/noto/NotoColorEmoji.ttf",
                    "/usr/share/fonts/google-noto-emoji/NotoColorEmoji.ttf")

_EMOJI_HOW = ("Install the Debian/Ubuntu package fonts-noto-color-emoji (sudo apt-get install "
              "fonts-noto-color-emoji), or pass font=/path/to/NotoColorEmoji.ttf, or set "
              "CL_TEACH_EMOJI_FONT. The names come from the PyPI package emoji (pip install emoji).")


def _emoji_names():
    """The ``emoji`` package with its Chinese names loaded; ImportError saying how to install it."""
    try:
        import emoji
    except ImportError as e:
        raise ImportError(f"load_emoji needs the PyPI package emoji for the names: pip install emoji "
                          f"({e})") from e
    emoji.config.load_language("zh")
    return emoji


def _clean_name(name: str) -> str:
    """A CLDR name of the ``emoji`` package as a caption: ``":dog_face:"`` -> ``"dog face"``."""
    return name.strip(":").replace("_", " ").strip()


def fallback_font() -> Path:
    """The DejaVu Sans font file matplotlib ships: on every machine with the course, ~170 emoji."""
    import matplotlib
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


def load_emoji(size: int = 32, font: str | os.PathLike | None = None, cache: bool = True,
               fallback: bool = True) -> ImageTextSet:
    """Emoji images with their English and Chinese CLDR names (real pairs; ~1,380 of them).

    Every fully-qualified emoji of the ``emoji`` package that is a single code point (plus an
    optional variation selector) and has a glyph in the font is rendered at the font's native
    109 px, cropped, centred on white and resized to ``size``. Sequences (flags, skin tones,
    families) are left out: PIL draws them without the font's ligatures.

    Args:
        size: side of the square images in pixels.
        font: path to NotoColorEmoji.ttf; else ``$CL_TEACH_EMOJI_FONT``, then
            :data:`EMOJI_FONT_PATHS`.
        cache: read/write the rendered images under ``data_dir()`` (git-ignored).
        fallback: when the Noto font is not found (and ``font`` is not given), warn, naming every
            place searched and how to install it, and draw DejaVu Sans's emoji glyphs instead
            (:func:`fallback_font`; ``is_fallback=True``).

    Returns:
        An :class:`~cl_teach.data.image_text.ImageTextSet` with captions ``"en"`` ("dog face") and
        ``"zh"`` ("狗脸"), items the emoji characters.

    Raises:
        FileNotFoundError: naming every place searched for the font and how to install it (with
            ``fallback=False``, or when ``font`` is given and is not a file).
        ImportError: when the ``emoji`` package is missing.
    """
    check_positive("size", size, integer=True)
    if font is not None and not Path(font).is_file():
        raise FileNotFoundError(f"font={str(font)!r} is not a file. {_EMOJI_HOW}")
    try:
        path, is_fallback = find_first(search_path(font, "CL_TEACH_EMOJI_FONT", EMOJI_FONT_PATHS),
                                       "Noto Color Emoji font (NotoColorEmoji.ttf)", _EMOJI_HOW), False
    except FileNotFoundError as e:
        if not fallback:
            raise
        path, is_fallback = fallback_font(), True
        from ..fallback import report_claims
        report_claims("DejaVu Sans's emoji glyphs instead of Noto Color Emoji")
        warnings.warn(f"{e} FALLING BACK to the emoji glyphs of DejaVu Sans ({path}): about 170 "
                      f"black-on-white pairs instead of ~1,380 in colour, so the numbers of the "
                      f"emoji notebooks (15, 16, 19) will differ from the course's.", stacklevel=2)
    emoji = _emoji_names()
    st = path.stat()
    key = f"{path}:{st.st_size}:{int(st.st_mtime)}:{size}:{emoji.__version__}"
    cpath = _cache_path("emoji", key)
    data = _load_cache(cpath) if cache else None
    if data is None:
        from fontTools.ttLib import TTFont
        from PIL import Image, ImageDraw, ImageFont
        cmap = TTFont(str(path), lazy=True).getBestCmap()
        pil_font = ImageFont.truetype(str(path), 109)            # Noto is a bitmap font: 109 px only
        ink = {"fill": (0, 0, 0, 255)} if is_fallback else {}   # DejaVu's outlines: black
        chars, imgs, en, zh = [], [], [], []
        for ch, info in emoji.EMOJI_DATA.items():
            base = ch.replace("\ufe0f", "")
            if info.get("status") != emoji.STATUS["fully_qualified"] or len(base) != 1 \
                    or ord(base) not in cmap or "zh" not in info:
                continue
            canvas = Image.new("RGBA", (160, 160), (255, 255, 255, 0))
            ImageDraw.Draw(canvas).text((10, 10), ch, font=pil_font, embedded_color=True, **ink)
            if canvas.getbbox() is None:
                continue
            chars.append(ch)
            imgs.append(_to_square(canvas, size))
            en.append(_clean_name(info["en"]))
            zh.append(_clean_name(info["zh"]))
        data = {"images": torch.from_numpy(np.stack(imgs)), "chars": chars, "en": en, "zh": zh}
        if cache:
            _save_cache(cpath, data)
    return ImageTextSet(data["images"].float() / 255, {"en": data["en"], "zh": data["zh"]},
                        source=f"{path} + emoji {emoji.__version__} names", items=list(data["chars"]),
                        is_fallback=is_fallback)


def describe_emoji() -> str:
    """One line for ``python -m cl_teach.prepare``: the font and names found, or how to get them."""
    try:
        font = find_first(search_path(None, "CL_TEACH_EMOJI_FONT", EMOJI_FONT_PATHS),
                          "Noto Color Emoji font", _EMOJI_HOW)
    except FileNotFoundError as e:
        return f"[data] emoji: {e} Notebooks 15, 16 and 19 fall back to DejaVu Sans's ~170 emoji glyphs."
    try:
        emoji = _emoji_names()
    except ImportError as e:
        return f"[data] emoji: font {font}, but {e}"
    return f"[data] emoji: font {font}, names from emoji {emoji.__version__} (en, zh)"
