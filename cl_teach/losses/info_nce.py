"""InfoNCE and NT-Xent as pure functions.

InfoNCE (van den Oord et al., 2018, "Representation Learning with Contrastive Predictive Coding")
is an (N+1)-way classification: the logits are cosine similarities divided by a temperature and
the label is the index of the positive. MoCo (He et al., 2020) adds an explicit bank of negatives;
SimCLR's NT-Xent (Chen et al., 2020) uses the 2N augmented views of a batch, the other 2N-2 views
serving as negatives. Everything goes through ``cross_entropy`` (a log-sum-exp), so the losses stay
finite at temperature 0.01.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .._validate import check_embeddings, check_pair, check_same_device_dtype, check_temperature


def info_nce_logits(query: torch.Tensor, key: torch.Tensor, temperature: float = 0.1,
                    negatives: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
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
             negatives: Optional[torch.Tensor] = None) -> torch.Tensor:
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


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """SimCLR's normalised temperature-scaled cross-entropy (Chen et al., 2020).

    The 2N views ``cat([z1, z2])`` are L2-normalised; for each view the positive is the other
    view of the same image and the remaining 2N - 2 views are negatives. The loss is averaged
    over all 2N views (as in SimCLR and lightly's ``NTXentLoss``).

    Args:
        z1: (N, D) projections of the first views.
        z2: (N, D) projections of the second views.
        temperature: tau > 0. SimCLR uses 0.5 on CIFAR-10 and 0.1 at batch 4096 on ImageNet.

    Returns:
        A 0-d tensor.

    Raises:
        ValueError: on a temperature <= 0, mismatched shapes, empty batches or NaN/inf inputs.

    Example:
        >>> z = torch.eye(4)[:2]                     # two orthogonal images, identical views
        >>> round(nt_xent(z, z, temperature=1.0).item(), 4)
        0.5514
    """
    check_pair("z1", z1, "z2", z2)
    check_temperature(temperature)
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=1)              # (2N, D)
    return _NTXent.apply(z, float(temperature))


class _NTXent(torch.autograd.Function):
    """NT-Xent of unit vectors z (2N, D) with a hand-written backward: same values, less work.

    Written plainly, the loss is ``cross_entropy((z @ z.T / tau).masked_fill(eye, -inf), labels)``
    with labels ``pos``; autograd then keeps several (2N, 2N) matrices alive (similarities, the
    masked copy, the log-softmax, their gradients) and was 2x its floor (benchmarks/README.md);
    here one is kept. With S = z z^T / tau, the positive
    of view i at pos(i) = (i + N) mod 2N and P = softmax(S) row-wise (the diagonal excluded):

        L = 1/(2N) sum_i [logsumexp_j S_ij - S_i,pos(i)]
        dL/dz = (P z + P^T z - 2 z[pos]) / (2N tau)          (Y^T z = z[pos]: pos is its own inverse)

    and P = diag(1/r) E with E = exp(S - rowmax), r = rowsum(E), so both products are taken on E
    with O(N D) rescaling: no normalised copy of the matrix is ever made. What remains are the
    three products the loss cannot avoid (one forward, two backward) and one exp.
    """

    @staticmethod
    def forward(ctx, z, temperature):
        two_n = z.shape[0]
        pos = torch.arange(two_n, device=z.device).roll(two_n // 2)  # (2N,) index of each positive
        s = (z / temperature) @ z.T                                 # (2N, 2N)
        s.fill_diagonal_(float("-inf"))                             # a view is not its own negative
        s_pos = s.gather(1, pos[:, None])                           # (2N, 1)
        m = s.amax(dim=1, keepdim=True)                             # (2N, 1), for a stable exp
        e = s.sub_(m).exp_()                                        # (2N, 2N) E, in place of S
        r = e.sum(dim=1, keepdim=True)                              # (2N, 1)
        loss = (m + r.log() - s_pos).mean()                         # log-sum-exp - positive
        ctx.save_for_backward(z, e, r, pos)
        ctx.temperature = temperature
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        z, e, r, pos = ctx.saved_tensors
        dz = (e @ z).div_(r)                                        # (2N, D) P z
        dz.addmm_(e.T, z / r)                                       # + P^T z
        dz.sub_(z[pos], alpha=2.0)                                  # - 2 z[pos]
        return dz.mul_(grad / (z.shape[0] * ctx.temperature)), None
