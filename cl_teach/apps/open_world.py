"""CD-TOM judged on an open world: candidates known before the test posts, recall over every post.

A recommender in production ranks every hashtag it knows; it cannot know the test posts' own
hashtags. Here the candidates are the hashtags of the splits seen before the test posts (for the
Weibo corpus: ``train_tag.txt`` and ``valid``), one index, and every metric is averaged over ALL
test posts: a post whose hashtags are all unknown counts 0, so the share of posts with at least
one known answer (:func:`coverage`) is the ceiling of every recall.

* :func:`open_world_candidates` / :func:`check_open_world`: the candidate set, and the check that
  it holds no hashtag known only from the test labels;
* :func:`answer_sets`: each post's answers as candidate indices, unknown answers kept as
  never-retrieved placeholders so that recall divides by all of a post's hashtags;
* :func:`popularity_scores`: the prior "often used hashtags first" (a non-learned signal);
* :func:`metrics_with_intervals`: recall@k and MRR with a bootstrap 95% interval over posts;
* :func:`select_weights`: the fusion weights chosen on a development split by a grid search.
"""
from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from ..intervals import paired_difference
from ..ranking import mean_reciprocal_rank, recall_at_k
from .hashtags import standardize, tag_vocabulary, top_k

__all__ = ["open_world_candidates", "check_open_world", "answer_sets", "coverage",
           "popularity_scores", "per_post_metrics", "metrics_with_intervals", "select_weights"]


def _check_tag_lists(name: str, tags) -> None:
    if isinstance(tags, str) or not all(isinstance(ts, (list, tuple)) for ts in tags):
        raise TypeError(f"{name} must be a sequence of hashtag lists (one list per post), got "
                        f"{type(tags).__name__}" + (" of str" if not isinstance(tags, str) else ""))


def open_world_candidates(*known: Sequence[Sequence[str]]) -> list[str]:
    """The sorted hashtags of every split known before the test posts (one list per post each).

    Example:
        >>> open_world_candidates([["a"], ["b", "a"]], [["c"]])
        ['a', 'b', 'c']
    """
    if not known:
        raise ValueError("open_world_candidates needs at least one split's hashtag lists, got none")
    for i, tags in enumerate(known):
        _check_tag_lists(f"known[{i}]", tags)
    return tag_vocabulary([ts for tags in known for ts in tags])


def check_open_world(candidates: Sequence[str], *known: Sequence[Sequence[str]]) -> None:
    """Raise ValueError when a candidate is not a hashtag of the known splits (a test-label leak).

    Example:
        >>> check_open_world(["a", "b"], [["a"], ["b"]])
        >>> check_open_world(["a", "z"], [["a"]])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: 1 candidate hashtag(s) are not in the splits known ... labels): ['z']
    """
    allowed = set(open_world_candidates(*known))
    leaked = sorted(set(candidates) - allowed)
    if leaked:
        raise ValueError(f"{len(leaked)} candidate hashtag(s) are not in the splits known before "
                         f"the test posts (a closed world leaks the test labels): {leaked[:10]}")


def answer_sets(tags: Sequence[Sequence[str]], candidates: Sequence[str]) -> list[set[int]]:
    """Each post's hashtags as candidate indices; an unknown hashtag becomes -1, -2, ... .

    The negative placeholders are never retrieved, so recall@k of a post divides by ALL of its
    hashtags and a post with no known hashtag scores 0 (no post is dropped).

    Example:
        >>> answer_sets([["b"], ["a", "x"], ["y"]], ["a", "b"])
        [{1}, {0, -1}, {-1}]
    """
    _check_tag_lists("tags", tags)
    index = {t: i for i, t in enumerate(candidates)}
    out = []
    for ts in tags:
        unique = list(dict.fromkeys(ts))
        if not unique:
            raise ValueError("every post needs at least one hashtag; got a post with none")
        unknown = (-(j + 1) for j in range(len(unique)))
        out.append({index[t] if t in index else next(unknown) for t in unique})
    return out


def coverage(answers: Sequence[set[int]]) -> float:
    """Share of posts with at least one answer among the candidates: the ceiling of recall@k."""
    return float(np.mean([any(a >= 0 for a in ans) for ans in answers]))


def popularity_scores(tags: Sequence[Sequence[str]], candidates: Sequence[str]) -> np.ndarray:
    """(T,) log(1 + uses) of each candidate in ``tags`` (a prior; broadcast it over the posts)."""
    _check_tag_lists("tags", tags)
    counts = Counter(t for ts in tags for t in ts)
    return np.log1p(np.array([counts[c] for c in candidates], dtype=np.float32))


def per_post_metrics(scores: np.ndarray, answers: Sequence[set[int]], ks=(1, 10)) -> dict:
    """(Q,) recall@k for each k and reciprocal rank (within the top max(ks)) per post."""
    ids = top_k(scores, max(ks))
    out = {f"recall@{k}": recall_at_k(ids, answers, k, per_query=True) for k in ks}
    out["mrr"] = mean_reciprocal_rank(ids, answers, per_query=True)
    return out


def metrics_with_intervals(per_post: Mapping[str, np.ndarray], seed: int = 0) -> dict:
    """``{metric: {"value": mean, "ci95": [low, high]}}``: a bootstrap interval over the posts."""
    out = {}
    for name, x in per_post.items():
        x = np.asarray(x, dtype=np.float64)
        iv = paired_difference(x, np.zeros_like(x), seed=seed)      # mean(x - 0), resampling posts
        out[name] = {"value": round(iv.estimate, 4), "ci95": [round(iv.low, 4), round(iv.high, 4)]}
    return out


def select_weights(scores: Mapping[str, np.ndarray], answers: Sequence[set[int]],
                   names: Sequence[str], grid: Sequence[float] = (0, 0.25, 0.5, 1, 2),
                   metric: str = "recall@10") -> tuple[dict, float]:
    """The fusion weights with the best ``metric`` on a DEVELOPMENT split (grid search).

    Every weight of ``names`` runs over ``grid``; the all-zero point and points proportional to an
    earlier one (the same ranking) are skipped. Call it on the dev split only, then apply the
    weights once to the test split.

    Returns:
        ``(weights, best_value)``; ties go to the point met first (smaller weights first).
    """
    missing = set(names) - set(scores)
    if missing or not names:
        raise ValueError(f"names must name given score matrices, got {list(names)}; "
                         f"have {sorted(scores)}")
    if metric not in ("recall@1", "recall@10", "mrr"):
        raise ValueError(f"metric must be 'recall@1', 'recall@10' or 'mrr', got {metric!r}")
    if not grid or min(grid) < 0:
        raise ValueError(f"grid must be non-empty and non-negative, got {list(grid)}")
    z = {n: standardize(scores[n]) for n in names}                  # what fuse adds, once
    best, best_value, seen = None, -1.0, set()
    for ws in itertools.product(map(float, grid), repeat=len(names)):
        if max(ws) == 0 or (key := tuple(round(w / max(ws), 6) for w in ws)) in seen:
            continue
        seen.add(key)
        weights = dict(zip(names, ws, strict=True))
        fused = sum(w * z[n] for n, w in weights.items() if w)        # == fuse(scores, weights)
        value = float(per_post_metrics(fused, answers)[metric].mean())
        if value > best_value + 1e-12:
            best, best_value = weights, value
    return best, best_value
