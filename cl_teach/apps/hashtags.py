"""CD-TOM, the Weibo talk's hashtag recommender, as a recipe: candidates, baselines, votes, fusion.

The reusable pieces live in their layers: the featuriser :class:`cl_teach.data.CharNgrams`, the
pair loader :class:`cl_teach.data.HashtagPairLoader`, the loss
:func:`cl_teach.losses.masked_info_nce`, the method :class:`cl_teach.methods.DualTower`, the
embeddings :func:`cl_teach.models.embed_bags`, the metrics :mod:`cl_teach.ranking`. This module
holds what only this application needs:

* :func:`tag_vocabulary` / :func:`relevant_sets`: the candidate hashtags and each post's answers;
* :func:`tfidf_scores`: the character n-gram TF-IDF baseline (cosine of TF-IDF vectors);
* :func:`hashtag_votes`: the hashtags of the k most similar training posts, weighted by similarity
  (a kNN recommender: "posts like this one were tagged ...");
* :func:`fuse`: a weighted sum of per-query standardised score matrices;
* :func:`top_k`: the k best candidates per query, best first;
* :func:`corrupt_tags`: label noise for the robustness experiment;
* :func:`fit_hashtag_towers`: notebook 17's training recipe in one call (notebooks 18 and 19).

The open world (candidates known before the test posts, recall over every post) is in
:mod:`cl_teach.apps.open_world`, the tower trained for it in :mod:`cl_teach.apps.hashtag_tower`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._validate import check_k
from .hashtag_tower import TowerConfig, fit_open_world_tower

__all__ = ["tag_vocabulary", "relevant_sets", "tag_matrix", "tfidf_vectorizer", "tfidf_scores",
           "hashtag_votes", "standardize", "fuse", "top_k", "corrupt_tags", "fit_hashtag_towers"]


def tag_vocabulary(tags: Sequence[Sequence[str]]) -> list[str]:
    """The sorted unique hashtags of a split (the candidates every post is ranked against)."""
    return sorted({t for ts in tags for t in ts})


def relevant_sets(tags: Sequence[Sequence[str]], vocab: Sequence[str]) -> list[set]:
    """For each post, the set of its hashtags' indices in ``vocab``."""
    index = {t: i for i, t in enumerate(vocab)}
    return [{index[t] for t in ts if t in index} for ts in tags]


def tag_matrix(tags: Sequence[Sequence[str]], vocab: Sequence[str]) -> np.ndarray:
    """(N, T) float32 0/1 matrix: post i carries hashtag ``vocab[j]``. Tags outside vocab drop."""
    m = np.zeros((len(tags), len(vocab)), dtype=np.float32)
    for i, js in enumerate(relevant_sets(tags, vocab)):
        m[i, list(js)] = 1.0
    return m


def _no_space(s: str) -> str:
    return s.replace(" ", "")


def tfidf_vectorizer(texts: Sequence[str], ngram_range: tuple[int, int] = (1, 2)):
    """A character n-gram TF-IDF (sublinear tf, spaces dropped) fitted on ``texts``."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    return TfidfVectorizer(analyzer="char", ngram_range=ngram_range, sublinear_tf=True,
                           preprocessor=_no_space, dtype=np.float32).fit(texts)


def tfidf_scores(vectorizer, queries, items) -> np.ndarray:
    """(Q, I) cosine similarities of TF-IDF vectors (rows are L2-normalised by scikit-learn).

    ``queries`` and ``items`` are lists of texts or matrices already transformed (transform
    long texts once and reuse the matrix).
    """
    q = vectorizer.transform(queries) if isinstance(queries, (list, tuple)) else queries
    i = vectorizer.transform(items) if isinstance(items, (list, tuple)) else items
    return np.asarray((q @ i.T).todense(), dtype=np.float32)


def hashtag_votes(post_sims: np.ndarray, train_tags: np.ndarray, k: int = 30) -> np.ndarray:
    """Votes for each candidate hashtag from the ``k`` most similar training posts.

    Args:
        post_sims: (Q, N) similarity of each query post to each training post.
        train_tags: (N, T) 0/1 matrix of the training posts' hashtags (:func:`tag_matrix`).
        k: neighbours that vote; each votes with its similarity (clipped at 0).

    Returns:
        (Q, T) float32 vote totals.

    Example:
        >>> sims = np.array([[0.9, 0.1, 0.5]]); tags = np.array([[1, 0], [0, 1], [0, 1]], np.float32)
        >>> hashtag_votes(sims, tags, k=2).tolist()
        [[0.8999999761581421, 0.5]]
    """
    post_sims = np.asarray(post_sims, dtype=np.float32)
    if post_sims.ndim != 2 or train_tags.ndim != 2 or post_sims.shape[1] != train_tags.shape[0]:
        raise ValueError(f"post_sims must be (Q, N) and train_tags (N, T) with the same N, got "
                         f"{post_sims.shape} and {train_tags.shape}")
    k = check_k("k", k, post_sims.shape[1], "the number of training posts")
    idx = np.argpartition(-post_sims, k - 1, axis=1)[:, :k]          # (Q, k) neighbours
    w = np.zeros_like(post_sims)
    np.put_along_axis(w, idx, np.maximum(np.take_along_axis(post_sims, idx, 1), 0), 1)
    return (w @ train_tags).astype(np.float32)


def standardize(scores: np.ndarray) -> np.ndarray:
    """Per query (row): subtract the mean, divide by the std, so scores of different scales add."""
    scores = np.asarray(scores, dtype=np.float32)
    return (scores - scores.mean(1, keepdims=True)) / (scores.std(1, keepdims=True) + 1e-6)


def fuse(scores: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """sum_name weights[name] * standardize(scores[name]) over the names in ``weights``."""
    missing = set(weights) - set(scores)
    if missing:
        raise ValueError(f"weights name score matrices that are not given: {sorted(missing)}; "
                         f"have {sorted(scores)}")
    return sum(w * standardize(scores[name]) for name, w in weights.items() if w)


def top_k(scores: np.ndarray, k: int = 10) -> np.ndarray:
    """(Q, k) column indices of the k highest scores per row, best first (ties: lower index)."""
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a 2-d (Q, T) array, got shape {scores.shape}")
    k = check_k("k", k, scores.shape[1], "the number of candidates")
    idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part = np.take_along_axis(scores, idx, 1)
    order = np.lexsort((idx, -part), axis=1)
    return np.take_along_axis(idx, order, 1)


def corrupt_tags(tags: Sequence[Sequence[str]], share: float, seed: int = 0) -> list[list[str]]:
    """Replace the hashtags of a random ``share`` of posts by those of another random post."""
    if not 0 <= share <= 1:
        raise ValueError(f"share must be in [0, 1], got {share!r}")
    rng = np.random.default_rng(seed)
    n = len(tags)
    out = [list(ts) for ts in tags]
    for i in rng.choice(n, size=int(round(share * n)), replace=False):
        out[i] = list(tags[(i + rng.integers(1, n)) % n])          # never the post's own
    return out


def fit_hashtag_towers(posts: Sequence[str], tags: Sequence[Sequence[str]], epochs: int = 10,
                       seed: int = 0, callbacks=(), progress: bool = False):
    """Notebook 17's recipe in one call: featurise, train one shared tower on (post, hashtag).

    Hashed 1-3-gram characters seen in >= 3 texts, 64-d bag embeddings, 50 % n-gram dropout,
    temperature 0.1, batch 256, fused AdamW at lr 1e-2 for ``epochs`` epochs.

    Returns:
        ``(model, featurizer)``: the trained :class:`~cl_teach.methods.DualTower` (on the CPU)
        and its :class:`~cl_teach.data.CharNgrams`; embed with
        ``cl_teach.models.embed_bags(model.post_tower, featurizer.transform(texts), featurizer.idf_)``.
    """
    tower = fit_open_world_tower(posts, None, tags, tag_vocabulary(tags),
                                 TowerConfig(replies=False, epochs=epochs), seed=seed,
                                 callbacks=callbacks, progress=progress)
    return tower.model, tower.featurizer
