"""NT-Xent with a hand-written backward: the fast path of :func:`cl_teach.losses.nt_xent`.

An optimisation, not new math: the value and the gradient are those of the plain body of
``nt_xent(..., fused=False)``, up to rounding (tests/test_losses_info_nce.py checks both in
float64). benchmarks/bench_losses.py measures what it buys.
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


def fused_nt_xent(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent of 2N unit vectors ``z`` (2N, D) whose row i pairs with row (i + N) mod 2N.

    Args:
        z: (2N, D) L2-normalised views, ``cat([z1, z2])``.
        temperature: tau > 0, a float (no gradient flows to it).

    Returns:
        A 0-d tensor, the mean over the 2N views.

    Example:
        >>> z = torch.eye(4)[[0, 1, 0, 1]]           # two orthogonal images, identical views
        >>> round(fused_nt_xent(z, 1.0).item(), 4)
        0.5514
    """
    return _NTXent.apply(z, temperature)


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
