"""Debiased contrastive loss (Chuang, Robinson, Lin, Torralba & Jegelka, NeurIPS 2020).

"Debiased Contrastive Learning". Without labels, a share ``tau_plus`` (the class prior) of a
view's "negatives" are of its own class: NT-Xent pushes them away too. The debiased loss replaces
the sum of the negatives' ``exp(s / t)`` by an estimate of the sum over the *true* negatives, the
observed sum minus ``tau_plus`` times what as many positives would contribute.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._validate import check_pair, check_positive, check_temperature


def _check_prior(tau_plus) -> float:
    value = check_positive("tau_plus", tau_plus, allow_zero=True)
    if value >= 1:
        raise ValueError(f"tau_plus must be a class prior in [0, 1), got {value!r}")
    return value


def debiased_info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5,
                      tau_plus: float = 0.1) -> torch.Tensor:
    """NT-Xent over the 2N views with the negatives' term debiased, as the authors' code does.

    For view i with positive logit ``s_i = cos(z_i, z_twin) / t`` and the ``M = 2N - 2`` other
    views as negatives, ``S_i = sum_neg exp(cos / t)`` and

        ``Ng_i = max((S_i - tau_plus * M * e^{s_i}) / (1 - tau_plus), M * e^{-1/t})``,
        ``loss = mean_i -log(e^{s_i} / (e^{s_i} + Ng_i))``.

    The clamp is the smallest value the true sum can take (every cosine >= -1): it replaces an
    estimate that is too small or negative, which happens when the positive is much more similar
    than the negatives (the loss is then ~0). With ``tau_plus = 0`` it never binds: NT-Xent.
    Computed in the log domain: ``log S_i`` is a log-sum-exp and
    ``log(S - c e^s) = log S + log(1 - e^delta)``, ``delta = log c + s - log S``, so nothing
    overflows at t = 0.01.

    Args:
        z1: (N, D) projections of the first views, N >= 2. L2-normalised inside.
        z2: (N, D) projections of the second views.
        temperature: t > 0 (the authors: 0.5).
        tau_plus: the class prior in [0, 1) (the authors: 0.1 on CIFAR-10).

    Returns:
        A 0-d tensor, the mean over the 2N views.

    Example:
        >>> z = torch.eye(4)[:2]                     # nt_xent's example: 0.5514 at tau_plus = 0
        >>> [round(debiased_info_nce(z, z, 1.0, tau_plus=p).item(), 4) for p in (0.0, 0.1)]
        [0.5514, 0.4671]
    """
    check_pair("z1", z1, "z2", z2)
    if z1.shape[0] < 2:
        raise ValueError(f"z1 and z2 must hold N >= 2 pairs (a view's negatives are the other "
                         f"2N - 2 views), got N = {z1.shape[0]}")
    check_temperature(temperature)
    tau_plus = _check_prior(tau_plus)
    n, m = z1.shape[0], 2 * z1.shape[0] - 2
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=1)              # (2N, D)
    logits = z @ z.T / temperature                                  # (2N, 2N)
    twin = torch.arange(2 * n, device=z.device).roll(n)             # (2N,) the positive of view i
    s_pos = logits.gather(1, twin[:, None])[:, 0]                   # (2N,)
    drop = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    drop[torch.arange(2 * n, device=z.device), twin] = True          # self and twin: not negatives
    log_s = logits.masked_fill(drop, float("-inf")).logsumexp(dim=1)  # (2N,) log S_i
    log_floor = math.log(m) - 1 / temperature                       # log(M e^{-1/t})
    delta = (math.log(tau_plus * m) if tau_plus else float("-inf")) + s_pos - log_s
    with torch.no_grad():                                           # where the estimate is kept:
        est = log_s + torch.log(-torch.expm1(delta)) - math.log1p(-tau_plus)   # NaN when S <= c e^s
        keep = est > log_floor
    delta = delta.masked_fill(~keep, -1.0)                          # finite gradients where unused
    log_ng = torch.where(keep, log_s + torch.log(-torch.expm1(delta)) - math.log1p(-tau_plus),
                         log_floor)                                 # (2N,) log Ng_i
    return (torch.logaddexp(s_pos, log_ng) - s_pos).mean()
