"""Judging a ranking: recall, precision and hit rate at k, MRR, mAP; retrieval across modalities.

The metrics take the retrieved ids (Q, k) and one collection of relevant ids per query, so a
post with two hashtags has two relevant items. The two-tower part works with any model exposing
``encode_image(x)`` and ``encode_text(ids)`` (:class:`cl_teach.methods.CLIP`, ``WenLan``, or
frozen pretrained towers wrapped the same way): :func:`encode_pairs` embeds aligned pairs,
:func:`cross_modal_recall` retrieves both ways, :func:`zero_shot_classifier` /
:func:`zero_shot_predict` classify images by prompts.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ._validate import (
    check_embeddings,
    check_k,
    check_ks,
    check_pair,
    check_positive,
    check_same_device_dtype,
    check_same_dim,
)
from .models import embed
from .retrieval import brute_force_search

__all__ = ["recall_at_k", "precision_at_k", "hit_rate_at_k", "mean_reciprocal_rank",
           "mean_average_precision", "ranking_report", "shared_label_relevance", "encode_pairs",
           "cross_modal_recall", "zero_shot_classifier", "zero_shot_predict"]


#: Every metric below takes ``retrieved`` (Q, k) ids, best first, and ``relevant``, one collection
#: of right ids per query; ``k`` cuts the lists (default: all their columns); ``per_query=True``
#: returns the (Q,) per-query values instead of their mean.


def _hits(retrieved, relevant: Sequence[Collection], k: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(Q, k) booleans "retrieved[i, j] is relevant to query i", and (Q,) sizes of the relevant sets."""
    retrieved = np.asarray(retrieved)
    if retrieved.ndim != 2:
        raise ValueError(f"retrieved must be a 2-d (Q, k) array of ids, got shape {retrieved.shape}")
    if len(relevant) != retrieved.shape[0]:
        raise ValueError(f"relevant must hold one collection per query ({retrieved.shape[0]}), "
                         f"got {len(relevant)}")
    if k is not None:
        retrieved = retrieved[:, :check_k("k", k, retrieved.shape[1], "the columns of retrieved")]
    sizes = np.array([len(set(r)) for r in relevant])
    if (sizes == 0).any():
        raise ValueError(f"every query needs at least one relevant item; query "
                         f"{int(np.argmin(sizes))} has none (drop such queries first)")
    hits = np.zeros(retrieved.shape, dtype=bool)
    for i, (row, rel) in enumerate(zip(retrieved.tolist(), relevant, strict=True)):
        rel, seen = set(rel), set()
        for j, r in enumerate(row):
            if r in rel and r not in seen:                           # a duplicate counts once
                hits[i, j] = True
                seen.add(r)
    return hits, sizes


def _mean(per_query_values: np.ndarray, per_query: bool):
    """The metric: the mean over queries, or with ``per_query`` the (Q,) float64 values themselves.

    The per-query values are for a paired interval over the same queries
    (:func:`cl_teach.intervals.paired_difference`).
    """
    values = np.asarray(per_query_values, dtype=np.float64)
    return values if per_query else float(np.mean(values))


def recall_at_k(retrieved, relevant: Sequence[Collection], k: int | None = None,
                per_query: bool = False):
    """Mean over queries of (relevant items in the top k) / (number of relevant items).

    Example:
        >>> recall_at_k([[3, 1, 2]], [{1, 5}], k=2)
        0.5
        >>> recall_at_k([[3, 1, 2], [5, 1, 2]], [{1, 5}, {5}], k=2, per_query=True).tolist()
        [0.5, 1.0]
    """
    hits, sizes = _hits(retrieved, relevant, k)
    return _mean(hits.sum(1) / sizes, per_query)


def hit_rate_at_k(retrieved, relevant: Sequence[Collection], k: int | None = None,
                  per_query: bool = False):
    """Share of queries with at least one relevant item in the top k.

    Equals recall@k when each query has exactly one relevant item.
    """
    hits, _ = _hits(retrieved, relevant, k)
    return _mean(hits.any(1), per_query)


def precision_at_k(retrieved, relevant: Sequence[Collection], k: int | None = None,
                   per_query: bool = False):
    """Mean over queries of (relevant items in the top k) / k.

    Example:
        >>> precision_at_k([[3, 1, 2]], [{1, 2}], k=2)
        0.5
    """
    hits, _ = _hits(retrieved, relevant, k)
    return _mean(hits.sum(1) / hits.shape[1], per_query)


def mean_reciprocal_rank(retrieved, relevant: Sequence[Collection], k: int | None = None,
                         per_query: bool = False):
    """Mean of 1 / (rank of the first relevant item), 0 when none is retrieved.

    Example:
        >>> mean_reciprocal_rank([[3, 1, 2], [1, 2, 3]], [{1}, {4}])
        0.25
    """
    hits, _ = _hits(retrieved, relevant, k)
    first = hits.argmax(1)
    return _mean(np.where(hits.any(1), 1.0 / (first + 1), 0.0), per_query)


def mean_average_precision(retrieved, relevant: Sequence[Collection], k: int | None = None,
                           per_query: bool = False):
    """mAP: mean over queries of sum over relevant ranks r of precision@r, / number relevant.

    Relevant items missing from the retrieved list add 0 (AP@k when the list is truncated).

    Example:
        >>> mean_average_precision([[1, 3, 2]], [{1, 2}])              # (1/1 + 2/3) / 2
        0.8333333333333333
    """
    hits, sizes = _hits(retrieved, relevant, k)
    prec = np.cumsum(hits, 1) / np.arange(1, hits.shape[1] + 1)     # (Q, k) precision@r
    return _mean((prec * hits).sum(1) / sizes, per_query)


def ranking_report(retrieved, relevant: Sequence[Collection], ks: Sequence[int] = (1, 3, 10)) -> dict:
    """``{"recall@1": ..., "recall@3": ..., "recall@10": ..., "mrr": ...}`` rounded to 4 places."""
    out = {f"recall@{k}": round(recall_at_k(retrieved, relevant, k), 4) for k in ks}
    out["mrr"] = round(mean_reciprocal_rank(retrieved, relevant), 4)
    return out


# --- two towers ------------------------------------------------------------------------------

def _check_model(model) -> None:
    for name in ("encode_image", "encode_text"):
        if not callable(getattr(model, name, None)):
            raise TypeError(f"model must define {name}(...) (a CLIP-like two-tower model), "
                            f"got {type(model).__name__}")


@torch.no_grad()
def encode_pairs(model, images: torch.Tensor, ids: torch.Tensor, batch_size: int = 512):
    """``(z_img, z_txt)``: (N, E) embeddings of aligned images and token ids, in eval mode, on the CPU."""
    _check_model(model)
    check_positive("batch_size", batch_size, integer=True)
    if images.shape[0] != ids.shape[0]:
        raise ValueError(f"images and ids must hold the same number of pairs, got "
                         f"{images.shape[0]} and {ids.shape[0]}")
    return (embed(model, images, batch_size, encode=model.encode_image),
            embed(model, ids, batch_size, encode=model.encode_text))


def shared_label_relevance(labels: Sequence, include_self: bool = False) -> list[set[int]]:
    """For each of N items, the items sharing at least one label with it.

    The relevant sets of "retrieve items like this one" (posts sharing a hashtag, images with the
    same caption).

    Args:
        labels: N labels; each a collection (list, tuple, set) of labels, e.g. a post's hashtags,
            or one hashable label, e.g. a caption.
        include_self: count the item itself as relevant (queries that are not in the database).

    Example:
        >>> shared_label_relevance([["a"], ["b"], ["a", "c"]])
        [{2}, set(), {0}]
        >>> shared_label_relevance(["x", "y", "x"], include_self=True)
        [{0, 2}, {1}, {0, 2}]
    """
    sets = [set(ls) if isinstance(ls, (list, tuple, set, frozenset)) else {ls} for ls in labels]
    members: dict = {}
    for i, ls in enumerate(sets):
        for label in ls:
            members.setdefault(label, set()).add(i)
    return [set().union(*(members[label] for label in ls)) - (set() if include_self else {i})
            for i, ls in enumerate(sets)]


def cross_modal_recall(image_emb: torch.Tensor, text_emb: torch.Tensor, ks: Sequence[int] = (1, 5, 10),
                       groups: Sequence | None = None, per_query: bool = False) -> dict[str, float]:
    """Recall@k both ways for N aligned pairs: image i's caption is text i and vice versa.

    A hit is the partner itself, or -- with ``groups`` -- any item of the partner's group (two
    images with the same caption "a red circle" are equally right for it). The hit rate is
    reported (share of queries with a right item in the top k), which is recall@k when each
    query has one right answer.

    Args:
        image_emb: (N, E) image embeddings.
        text_emb: (N, E) text embeddings, aligned with ``image_emb``.
        ks: cut-offs (<= N).
        groups: optional N hashable labels, e.g. the captions themselves.
        per_query: return each query's hit (0 or 1) instead of the rate, for a paired interval.

    Returns:
        ``{"i2t@1": ..., "t2i@1": ..., ...}`` rounded to 4 places; chance is about k / N
        (k * group size / N with groups). With ``per_query``, (N,) float64 arrays.

    Example:
        >>> cross_modal_recall(torch.eye(3), torch.eye(3), ks=(1,))
        {'i2t@1': 1.0, 't2i@1': 1.0}
    """
    check_pair("image_emb", image_emb, "text_emb", text_emb)
    n = image_emb.shape[0]
    ks = check_ks("ks", ks, n, "the number of pairs")
    kmax = max(ks)
    if groups is not None and len(groups) != n:
        raise ValueError(f"groups must hold one label per pair ({n}), got {len(groups)}")
    relevant = shared_label_relevance(range(n) if groups is None else groups, include_self=True)
    out = {}
    for name, q, db in (("i2t", image_emb, text_emb), ("t2i", text_emb, image_emb)):
        _, ids = brute_force_search(db, q, k=kmax, normalize=True)
        for k in ks:
            hits = hit_rate_at_k(ids, relevant, k, per_query=per_query)
            out[f"{name}@{k}"] = hits if per_query else round(hits, 4)
    return {k: out[k] for k in sorted(out, key=lambda s: (int(s.split("@")[1]), s))}


@torch.no_grad()
def zero_shot_classifier(model, vocab, class_names: Sequence[str],
                         templates: Sequence[str] = ("{}",), max_len: int = 32) -> torch.Tensor:
    """One text embedding per class: the mean of its prompts, re-normalised (CLIP's prompt ensemble).

    Args:
        model: has ``encode_text``.
        vocab: a :class:`cl_teach.data.text.Vocab`.
        class_names: C names, e.g. ``["circle", "square"]``.
        templates: prompts with one ``{}``, e.g. ``("a {}", "a photo of a {}")``.
        max_len: token positions per prompt (longer prompts are cut).

    Returns:
        (C, E) L2-normalised class embeddings.
    """
    _check_model(model)
    if not class_names or isinstance(class_names, str):
        raise ValueError(f"class_names must be a non-empty list of strings, got {class_names!r}")
    if not templates or any("{}" not in t for t in templates):
        raise ValueError(f"templates must be a non-empty list of strings with a '{{}}', got {templates!r}")
    prompts = [t.format(c) for c in class_names for t in templates]
    z = embed(model, vocab.encode(prompts, max_len), len(prompts), encode=model.encode_text)  # (C * T, E)
    z = F.normalize(z, dim=1).view(len(class_names), len(templates), -1).mean(1)
    return F.normalize(z, dim=1)                                    # (C, E)


def zero_shot_predict(image_emb: torch.Tensor, class_emb: torch.Tensor) -> torch.Tensor:
    """(N,) predicted class ids: the class whose text embedding is most similar to each image."""
    check_embeddings("image_emb", image_emb)
    check_embeddings("class_emb", class_emb)
    check_same_dim("image_emb", image_emb, "class_emb", class_emb)
    check_same_device_dtype("image_emb", image_emb, "class_emb", class_emb)
    return (F.normalize(image_emb, dim=1) @ class_emb.T).argmax(1)
