"""Barlow Twins' redundancy-reduction loss (Zbontar et al., ICML 2021)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .._validate import check_pair, check_positive, finite_result
from ._fused import FUSED_DTYPES, fused_barlow_twins


def cross_correlation(z1: torch.Tensor, z2: torch.Tensor, eps: float = 1e-5, *,
                      check_values: bool = True) -> torch.Tensor:
    """The (D, D) cross-correlation matrix C of two batch-normalised views.

    Each dimension is standardised over the batch (mean 0, std 1, as ``BatchNorm1d(affine=False)``
    in the authors' code), then ``C = z1n.T @ z2n / N``. ``C[i, i]`` is the correlation of
    dimension i across the two views; 1 on the diagonal and 0 elsewhere is the ideal.

    Args:
        z1: (N, D) projections of the first views, N >= 2.
        z2: (N, D) projections of the second views.
        eps: added to the variance, as in batch norm.
        check_values: test the inputs for NaN/inf first (:func:`barlow_twins_loss` tests its
            result instead, see :func:`cl_teach._validate.finite_result`).

    Returns:
        (D, D) tensor.

    Example:
        >>> z = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
        >>> cross_correlation(z, z).diagonal().round(decimals=3).tolist()
        [1.0, 1.0]
    """
    _check_views(z1, z2, eps, check_values)
    return _correlate(z1, z2, eps)


def _correlate(z1, z2, eps):
    n = z1.shape[0]
    z1n = F.batch_norm(z1, None, None, training=True, eps=eps)      # (N, D)
    z2n = F.batch_norm(z2, None, None, training=True, eps=eps)      # (N, D)
    return z1n.T @ z2n / n                                          # (D, D)


def _check_views(z1, z2, eps, finite):
    check_pair("z1", z1, "z2", z2, finite=finite)
    check_positive("eps", eps, allow_zero=True)
    if z1.shape[0] < 2:
        raise ValueError(f"z1 and z2 must hold at least 2 samples to normalise over the batch, "
                         f"got {tuple(z1.shape)}")


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 5e-3, terms: bool = False, *,
                      fused: bool = True):
    """``sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2`` with C from :func:`cross_correlation`.

    The first term (invariance) makes each dimension agree across views; the second (redundancy
    reduction) decorrelates the dimensions, which is what prevents collapse without negatives.

    Args:
        z1: (N, D) projections of the first views, N >= 2.
        z2: (N, D) projections of the second views.
        lambd: weight of the off-diagonal term (paper: 5e-3 with D = 8192, a tuned value, not
            1 / D; lambda = 1 / D is Tsai et al.'s 2021 rule of thumb).
        terms: also return the two terms and C, to log them.
        fused: ``True``: the same value and gradients from a hand-written backward
            (``_fused.py``, float32/float64), the terms and C then detached (for logging);
            ``False`` (or another dtype): the plain body, through which the terms differentiate.

    Returns:
        A 0-d tensor >= 0; with ``terms``, ``(loss, on_diag, off_diag, c)``: the loss, the
        invariance term ``sum_i (1 - C_ii)^2``, the unweighted redundancy term
        ``sum_{i != j} C_ij^2`` (0-d tensors) and the (D, D) matrix C.

    Raises:
        ValueError: on mismatched shapes, N < 2, NaN/inf inputs or lambd < 0.

    Example:
        >>> z = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
        >>> round(barlow_twins_loss(z, z).item(), 4)   # uncorrelated dims, identical views
        0.0
        >>> loss, on_diag, off_diag, c = barlow_twins_loss(z, z, terms=True); c.shape
        torch.Size([2, 2])
    """
    check_positive("lambd", lambd, allow_zero=True)
    _check_views(z1, z2, 1e-5, False)
    if fused and z1.dtype in FUSED_DTYPES:
        loss, c = fused_barlow_twins(z1, z2, lambd)                 # the same, one pass less
        if not terms:
            return finite_result(loss, z1=z1, z2=z2)
    else:
        c = _correlate(z1, z2, 1e-5)                                # (D, D)
        loss = None
    on_diag = (torch.diagonal(c) - 1).pow(2).sum()                  # invariance
    off_diag = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()      # redundancy
    loss = finite_result(on_diag + lambd * off_diag if loss is None else loss, z1=z1, z2=z2)
    return (loss, on_diag, off_diag, c) if terms else loss
