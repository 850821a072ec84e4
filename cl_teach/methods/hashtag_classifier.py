"""The supervised comparator of CD-TOM's tower: a softmax classifier over the candidate hashtags.

The post is embedded exactly as the tower's post side (a :class:`~cl_teach.models.TextTower`
over n-gram bags); each hashtag is a free class vector (a linear layer with bias), trained with
plain softmax cross-entropy over ALL candidates, one term per (post, hashtag) pair. It never
reads a hashtag's text, so a hashtag absent from training is never learned: the difference
from the contrastive tower (whose hashtag side reads the hashtag's n-grams) that a noise or
open-world comparison measures.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models import TextTower
from .base import Method


class SoftmaxClassifier(Method):
    """f_post (a TextTower) then logits = W h + b over ``n_classes`` hashtags.

    ``training_step`` takes :class:`cl_teach.data.HashtagPairLoader` batches made with
    ``index=True`` (it reads each pair's hashtag index ``tag_ids``) and ignores the packed
    hashtag texts: the classifier has no hashtag tower.

    Args:
        n_features: input n-gram columns (the featuriser's ``n_features_``).
        n_classes: candidate hashtags (T).
        dim: embedding width of the post tower.
        **kw: passed to :class:`~cl_teach.models.TextTower` (``head``, ``init_std``).

    Example:
        >>> from cl_teach.data.ngrams import pack
        >>> import numpy as np
        >>> model = SoftmaxClassifier(5, n_classes=3, dim=4, head=False)
        >>> model.logits(pack([np.array([1, 2]), np.array([3])], np.ones(5, np.float32))).shape
        torch.Size([2, 3])
    """

    def __init__(self, n_features: int, n_classes: int, dim: int = 64, **kw):
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"n_classes must be an int >= 2 (the candidate hashtags), got {n_classes!r}")
        super().__init__(TextTower(n_features, dim, dim, **kw))
        self.classifier = nn.Linear(dim, n_classes)                 # one free vector per hashtag

    def forward(self, posts) -> torch.Tensor:
        """H = f_post(posts), shape (N, dim); ``posts`` is an ``(ids, offsets, weights)`` triple."""
        return self.encoder(*posts)

    def logits(self, posts) -> torch.Tensor:
        """(N, T) class scores W h + b of a packed batch of posts."""
        return self.classifier(self.encoder(*posts))

    def training_step(self, batch) -> dict:
        """Cross-entropy of each (post, hashtag) pair's logits (B, T) against its hashtag."""
        if len(batch) < 4:
            raise ValueError("SoftmaxClassifier needs HashtagPairLoader(..., index=True) batches "
                             f"(posts, tags, same, tag_ids, ...), got a tuple of {len(batch)}")
        posts, _, _, tag_ids = batch[:4]
        h = self.encoder(*posts)                                    # (B, D)
        logits = self.classifier(h)                                 # (B, T)
        loss = F.cross_entropy(logits, tag_ids)
        acc = (logits.argmax(1) == tag_ids).float().mean()
        return {"loss": loss, "acc": acc.detach(), "z1": h.detach(), "z2": h.detach()}
