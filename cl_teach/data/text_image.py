"""Real image-text pairs, offline: emoji, Openclipart, and a generated shapes-and-captions set.

Three sources, one container (:class:`ImageTextSet`), all usable by CLIP (notebook 12), WenLan
(notebook 13) and W-CLIP (notebook 16):

* :func:`load_emoji` -- emoji rendered from Google's Noto Color Emoji font (Debian
  ``fonts-noto-color-emoji``, SIL OFL 1.1) with their CLDR short names in English and Chinese
  from the PyPI package ``emoji`` (e.g. 🐶 "dog face" / "狗脸"). About 1,380 pairs.
* :func:`load_clipart` -- Openclipart drawings (Debian ``openclipart-png``, public domain) with a
  title made from the file name and the category folder (e.g. "full moon" in
  ``science/astronomy``). Titles are noisy (some Italian, some carry the artist's name): real
  web-like alt text.
* :func:`make_shapes` -- a generated set: one coloured shape per image, captioned in English and
  Chinese from its colour, shape, position and size ("a large red circle at the top left" /
  "左上方有一个大的红色圆形"). A from-scratch CLIP learns it in seconds, and its attributes make
  zero-shot classification measurable.

Images are float tensors (N, 3, S, S) in [0, 1] on a white background, ready for
``cl_teach.models.SmallCNN(in_channels=3)``. Rendering the emoji and clipart takes seconds; the
result is cached (git-ignored) under ``cl_teach.config.data_dir()``. Nothing is downloaded.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from .._validate import check_positive
from ..config import data_dir

__all__ = ["ImageTextSet", "load_emoji", "load_clipart", "make_shapes", "describe_sources",
           "EMOJI_FONT_PATHS", "CLIPART_ROOTS", "SHAPE_ATTRIBUTES"]

#: Where :func:`load_emoji` looks for the font (after ``font=`` and ``$CL_TEACH_EMOJI_FONT``).
EMOJI_FONT_PATHS = ("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
                    "/usr/share/fonts/noto/NotoColorEmoji.ttf",
                    "/usr/share/fonts/google-noto-emoji/NotoColorEmoji.ttf")
#: Where :func:`load_clipart` looks (after ``root=`` and ``$CL_TEACH_CLIPART``).
CLIPART_ROOTS = ("/usr/share/openclipart/png",)

_EMOJI_HOW = ("Install the Debian/Ubuntu package fonts-noto-color-emoji (sudo apt-get install "
              "fonts-noto-color-emoji), or pass font=/path/to/NotoColorEmoji.ttf, or set "
              "CL_TEACH_EMOJI_FONT. The names come from the PyPI package emoji (pip install emoji).")
_CLIPART_HOW = ("Install the Debian/Ubuntu package openclipart-png (sudo apt-get install "
                "openclipart-png), or pass root=/path/to/png/folder, or set CL_TEACH_CLIPART.")


@dataclass
class ImageTextSet:
    """Aligned images and captions.

    Attributes:
        images: (N, 3, S, S) float in [0, 1].
        captions: language code -> list of N strings (``"en"``, and ``"zh"`` where available).
        attributes: name -> (N,) long tensor of class ids (e.g. ``"shape"``, ``"category"``).
        attribute_names: name -> {language -> list of class names}, indexed by the ids above.
        source: where the data came from.
        items: per-pair identifiers (the emoji character, the clipart file, ...).
    """
    images: torch.Tensor
    captions: Dict[str, List[str]]
    attributes: Dict[str, torch.Tensor] = field(default_factory=dict)
    attribute_names: Dict[str, Dict[str, List[str]]] = field(default_factory=dict)
    source: str = ""
    items: List[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.images.shape[0]

    def texts(self, lang: str = "en") -> List[str]:
        """The captions in ``lang``; ValueError naming the languages this set has."""
        if lang not in self.captions:
            raise ValueError(f"lang must be one of {sorted(self.captions)} for this set, got {lang!r}")
        return self.captions[lang]

    def subset(self, idx) -> "ImageTextSet":
        """The pairs at ``idx`` (a LongTensor, list or slice) as a new set."""
        if isinstance(idx, slice):
            idx = torch.arange(len(self))[idx]
        idx = torch.as_tensor(idx, dtype=torch.long)
        if idx.numel() and (int(idx.min()) < -len(self) or int(idx.max()) >= len(self)):
            raise ValueError(f"idx must index {len(self)} pairs, got values in "
                             f"[{int(idx.min())}, {int(idx.max())}]")
        il = idx.tolist()
        return ImageTextSet(self.images[idx], {k: [v[i] for i in il] for k, v in self.captions.items()},
                            {k: v[idx] for k, v in self.attributes.items()}, self.attribute_names,
                            self.source, [self.items[i] for i in il] if self.items else [])

    def split(self, test_fraction: float = 0.2, seed: int = 0):
        """A seeded random (train, test) split."""
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        n_test = max(1, int(round(test_fraction * len(self))))
        return self.subset(order[n_test:]), self.subset(order[:n_test])

    def __repr__(self) -> str:
        s = tuple(self.images.shape[1:])
        return (f"ImageTextSet({len(self)} pairs, images {s}, captions {sorted(self.captions)}, "
                f"attributes {sorted(self.attributes)}, from {self.source})")


# ----------------------------------------------------------------------------- helpers
def _to_square(img, size: int) -> np.ndarray:
    """An RGBA PIL image -> (3, size, size) uint8 on white, aspect kept, content centred."""
    from PIL import Image
    img = img.convert("RGBA")
    bbox = img.getbbox()
    if bbox:
        img = img.crop(bbox)
    w, h = img.size
    side = max(w, h, 1)
    canvas = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    canvas.alpha_composite(img, ((side - w) // 2, (side - h) // 2))
    canvas = canvas.convert("RGB").resize((size, size), Image.LANCZOS)
    return np.asarray(canvas, dtype=np.uint8).transpose(2, 0, 1)


def _cache_path(name: str, key: str) -> Path:
    return data_dir() / f"{name}_{hashlib.sha256(key.encode()).hexdigest()[:12]}.pt"


def _load_cache(path: Path):
    if path.exists():
        try:
            return torch.load(path, weights_only=False)
        except Exception:              # a half-written cache: rebuild it
            return None
    return None


def _save_cache(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")                  # two notebooks may render at once
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _find_file(candidates: Sequence[Optional[str]], what: str, how: str, is_dir: bool = False) -> Path:
    tried = [Path(c) for c in candidates if c]
    for p in tried:
        if (p.is_dir() if is_dir else p.is_file()):
            return p
    raise FileNotFoundError(f"{what} not found: looked in {', '.join(map(str, tried))}. {how}")


# ----------------------------------------------------------------------------- emoji
def _emoji_names():
    try:
        import emoji
    except ImportError as e:
        raise ImportError(f"load_emoji needs the PyPI package emoji for the names: pip install emoji "
                          f"({e})") from e
    emoji.config.load_language("zh")
    return emoji


def _clean_name(name: str) -> str:
    return name.strip(":").replace("_", " ").strip()


def load_emoji(size: int = 32, font: Optional[str | os.PathLike] = None, cache: bool = True) -> ImageTextSet:
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

    Returns:
        An :class:`ImageTextSet` with captions ``"en"`` ("dog face") and ``"zh"`` ("狗脸"), items
        the emoji characters.

    Raises:
        FileNotFoundError: naming every place searched for the font and how to install it.
        ImportError: when the ``emoji`` package is missing.
    """
    check_positive("size", size, integer=True)
    if font is not None and not Path(font).is_file():
        raise FileNotFoundError(f"font={str(font)!r} is not a file. {_EMOJI_HOW}")
    path = _find_file([str(font) if font else None, os.environ.get("CL_TEACH_EMOJI_FONT"),
                       *EMOJI_FONT_PATHS], "Noto Color Emoji font (NotoColorEmoji.ttf)", _EMOJI_HOW)
    emoji = _emoji_names()
    st = path.stat()
    key = f"{path}:{st.st_size}:{int(st.st_mtime)}:{size}:{emoji.__version__}"
    cpath = _cache_path("emoji", key)
    data = _load_cache(cpath) if cache else None
    if data is None:
        from fontTools.ttLib import TTFont
        from PIL import Image, ImageDraw, ImageFont
        cmap = TTFont(str(path), lazy=True).getBestCmap()
        pil_font = ImageFont.truetype(str(path), 109)            # a bitmap font: 109 px only
        chars, imgs, en, zh = [], [], [], []
        for ch, info in emoji.EMOJI_DATA.items():
            base = ch.replace("\ufe0f", "")
            if info.get("status") != emoji.STATUS["fully_qualified"] or len(base) != 1 \
                    or ord(base) not in cmap or "zh" not in info:
                continue
            canvas = Image.new("RGBA", (160, 160), (255, 255, 255, 0))
            ImageDraw.Draw(canvas).text((10, 10), ch, font=pil_font, embedded_color=True)
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
                        source=f"{path} + emoji {emoji.__version__} names", items=list(data["chars"]))


# ----------------------------------------------------------------------------- clipart
_TRAILING = re.compile(r"[_\-\s]*\d*$")


def clipart_title(path: str | os.PathLike) -> str:
    """The title of an Openclipart file from its name: ``full_moon_dan_gerhards_01.png`` ->
    ``"full moon dan gerhards"`` (trailing numbers dropped, ``_``/``-`` as spaces)."""
    stem = _TRAILING.sub("", Path(path).stem)
    return re.sub(r"[_\-]+", " ", stem).strip().lower() or Path(path).stem


def load_clipart(size: int = 32, root: Optional[str | os.PathLike] = None,
                 max_items: Optional[int] = None, seed: int = 0, cache: bool = True,
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
        An :class:`ImageTextSet`: captions ``"en"`` = ``"<title> (<category words>)"``, attribute
        ``"category"`` = the top-level folder (animals, food, ...), items the relative paths.

    Raises:
        FileNotFoundError: naming every place searched and how to install the package.
    """
    check_positive("size", size, integer=True)
    if max_items is not None:
        check_positive("max_items", max_items, integer=True)
    if root is not None and not Path(root).is_dir():
        raise FileNotFoundError(f"root={str(root)!r} is not a folder. {_CLIPART_HOW}")
    base = _find_file([str(root) if root else None, os.environ.get("CL_TEACH_CLIPART"), *CLIPART_ROOTS],
                      "Openclipart PNG folder", _CLIPART_HOW, is_dir=True)
    files = sorted(p.relative_to(base).as_posix() for p in base.rglob("*.png"))
    if not files:
        raise FileNotFoundError(f"no .png files under {base}. {_CLIPART_HOW}")
    if max_items is not None and max_items < len(files):
        keep = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed))[:max_items]
        files = [files[i] for i in sorted(keep.tolist())]
    cpath = _cache_path("clipart", f"{base}:{size}:{max_pixels}:{len(files)}:{hashlib.sha256(''.join(files).encode()).hexdigest()}")
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


# ----------------------------------------------------------------------------- shapes
#: Class names of the generated set's attributes, English and Chinese, in id order.
SHAPE_ATTRIBUTES = {
    "colour": {"en": ["red", "green", "blue", "yellow", "purple", "orange"],
               "zh": ["红色", "绿色", "蓝色", "黄色", "紫色", "橙色"]},
    "shape": {"en": ["circle", "square", "triangle", "cross"],
              "zh": ["圆形", "正方形", "三角形", "十字"]},
    "position": {"en": ["top left", "top right", "bottom left", "bottom right", "center"],
                 "zh": ["左上方", "右上方", "左下方", "右下方", "中间"]},
    "size": {"en": ["small", "large"], "zh": ["小的", "大的"]},
}
_RGB = [(220, 30, 30), (30, 160, 40), (40, 70, 220), (235, 200, 20), (140, 40, 180), (245, 130, 20)]


def shape_caption(colour: int, shape: int, position: int, size: int, lang: str = "en") -> str:
    """The caption of one generated image from its attribute ids (see :data:`SHAPE_ATTRIBUTES`)."""
    a = {k: SHAPE_ATTRIBUTES[k][lang][i] for k, i in
         (("colour", colour), ("shape", shape), ("position", position), ("size", size))}
    if lang == "zh":
        return f"{a['position']}有一个{a['size']}{a['colour']}{a['shape']}"
    where = "in the center" if a["position"] == "center" else f"at the {a['position']}"
    return f"a {a['size']} {a['colour']} {a['shape']} {where}"


def make_shapes(n: int = 4000, size: int = 32, seed: int = 0, jitter: float = 0.08,
                noise: float = 0.03) -> ImageTextSet:
    """A generated shapes-and-captions set (synthetic, labelled as such): one shape per image.

    Each image draws a colour, shape, position and size uniformly at random, jitters the
    position and shade a little, and adds pixel noise, so no two images are the same. Captions:
    "a large red circle at the top left" and "左上方有一个大的红色圆形".

    Args:
        n: number of pairs. size: image side in pixels.
        seed: everything is drawn from it (same seed, same set).
        jitter: position jitter as a fraction of the image side. noise: pixel noise std.

    Returns:
        An :class:`ImageTextSet` with captions ``"en"``/``"zh"`` and attributes ``colour``,
        ``shape``, ``position``, ``size`` (names in :data:`SHAPE_ATTRIBUTES`).

    Example:
        >>> s = make_shapes(4, seed=0); s.images.shape, len(s.texts("zh"))
        (torch.Size([4, 3, 32, 32]), 4)
    """
    check_positive("n", n, integer=True)
    check_positive("size", size, integer=True)
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    att = {k: rng.integers(0, len(v["en"]), n) for k, v in SHAPE_ATTRIBUTES.items()}
    centres = [(0.28, 0.28), (0.72, 0.28), (0.28, 0.72), (0.72, 0.72), (0.5, 0.5)]
    up = 3                                                   # draw at 3x, downsample: antialiasing
    S = size * up
    imgs = np.empty((n, 3, size, size), dtype=np.float32)
    for i in range(n):
        im = Image.new("RGB", (S, S), (255, 255, 255))
        d = ImageDraw.Draw(im)
        cx, cy = centres[att["position"][i]]
        cx, cy = (cx + rng.uniform(-jitter, jitter)) * S, (cy + rng.uniform(-jitter, jitter)) * S
        r = S * (0.12 if att["size"][i] == 0 else 0.21) * rng.uniform(0.9, 1.1)
        col = tuple(int(np.clip(c + rng.normal(0, 12), 0, 255)) for c in _RGB[att["colour"][i]])
        box = (cx - r, cy - r, cx + r, cy + r)
        shape = att["shape"][i]
        if shape == 0:
            d.ellipse(box, fill=col)
        elif shape == 1:
            d.rectangle((cx - 0.85 * r, cy - 0.85 * r, cx + 0.85 * r, cy + 0.85 * r), fill=col)
        elif shape == 2:
            d.polygon([(cx, cy - r), (cx - r, cy + 0.8 * r), (cx + r, cy + 0.8 * r)], fill=col)
        else:
            w = 0.33 * r
            d.rectangle((cx - r, cy - w, cx + r, cy + w), fill=col)
            d.rectangle((cx - w, cy - r, cx + w, cy + r), fill=col)
        im = im.resize((size, size), Image.BOX)
        imgs[i] = np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 255
    x = torch.from_numpy(imgs)
    if noise > 0:
        x = (x + noise * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))).clamp(0, 1)
    ids = [tuple(int(att[k][i]) for k in ("colour", "shape", "position", "size")) for i in range(n)]
    return ImageTextSet(x, {lang: [shape_caption(*t, lang=lang) for t in ids] for lang in ("en", "zh")},
                        {k: torch.from_numpy(v).long() for k, v in att.items()},
                        {k: dict(v) for k, v in SHAPE_ATTRIBUTES.items()},
                        source=f"generated by cl_teach.data.make_shapes(seed={seed}) (synthetic)",
                        items=[str(i) for i in range(n)])


# ----------------------------------------------------------------------------- summary
def describe_sources() -> str:
    """A short text summary of the image-text sources: what is installed, where, how to get it."""
    lines = []
    try:
        font = _find_file([os.environ.get("CL_TEACH_EMOJI_FONT"), *EMOJI_FONT_PATHS],
                          "Noto Color Emoji font", _EMOJI_HOW)
        try:
            emoji = _emoji_names()
            lines.append(f"[data] emoji: font {font}, names from emoji {emoji.__version__} (en, zh)")
        except ImportError as e:
            lines.append(f"[data] emoji: font {font}, but {e}")
    except FileNotFoundError as e:
        lines.append(f"[data] emoji: {e}")
    try:
        root = _find_file([os.environ.get("CL_TEACH_CLIPART"), *CLIPART_ROOTS], "Openclipart PNG folder",
                          _CLIPART_HOW, is_dir=True)
        n = sum(1 for _ in root.rglob("*.png"))
        lines.append(f"[data] openclipart: {n} PNG files in {root}")
    except FileNotFoundError as e:
        lines.append(f"[data] openclipart: {e}")
    lines.append("[data] shapes-and-captions: generated on the fly (make_shapes), nothing to install")
    return "\n".join(lines)
