"""InfoNCE and NT-Xent as pure functions.

InfoNCE (van den Oord et al., 2018, "Representation Learning with Contrastive Predictive Coding")
is an (N+1)-way classification: the logits are cosine similarities divided by a temperature and
the label is the index of the positive. MoCo (He et al., 2020) adds an explicit bank of negatives;
SimCLR's NT-Xent (Chen et al., 2020) uses the 2N augmented views of a batch, the other 2N-2 views
serving as negatives. Two variants of the two-tower setting: :func:`masked_info_nce` leaves known
false negatives out of the softmax, :func:`queue_nce` adds a queue of earlier keys (WenLan).
Everything goes through ``cross_entropy`` (a log-sum-exp), so the losses stay finite at
temperature 0.01.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .._validate import (
    check_embeddings,
    check_labels,
    check_pair,
    check_same_device_dtype,
    check_temperature,
    check_tensor,
)
from ._fused import fused_nt_xent


def info_nce_logits(query: torch.Tensor, key: torch.Tensor, temperature: float = 0.1,
                    negatives: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The classification view of InfoNCE: logits and the index of each positive.

    Args:
        query: (N, D) queries q. L2-normalised inside.
        key: (N, D) keys; ``key[i]`` is the positive of ``query[i]``. L2-normalised inside.
        temperature: tau > 0; logits are cosine similarities / tau.
        negatives: optional (K, D) bank of negatives (MoCo's queue). When given, the logits are
            ``[q.k+, q.n_1, ..., q.n_K] / tau`` of shape (N, 1 + K) and every label is 0. When
            ``None``, the other keys of the batch are the negatives: logits ``q @ k.T / tau`` of
            shape (N, N) with labels ``arange(N)``.

    Returns:
        ``(logits, labels)``: float (N, N) or (N, 1 + K), and long (N,).

    Raises:
        ValueError: on a temperature <= 0, mismatched shapes, empty batches or NaN/inf inputs.

    Example:
        >>> q = torch.eye(3); logits, labels = info_nce_logits(q, q, temperature=1.0)
        >>> logits.shape, labels.tolist()
        (torch.Size([3, 3]), [0, 1, 2])
    """
    check_pair("query", query, "key", key)
    check_temperature(temperature)
    q = F.normalize(query, dim=1)                                   # (N, D)
    k = F.normalize(key, dim=1)                                     # (N, D)
    if negatives is None:
        logits = q @ k.T                                            # (N, N), positives on the diagonal
        labels = torch.arange(q.shape[0], device=q.device)
    else:
        check_embeddings("negatives", negatives)
        check_same_device_dtype("query", query, "negatives", negatives)
        if negatives.shape[1] != q.shape[1]:
            raise ValueError(f"negatives must have shape (K, {q.shape[1]}) to match query's "
                             f"dimension, got {tuple(negatives.shape)}")
        n = F.normalize(negatives, dim=1)                           # (K, D)
        l_pos = (q * k).sum(dim=1, keepdim=True)                    # (N, 1)
        l_neg = q @ n.T                                             # (N, K)
        logits = torch.cat([l_pos, l_neg], dim=1)                   # (N, 1 + K)
        labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return logits / temperature, labels


def info_nce(query: torch.Tensor, key: torch.Tensor, temperature: float = 0.1,
             negatives: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE loss: cross-entropy of :func:`info_nce_logits` (van den Oord et al., 2018).

    Args and Raises as :func:`info_nce_logits`.

    Returns:
        The mean loss over the N queries, a 0-d tensor.

    Example:
        >>> q = torch.eye(4)
        >>> round(info_nce(q, q, temperature=0.01).item(), 4)   # perfectly separated: ~0
        0.0
    """
    logits, labels = info_nce_logits(query, key, temperature, negatives)
    return F.cross_entropy(logits, labels)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5,
            fused: bool = True) -> torch.Tensor:
    """SimCLR's normalised temperature-scaled cross-entropy (Chen et al., 2020).

    The 2N views ``cat([z1, z2])`` are L2-normalised; for each view the positive is the other
    view of the same image and the remaining 2N - 2 views are negatives. The loss is averaged
    over all 2N views (as in SimCLR and lightly's ``NTXentLoss``).

    Args:
        z1: (N, D) projections of the first views.
        z2: (N, D) projections of the second views.
        temperature: tau > 0. SimCLR uses 0.5 on CIFAR-10 and 0.1 at batch 4096 on ImageNet.
        fused: ``True``: the same value and gradient from a hand-written backward that keeps one
            (2N, 2N) matrix instead of several (``_fused.py``; 1.2-2.4x faster for N = 256-4096,
            benchmarks/bench_losses.py). ``False``: the four lines below, through autograd.

    Returns:
        A 0-d tensor.

    Raises:
        ValueError: on a temperature <= 0, mismatched shapes, empty batches or NaN/inf inputs.

    Example:
        >>> z = torch.eye(4)[:2]                     # two orthogonal images, identical views
        >>> round(nt_xent(z, z, temperature=1.0).item(), 4)
        0.5514
        >>> round(nt_xent(z, z, temperature=1.0, fused=False).item(), 4)
        0.5514
    """
    check_pair("z1", z1, "z2", z2)
    check_temperature(temperature)
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=1)              # (2N, D)
    if fused:
        return fused_nt_xent(z, float(temperature))                 # the same, with less memory
    n = z1.shape[0]
    sim = z @ z.T / temperature                                     # (2N, 2N)
    sim.fill_diagonal_(float("-inf"))                               # a view is not its own negative
    pos = torch.arange(2 * n, device=z.device).roll(n)              # (2N,) the twin of view i
    return F.cross_entropy(sim, pos)                                # mean over the 2N views


def masked_info_nce(query: torch.Tensor, key: torch.Tensor, same: torch.Tensor,
                    temperature: float = 0.05) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of pairs, with known false negatives left out.

    Args:
        query: (N, D) e.g. posts. L2-normalised inside.
        key: (N, D) their hashtags; ``key[i]`` is the positive of ``query[i]``. L2-normalised
            inside.
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


def queue_nce(query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor, temperature,
              query_ids: torch.Tensor | None = None, queue_ids: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE of each query against the batch's keys and a queue: N + K candidates per row.

    WenLan (Huo et al., 2021) trains two towers the MoCo way: the negatives of a query are the
    other keys of the batch (as in ALBEF, Li et al., 2021) and K keys of earlier batches.

    Args:
        query: (N, E) queries. L2-normalised inside.
        key: (N, E) keys; ``key[i]`` is the positive of ``query[i]``, the other keys are
            negatives. L2-normalised inside.
        queue: (K, E) keys of earlier batches, K >= 0 (empty before the first step). Cast to
            ``key``'s dtype, L2-normalised inside.
        temperature: tau > 0 (a float or a 0-d tensor).
        query_ids: optional (N,) integer ids of the queries' pairs (e.g. the row of the data set).
        queue_ids: optional (K,) integer ids of the pairs the queue's keys were made from. Given
            both, a queue key with the query's own id -- a stale key of its own pair, enqueued an
            epoch ago -- is left out of that query's softmax instead of counting as a negative.

    Returns:
        A 0-d tensor. With an empty queue it is one direction of :func:`clip_loss`; with ids, the
        loss over the queue without each query's own keys.

    Raises:
        ValueError: on a temperature <= 0, mismatched shapes or devices, empty batches, NaN/inf
            inputs, or only one of ``query_ids`` / ``queue_ids``.
        TypeError: on ids that are not integer tensors.

    Example:
        >>> q = torch.eye(3)
        >>> round(queue_nce(q, q, torch.zeros(0, 3), temperature=0.01).item(), 4)   # no queue yet
        0.0
        >>> round(queue_nce(q, q, q, 1.0, torch.arange(3), torch.arange(3)).item(), 4)   # own keys left out
        0.9048
    """
    check_pair("query", query, "key", key)
    check_tensor("queue", queue, ndim=2, nonempty=False)
    if queue.shape[1] != key.shape[1] or queue.device != key.device:
        raise ValueError(f"queue must be a (K, {key.shape[1]}) tensor on {key.device} like key, got "
                         f"shape {tuple(queue.shape)} on {queue.device}")
    check_temperature(temperature)
    keys = F.normalize(torch.cat([key, queue.to(key.dtype)], dim=0), dim=1)   # (N + K, E)
    logits = F.normalize(query, dim=1) @ keys.T / temperature           # (N, N + K)
    if (query_ids is None) != (queue_ids is None):
        raise ValueError(f"query_ids and queue_ids go together (both or neither), got "
                         f"{'query_ids' if query_ids is not None else 'queue_ids'} alone")
    if query_ids is not None:
        check_labels("query_ids", query_ids, query.shape[0], of="query")
        check_labels("queue_ids", queue_ids, queue.shape[0], of="queue")
        own = query_ids.to(query.device)[:, None] == queue_ids.to(query.device)[None, :]   # (N, K)
        n = query.shape[0]
        logits = torch.cat([logits[:, :n], logits[:, n:].masked_fill(own, float("-inf"))], dim=1)
    return F.cross_entropy(logits, torch.arange(query.shape[0], device=query.device))


def index_nce(query: torch.Tensor, candidates: torch.Tensor, target: torch.Tensor,
              false_negatives: torch.Tensor | None = None, temperature: float = 0.1) -> torch.Tensor:
    """InfoNCE of each query against EVERY candidate of the index, its other positives left out.

    The limit of adding index negatives to in-batch ones (mixed negative sampling, Yang et al.,
    WWW 2020): every candidate is a negative, the rarely sampled and the hard ones included, so
    the ranking trained is the ranking the Faiss index returns. With C candidates:
    ``L_i = -s_{i,t_i} + log sum_{j : j = t_i or not m_ij} exp(s_ij)``, ``s = cos / tau``.

    Args:
        query: (N, D) e.g. posts. L2-normalised inside.
        candidates: (C, D) every hashtag of the index. L2-normalised inside.
        target: (N,) long; ``candidates[target[i]]`` is the positive of ``query[i]``.
        false_negatives: optional (N, C) bool; ``m_ij`` marks candidate j as another positive of
            query i (its other hashtags): left out of row i's softmax. ``m_{i, t_i}`` is ignored.
        temperature: tau > 0.

    Returns:
        The mean over queries of the cross-entropies, a 0-d tensor.

    Example:
        >>> c = torch.eye(3); q = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
        >>> round(index_nce(q, c, torch.tensor([0, 1]), temperature=0.01).item(), 4)
        0.0
    """
    check_tensor("query", query, ndim=2)
    check_tensor("candidates", candidates, ndim=2)
    check_same_device_dtype("query", query, "candidates", candidates)
    if candidates.shape[1] != query.shape[1]:
        raise ValueError(f"candidates must have shape (C, {query.shape[1]}) to match query's "
                         f"dimension, got {tuple(candidates.shape)}")
    check_tensor("target", target, ndim=1, floating=False)
    if target.dtype != torch.long or target.shape[0] != query.shape[0]:
        raise ValueError(f"target must be a long (N,) = ({query.shape[0]},) tensor of candidate "
                         f"indices, got {target.dtype} of shape {tuple(target.shape)}")
    if bool((target < 0).any()) or bool((target >= candidates.shape[0]).any()):
        raise ValueError(f"target must index the {candidates.shape[0]} candidates, got values in "
                         f"[{int(target.min())}, {int(target.max())}]")
    check_temperature(temperature)
    logits = F.normalize(query, dim=1) @ F.normalize(candidates, dim=1).T / temperature   # (N, C)
    if false_negatives is not None:
        if not isinstance(false_negatives, torch.Tensor) or false_negatives.dtype != torch.bool:
            raise TypeError(f"false_negatives must be a boolean torch.Tensor of shape (N, C), got "
                            f"{getattr(false_negatives, 'dtype', type(false_negatives).__name__)}")
        if false_negatives.shape != logits.shape:
            raise ValueError(f"false_negatives must have shape (N, C) = {tuple(logits.shape)}, got "
                             f"{tuple(false_negatives.shape)}")
        keep = torch.zeros_like(false_negatives)
        keep[torch.arange(len(target), device=target.device), target] = True
        logits = logits.masked_fill(false_negatives.to(logits.device) & ~keep, float("-inf"))
    return F.cross_entropy(logits, target)
