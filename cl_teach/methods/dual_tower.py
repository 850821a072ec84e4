"""CD-TOM's dual tower (the Weibo talk): f_post for posts, f_tag for hashtags, one joint space.

A post x and one of its hashtags y are a positive pair; the other hashtags of the batch are the
negatives (SimCLR-style in-batch negatives, Chen et al., 2020). Two posts of a batch that share a
hashtag would be each other's *false* negatives, so :func:`cl_teach.losses.masked_info_nce`
leaves those logits out of the softmax. Batches come from :class:`cl_teach.data.HashtagPairLoader`.
"""
from __future__ import annotations

import torch

from ..distributed import gather
from ..losses import index_nce, masked_info_nce
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
        negatives: ``"batch"``: the batch's other hashtags (masked InfoNCE, symmetric);
            ``"index"``: every hashtag of the index (:func:`~cl_teach.losses.index_nce`, post to
            hashtag; needs ``HashtagPairLoader(..., index=True)``).
        mask: leave the false negatives out (True) or push them away like any negative (False).
        **kw: passed to :class:`~cl_teach.models.TextTower` (``head``, ``init_std``, ``n_items``:
            hashtag ids, which need the loader's ``index=True`` for the ids).

    Example:
        >>> from cl_teach.data.ngrams import pack
        >>> import numpy as np
        >>> model = DualTower(5, dim=4, out_dim=4, head=False)
        >>> model(pack([np.array([1, 2]), np.array([3])], np.ones(5, np.float32))).shape
        torch.Size([2, 4])
    """

    def __init__(self, n_features: int, dim: int = 128, out_dim: int = 128, shared: bool = False,
                 temperature: float = 0.05, negatives: str = "batch", mask: bool = True, **kw):
        if negatives not in ("batch", "index"):
            raise ValueError(f"negatives must be 'batch' or 'index', got {negatives!r}")
        post_kw = dict(kw, n_items=0)                               # posts have no ids
        super().__init__(TextTower(n_features, dim, out_dim, **(kw if shared else post_kw)))
        self.tag_tower = self.encoder if shared else TextTower(n_features, dim, out_dim, **kw)
        self.temperature, self.negatives, self.mask = temperature, negatives, bool(mask)

    @property
    def post_tower(self) -> TextTower:
        """f_post, the encoder (``forward`` uses it)."""
        return self.encoder

    def forward(self, posts) -> torch.Tensor:
        """H = f_post(posts), shape (N, out_dim); ``posts`` is an ``(ids, offsets, weights)`` triple."""
        return self.encoder(*posts)

    def training_step(self, batch) -> dict:
        """One step: masked InfoNCE of (B, D) posts vs hashtags, shared-hashtag posts left out.

        With index negatives every post meets every hashtag; its loss is one term per post, so
        under ``torchrun`` each process's mean, averaged by DDP, is the global batch's.
        """
        posts, tags, same, *index = batch                           # (ids, offsets, weights) x 2
        if self.negatives == "index" and not index:
            raise ValueError("negatives='index' needs HashtagPairLoader(..., index=True) batches")
        ids = index[0] if index and self.tag_tower.items is not None else None
        z_post = self.encoder(*posts)                               # (B, D)
        if self.negatives == "index":
            tag_ids, false_neg, every_tag = index
            every = torch.arange(len(false_neg[0])) if self.tag_tower.items is not None else None
            z_all = self.tag_tower(*every_tag, items=every)         # (T, D): the whole index
            loss = index_nce(z_post, z_all, tag_ids, false_neg if self.mask else None,
                             self.temperature)
            return {"loss": loss, "z1": z_post.detach(), "z2": z_all[tag_ids].detach()}
        z_tag = self.tag_tower(*tags, items=ids)                    # (B, D)
        z_post, z_tag = gather(z_post), gather(z_tag)               # every process's; same: global
        if not self.mask:                                           # only the pair itself is kept
            same = torch.zeros_like(same)
        loss = masked_info_nce(z_post, z_tag, same, self.temperature)
        return {"loss": loss, "z1": z_post.detach(), "z2": z_tag.detach()}
