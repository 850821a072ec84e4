"""Image-text pairs: the container every source returns, and what the sources share.

Three offline sources fill an :class:`ImageTextSet`, all usable by CLIP (notebook 15), WenLan
(notebook 16) and W-CLIP (notebook 19):

* :func:`cl_teach.data.emoji.load_emoji` -- emoji from Google's Noto Color Emoji font (Debian
  ``fonts-noto-color-emoji``) named by the PyPI package ``emoji``;
* :func:`cl_teach.data.clipart.load_clipart` -- Openclipart drawings (Debian ``openclipart-png``)
  with titles made from the file names;
* :func:`cl_teach.data.shapes.make_shapes` -- a generated shapes-and-captions set, nothing to install.

Images are float tensors (N, 3, S, S) in [0, 1] on a white background, ready for
``cl_teach.models.SmallCNN(in_channels=3)``. Rendering the emoji and clipart takes seconds; the
result is cached (git-ignored) under ``cl_teach.config.data_dir()`` by the helpers here. Nothing
is downloaded. :func:`cl_teach.data.emoji.describe_emoji` and :func:`cl_teach.data.clipart.describe_clipart`
say whether a source is installed and how to get it (``python -m cl_teach.prepare`` prints both).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import data_dir

__all__ = ["ImageTextSet"]


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
        is_fallback: True when the loader did not find its real source and returned a stand-in
            (its ``source`` says which).

    Example:
        >>> from cl_teach.data.shapes import make_shapes
        >>> s = make_shapes(10, seed=0)
        >>> tr, te = s.split(0.2, seed=0)
        >>> len(tr), len(te), len(s.select([0, 3, 5])), len(s.select(slice(2, None)))
        (8, 2, 3, 8)
    """
    images: torch.Tensor
    captions: dict[str, list[str]]
    attributes: dict[str, torch.Tensor] = field(default_factory=dict)
    attribute_names: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    source: str = ""
    items: list[str] = field(default_factory=list)
    is_fallback: bool = False

    def __len__(self) -> int:
        """The number of pairs N."""
        return self.images.shape[0]

    def texts(self, lang: str = "en") -> list[str]:
        """The captions in one language.

        Args:
            lang: a language code of :attr:`captions` (``"en"``, ``"zh"``).

        Returns:
            The N captions in ``lang``, aligned with :attr:`images`.

        Raises:
            ValueError: naming the languages this set has.
        """
        if lang not in self.captions:
            raise ValueError(f"lang must be one of {sorted(self.captions)} for this set, got {lang!r}")
        return self.captions[lang]

    def select(self, idx) -> ImageTextSet:
        """The pairs at given positions, as a new set (indexing, not sampling).

        Args:
            idx: positions: a LongTensor, a list of ints or a slice.

        Returns:
            An :class:`ImageTextSet` of the pairs at ``idx``, in that order, with the same
            attribute names and source.

        Raises:
            ValueError: when ``idx`` holds a position outside the set.
        """
        if isinstance(idx, slice):
            idx = torch.arange(len(self))[idx]
        idx = torch.as_tensor(idx, dtype=torch.long)
        if idx.numel() and (int(idx.min()) < -len(self) or int(idx.max()) >= len(self)):
            raise ValueError(f"idx must index {len(self)} pairs, got values in "
                             f"[{int(idx.min())}, {int(idx.max())}]")
        il = idx.tolist()
        return ImageTextSet(self.images[idx], {k: [v[i] for i in il] for k, v in self.captions.items()},
                            {k: v[idx] for k, v in self.attributes.items()}, self.attribute_names,
                            self.source, [self.items[i] for i in il] if self.items else [], self.is_fallback)

    def split(self, test_fraction: float = 0.2, seed: int = 0) -> tuple[ImageTextSet, ImageTextSet]:
        """A seeded random (train, test) split.

        Args:
            test_fraction: the share of pairs in the test set, in (0, 1); at least one pair.
            seed: fixes the permutation (same seed, same split).

        Returns:
            ``(train, test)``, two :class:`ImageTextSet` that together hold every pair once.

        Raises:
            ValueError: when ``test_fraction`` is not in (0, 1).
        """
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        n_test = max(1, int(round(test_fraction * len(self))))
        return self.select(order[n_test:]), self.select(order[:n_test])

    def __repr__(self) -> str:
        """Size, image shape, languages, attributes and source."""
        s = tuple(self.images.shape[1:])
        tag = " (FALLBACK)" if self.is_fallback else ""
        return (f"ImageTextSet{tag}({len(self)} pairs, images {s}, captions {sorted(self.captions)}, "
                f"attributes {sorted(self.attributes)}, from {self.source})")


# ----------------------------------------------------------------------------- shared by the sources
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
    """The cache file of source ``name`` for ``key`` (everything the rendered result depends on)."""
    return data_dir() / f"{name}_{hashlib.sha256(key.encode()).hexdigest()[:12]}.pt"


def _load_cache(path: Path):
    """The cached object at ``path``, or None when there is none or it cannot be read."""
    if path.exists():
        try:
            return torch.load(path, weights_only=False)
        except Exception:              # a half-written cache: rebuild it
            return None
    return None


def _save_cache(path: Path, obj) -> None:
    """Write ``obj`` to ``path`` atomically (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")                  # two notebooks may render at once
    torch.save(obj, tmp)
    os.replace(tmp, path)
