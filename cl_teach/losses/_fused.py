"""Hand-written backwards: the fast paths of NT-Xent, CLIP, Barlow Twins and negative cosine.

:func:`cl_teach.losses.nt_xent`, :func:`~cl_teach.losses.clip_loss`,
:func:`~cl_teach.losses.barlow_twins_loss` and :func:`~cl_teach.losses.negative_cosine` call them.

An optimisation, not new math: the values and gradients are those of the plain bodies
(``fused=False``), up to rounding (tests/test_losses_info_nce.py, test_text_multimodal.py and
test_losses_families.py check both in float64). benchmarks/bench_losses.py measures what they buy.
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


#: the largest ``2 / tau`` for which one shift ``1 / tau`` keeps every row and column sum of
#: ``exp(S - 1 / tau)`` a normal number (float32 underflows below exp(-87), float64 below exp(-708)).
CLIP_MAX_RANGE = {torch.float32: 80.0, torch.float64: 600.0}


def fused_clip(i: torch.Tensor, t: torch.Tensor, temperature) -> torch.Tensor | None:
    """CLIP's symmetric InfoNCE of unit vectors ``i``, ``t`` (N, D), or None off its safe range.

    Args:
        i: (N, D) L2-normalised image embeddings, row k pairs with ``t[k]``.
        t: (N, D) L2-normalised text embeddings.
        temperature: tau > 0, a float or a 1-element tensor (gradients flow to it).

    Returns:
        A 0-d tensor; None when the dtype is not float32/float64 or ``2 / tau`` exceeds
        :data:`CLIP_MAX_RANGE` (then the caller takes the log-softmax path).

    Example:
        >>> round(fused_clip(torch.eye(2), torch.eye(2), 1.0).item(), 4)
        0.3133
    """
    tau = torch.as_tensor(temperature, dtype=i.dtype, device=i.device).reshape(())   # (1,) -> 0-d loss
    limit = CLIP_MAX_RANGE.get(i.dtype)
    if limit is None or 2.0 / float(tau.detach()) > limit:
        return None
    return _CLIP.apply(i, t, tau)


class _CLIP(torch.autograd.Function):
    """CLIP's loss on unit vectors with one (N, N) matrix kept: the recipe of :class:`_NTXent`.

    With S = i t^T / tau, |S| <= 1 / tau, so one shift m = 1 / tau serves rows and columns:
    E = exp(S - m), row sums r, column sums c, and

        L = m + (mean log r + mean log c) / 2 - mean diag S
        dL/dS = (E / r + E / c - 2 I) / (2N)          (rows' softmax + columns' softmax - 2 I)
        dL/di = dL/dS t / tau,  dL/dt = dL/dS^T i / tau,  dL/dtau = -sum(i * dL/di) / tau

    taken as two (N, N) @ (N, 2D) products on E with O(N D) rescaling.
    """

    @staticmethod
    def forward(ctx, i, t, tau):
        m = 1.0 / tau                                                # the bound of every S_ij
        s = (i / tau) @ t.T                                          # (N, N)
        diag = s.diagonal().clone()                                  # (N,) the matching pairs
        e = s.sub_(m).exp_()                                         # (N, N) E, in place of S
        r, c = e.sum(dim=1), e.sum(dim=0)                            # (N,), (N,)
        loss = m + (r.log().mean() + c.log().mean()) / 2 - diag.mean()
        ctx.save_for_backward(i, t, e, r, c, tau)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        i, t, e, r, c, tau = ctx.saved_tensors
        n, d = i.shape
        k = grad / (2 * n * tau)
        pt = e @ torch.cat([t, t / c[:, None]], dim=1)               # (N, 2D): E t | E (t / c)
        di = (pt[:, :d] / r[:, None]).add_(pt[:, d:]).sub_(t, alpha=2.0).mul_(k)
        pi = e.T @ torch.cat([i, i / r[:, None]], dim=1)             # (N, 2D): E^T i | E^T (i / r)
        dt = (pi[:, :d] / c[:, None]).add_(pi[:, d:]).sub_(i, alpha=2.0).mul_(k)
        dtau = None
        if ctx.needs_input_grad[2]:
            dtau = -(i * di).sum() / tau
        return di, dt, dtau


#: dtypes the small fused losses take (elsewhere, e.g. bfloat16, the plain autograd body runs).
FUSED_DTYPES = (torch.float32, torch.float64)


def fused_barlow_twins(z1: torch.Tensor, z2: torch.Tensor, lambd: float,
                       eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Barlow Twins' loss of (N, D) views and its (D, D) matrix C (C carries no gradient).

    Example:
        >>> z = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
        >>> loss, c = fused_barlow_twins(z, z, 5e-3); round(loss.item(), 4), tuple(c.shape)
        (0.0, (2, 2))
    """
    return _BarlowTwins.apply(z1, z2, float(lambd), float(eps))


class _BarlowTwins(torch.autograd.Function):
    """Barlow Twins with the batch-norm backward folded into the two products.

    With x = (z - mean) s per view (s = 1 / sqrt(var + eps), over the batch), C = x1^T x2 / N and
    G = dL/dC (2 (C_ii - 1) on the diagonal, 2 lambda C_ij off it), batch norm's backward
    ``s (g - mean g - x mean(g x))`` simplifies: g1 = x2 G^T / N has mean 0 (x2 has) and
    ``mean_n(g1 x1)_j = sum_k G_jk C_jk / N``, a (D,) vector from (D, D) matrices. So

        dL/dz1 = x2 (G^T s1) / N - x1 s1 a1,   a1 = rowsum(G * C) / N
        dL/dz2 = x1 (G s2) / N - x2 s2 a2,     a2 = colsum(G * C) / N

    two (N, D) @ (D, D) products and two passes; no (N, D) gradient of x is ever formed.
    """

    @staticmethod
    def forward(ctx, z1, z2, lambd, eps):
        n = z1.shape[0]
        x1, _, s1 = torch.native_batch_norm(z1, None, None, None, None, True, 0.0, eps)   # (N, D), (D,)
        x2, _, s2 = torch.native_batch_norm(z2, None, None, None, None, True, 0.0, eps)
        c = x1.T @ x2 / n                                            # (D, D)
        diag = torch.diagonal(c)
        loss = (diag - 1).pow(2).sum() + lambd * (c.pow(2).sum() - diag.pow(2).sum())
        ctx.save_for_backward(x1, x2, c, s1, s2)
        ctx.lambd = lambd
        ctx.mark_non_differentiable(c)
        return loss, c

    @staticmethod
    @once_differentiable
    def backward(ctx, grad, _grad_c):
        x1, x2, c, s1, s2 = ctx.saved_tensors
        n = x1.shape[0]
        g = c * (2 * ctx.lambd)                                      # dL/dC off the diagonal
        torch.diagonal(g).copy_(2 * (torch.diagonal(c) - 1))         # ... and on it
        g.mul_(grad / n)
        gc = g * c
        dz1 = (x2 @ (g.T * s1)).addcmul_(x1, gc.sum(1) * s1, value=-1)
        dz2 = (x1 @ (g * s2)).addcmul_(x2, gc.sum(0) * s2, value=-1)
        return dz1, dz2, None, None


def fused_negative_cosine(p: torch.Tensor, z: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``-mean_i cos(p_i, z_i)`` of (N, D) rows, norms clamped at ``eps`` as F.cosine_similarity.

    Example:
        >>> round(fused_negative_cosine(torch.ones(3, 2), 2 * torch.ones(3, 2)).item(), 6)
        -1.0
    """
    return _NegativeCosine.apply(p, z, float(eps))


class _NegativeCosine(torch.autograd.Function):
    """Negative cosine with its backward written out.

    With u = 1 / max(|p|, eps), v = 1 / max(|z|, eps) and cos = (p . z) u v per row:
    d cos / dp = z u v - cos p u^2 (and symmetrically for z): three row dot products forward,
    one pass per input backward, only for the inputs that need a gradient.
    """

    @staticmethod
    def forward(ctx, p, z, eps):
        u = torch.linalg.vecdot(p, p).sqrt_().clamp_min_(eps).reciprocal_()   # (N,)
        v = torch.linalg.vecdot(z, z).sqrt_().clamp_min_(eps).reciprocal_()   # (N,)
        cos = torch.linalg.vecdot(p, z).mul_(u).mul_(v)                       # (N,)
        ctx.save_for_backward(p, z, u, v, cos)
        return -cos.mean()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        p, z, u, v, cos = ctx.saved_tensors
        k = -grad / p.shape[0]
        uvk = u * v * k
        need_p, need_z = ctx.needs_input_grad[:2]
        dp = torch.addcmul(z * uvk[:, None], p, (-cos * u * u * k)[:, None]) if need_p else None
        dz = torch.addcmul(p * uvk[:, None], z, (-cos * v * v * k)[:, None]) if need_z else None
        return dp, dz, None
