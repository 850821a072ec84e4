"""Texts -> bags of hashed character n-grams (the featuriser of CD-TOM's towers, notebooks 17-19).

The towers read bags of character n-grams, hashed into buckets (the "hashing trick",
Weinberger et al., 2009; fastText, Joulin et al., 2017): Chinese has no spaces worth trusting,
and unseen hashtags still share characters with seen ones. :func:`pack` turns bags into the
``(ids, offsets, weights)`` input of ``nn.EmbeddingBag`` (:class:`cl_teach.models.TextTower`).
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch

from .._validate import check_positive

__all__ = ["CharNgrams", "pack"]


def _grams(text: str, lo: int, hi: int, strip_spaces: bool) -> list[str]:
    s = text.replace(" ", "") if strip_spaces else text
    return [s[i:i + n] for n in range(lo, hi + 1) for i in range(len(s) - n + 1)]


class CharNgrams:
    """Texts -> bags of hashed character n-gram ids, scikit-learn style.

    Args:
        ngram_range: (lo, hi) n-gram lengths.
        n_buckets: hash buckets (crc32 of the n-gram modulo this; stable across runs).
        min_count: buckets seen in fewer training texts are dropped: rare n-grams are what a
            small model memorises its few thousand training pairs with.
        strip_spaces: drop the word-segmentation spaces first (the characters carry the meaning).

    Attributes (after fit): ``vocab_`` maps kept bucket -> column 1..V (0 is "no n-gram"),
    ``n_features_`` = V + 1.

    Example:
        >>> f = CharNgrams(ngram_range=(1, 2), min_count=1).fit(["我是歌手", "歌手"])
        >>> [len(b) for b in f.transform(["歌手", "?"])]
        [3, 1]
    """

    def __init__(self, ngram_range: tuple[int, int] = (1, 3), n_buckets: int = 2 ** 20,
                 min_count: int = 2, strip_spaces: bool = True):
        self.ngram_range, self.n_buckets, self.min_count, self.strip_spaces = (
            ngram_range, n_buckets, min_count, strip_spaces)

    def _buckets(self, text: str) -> np.ndarray:
        lo, hi = self.ngram_range
        return np.unique(np.array([zlib.crc32(g.encode("utf-8")) % self.n_buckets
                                   for g in _grams(text, lo, hi, self.strip_spaces)], dtype=np.int64))

    def fit(self, texts: Sequence[str]) -> CharNgrams:
        """Keep the buckets in >= ``min_count`` of ``texts`` and learn their idf; returns self."""
        if isinstance(texts, str) or len(texts) == 0:
            raise ValueError(f"texts must be a non-empty sequence of strings, got {type(texts).__name__}")
        check_positive("min_count", self.min_count, integer=True)
        counts = np.zeros(self.n_buckets, dtype=np.int64)
        for t in texts:
            counts[self._buckets(t)] += 1                           # document frequency
        kept = np.flatnonzero(counts >= self.min_count)
        self.lookup_ = np.zeros(self.n_buckets, dtype=np.int64)
        self.lookup_[kept] = np.arange(1, len(kept) + 1)
        self.n_features_ = len(kept) + 1
        # smoothed idf as scikit-learn's TfidfVectorizer; column 0 ("no n-gram") weighs 1
        self.idf_ = np.concatenate([[1.0], np.log((1 + len(texts)) / (1 + counts[kept])) + 1]
                                   ).astype(np.float32)
        return self

    def transform(self, texts: Sequence[str]) -> list[np.ndarray]:
        """One int64 array of kept n-gram columns per text (``[0]`` when none is kept)."""
        if not hasattr(self, "lookup_"):
            raise RuntimeError("CharNgrams is not fitted: call fit(texts) first")
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, got one str (wrap it in a list)")
        out = []
        for t in texts:
            cols = self.lookup_[self._buckets(t)]
            cols = cols[cols > 0]
            out.append(cols if len(cols) else np.zeros(1, dtype=np.int64))
        return out


def pack(bags: Sequence[np.ndarray], idf: np.ndarray, drop: float = 0.0,
         generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bags -> (ids, offsets, weights) for ``nn.EmbeddingBag(mode="sum")``.

    The weights are each bag's idf values scaled to unit L2 norm, so the bag's output is the
    TF-IDF vector (binary tf) times the embedding matrix. ``drop`` removes each n-gram with that
    probability (n-gram dropout, a text augmentation), keeping at least one per bag.
    """
    kept = []
    for b in bags:
        b = torch.from_numpy(b)
        if drop > 0 and len(b) > 1:
            keep = torch.rand(len(b), generator=generator) >= drop
            b = b[keep] if keep.any() else b[:1]
        kept.append(b)
    ids = torch.cat(kept)
    w = torch.from_numpy(idf)[ids]
    seg = torch.repeat_interleave(torch.arange(len(kept)), torch.tensor([len(b) for b in kept]))
    norms = torch.zeros(len(kept)).index_add_(0, seg, w * w).sqrt()
    lengths = torch.tensor([0] + [len(b) for b in kept[:-1]])
    return ids, lengths.cumsum(0), w / norms[seg]
