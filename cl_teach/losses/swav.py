"""SwAV: Sinkhorn-Knopp codes and the swapped prediction loss (Caron et al., NeurIPS 2020)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .._validate import check_embeddings, check_positive, check_temperature, check_view_list, finite_result

#: the largest score span ``(max S - min S) / epsilon`` the exp-domain iteration takes: every
#: entry of ``exp((S - max S) / epsilon)`` then stays above exp(-50), far from float32 underflow
#: even after the 1 / (N K) rescaling (cosine scores at the paper's epsilon = 0.05 span <= 40).
EXP_DOMAIN_MAX_SPAN = 50.0


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, n_iters: int = 3, epsilon: float = 0.05, *,
             check_values: bool = True, log_domain: bool | None = None) -> torch.Tensor:
    """Soft codes Q from prototype scores by Sinkhorn-Knopp.

    Solves ``max_Q Tr(Q^T S) + epsilon H(Q)`` over the transportation polytope where every
    sample carries mass 1/N and every prototype receives mass 1/K (equipartition): Q starts as
    ``exp(S / epsilon)`` and is rescaled alternately per prototype and per sample. As in the
    authors' code this runs on ``exp`` (shifted by max S: one exp, then only sums and
    divisions) while the scores' span over epsilon is at most :data:`EXP_DOMAIN_MAX_SPAN`;
    beyond it (sharp codes, large scores) the same iteration runs on logs with log-sum-exp,
    which stays finite for any epsilon.

    Args:
        scores: (N, K) similarities of N samples to K prototypes (no gradient flows back).
        n_iters: rescaling rounds (paper: 3).
        epsilon: entropy weight; smaller gives harder codes (paper: 0.05).
        check_values: test ``scores`` for NaN/inf first (:func:`swav_loss` tests its result
            instead, see :func:`cl_teach._validate.finite_result`).
        log_domain: None picks by the span (above); True / False forces the log / exp domain
            (False still refuses a span the exp domain cannot hold).

    Returns:
        (N, K) codes: each row sums to 1; each column sums to about N / K (exactly after the
        last prototype rescaling, up to the final per-sample one).

    Raises:
        ValueError: on a non-2-d, empty or non-finite ``scores``, or bad n_iters/epsilon.

    Example:
        >>> q = sinkhorn(torch.tensor([[1.0, 0.0], [1.0, 0.0]]))   # both prefer prototype 0 ...
        >>> q.sum(0).tolist()                                       # ... but get shared equally
        [1.0, 1.0]
    """
    check_embeddings("scores", scores, finite=check_values)
    check_positive("n_iters", n_iters, integer=True, allow_zero=True)
    check_positive("epsilon", epsilon)
    n, k = scores.shape
    s = scores.detach().float()
    low, high = torch.aminmax(s)
    span = float(high - low) / epsilon
    if log_domain is False and not span <= EXP_DOMAIN_MAX_SPAN:
        raise ValueError(f"log_domain=False needs (max - min) of scores / epsilon <= "
                         f"{EXP_DOMAIN_MAX_SPAN:g}, got {span:.4g}")
    if log_domain or not span <= EXP_DOMAIN_MAX_SPAN:                 # also a NaN span
        return _log_sinkhorn(s, n_iters, epsilon).to(scores.dtype)
    q = (s - high).div_(epsilon).exp_()                              # (N, K), entries in [e^-50, 1]
    q.div_(q.sum())                                                  # total mass 1
    for _ in range(n_iters):
        q.div_(q.sum(dim=0, keepdim=True)).div_(k)                   # prototypes: 1/K each
        q.div_(q.sum(dim=1, keepdim=True)).div_(n)                   # samples: 1/N each
    return q.mul_(n).to(scores.dtype)                                # rows sum to 1


def _log_sinkhorn(s: torch.Tensor, n_iters: int, epsilon: float) -> torch.Tensor:
    """The same iteration as :func:`sinkhorn` on log Q: finite for any epsilon."""
    n, k = s.shape
    log_q = s / epsilon                                              # (N, K)
    log_q = log_q - torch.logsumexp(log_q.flatten(), dim=0)         # total mass 1
    for _ in range(n_iters):
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) - math.log(k)   # prototypes: 1/K
        log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) - math.log(n)   # samples: 1/N
    return (log_q + math.log(n)).exp()                              # rows sum to 1


def swav_loss(global_scores: Sequence[torch.Tensor], local_scores: Sequence[torch.Tensor] = (),
              temperature: float = 0.1, n_iters: int = 3, epsilon: float = 0.05,
              queue_scores: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    """Swapped prediction: predict the code of one global view from every other view.

    For each global view i, ``q_i = sinkhorn(s_i)`` (no gradient); every other view v (global or
    local, multi-crop) predicts it with ``p_v = softmax(s_v / temperature)``; the loss is the
    cross-entropy ``-sum_k q_ik log p_vk`` averaged over samples, over the V - 1 predicting views
    and over the global views (as the authors' code and lightly's ``SwaVLoss``).

    Args:
        global_scores: list of (N, K) scores ``z @ C`` of the high-resolution views (>= 2, or 1
            with at least one local view). Scores of normalised z against normalised prototypes.
        local_scores: list of (N, K) scores of the small multi-crop views.
        temperature: of the predictions (paper: 0.1).
        n_iters: rescaling rounds of :func:`sinkhorn`.
        epsilon: entropy weight of :func:`sinkhorn`.
        queue_scores: optional list (one per global view) of (M, K) scores of earlier batches,
            joined to the batch only to compute balanced codes when N is small.

    Returns:
        A 0-d tensor.

    Example:
        >>> s = torch.eye(4)
        >>> round(swav_loss([s, s], temperature=1.0).item(), 4)
        0.7437
    """
    global_scores = check_view_list("global_scores", global_scores, finite=False)
    local_scores = check_view_list("local_scores", local_scores, min_len=0,
                                   like=("global_scores[0]", global_scores[0]), finite=False)
    check_temperature(temperature)
    views = global_scores + local_scores
    if len(views) < 2:
        raise ValueError(f"swav_loss needs at least 2 views in total, got {len(views)}")
    if queue_scores is not None and len(queue_scores) != len(global_scores):
        raise ValueError(f"queue_scores must hold one tensor per global view "
                         f"({len(global_scores)}), got {len(queue_scores)}")
    log_p = [F.log_softmax(s / temperature, dim=1) for s in views]  # V x (N, K)
    loss = 0.0
    for i, s in enumerate(global_scores):
        s_all = s if queue_scores is None else torch.cat([s, queue_scores[i]])
        q = sinkhorn(s_all, n_iters, epsilon, check_values=False)[: s.shape[0]]   # (N, K) codes
        sub = sum(-(q * log_p[v]).sum(dim=1).mean() for v in range(len(views)) if v != i)
        loss = loss + sub / (len(views) - 1)
    return finite_result(loss / len(global_scores), global_scores=global_scores,
                         local_scores=local_scores, queue_scores=queue_scores or [])
