"""Label noise with a comparator: the tower, a softmax classifier and kNN votes on noisy labels.

:func:`noise_sweep` corrupts the training hashtags of a share of the posts
(:func:`cl_teach.apps.hashtags.corrupt_tags`, seeded by the run's seed, the same noisy labels
for the three systems at a given (share, seed)), retrains the tower and the classifier on them
and recounts the votes of the similar training posts; every system is scored on the same query
posts. :func:`summarize_sweep` and :func:`sweep_difference` give each number its 95% intervals:
over seeds (``seed_interval``: the training noise, the label draw included) and over the query
posts (a bootstrap of the seed-averaged per-post values: the test-set noise).
"""
from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from ..intervals import paired_difference, seed_interval
from .hashtag_classifier import fit_hashtag_classifier
from .hashtag_tower import TowerConfig, fit_open_world_tower
from .hashtags import corrupt_tags, hashtag_votes, tag_matrix
from .open_world import per_post_metrics

__all__ = ["SYSTEMS", "noise_sweep", "summarize_sweep", "sweep_difference"]

SYSTEMS = ("tower", "classifier", "votes")
DEFAULT_CONFIG = TowerConfig()


def noise_sweep(train_posts, train_replies, train_tags, query_posts, query_replies, answers,
                candidates, shares: Sequence[float], seeds: Sequence[int],
                config: TowerConfig = DEFAULT_CONFIG, vote_sims: np.ndarray | None = None,
                classifier_config: TowerConfig | None = None, progress: bool = False) -> dict:
    """Per system, share and seed, the per-post recall@1, recall@10 and MRR on the query posts.

    Args:
        train_posts: (N,) the training posts.
        train_replies: (N,) their reply threads, or None.
        train_tags: (N,) their hashtag lists (corrupted here).
        query_posts: (Q,) the posts scored.
        query_replies: (Q,) their reply threads, or None.
        answers: (Q,) answer sets of the query posts (:func:`~cl_teach.apps.open_world.answer_sets`).
        candidates: (T,) the hashtags every post is ranked against.
        shares: label-noise levels in [0, 1] (1: no post keeps its own hashtags).
        seeds: one run per seed: its noisy labels and its trainings.
        config: the tower's options (features, width, epochs, ...).
        vote_sims: (Q, N_train) similarities of each query post to each training post (e.g. the
            TF-IDF(post + replies) cosine), computed once by the caller.
        classifier_config: the classifier's options (its own learning rate and epochs, chosen on
            a development split); default ``config``.
        progress: print one line per fit.

    Returns:
        ``{"shares": [...], "seeds": [...], "seconds": {"tower": [...], "classifier": [...]},
        system: {share: {metric: [(Q,) array per seed]}}}`` for each system of :data:`SYSTEMS`.

    Raises:
        ValueError: on a share outside [0, 1], no seed, duplicate shares or seeds, misaligned
            answers or a ``vote_sims`` of the wrong shape.
    """
    shares, seeds = [float(s) for s in shares], [int(s) for s in seeds]
    if not shares or any(not 0 <= s <= 1 for s in shares) or len(set(shares)) != len(shares):
        raise ValueError(f"shares must be distinct noise levels in [0, 1], got {shares}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct ints, at least one, got {seeds}")
    if len(answers) != len(query_posts):
        raise ValueError(f"answers must hold one answer set per query post ({len(query_posts)}), "
                         f"got {len(answers)}")
    expected = (len(query_posts), len(train_posts))
    if not isinstance(vote_sims, np.ndarray) or vote_sims.shape != expected:
        raise ValueError(f"vote_sims must be a {expected} array (query x training posts), got "
                         f"{getattr(vote_sims, 'shape', type(vote_sims).__name__)}")
    out = {"shares": shares, "seeds": seeds, "seconds": {"tower": [], "classifier": []}}
    out.update({name: {s: {} for s in shares} for name in SYSTEMS})
    for seed in seeds:
        for share in shares:
            noisy = corrupt_tags(train_tags, share, seed=seed)
            scores = {"votes": hashtag_votes(vote_sims, tag_matrix(noisy, candidates))}
            for name, recipe, cfg in (("tower", fit_open_world_tower, config),
                                      ("classifier", fit_hashtag_classifier, classifier_config or config)):
                t0 = time.perf_counter()
                model = recipe(train_posts, train_replies, noisy, candidates, cfg, seed=seed)
                scores[name] = model.scores(query_posts, query_replies)
                out["seconds"][name].append(time.perf_counter() - t0)
            for name in SYSTEMS:
                for metric, values in per_post_metrics(scores[name], answers).items():
                    out[name][share].setdefault(metric, []).append(values)
            if progress:
                r = {n: round(float(out[n][share]["recall@10"][-1].mean()), 4) for n in SYSTEMS}
                print(f"seed {seed} share {share:.2f}: recall@10 {r} (tower "
                      f"{out['seconds']['tower'][-1]:.1f} s, classifier "
                      f"{out['seconds']['classifier'][-1]:.1f} s)", flush=True)
    return out


def _runs(sweep: dict, system, share: float, metric: str) -> list[np.ndarray]:
    """The per-seed (Q,) arrays of a system, or a fixed (Q,) array (a system without labels)."""
    if isinstance(system, str):
        if system not in SYSTEMS or share not in sweep[system]:
            raise ValueError(f"system must be one of {SYSTEMS} and share one of {sweep['shares']}, "
                             f"got {system!r} and {share!r}")
        return sweep[system][share][metric]
    return [np.asarray(system, dtype=np.float64)] * len(sweep["seeds"])


def _interval(iv) -> list[float]:
    return [round(iv.low, 4), round(iv.high, 4)]


def sweep_difference(sweep: dict, a, b, share: float, metric: str = "recall@10") -> dict:
    """Mean ``metric`` of a minus b at ``share``, with its two 95% intervals.

    ``a`` and ``b`` name systems of the sweep, or are a fixed (Q,) per-post array (e.g. the
    TF-IDF signal, which reads no label). ``posts_ci95``: paired bootstrap over the query posts
    of the seed-averaged difference; ``seeds_ci95``: a t-interval over the per-seed mean
    differences (None with one seed). A claim needs both to exclude 0 (``claim``).
    """
    ra, rb = _runs(sweep, a, share, metric), _runs(sweep, b, share, metric)
    per_post = paired_difference(np.mean(ra, axis=0), np.mean(rb, axis=0))
    seeds = (seed_interval([float((x - y).mean()) for x, y in zip(ra, rb, strict=True)])
             if len(ra) > 1 else None)
    excl = per_post.excludes_zero and (seeds is None or seeds.excludes_zero)
    return {"estimate": round(per_post.estimate, 4), "posts_ci95": _interval(per_post),
            "seeds_ci95": None if seeds is None else _interval(seeds), "claim": bool(excl)}


def summarize_sweep(sweep: dict, metric: str = "recall@10") -> dict:
    """Per system and share: the mean ``metric`` over seeds with its two 95% intervals.

    ``{system: {share: {"mean", "per_seed", "seeds_ci95", "posts_ci95"}}}``: the over-seed
    t-interval (None with one seed) and the bootstrap over posts of the seed-averaged values.

    Example:
        >>> r = [np.array([1.0, 0.0, 1.0, 1.0])] * 2
        >>> sweep = {"shares": [0.0], "seeds": [0, 1],
        ...          **{n: {0.0: {"recall@10": r}} for n in SYSTEMS}}
        >>> summarize_sweep(sweep)["tower"][0.0]["mean"]
        0.75
    """
    out = {}
    for name in SYSTEMS:
        out[name] = {}
        for share in sweep["shares"]:
            runs = sweep[name][share][metric]
            per_seed = [float(r.mean()) for r in runs]
            posts = paired_difference(np.mean(runs, axis=0), np.zeros(len(runs[0])))
            out[name][share] = {"mean": round(float(np.mean(per_seed)), 4),
                                "per_seed": [round(v, 4) for v in per_seed],
                                "seeds_ci95": _interval(seed_interval(per_seed)) if len(runs) > 1 else None,
                                "posts_ci95": _interval(posts)}
    return out
