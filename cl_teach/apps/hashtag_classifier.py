"""The supervised comparator of the open-world tower: a softmax classifier over the candidates.

:func:`fit_hashtag_classifier` trains :class:`cl_teach.methods.SoftmaxClassifier` on the same
inputs as :func:`cl_teach.apps.hashtag_tower.fit_open_world_tower` (the same featuriser, post
texts, (post, hashtag) pairs, width, n-gram dropout, optimiser and epochs), so that a
comparison of the two isolates one choice: a hashtag as its text (the tower) or as a free class
vector (the classifier, which cannot rank a hashtag it never saw in training).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..data import CharNgrams, HashtagPairLoader, pack
from ..methods import SoftmaxClassifier
from ..models import evaluating
from ..train import fit
from .hashtag_tower import TowerConfig, _featurize_pairs, post_texts

__all__ = ["HashtagClassifier", "fit_hashtag_classifier"]

DEFAULT_CONFIG = TowerConfig()


@dataclass
class HashtagClassifier:
    """A trained softmax classifier, its featuriser and the candidate hashtags (its classes)."""

    model: SoftmaxClassifier
    featurizer: CharNgrams
    candidates: list[str]
    config: TowerConfig

    def scores(self, posts: Sequence[str], replies: Sequence[str] | None = None,
               batch_size: int = 1024) -> np.ndarray:
        """(Q, T) logits of each post for every candidate (replies used when the config reads them)."""
        texts = post_texts(posts, replies if self.config.replies else None)
        bags = self.featurizer.transform(texts)
        out = []
        with evaluating(self.model), torch.no_grad():
            for i in range(0, len(bags), batch_size):
                out.append(self.model.logits(pack(bags[i:i + batch_size], self.featurizer.idf_)))
        return torch.cat(out).numpy().astype(np.float32)


def fit_hashtag_classifier(posts: Sequence[str], replies: Sequence[str] | None,
                           tags: Sequence[Sequence[str]], candidates: Sequence[str],
                           config: TowerConfig = DEFAULT_CONFIG, seed: int = 0, callbacks=(),
                           progress: bool = False) -> HashtagClassifier:
    """Train a softmax classifier over ``candidates`` on the (post, hashtag) pairs of ``tags``.

    The tower's recipe with a free class vector per hashtag: ``config.dim``-wide post bags (plus
    ``config.head``), n-gram dropout ``config.drop``, AdamW at ``config.lr`` for
    ``config.epochs`` epochs, batch 256, the same shuffling for a given ``seed``. The contrastive
    options (``negatives``, ``mask``, ``temperature``, ``ids``) do not apply and are ignored.

    Raises:
        ValueError: on misaligned inputs, duplicate candidates or no pair among the candidates.
        TypeError: when ``config`` is not a TowerConfig.

    Example:
        >>> posts = [f"apple pie {i}" for i in range(40)] + [f"rain storm {i}" for i in range(40)]
        >>> tags = [["food"]] * 40 + [["weather"]] * 40
        >>> clf = fit_hashtag_classifier(posts, None, tags, ["food", "weather"],
        ...                              TowerConfig(replies=False, dim=8, epochs=20, min_count=1))
        >>> clf.scores(["apple pie", "rain storm"]).argmax(1).tolist()
        [0, 1]
    """
    featurizer, texts, pairs = _featurize_pairs(posts, replies, tags, candidates, config)
    candidates = list(candidates)
    torch.manual_seed(seed)
    model = SoftmaxClassifier(featurizer.n_features_, n_classes=len(candidates), dim=config.dim,
                              head=config.head, init_std=0.01)
    loader = HashtagPairLoader(featurizer.transform(texts), featurizer.transform(candidates), pairs,
                               featurizer.idf_, batch_size=min(256, len(pairs)), drop=config.drop,
                               seed=seed, index=True)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4, fused=True)
    fit(model, loader, epochs=config.epochs, optimizer=opt, callbacks=callbacks, progress=progress)
    return HashtagClassifier(model.cpu(), featurizer, candidates, config)
