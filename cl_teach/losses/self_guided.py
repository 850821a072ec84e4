"""Self-Guided contrastive learning (Kim, Yoo & Lee, ACL 2021), the SG-OPT objective.

"Self-Guided Contrastive Learning for BERT Sentence Representations". The pretrained encoder is
cloned: a **fixed** copy F (never updated: no gradient, no momentum/EMA) and a **tuned** copy T.
T's sentence vector ``c_i`` is contrasted against F's pooled hidden states ``h_{i,k}`` of every
layer k = 0..l (the embedding layer included) of the same sentence; the views of the other
sentences, at every layer, are the negatives. The paper's redesigned NT-Xent (SG-OPT; as in the
authors' code, ``NTXentLoss`` in galsang/SG-BERT ``loss.py``) keeps only ``c_i`` as anchors and
only F's views as candidates, and sums over all layers instead of sampling one:

    L_opt = -1/(N (l+1)) sum_i sum_k log phi(c_i, h_ik) / (phi(c_i, h_ik) + sum_{m!=i} sum_n phi(c_i, h_mn))

with ``phi(u, v) = exp(cos(u, v) / tau)`` on the outputs of a projection head shared by both.
A regulariser keeps T near F: ``L = L_opt + lambda * ||theta_T - theta_F||^2`` (lambda = 0.1).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_same_device_dtype, check_temperature, check_tensor


def self_guided_loss(c: torch.Tensor, h: torch.Tensor, temperature: float = 0.01) -> torch.Tensor:
    """SG-OPT: anchors ``c_i``, positives F's views ``h[i, k]``, negatives every ``h[m, n]``, m != i.

    Args:
        c: (N, D) the tuned copy's sentence vectors (after the projection head). L2-normalised inside.
        h: (N, K, D) the fixed copy's pooled views of the same N sentences, one per layer (K = l + 1;
            after the same head). L2-normalised inside.
        temperature: tau > 0 (the authors' code: 0.01).

    Returns:
        A 0-d tensor: the mean over the N * K (anchor, layer) rows. Row (i, k) has 1 + (N - 1) K
        candidates: its positive ``h[i, k]`` and the views of the other sentences at every layer
        (not the other layers of sentence i, and not the other anchors ``c_m``).

    Raises:
        ValueError: on N < 2 (no negatives), shapes that do not match, a temperature <= 0, empty or
            NaN/inf inputs. TypeError: on a non-tensor or an integer tensor.

    Example:
        >>> c = torch.eye(3); h = torch.eye(3)[:, None].repeat(1, 2, 1)   # every view = its anchor
        >>> round(self_guided_loss(c, h, temperature=0.01).item(), 4)
        0.0
    """
    check_tensor("c", c, ndim=2)
    check_tensor("h", h, ndim=3)
    check_same_device_dtype("c", c, "h", h)
    if h.shape[0] != c.shape[0] or h.shape[2] != c.shape[1]:
        raise ValueError(f"h must have shape (N, K, D) = ({c.shape[0]}, K, {c.shape[1]}) to match c "
                         f"(N, D) = {tuple(c.shape)}, got {tuple(h.shape)}")
    if c.shape[0] < 2:
        raise ValueError(f"c must hold at least 2 sentences (the others are the negatives), got {c.shape[0]}")
    check_temperature(temperature)
    n, k = h.shape[:2]
    s = torch.einsum("id,mkd->imk", F.normalize(c, dim=1), F.normalize(h, dim=2)) / temperature   # (N, N, K)
    eye = torch.eye(n, dtype=torch.bool, device=c.device)
    pos = s[eye]                                                    # (N, K): s[i, i, k]
    neg = s.masked_fill(eye[:, :, None], float("-inf")).reshape(n, -1).logsumexp(dim=1)   # (N,)
    return (torch.logaddexp(pos, neg[:, None]) - pos).mean()      # -log(e^pos / (e^pos + sum e^neg))


def weight_distance(tuned: nn.Module, fixed: nn.Module) -> torch.Tensor:
    """The regulariser ``||theta_T - theta_F||^2``: squared L2 distance over all matching parameters.

    Args:
        tuned: the trained copy T (gradients flow to its parameters).
        fixed: the fixed copy F, same architecture (its parameters are treated as constants).

    Returns:
        A 0-d tensor (0 right after cloning).

    Raises:
        TypeError: if either is not an ``nn.Module``. ValueError: if their parameters differ in
            names or shapes.

    Example:
        >>> import copy
        >>> f = nn.Linear(2, 2); g = copy.deepcopy(f)
        >>> weight_distance(f, g).item()
        0.0
    """
    for name, m in (("tuned", tuned), ("fixed", fixed)):
        if not isinstance(m, nn.Module):
            raise TypeError(f"{name} must be an nn.Module, got {type(m).__name__}")
    pt, pf = dict(tuned.named_parameters()), dict(fixed.named_parameters())
    if pt.keys() != pf.keys() or any(pt[n].shape != pf[n].shape for n in pt):
        raise ValueError(f"tuned and fixed must be copies of one architecture (same parameter names and "
                         f"shapes), got {len(pt)} and {len(pf)} parameters"
                         f"{'' if pt.keys() == pf.keys() else ' with different names'}")
    if not pt:
        raise ValueError("tuned must have parameters, got a module with none")
    return sum((pt[n] - pf[n].detach()).pow(2).sum() for n in pt)
