"""CD-TOM's tower for the open world: train it on (post, hashtag) pairs, rank the index with Faiss.

The talk's system is a (post, hashtag) dual tower whose hashtag embeddings sit in a Faiss index;
a new post retrieves its top-k hashtags. :func:`fit_open_world_tower` trains one on the posts of
a split against EVERY candidate hashtag of the open world (:mod:`cl_teach.apps.open_world`), with
the choices measured in ``benchmarks/bench_hashtags.py`` as options of :class:`TowerConfig`;
:meth:`OpenWorldTower.search` is tower + Faiss.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..data import CharNgrams, HashtagPairLoader
from ..methods import DualTower
from ..models import embed_bags
from ..ranking import recall_at_k
from ..retrieval import EmbeddingIndex
from ..train import EvalCallback, fit

__all__ = ["TowerConfig", "OpenWorldTower", "fit_open_world_tower", "post_texts"]


@dataclass(frozen=True)
class TowerConfig:
    """The options of the tower (each measured on the dev split by the benchmark).

    replies: the post tower reads the post and its reply thread (else the post alone).
    head: a residual MLP on the n-gram bag (a nonlinear tower).
    ids: a hashtag is its text's n-grams plus a free embedding of its own.
    negatives: "batch" (the batch's other hashtags) or "index" (every candidate).
    mask: leave the false negatives (the post's other hashtags) out of the softmax.
    """

    replies: bool = True
    head: bool = False
    ids: bool = False
    negatives: str = "batch"
    mask: bool = True
    dim: int = 64
    epochs: int = 10
    temperature: float = 0.1
    lr: float = 1e-2
    drop: float = 0.5
    min_count: int = 3


def post_texts(posts: Sequence[str], replies: Sequence[str] | None) -> list[str]:
    """The post tower's input: each post, followed by its reply thread when ``replies`` is given."""
    if replies is None:
        return list(posts)
    if len(replies) != len(posts):
        raise ValueError(f"replies must hold one thread per post ({len(posts)}), got {len(replies)}")
    return [p + " " + r for p, r in zip(posts, replies, strict=True)]


@dataclass
class OpenWorldTower:
    """A trained tower, its featuriser and the candidate hashtags in a Faiss index."""

    model: DualTower
    featurizer: CharNgrams
    candidates: list[str]
    config: TowerConfig

    def embed_posts(self, posts: Sequence[str], replies: Sequence[str] | None = None) -> np.ndarray:
        """(Q, D) L2-normalised post embeddings (replies used when the config reads them)."""
        texts = post_texts(posts, replies if self.config.replies else None)
        return embed_bags(self.model.post_tower, self.featurizer.transform(texts), self.featurizer.idf_)

    def embed_candidates(self) -> np.ndarray:
        """(T, D) L2-normalised embeddings of every candidate hashtag."""
        ids = np.arange(len(self.candidates)) if self.config.ids else None
        return embed_bags(self.model.tag_tower, self.featurizer.transform(self.candidates),
                          self.featurizer.idf_, items=ids)

    def search(self, posts, replies=None, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Tower + Faiss: ``(scores, ids)`` (Q, k) of the top-k candidates per post, best first."""
        index = EmbeddingIndex(kind="flat").fit(self.embed_candidates(), ids=np.arange(len(self.candidates)))
        return index.search(self.embed_posts(posts, replies), k=k)

    def scores(self, posts, replies=None) -> np.ndarray:
        """(Q, T) cosine of each post with every candidate (the tower's signal for fusion)."""
        return self.embed_posts(posts, replies) @ self.embed_candidates().T


def fit_open_world_tower(posts: Sequence[str], replies: Sequence[str] | None,
                         tags: Sequence[Sequence[str]], candidates: Sequence[str],
                         config: TowerConfig = TowerConfig(), seed: int = 0, callbacks=(),
                         progress: bool = False, dev=None) -> OpenWorldTower:
    """Train a shared (post, hashtag) tower on the pairs of ``tags`` that are ``candidates``.

    Hashed character 1-3-grams seen in >= ``min_count`` texts (posts, replies and candidates),
    n-gram dropout ``drop`` on both sides, AdamW, batch 256. With ``dev = (posts, replies,
    answers)`` (answer sets over ``candidates``, :func:`~cl_teach.apps.open_world.answer_sets`),
    the development recall@10 is logged as ``dev_recall@10`` once per epoch and at the end (a
    :class:`~cl_teach.train.EvalCallback`; it reads no random numbers, so the training is the
    same with or without it).

    Raises:
        ValueError: on misaligned inputs, a bad config or fewer pairs than one batch.
    """
    featurizer, texts, pairs = _featurize_pairs(posts, replies, tags, candidates, config)
    candidates = list(candidates)
    torch.manual_seed(seed)
    model = DualTower(featurizer.n_features_, dim=config.dim, out_dim=config.dim, shared=True,
                      temperature=config.temperature, head=config.head, init_std=0.01,
                      n_items=len(candidates) if config.ids else 0, negatives=config.negatives,
                      mask=config.mask)
    loader = HashtagPairLoader(featurizer.transform(texts), featurizer.transform(candidates), pairs,
                               featurizer.idf_, batch_size=min(256, len(pairs)), drop=config.drop,
                               seed=seed, index=config.ids or config.negatives == "index")
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4, fused=True)
    if dev is not None:
        callbacks = [EvalCallback(_dev_recall(featurizer, candidates, config, dev), every=len(loader),
                                  name="dev_recall@10"), *callbacks]      # first: a LivePlot sees the last
    fit(model, loader, epochs=config.epochs, optimizer=opt, callbacks=callbacks, progress=progress)
    return OpenWorldTower(model.cpu(), featurizer, candidates, config)


def _dev_recall(featurizer, candidates, config, dev):
    """``fn(model) -> recall@10`` of the development posts for an EvalCallback."""
    posts, replies, answers = dev
    if len(answers) != len(posts):
        raise ValueError(f"dev must be (posts, replies, answers) with one answer set per post "
                         f"({len(posts)}), got {len(answers)}")

    def fn(model) -> float:
        s = OpenWorldTower(model, featurizer, candidates, config).scores(posts, replies)
        part = np.argpartition(-s, 9, axis=1)[:, :10]                        # the top 10, any order
        return float(recall_at_k(part, answers, 10, per_query=True).mean())
    return fn


def _featurize_pairs(posts, replies, tags, candidates, config):
    """The tower's inputs, shared with the classifier: ``(featurizer, texts, pairs)``.

    Hashed character 1-3-grams seen in >= ``config.min_count`` texts (post texts and
    candidates); ``pairs`` (P, 2) are the (post, candidate) pairs of ``tags``, each once.
    """
    if isinstance(tags, str) or len(tags) != len(posts):
        raise ValueError(f"tags must hold one hashtag list per post ({len(posts)}), got "
                         f"{len(tags) if not isinstance(tags, str) else 'a str'}")
    if not isinstance(config, TowerConfig):
        raise TypeError(f"config must be a TowerConfig, got {type(config).__name__}")
    candidates = list(candidates)
    if len(set(candidates)) != len(candidates) or not candidates:
        raise ValueError(f"candidates must be non-empty and unique, got {len(candidates)} with "
                         f"{len(candidates) - len(set(candidates))} duplicates")
    texts = post_texts(posts, replies if config.replies else None)
    featurizer = CharNgrams(ngram_range=(1, 3), min_count=config.min_count).fit(texts + candidates)
    index = {t: i for i, t in enumerate(candidates)}
    pairs = np.array([(i, index[t]) for i, ts in enumerate(tags) for t in dict.fromkeys(ts)
                      if t in index]).reshape(-1, 2)
    if len(pairs) == 0:
        raise ValueError(f"tags must hold at least one hashtag among the candidates, got 0 (post, "
                         f"candidate) pairs from {len(posts)} posts")
    return featurizer, texts, pairs
