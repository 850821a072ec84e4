"""Openclipart image-text pairs: public-domain drawings with a title made from the file name.

The drawings come from the Debian/Ubuntu package ``openclipart-png`` (public domain:
``sudo apt-get install openclipart-png``), about 8,000 PNG files in category folders. The caption
is the file name's title plus the category folder (e.g. "full moon" in ``science/astronomy``).
Titles are noisy (some Italian, some carry the artist's name): real web-like alt text. Decoded
once and cached; nothing is downloaded.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import torch

from .._validate import check_positive
from ._paths import find_first, search_path
from .image_text import ImageTextSet, _cache_path, _load_cache, _save_cache, _to_square

__all__ = ["CLIPART_ROOTS", "clipart_title", "load_clipart"]

#: Where :func:`load_clipart` looks (after ``root=`` and ``$CL_TEACH_CLIPART``).
CLIPART_ROOTS = ("/usr/share/openclipart/png",)

_CLIPART_HOW = ("Install the Debian/Ubuntu package openclipart-png (sudo apt-get install "
                "openclipart-png), or pass root=/path/to/png/folder, or set CL_TEACH_CLIPART.")
_TRAILING = re.compile(r"[_\-\s]*\d*$")


def clipart_title(path: str | os.PathLike) -> str:
    """The title of an Openclipart file from its name (trailing numbers dropped, ``_``/``-`` as spaces).

    Args:
        path: the file's path or name.

    Returns:
        The lower-case title; the bare file stem when nothing else is left.

    Example:
        >>> clipart_title("animals/full_moon_dan_gerhards_01.png")
        'full moon dan gerhards'
    """
    stem = _TRAILING.sub("", Path(path).stem)
    return re.sub(r"[_\-]+", " ", stem).strip().lower() or Path(path).stem


def load_clipart(size: int = 32, root: str | os.PathLike | None = None,
                 max_items: int | None = None, seed: int = 0, cache: bool = True,
                 max_pixels: int = 2_000_000) -> ImageTextSet:
    """Openclipart drawings with their titles (English captions) and category folders.

    Args:
        size: side of the square images.
        root: the ``png`` folder of openclipart-png; else ``$CL_TEACH_CLIPART``, then
            :data:`CLIPART_ROOTS`.
        max_items: keep a seeded random subset of this many files (all ~8,000 take a minute
            to decode the first time; then they come from the cache).
        seed: for the subset.
        cache: read/write the decoded images under ``data_dir()``.
        max_pixels: skip the few huge posters (decoding one takes seconds).

    Returns:
        An :class:`~cl_teach.data.image_text.ImageTextSet`: captions ``"en"`` =
        ``"<title> (<category words>)"``, attribute ``"category"`` = the top-level folder
        (animals, food, ...), items the relative paths.

    Raises:
        FileNotFoundError: naming every place searched and how to install the package.
    """
    check_positive("size", size, integer=True)
    if max_items is not None:
        check_positive("max_items", max_items, integer=True)
    if root is not None and not Path(root).is_dir():
        raise FileNotFoundError(f"root={str(root)!r} is not a folder. {_CLIPART_HOW}")
    base = find_first(search_path(root, "CL_TEACH_CLIPART", CLIPART_ROOTS), "Openclipart PNG folder",
                      _CLIPART_HOW, is_dir=True)
    files = sorted(p.relative_to(base).as_posix() for p in base.rglob("*.png"))
    if not files:
        raise FileNotFoundError(f"no .png files under {base}. {_CLIPART_HOW}")
    if max_items is not None and max_items < len(files):
        keep = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed))[:max_items]
        files = [files[i] for i in sorted(keep.tolist())]
    names_hash = hashlib.sha256("".join(files).encode()).hexdigest()
    cpath = _cache_path("clipart", f"{base}:{size}:{max_pixels}:{len(files)}:{names_hash}")
    data = _load_cache(cpath) if cache else None
    if data is None:
        import warnings

        from PIL import Image
        imgs, kept = [], []
        for rel in files:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    im = Image.open(base / rel)
                with im:
                    if im.size[0] * im.size[1] > max_pixels:   # posters of 10^8 px: minutes each
                        continue
                    imgs.append(_to_square(im, size))
                kept.append(rel)
            except (OSError, ValueError, Image.DecompressionBombError):   # unreadable: skip
                continue
        data = {"images": torch.from_numpy(np.stack(imgs)), "files": kept}
        if cache:
            _save_cache(cpath, data)
    files = data["files"]
    cats = sorted({f.split("/")[0] for f in files})
    cat_id = torch.tensor([cats.index(f.split("/")[0]) for f in files])
    en = [f"{clipart_title(f)} ({' '.join(f.split('/')[:-1]).replace('_', ' ')})" for f in files]
    return ImageTextSet(data["images"].float() / 255, {"en": en}, {"category": cat_id},
                        {"category": {"en": cats}}, source=str(base), items=list(files))


def describe_clipart() -> str:
    """One line for ``python -m cl_teach.prepare``: the PNG folder found, or how to get it."""
    try:
        root = find_first(search_path(None, "CL_TEACH_CLIPART", CLIPART_ROOTS), "Openclipart PNG folder",
                          _CLIPART_HOW, is_dir=True)
    except FileNotFoundError as e:
        return f"[data] openclipart: {e}"
    return f"[data] openclipart: {sum(1 for _ in root.rglob('*.png'))} PNG files in {root}"
