"""Evaluating two-tower image-text models: embeddings, retrieval both ways, zero-shot classification.

Works with any model exposing ``encode_image(x)`` and ``encode_text(ids)`` returning
L2-normalised (N, E) embeddings (:class:`cl_teach.methods.CLIP`, ``WenLan``, and the frozen
pretrained towers of :mod:`cl_teach.pretrained` wrapped the same way). Ranking metrics come
from :mod:`cl_teach.retrieval`.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch

from . import retrieval
from ._validate import check_embeddings, check_pair, check_positive, check_same_device_dtype, check_same_dim

__all__ = ["encode_pairs", "cross_modal_recall", "zero_shot_classifier", "zero_shot_predict"]


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
    dev = next((p.device for p in model.parameters()), torch.device("cpu"))
    was = model.training
    model.eval()
    try:
        zi = torch.cat([model.encode_image(images[i:i + batch_size].to(dev)).float().cpu()
                        for i in range(0, images.shape[0], batch_size)])
        zt = torch.cat([model.encode_text(ids[i:i + batch_size].to(dev)).float().cpu()
                        for i in range(0, ids.shape[0], batch_size)])
    finally:
        model.train(was)
    return zi, zt


def cross_modal_recall(image_emb: torch.Tensor, text_emb: torch.Tensor,
                       ks: Sequence[int] = (1, 5, 10), groups: Optional[Sequence] = None) -> Dict[str, float]:
    """Recall@k both ways for N aligned pairs: image i's caption is text i and vice versa.

    A hit is the partner itself, or -- with ``groups`` -- any item of the partner's group (two
    images with the same caption "a red circle" are equally right for it). The hit rate is
    reported (share of queries with a right item in the top k), which is recall@k when each
    query has one right answer.

    Args:
        image_emb, text_emb: (N, E) aligned embeddings. ks: cut-offs (<= N).
        groups: optional N hashable labels, e.g. the captions themselves.

    Returns:
        ``{"i2t@1": ..., "t2i@1": ..., ...}`` rounded to 4 places; chance is about k / N
        (k * group size / N with groups).

    Example:
        >>> cross_modal_recall(torch.eye(3), torch.eye(3), ks=(1,))
        {'i2t@1': 1.0, 't2i@1': 1.0}
    """
    check_pair("image_emb", image_emb, "text_emb", text_emb)
    if not isinstance(ks, (list, tuple)) or not ks:
        raise TypeError(f"ks must be a non-empty tuple of ints, got {ks!r}")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"ks must hold ints >= 1, got {ks!r}")
    n, kmax = image_emb.shape[0], max(ks)
    if kmax > n:
        raise ValueError(f"ks must be <= the number of pairs ({n}), got {max(ks)}")
    if groups is None:
        relevant = [{i} for i in range(n)]
    else:
        if len(groups) != n:
            raise ValueError(f"groups must hold one label per pair ({n}), got {len(groups)}")
        members: Dict = {}
        for i, g in enumerate(groups):
            members.setdefault(g, set()).add(i)
        relevant = [members[g] for g in groups]
    out = {}
    for name, q, db in (("i2t", image_emb, text_emb), ("t2i", text_emb, image_emb)):
        _, ids = retrieval.brute_force_search(db, q, k=kmax, normalize=True)
        for k in ks:
            out[f"{name}@{k}"] = round(retrieval.hit_rate_at_k(ids, relevant, k), 4)
    return {k: out[k] for k in sorted(out, key=lambda s: (int(s.split("@")[1]), s))}


@torch.no_grad()
def zero_shot_classifier(model, vocab, class_names: Sequence[str],
                         templates: Sequence[str] = ("{}",), max_len: int = 32) -> torch.Tensor:
    """One text embedding per class: the mean of its prompts, re-normalised (CLIP's prompt ensemble).

    Args:
        model: has ``encode_text``. vocab: a :class:`cl_teach.data.text.Vocab`.
        class_names: C names, e.g. ``["circle", "square"]``.
        templates: prompts with one ``{}``, e.g. ``("a {}", "a photo of a {}")``.

    Returns:
        (C, E) L2-normalised class embeddings.
    """
    _check_model(model)
    if not class_names or isinstance(class_names, str):
        raise ValueError(f"class_names must be a non-empty list of strings, got {class_names!r}")
    if not templates or any("{}" not in t for t in templates):
        raise ValueError(f"templates must be a non-empty list of strings with a '{{}}', got {templates!r}")
    prompts = [t.format(c) for c in class_names for t in templates]
    dev = next((p.device for p in model.parameters()), torch.device("cpu"))
    was = model.training
    model.eval()
    try:
        z = model.encode_text(vocab.encode(prompts, max_len).to(dev)).float().cpu()  # (C * T, E)
    finally:
        model.train(was)
    z = torch.nn.functional.normalize(z, dim=1).view(len(class_names), len(templates), -1).mean(1)
    return torch.nn.functional.normalize(z, dim=1)                  # (C, E)


def zero_shot_predict(image_emb: torch.Tensor, class_emb: torch.Tensor) -> torch.Tensor:
    """(N,) predicted class ids: the class whose text embedding is most similar to each image."""
    check_embeddings("image_emb", image_emb)
    check_embeddings("class_emb", class_emb)
    check_same_dim("image_emb", image_emb, "class_emb", class_emb)
    check_same_device_dtype("image_emb", image_emb, "class_emb", class_emb)
    return (torch.nn.functional.normalize(image_emb, dim=1) @ class_emb.T).argmax(1)
