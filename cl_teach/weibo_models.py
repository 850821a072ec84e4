"""CD-TOM's pieces: hashed character n-grams, a post/hashtag dual tower, and its loss.

A post x and one of its hashtags y are a positive pair; the other hashtags of the batch are the
negatives (SimCLR-style in-batch negatives, Chen et al., 2020). Two posts of a batch that share a
hashtag would be each other's *false* negatives, so those logits are masked out of the softmax.

The towers read bags of character n-grams, hashed into buckets (the "hashing trick",
Weinberger et al., 2009; fastText, Joulin et al., 2017): Chinese has no spaces worth trusting,
and unseen hashtags still share characters with seen ones.
"""
from __future__ import annotations

import zlib
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._validate import check_positive, check_same_device_dtype, check_temperature, check_tensor

__all__ = ["CharNgrams", "TextTower", "DualTower", "PairLoader", "masked_info_nce", "embed_bags"]


def _grams(text: str, lo: int, hi: int, strip_spaces: bool) -> List[str]:
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

    def __init__(self, ngram_range: Tuple[int, int] = (1, 3), n_buckets: int = 2 ** 20,
                 min_count: int = 2, strip_spaces: bool = True):
        self.ngram_range, self.n_buckets, self.min_count, self.strip_spaces = ngram_range, n_buckets, min_count, strip_spaces

    def _buckets(self, text: str) -> np.ndarray:
        lo, hi = self.ngram_range
        return np.unique(np.array([zlib.crc32(g.encode("utf-8")) % self.n_buckets
                                   for g in _grams(text, lo, hi, self.strip_spaces)], dtype=np.int64))

    def fit(self, texts: Sequence[str]) -> "CharNgrams":
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
        self.idf_ = np.concatenate([[1.0], np.log((1 + len(texts)) / (1 + counts[kept])) + 1]).astype(np.float32)
        return self

    def transform(self, texts: Sequence[str]) -> List[np.ndarray]:
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
         generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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


class TextTower(nn.Module):
    """f: the TF-IDF-weighted sum of n-gram embeddings (fastText-like), optionally + an MLP head.

    Args:
        n_features: the featuriser's ``n_features_``. dim: embedding width. out_dim: joint space.
        head: add a residual LayerNorm-MLP (measured here: no help on ~4k pairs, so notebook
            14 uses ``head=False``, a purely linear tower).
        init_std: std of the initial embeddings; small (0.01, as fastText's uniform(+-1/dim))
            so that Adam's steps move them quickly.

    Example:
        >>> f = TextTower(10, dim=8, out_dim=8, head=False)
        >>> f(torch.tensor([1, 2, 3]), torch.tensor([0, 2]), torch.ones(3)).shape
        torch.Size([2, 8])
    """

    def __init__(self, n_features: int, dim: int = 128, out_dim: int = 128, head: bool = True, init_std: float = 0.1):
        super().__init__()
        self.bag = nn.EmbeddingBag(n_features, dim, mode="sum")
        nn.init.normal_(self.bag.weight, std=init_std)
        if not head and dim != out_dim:
            raise ValueError(f"head=False needs dim == out_dim (the bag is the output), got {dim} and {out_dim}")
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(),
                                  nn.Linear(dim, out_dim)) if head else None
        self.out_dim = out_dim

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        h = self.bag(ids, offsets, per_sample_weights=weights)      # (N, dim)
        if self.head is None:
            return h
        return h + self.head(h) if h.shape[1] == self.out_dim else self.head(h)


def masked_info_nce(query: torch.Tensor, key: torch.Tensor, same: torch.Tensor,
                    temperature: float = 0.05) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of pairs, with known false negatives left out.

    Args:
        query: (N, D) e.g. posts. key: (N, D) their hashtags; ``key[i]`` is the positive of
            ``query[i]``. Both L2-normalised inside.
        same: (N, N) bool; ``same[i, j]`` (i != j) marks pair j as another positive of query i
            (same hashtag or same post): that logit is removed rather than pushed down.
        temperature: tau > 0.

    Returns:
        The mean of the query->key and key->query cross-entropies, a 0-d tensor.

    Example:
        >>> z = torch.eye(3); same = torch.zeros(3, 3, dtype=torch.bool)
        >>> round(masked_info_nce(z, z, same, temperature=0.01).item(), 4)
        0.0
    """
    check_tensor("query", query, ndim=2)
    check_tensor("key", key, ndim=2)
    check_same_device_dtype("query", query, "key", key)
    if not isinstance(same, torch.Tensor) or same.dtype != torch.bool:
        raise TypeError(f"same must be a boolean torch.Tensor of shape (N, N), got "
                        f"{getattr(same, 'dtype', type(same).__name__)}")
    if query.shape != key.shape or same.shape != (query.shape[0],) * 2:
        raise ValueError(f"query and key must be (N, D) and same (N, N), got {tuple(query.shape)}, "
                         f"{tuple(key.shape)} and {tuple(same.shape)}")
    check_temperature(temperature)
    q, k = F.normalize(query, dim=1), F.normalize(key, dim=1)
    logits = q @ k.T / temperature                                  # (N, N), positives on the diagonal
    off_diag = same & ~torch.eye(len(q), dtype=torch.bool, device=q.device)
    labels = torch.arange(len(q), device=q.device)
    return 0.5 * (F.cross_entropy(logits.masked_fill(off_diag, float("-inf")), labels)
                  + F.cross_entropy(logits.T.masked_fill(off_diag.T, float("-inf")), labels))


class PairLoader:
    """Shuffled batches of (post, hashtag) pairs, with n-gram dropout, for :func:`cl_teach.train.fit`.

    Yields ``(post_ids, post_offsets, tag_ids, tag_offsets, same)`` where ``same`` (B, B) marks
    pairs sharing a post or a hashtag.

    Args:
        post_bags, tag_bags: featurised texts. pairs: (P, 2) int array of (post index, tag index).
    """

    def __init__(self, post_bags, tag_bags, pairs: np.ndarray, idf: np.ndarray, batch_size: int = 256,
                 drop: float = 0.3, seed: int = 0):
        pairs = np.asarray(pairs)
        if pairs.ndim != 2 or pairs.shape[1] != 2 or len(pairs) < batch_size:
            raise ValueError(f"pairs must be a (P, 2) array with P >= batch_size ({batch_size}), "
                             f"got shape {pairs.shape}")
        self.post_bags, self.tag_bags, self.pairs, self.idf = post_bags, tag_bags, torch.as_tensor(pairs), idf
        self.batch_size, self.drop, self.seed, self.epoch = batch_size, drop, seed, 0

    def __len__(self) -> int:
        return len(self.pairs) // self.batch_size

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        self.epoch += 1
        order = torch.randperm(len(self.pairs), generator=g)
        for i in range(len(self)):
            p, t = self.pairs[order[i * self.batch_size:(i + 1) * self.batch_size]].T
            same = (p[:, None] == p[None]) | (t[:, None] == t[None])
            yield (pack([self.post_bags[j] for j in p.tolist()], self.idf, self.drop, g),
                   pack([self.tag_bags[j] for j in t.tolist()], self.idf, self.drop, g), same)


class DualTower(nn.Module):
    """CD-TOM's two towers: f_post for posts, f_tag for hashtags (or one shared tower).

    Args:
        n_features: input n-gram columns. dim, out_dim: tower widths. shared: one tower for both.
        temperature: tau of :func:`masked_info_nce` (0.05: sharper than SimCLR's, there are
            only ~250 candidates per batch).
    """

    def __init__(self, n_features: int, dim: int = 128, out_dim: int = 128, shared: bool = False,
                 temperature: float = 0.05, **kw):
        super().__init__()
        self.post_tower = TextTower(n_features, dim, out_dim, **kw)
        self.tag_tower = self.post_tower if shared else TextTower(n_features, dim, out_dim, **kw)
        self.temperature = temperature

    def training_step(self, batch) -> dict:
        posts, tags, same = batch                                   # (ids, offsets, weights) x 2
        z_post = self.post_tower(*posts)                            # (B, D)
        z_tag = self.tag_tower(*tags)                               # (B, D)
        loss = masked_info_nce(z_post, z_tag, same, self.temperature)
        return {"loss": loss, "z1": z_post.detach(), "z2": z_tag.detach()}


@torch.no_grad()
def embed_bags(tower: TextTower, bags: Sequence[np.ndarray], idf: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """L2-normalised (N, D) float32 embeddings of N featurised texts, in eval mode.

    Args:
        tower: a :class:`TextTower` (e.g. ``model.post_tower`` of a :class:`DualTower`).
        bags: N int arrays of n-gram columns, from ``CharNgrams.transform(texts)``.
        idf: (n_features,) the featurizer's ``idf_``.

    (Not :func:`cl_teach.pretrained.embed_texts`, which embeds raw strings with a frozen
    pretrained sentence encoder.)
    """
    if not isinstance(tower, nn.Module):
        raise TypeError(f"tower must be a TextTower (an nn.Module), got {type(tower).__name__}")
    if isinstance(bags, str) or not hasattr(bags, "__len__"):
        raise TypeError(f"bags must be a sequence of int arrays from CharNgrams.transform(texts), "
                        f"got {type(bags).__name__}")
    if len(bags) == 0:
        raise ValueError("bags must hold at least one featurised text, got an empty sequence")
    if not isinstance(idf, np.ndarray) or idf.ndim != 1:
        raise ValueError(f"idf must be the featurizer's 1-d idf_ array, got "
                         f"{getattr(idf, 'shape', type(idf).__name__)}")
    check_positive("batch_size", batch_size, integer=True)
    was = tower.training
    tower.eval()
    device = next(tower.parameters()).device
    try:
        out = [F.normalize(tower(*(t.to(device) for t in pack(bags[i:i + batch_size], idf))), dim=1).cpu()
               for i in range(0, len(bags), batch_size)]
    finally:
        tower.train(was)
    return torch.cat(out).numpy().astype(np.float32)


def fit_hashtag_towers(posts: Sequence[str], tags: Sequence[Sequence[str]], epochs: int = 10,
                       seed: int = 0, callbacks=(), progress: bool = False):
    """Notebook 14's recipe in one call: featurise, train one shared tower on (post, hashtag).

    Hashed 1-3-gram characters seen in >= 3 texts, 64-d bag embeddings, 50 % n-gram dropout,
    temperature 0.1, batch 256, fused AdamW at lr 1e-2 for ``epochs`` epochs.

    Returns:
        ``(model, featurizer)``: the trained :class:`DualTower` (on the CPU) and its
        :class:`CharNgrams`; embed with ``embed_bags(model.post_tower,
        featurizer.transform(texts), featurizer.idf_)``.
    """
    from .train import fit
    vocab = sorted({t for ts in tags for t in ts})
    index = {t: i for i, t in enumerate(vocab)}
    featurizer = CharNgrams(ngram_range=(1, 3), min_count=3).fit(list(posts) + vocab)
    pairs = np.array([(i, index[t]) for i, ts in enumerate(tags) for t in ts])
    torch.manual_seed(seed)
    model = DualTower(featurizer.n_features_, dim=64, out_dim=64, shared=True, temperature=0.1,
                      head=False, init_std=0.01)
    loader = PairLoader(featurizer.transform(posts), featurizer.transform(vocab), pairs,
                        featurizer.idf_, batch_size=min(256, len(pairs)), drop=0.5, seed=seed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4, fused=True)
    fit(model, loader, epochs=epochs, optimizer=opt, callbacks=callbacks, progress=progress)
    return model.cpu(), featurizer
