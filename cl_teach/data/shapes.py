"""A generated shapes-and-captions set: one coloured shape per image, captioned in English and Chinese.

Nothing to install or download: the images are drawn with Pillow from a seed, and the captions
are made from each image's colour, shape, position and size ("a large red circle at the top left"
/ "左上方有一个大的红色圆形"). A from-scratch CLIP learns it in seconds, and its attributes make
zero-shot classification measurable. Synthetic, and labelled as such in ``source``.
"""
from __future__ import annotations

import numpy as np
import torch

from .._validate import check_positive
from .image_text import ImageTextSet

__all__ = ["SHAPE_ATTRIBUTES", "make_shapes", "shape_caption"]

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
    """The caption of one generated image from its attribute ids (see :data:`SHAPE_ATTRIBUTES`).

    Args:
        colour: id into ``SHAPE_ATTRIBUTES["colour"]``.
        shape: id into ``SHAPE_ATTRIBUTES["shape"]``.
        position: id into ``SHAPE_ATTRIBUTES["position"]``.
        size: id into ``SHAPE_ATTRIBUTES["size"]``.
        lang: ``"en"`` or ``"zh"``.

    Returns:
        The caption.

    Example:
        >>> shape_caption(0, 0, 0, 1), shape_caption(0, 0, 0, 1, lang="zh")
        ('a large red circle at the top left', '左上方有一个大的红色圆形')
    """
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
        n: number of pairs.
        size: image side in pixels.
        seed: everything is drawn from it (same seed, same set).
        jitter: position jitter as a fraction of the image side.
        noise: pixel noise std.

    Returns:
        An :class:`~cl_teach.data.image_text.ImageTextSet` with captions ``"en"``/``"zh"`` and
        attributes ``colour``, ``shape``, ``position``, ``size`` (names in :data:`SHAPE_ATTRIBUTES`).

    Raises:
        TypeError: when ``n`` or ``size`` is not an int.
        ValueError: when ``n`` or ``size`` is not > 0.

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
