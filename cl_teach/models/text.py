"""Small text towers f_text, sized for a laptop CPU; each exposes ``out_dim``.

Two read the padded LongTensor made by :meth:`cl_teach.data.Vocab.encode` (id 0 = padding,
masked out of the pooling), like the image towers of :mod:`cl_teach.models.vision` (for images
use ``SmallCNN(in_channels=3)``):

* :class:`TextCNN` -- embeddings, two 1-d convolutions (width 3) with a residual, then masked
  mean + max pooling (Kim, 2014, "Convolutional Neural Networks for Sentence Classification").
  Fast; the default tower of notebooks 15, 16 and 19.
* :class:`TinyTransformer` -- embeddings + learned positions, a pre-norm transformer encoder,
  masked mean pooling (Vaswani et al., 2017). Dropout inside is what makes SimCSE's two
  "views" of a sentence differ (Gao et al., 2021), so notebook 14 uses it.

The third reads bags of hashed character n-grams (:mod:`cl_teach.data.ngrams`):

* :class:`TextTower` -- the TF-IDF-weighted sum of n-gram embeddings (fastText, Joulin et al.,
  2017), CD-TOM's post and hashtag tower (notebooks 17-19).
"""
from __future__ import annotations

import torch
from torch import nn

from .._validate import check_positive, check_token_ids

__all__ = ["TextCNN", "TinyTransformer", "TextTower"]


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of x (N, L, D) over the positions where mask (N, L) is True; 0 for empty rows."""
    m = mask.unsqueeze(-1).to(x.dtype)                              # (N, L, 1)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


class TextCNN(nn.Module):
    """f_text: embedding -> 2 x (conv1d width 3, ReLU) with a residual -> mean + max pool -> Linear.

    Args:
        vocab_size: ``len(vocab)``.
        dim: embedding and channel width.
        out_dim: size of h.
        dropout: on the embeddings and before the output layer.

    Example:
        >>> f = TextCNN(vocab_size=10, dim=8, out_dim=16)
        >>> f(torch.tensor([[2, 3, 0], [4, 0, 0]])).shape, f.out_dim
        (torch.Size([2, 16]), 16)
    """

    def __init__(self, vocab_size: int, dim: int = 128, out_dim: int = 128, dropout: float = 0.1):
        super().__init__()
        check_positive("vocab_size", vocab_size, integer=True)
        check_positive("dim", dim, integer=True)
        check_positive("out_dim", out_dim, integer=True)
        self.vocab_size, self.out_dim = vocab_size, out_dim
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.conv1 = nn.Conv1d(dim, dim, 3, padding=1)
        self.conv2 = nn.Conv1d(dim, dim, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(2 * dim, out_dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:           # (N, L) -> (N, out_dim)
        """H (N, out_dim) of padded ids (N, L): masked mean + max of the residual convolutions."""
        check_token_ids(ids, self.vocab_size)
        mask = ids != 0                                             # (N, L)
        e = self.drop(self.embed(ids)).transpose(1, 2)              # (N, D, L)
        c = torch.relu(self.conv1(e)) * mask.unsqueeze(1)          # padding stays 0 for conv2
        c = (e + torch.relu(self.conv2(c))).transpose(1, 2)         # (N, L, D)
        mean = _masked_mean(c, mask)                                # (N, D)
        mx = c.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)
        mx = torch.where(torch.isfinite(mx), mx, torch.zeros_like(mx))   # all-padding rows -> 0
        return self.out(self.drop(torch.cat([mean, mx], dim=1)))


class TinyTransformer(nn.Module):
    """f_text: token + position embeddings -> pre-norm transformer encoder -> masked mean -> Linear.

    Args:
        vocab_size: ``len(vocab)``.
        dim: model width.
        out_dim: size of h.
        n_layers: encoder depth.
        n_heads: attention heads.
        max_len: longest input (positions learned).
        dropout: attention/MLP/embedding dropout (BERT and SimCSE: 0.1).

    Example:
        >>> f = TinyTransformer(vocab_size=10, dim=16, out_dim=8, n_heads=2)
        >>> f(torch.tensor([[2, 3, 0], [4, 0, 0]])).shape
        torch.Size([2, 8])
    """

    def __init__(self, vocab_size: int, dim: int = 128, out_dim: int = 128, n_layers: int = 2,
                 n_heads: int = 4, max_len: int = 64, dropout: float = 0.1):
        super().__init__()
        for name, v in (("vocab_size", vocab_size), ("dim", dim), ("out_dim", out_dim),
                        ("n_layers", n_layers), ("n_heads", n_heads), ("max_len", max_len)):
            check_positive(name, v, integer=True)
        if dim % n_heads:
            raise ValueError(f"dim must be divisible by n_heads ({n_heads}), got {dim}")
        self.vocab_size, self.max_len, self.out_dim = vocab_size, max_len, out_dim
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.pos = nn.Parameter(torch.zeros(max_len, dim))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, n_heads, 2 * dim, dropout, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, out_dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:           # (N, L) -> (N, out_dim)
        """H (N, out_dim) of padded ids (N, L): masked mean of the encoder's normalised outputs."""
        check_token_ids(ids, self.vocab_size)
        if ids.shape[1] > self.max_len:
            raise ValueError(f"ids must have at most max_len={self.max_len} positions, got {ids.shape[1]}")
        mask = ids != 0                                             # (N, L)
        x = self.drop(self.embed(ids) + self.pos[:ids.shape[1]])    # (N, L, D)
        # An all-padding row would make attention softmax over nothing (NaN): let it see slot 0.
        pad = ~mask
        pad[:, 0] = False
        x = self.encoder(x, src_key_padding_mask=pad)               # (N, L, D)
        return self.out(_masked_mean(self.norm(x), mask))


class TextTower(nn.Module):
    """f: the TF-IDF-weighted sum of n-gram embeddings (fastText-like), optionally + an MLP head.

    Args:
        n_features: the featuriser's ``n_features_``.
        dim: embedding width.
        out_dim: width of the joint space.
        head: add a residual LayerNorm-MLP (measured here: no help on ~4k pairs, so notebook
            14 uses ``head=False``, a purely linear tower).
        init_std: std of the initial embeddings; small (0.01, as fastText's uniform(+-1/dim))
            so that Adam's steps move them quickly.
        n_items: > 0 adds one free embedding per item (a hashtag's id; zero at the start) to
            the bag of the texts called with ``items=`` (a hashtag is its text plus its id;
            posts pass no ids).

    Example:
        >>> f = TextTower(10, dim=8, out_dim=8, head=False)
        >>> f(torch.tensor([1, 2, 3]), torch.tensor([0, 2]), torch.ones(3)).shape
        torch.Size([2, 8])
    """

    def __init__(self, n_features: int, dim: int = 128, out_dim: int = 128, head: bool = True,
                 init_std: float = 0.1, n_items: int = 0):
        super().__init__()
        self.bag = nn.EmbeddingBag(n_features, dim, mode="sum")
        nn.init.normal_(self.bag.weight, std=init_std)
        if isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < 0:
            raise ValueError(f"n_items must be an int >= 0 (0: no item embeddings), got {n_items!r}")
        self.items = nn.Embedding(n_items, dim) if n_items else None
        if self.items is not None:
            nn.init.zeros_(self.items.weight)
        if not head and dim != out_dim:
            raise ValueError(f"head=False needs dim == out_dim (the bag is the output), "
                             f"got {dim} and {out_dim}")
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(),
                                  nn.Linear(dim, out_dim)) if head else None
        self.out_dim = out_dim

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor,
                items: torch.Tensor | None = None) -> torch.Tensor:
        """H (N, out_dim) of N packed bags: the weighted sum of their n-gram embeddings (+ the head).

        ``items`` (N,) long adds each bag's item embedding (a tower made with ``n_items``).
        """
        h = self.bag(ids, offsets, per_sample_weights=weights)      # (N, dim)
        if items is not None:
            if self.items is None:
                raise ValueError("items were given but the tower has no item embeddings (n_items=0)")
            if items.shape != (h.shape[0],):
                raise ValueError(f"items must be a (N,) = ({h.shape[0]},) tensor of ids, one per bag, "
                                 f"got shape {tuple(items.shape)}")
            h = h + self.items(items)
        if self.head is None:
            return h
        return h + self.head(h) if h.shape[1] == self.out_dim else self.head(h)
