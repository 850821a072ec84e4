"""Alignment and uniformity on the hypersphere (Wang & Isola, ICML 2020).

Both work as a metric (lower is better) and as a loss. Inputs are L2-normalised inside.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._validate import check_embeddings, check_pair, check_positive


def alignment(z1: torch.Tensor, z2: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """Expected distance between positive pairs: ``E ||f(x) - f(y)||_2^alpha``.

    Args:
        z1: (N, D) embeddings of one view.
        z2: (N, D) embeddings of the other view; ``z2[i]`` pairs ``z1[i]``.
        alpha: exponent > 0 (the paper uses 2).

    Returns:
        0-d tensor in [0, 2^alpha]; 0 means every pair coincides.

    Example:
        >>> z = torch.randn(8, 3)
        >>> alignment(z, z).item()
        0.0
    """
    check_pair("z1", z1, "z2", z2)
    check_positive("alpha", alpha)
    x, y = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    return (x - y).norm(p=2, dim=1).pow(alpha).mean()


def uniformity(z: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """Log of the mean Gaussian potential: ``log E exp(-t ||f(x) - f(y)||^2)`` over pairs x != y.

    Computed with log-sum-exp, so it stays finite when every point coincides (value 0, the
    maximum) and when they are far apart.

    Args:
        z: (N, D) embeddings, N >= 2.
        t: kernel scale > 0 (the paper uses 2).

    Returns:
        0-d tensor in [-4t, 0]; lower is more uniform.

    Example:
        >>> uniformity(torch.ones(5, 3)).item()     # complete collapse: the maximum, 0
        0.0
    """
    check_embeddings("z", z)
    check_positive("t", t)
    if z.shape[0] < 2:
        raise ValueError(f"z must hold at least 2 embeddings to compare pairs, got {tuple(z.shape)}")
    # pdist has no bfloat16/float16 kernel: compute those in float32, return the input's dtype.
    low = z.dtype in (torch.bfloat16, torch.float16)
    x = F.normalize(z.float() if low else z, dim=1)
    sq_dist = torch.pdist(x, p=2).pow(2)                            # (N (N - 1) / 2,)
    u = torch.logsumexp(-t * sq_dist, dim=0) - math.log(sq_dist.numel())
    return u.to(z.dtype) if low else u
