"""An in-memory loader that yields augmented views, batched.

DataLoader workers make things slower on 2 cores (see STACK_NOTES), so the data stays in memory
as one tensor and the views are made per batch with the batched ops of ``cl_teach.augment``.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import torch

from .._validate import check_positive, check_tensor


class ViewLoader:
    """Iterate over shuffled batches of ``x``, yielding a tuple of views per batch.

    Args:
        x: (N, ...) data, kept in memory.
        views: one callable ``(batch, generator) -> view`` per view (e.g. ``[Augment()] * 2``),
            or ``None`` to yield the raw batch as a 1-tuple.
        batch_size: images per batch. drop_last: drop the last partial batch (default True: the
            contrastive losses compare within a batch).
        seed: fixes the shuffling and the augmentation of every epoch.
        y: optional (N,) labels; when given, each batch ends with its labels.

    Example:
        >>> from cl_teach.augment import Augment
        >>> loader = ViewLoader(torch.rand(10, 1, 28, 28), [Augment()] * 2, batch_size=4)
        >>> len(loader), [v.shape[0] for v in next(iter(loader))]
        (2, [4, 4])
    """

    def __init__(self, x: torch.Tensor, views: Optional[Sequence[Callable]] = None,
                 batch_size: int = 256, shuffle: bool = True, drop_last: bool = True,
                 seed: int = 0, y: Optional[torch.Tensor] = None):
        check_tensor("x", x, finite=False, floating=False)
        check_positive("batch_size", batch_size, integer=True)
        if drop_last and batch_size > x.shape[0]:
            raise ValueError(f"batch_size must be <= the number of items ({x.shape[0]}) when "
                             f"drop_last=True, got {batch_size}")
        if y is not None and y.shape[0] != x.shape[0]:
            raise ValueError(f"y must have {x.shape[0]} labels to match x, got {tuple(y.shape)}")
        self.x, self.y, self.views = x, y, list(views) if views is not None else None
        self.batch_size, self.shuffle, self.drop_last, self.seed = batch_size, shuffle, drop_last, seed
        self.epoch = 0

    def __len__(self) -> int:
        n = self.x.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        self.epoch += 1
        n = self.x.shape[0]
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            xb = self.x[idx]
            out = (xb,) if self.views is None else tuple(v(xb, g) for v in self.views)
            yield out + ((self.y[idx],) if self.y is not None else ())
