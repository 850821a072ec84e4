"""Negative cosine similarity: the loss of BYOL (Grill et al., 2020) and SimSiam (Chen & He, 2021)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .._validate import check_pair, finite_result
from ._fused import FUSED_DTYPES, fused_negative_cosine


def negative_cosine(p: torch.Tensor, z: torch.Tensor, *, fused: bool = True) -> torch.Tensor:
    """``-mean_i cos(p_i, z_i)``; in [-1, 1], -1 when every prediction points at its target.

    Stop the gradient of the target yourself (``z.detach()``): this function is pure.
    BYOL's ``2 - 2 cos`` equals ``2 + 2 * negative_cosine``.

    Args:
        p: (N, D) predictions.
        z: (N, D) targets.
        fused: ``True``: the same value and gradients from a hand-written backward
            (``_fused.py``, float32/float64); ``False`` (or another dtype): ``F.cosine_similarity``.

    Returns:
        A 0-d tensor in [-1, 1].

    Example:
        >>> round(negative_cosine(torch.ones(3, 2), 2 * torch.ones(3, 2)).item(), 6)
        -1.0
    """
    check_pair("p", p, "z", z, finite=False)
    if fused and p.dtype in FUSED_DTYPES:
        return finite_result(fused_negative_cosine(p, z), p=p, z=z)
    return finite_result(-F.cosine_similarity(p, z, dim=1).mean(), p=p, z=z)
