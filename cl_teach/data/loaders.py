"""In-memory loaders: aligned tensors, augmented views, and (post, hashtag) pairs, batched.

DataLoader workers made training slower on 2 cores (measured for the course: the worker
processes compete with the training thread for the same two cores), so the data stays in memory
as tensors and each batch is one index into them; views are made per batch with the batched ops
of ``cl_teach.augment``. Every epoch is shuffled by a generator seeded from ``seed`` and the
epoch number, so a seeded run reproduces its batches.

Under ``torchrun`` ``fit`` iterates ``loader.shard(rank, world_size)`` instead, DistributedSampler
style: every process draws the same global batch (same seed, same epoch) and keeps its
contiguous 1/W slice, so the W slices, in rank order, are the single-process batch.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from .._validate import check_positive, check_tensor
from .ngrams import pack

__all__ = ["TensorLoader", "ViewLoader", "HashtagPairLoader", "Shard"]


class TensorLoader:
    """Shuffled batches of aligned tensors: yields ``(a[idx], b[idx], ...)`` per batch.

    Args:
        *tensors: one or more (N, ...) tensors with the same N, e.g. ``(images, token_ids)``
            for CLIP, or ``(anchors, positives, negatives)`` for supervised SimCSE.
        batch_size: items per batch.
        shuffle: a new random order every epoch (else the stored order).
        drop_last: drop the last partial batch (default True: the contrastive losses compare
            within a batch).
        seed: fixes the shuffling of every epoch.

    Example:
        >>> loader = TensorLoader(torch.rand(10, 3), torch.arange(10), batch_size=4)
        >>> len(loader), [t.shape for t in next(iter(loader))]
        (2, [torch.Size([4, 3]), torch.Size([4])])
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int = 256, shuffle: bool = True,
                 drop_last: bool = True, seed: int = 0):
        if not tensors:
            raise ValueError("TensorLoader needs at least one tensor, got none")
        for i, t in enumerate(tensors):
            check_tensor(f"tensors[{i}]", t, finite=False, floating=False)
        n = tensors[0].shape[0]
        if any(t.shape[0] != n for t in tensors):
            raise ValueError(f"tensors must have the same first dimension, got "
                             f"{[t.shape[0] for t in tensors]}")
        check_positive("batch_size", batch_size, integer=True)
        if drop_last and batch_size > n:
            raise ValueError(f"batch_size must be <= the number of items ({n}) when "
                             f"drop_last=True, got {batch_size}")
        self.tensors, self.n = tensors, n
        self.batch_size, self.shuffle, self.drop_last, self.seed = batch_size, shuffle, drop_last, seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def batches(self):
        """Yield ``(idx, generator)`` per batch: the rows of the batch, and the epoch's generator."""
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        self.epoch += 1
        order = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
        for i in range(len(self)):
            yield order[i * self.batch_size:(i + 1) * self.batch_size], g

    def __iter__(self):
        for idx, g in self.batches():
            yield self._part(idx, g)

    def shard(self, rank: int, world_size: int) -> Shard:
        """Process ``rank``'s slice of every batch, out of ``world_size`` processes (see :class:`Shard`).

        Example:
            >>> loader = TensorLoader(torch.arange(8), batch_size=4, shuffle=False)
            >>> [b[0].tolist() for b in loader.shard(1, 2)]
            [[2, 3], [6, 7]]
        """
        return Shard(self, rank, world_size)

    def _part(self, idx: torch.Tensor, g: torch.Generator, rows: slice = slice(None)) -> tuple:
        """The ``rows`` (default: all) of the batch of items ``idx`` drawn with ``g``.

        ``__iter__`` yields the whole batch, a :class:`Shard` its slice; subclasses that make
        views or bags override this alone.
        """
        return tuple(t[idx[rows]] for t in self.tensors)


class Shard:
    """One process's part of a loader's batches: rows ``[r b / W, (r + 1) b / W)`` of each batch of b.

    Every process iterates the same shuffled batches (the loader's seed and epoch), so the W
    parts, in rank order, are exactly the single-process batch; a loader that makes views makes
    them for the whole batch first (the same random draws as one process) and keeps its rows. A
    last partial batch that does not split evenly is dropped.

    Args:
        loader: a :class:`TensorLoader` (or ``ViewLoader``, ``HashtagPairLoader``).
        rank: this process, 0 <= rank < world_size.
        world_size: the number of processes W; ``loader.batch_size`` must be a multiple of it.
    """

    def __init__(self, loader: TensorLoader, rank: int, world_size: int):
        if not isinstance(loader, TensorLoader):
            raise TypeError(f"loader must be a TensorLoader, ViewLoader or HashtagPairLoader, got "
                            f"{type(loader).__name__}")
        check_positive("world_size", world_size, integer=True)
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
            raise ValueError(f"rank must be an int in [0, {world_size}), got {rank!r}")
        if loader.batch_size % world_size:
            raise ValueError(f"batch_size ({loader.batch_size}) must be a multiple of the number of "
                             f"processes ({world_size}), so that each gets an equal slice")
        self.loader, self.rank, self.world_size = loader, rank, world_size

    def __len__(self) -> int:
        rest = self.loader.n % self.loader.batch_size
        uneven = not self.loader.drop_last and rest % self.world_size > 0
        return len(self.loader) - uneven

    def __iter__(self):
        for idx, g in self.loader.batches():
            if len(idx) % self.world_size:                          # the last partial batch
                return
            b = len(idx) // self.world_size
            yield self.loader._part(idx, g, slice(self.rank * b, (self.rank + 1) * b))


class ViewLoader(TensorLoader):
    """Shuffled batches of ``x``, yielding one augmented view per callable in ``views``.

    Args:
        x: (N, ...) data, kept in memory.
        views: one callable ``(batch, generator) -> view`` per view (e.g. ``[Augment()] * 2``).
        batch_size: images per batch.
        shuffle: a new random order every epoch.
        drop_last: drop the last partial batch (default True).
        seed: fixes the shuffling and the augmentation of every epoch.
        y: optional (N,) labels; each batch then ends with its labels (supervised training on
            augmented views, notebook 05).

    Example:
        >>> from cl_teach.augment import Augment
        >>> loader = ViewLoader(torch.rand(10, 1, 28, 28), [Augment()] * 2, batch_size=4)
        >>> len(loader), [v.shape[0] for v in next(iter(loader))]
        (2, [4, 4])
    """

    def __init__(self, x: torch.Tensor, views: Sequence[Callable], batch_size: int = 256,
                 shuffle: bool = True, drop_last: bool = True, seed: int = 0, y: torch.Tensor | None = None):
        if isinstance(views, (str, bytes)) or not hasattr(views, "__iter__"):
            raise TypeError(f"views must be a list of callables (batch, generator) -> view, e.g. "
                            f"[Augment()] * 2 (for plain batches use TensorLoader), got {views!r}")
        views = list(views)
        if not views or not all(callable(v) for v in views):
            raise TypeError(f"views must be a non-empty list of callables (batch, generator) -> view, "
                            f"got {views!r}")
        super().__init__(x, *(() if y is None else (y,)), batch_size=batch_size, shuffle=shuffle,
                         drop_last=drop_last, seed=seed)
        self.x, self.y, self.views = x, y, views

    def _part(self, idx, g, rows=slice(None)):
        xb = self.x[idx]                            # views of the whole batch: one process's draws
        return tuple(v(xb, g)[rows] for v in self.views) + (() if self.y is None else (self.y[idx[rows]],))


class HashtagPairLoader(TensorLoader):
    """Shuffled batches of (post, hashtag) pairs, with n-gram dropout, for :func:`cl_teach.train.fit`.

    Yields ``(posts, tags, same)``: ``posts`` and ``tags`` are the ``(ids, offsets, weights)``
    inputs of the towers (:func:`cl_teach.data.ngrams.pack`), and ``same`` (B, B) marks pairs
    sharing a post or a hashtag (the false negatives :func:`cl_teach.losses.masked_info_nce`
    leaves out). Under ``torchrun`` (:meth:`shard`) a process gets its rows of the posts and
    hashtags and the ``same`` of the whole global batch.

    Args:
        post_bags: featurised posts (``CharNgrams.transform(posts)``).
        tag_bags: featurised hashtags.
        pairs: (P, 2) int array of (post index, tag index).
        idf: (n_features,) the featuriser's ``idf_``.
        batch_size: pairs per batch (the last partial batch is dropped).
        drop: n-gram dropout probability (see :func:`cl_teach.data.ngrams.pack`).
        seed: fixes the shuffling and the dropout of every epoch.
        index: ``tag_bags`` are the whole candidate index; each batch then also yields ``tag_ids``
            (B,) (the hashtags' indices), ``false_negatives`` (B, T) (the post's other hashtags)
            and ``every_tag``, all T hashtags packed without dropout (for
            :func:`cl_teach.losses.index_nce` and towers with hashtag ids).
    """

    def __init__(self, post_bags, tag_bags, pairs: np.ndarray, idf: np.ndarray, batch_size: int = 256,
                 drop: float = 0.3, seed: int = 0, index: bool = False):
        pairs = np.asarray(pairs)
        if pairs.ndim != 2 or pairs.shape[1] != 2 or len(pairs) < batch_size:
            raise ValueError(f"pairs must be a (P, 2) array with P >= batch_size ({batch_size}), "
                             f"got shape {pairs.shape}")
        super().__init__(torch.as_tensor(pairs), batch_size=batch_size, seed=seed)
        self.pairs = self.tensors[0]
        self.post_bags, self.tag_bags, self.idf, self.drop = post_bags, tag_bags, idf, drop
        if pairs.min() < 0 or pairs[:, 1].max() >= len(tag_bags) or pairs[:, 0].max() >= len(post_bags):
            raise ValueError(f"pairs must index the {len(post_bags)} posts and {len(tag_bags)} "
                             f"hashtags, got values in [{pairs.min()}, {pairs.max(0).tolist()}]")
        self.index = bool(index)
        if self.index:
            self.every_tag = pack(list(tag_bags), idf)               # (T bags), no dropout
            self.tags_of_post = torch.zeros(len(post_bags), len(tag_bags), dtype=torch.bool)
            self.tags_of_post[self.pairs[:, 0], self.pairs[:, 1]] = True

    def _part(self, idx, g, rows=slice(None)):
        """The ``rows`` of the posts and hashtags, and the whole batch's ``same``."""
        p, t = self.pairs[idx].T
        same = (p[:, None] == p[None]) | (t[:, None] == t[None])   # (B, B): the whole batch's
        posts = pack([self.post_bags[j] for j in p.tolist()], self.idf, self.drop, g)
        tags = pack([self.tag_bags[j] for j in t.tolist()], self.idf, self.drop, g)
        out = (_bags(posts, rows), _bags(tags, rows), same)
        if not self.index:
            return out
        false_neg = self.tags_of_post[p[rows]]                      # (b, T) the post's hashtags
        false_neg[torch.arange(len(false_neg)), t[rows]] = False     # ... but its positive
        return out + (t[rows], false_neg, self.every_tag)


def _bags(packed, rows: slice):
    """Bags ``rows`` of an ``(ids, offsets, weights)`` triple of :func:`~cl_teach.data.ngrams.pack`."""
    ids, offsets, weights = packed
    start, stop, _ = rows.indices(len(offsets))
    lo = int(offsets[start])
    hi = int(offsets[stop]) if stop < len(offsets) else len(ids)
    return ids[lo:hi], offsets[rows] - lo, weights[lo:hi]
