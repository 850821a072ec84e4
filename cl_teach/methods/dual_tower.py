"""CD-TOM's dual tower (the Weibo talk): f_post for posts, f_tag for hashtags, one joint space.

A post x and one of its hashtags y are a positive pair; the other hashtags of the batch are the
negatives (SimCLR-style in-batch negatives, Chen et al., 2020). Two posts of a batch that share a
hashtag would be each other's *false* negatives, so :func:`cl_teach.losses.masked_info_nce`
leaves those logits out of the softmax. Batches come from :class:`cl_teach.data.HashtagPairLoader`.
"""
from __future__ import annotations

import torch

from ..distributed import gather
from ..losses import masked_info_nce
from ..models import TextTower
from .base import Method


class DualTower(Method):
    """Two :class:`~cl_teach.models.TextTower` s (or one shared), trained on (post, hashtag) pairs.

    ``forward(posts)`` -> h = f_post(posts), the representation of a batch of posts given as the
    ``(ids, offsets, weights)`` triple of :func:`cl_teach.data.ngrams.pack`; ``tag_tower``
    embeds hashtags the same way. Under ``torchrun`` each process gets its slice of the posts and
    hashtags and the (B, B) ``same`` of the whole global batch, whose embeddings it gathers.

    Args:
        n_features: input n-gram columns (the featuriser's ``n_features_``).
        dim: embedding width of each tower.
        out_dim: width of the joint space.
        shared: one tower for posts and hashtags.
        temperature: tau of :func:`~cl_teach.losses.masked_info_nce` (0.05: sharper than
            SimCLR's, there are only ~250 candidates per batch).
        **kw: passed to :class:`~cl_teach.models.TextTower` (``head``, ``init_std``).

    Example:
        >>> from cl_teach.data.ngrams import pack
        >>> import numpy as np
        >>> model = DualTower(5, dim=4, out_dim=4, head=False)
        >>> model(pack([np.array([1, 2]), np.array([3])], np.ones(5, np.float32))).shape
        torch.Size([2, 4])
    """

    def __init__(self, n_features: int, dim: int = 128, out_dim: int = 128, shared: bool = False,
                 temperature: float = 0.05, **kw):
        super().__init__(TextTower(n_features, dim, out_dim, **kw))
        self.tag_tower = self.encoder if shared else TextTower(n_features, dim, out_dim, **kw)
        self.temperature = temperature

    @property
    def post_tower(self) -> TextTower:
        """f_post, the encoder (``forward`` uses it)."""
        return self.encoder

    def forward(self, posts) -> torch.Tensor:
        """H = f_post(posts), shape (N, out_dim); ``posts`` is an ``(ids, offsets, weights)`` triple."""
        return self.encoder(*posts)

    def training_step(self, batch) -> dict:
        """One step: masked InfoNCE of (B, D) posts vs hashtags, shared-hashtag posts left out."""
        posts, tags, same = batch                                   # (ids, offsets, weights) x 2
        z_post = self.encoder(*posts)                               # (B, D)
        z_tag = self.tag_tower(*tags)                               # (B, D)
        z_post, z_tag = gather(z_post), gather(z_tag)               # every process's; same: global
        loss = masked_info_nce(z_post, z_tag, same, self.temperature)
        return {"loss": loss, "z1": z_post.detach(), "z2": z_tag.detach()}
