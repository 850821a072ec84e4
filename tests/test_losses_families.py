"""Barlow Twins, SwAV (Sinkhorn), DINO and negative-cosine losses against independent
references: lightly's implementations and the original authors' formulas (float64), plus
properties (permutation invariance, known values, balanced Sinkhorn marginals), gradient checks,
numerical stability and input errors."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cl_teach.losses import (
    barlow_twins_loss,
    cross_correlation,
    dino_loss,
    negative_cosine,
    sinkhorn,
    swav_loss,
)

# ---------- the original authors' code, transcribed (float64) ----------

def ref_barlow(z1, z2, lambd):
    """facebookresearch/barlowtwins main.py: BatchNorm1d(affine=False), c = bn(z1).T @ bn(z2) / N."""
    bn = nn.BatchNorm1d(z1.shape[1], affine=False).double().train()
    c = bn(z1.double()).T @ bn(z2.double()) / z1.shape[0]
    on_diag = torch.diagonal(c).add(-1).pow(2).sum()
    off_diag = c.flatten()[:-1].view(c.shape[0] - 1, c.shape[0] + 1)[:, 1:].flatten().pow(2).sum()
    return on_diag + lambd * off_diag


def ref_sinkhorn(out, n_iters=3, epsilon=0.05):
    """facebookresearch/swav main_swav.py distributed_sinkhorn, one process."""
    Q = torch.exp(out.double() / epsilon).t()          # K x B
    B, K = Q.shape[1], Q.shape[0]
    Q /= Q.sum()
    for _ in range(n_iters):
        Q /= Q.sum(dim=1, keepdim=True); Q /= K
        Q /= Q.sum(dim=0, keepdim=True); Q /= B
    return (Q * B).t()


def ref_swav(views, n_global, temperature=0.1):
    """facebookresearch/swav main_swav.py: swapped prediction over crops_for_assign = globals."""
    loss = 0
    for i in range(n_global):
        q = ref_sinkhorn(views[i].detach())
        sub = 0
        for v in range(len(views)):
            if v != i:
                sub -= torch.mean(torch.sum(q * F.log_softmax(views[v].double() / temperature, dim=1), dim=1))
        loss += sub / (len(views) - 1)
    return loss / n_global


def ref_dino(student, teacher, center, ts=0.1, tt=0.04):
    """facebookresearch/dino main_dino.py DINOLoss.forward (without the center update)."""
    s_out = [s.double() / ts for s in student]
    t_out = [F.softmax((t.double() - center.double()) / tt, dim=-1).detach() for t in teacher]
    total, n = 0, 0
    for iq, q in enumerate(t_out):
        for v in range(len(s_out)):
            if v == iq:
                continue
            total += torch.sum(-q * F.log_softmax(s_out[v], dim=-1), dim=-1).mean()
            n += 1
    return total / n


def ref_byol(p, z):
    """BYOL's regression loss 2 - 2 cos, averaged; equals 2 + 2 * negative_cosine."""
    p, z = F.normalize(p.double(), dim=-1), F.normalize(z.double(), dim=-1)
    return (2 - 2 * (p * z).sum(dim=-1)).mean()


# ---------- Barlow Twins ----------

@pytest.mark.parametrize("lambd", [5e-3, 0.1])
def test_barlow_matches_authors_and_lightly(lambd):
    from lightly.loss import BarlowTwinsLoss
    z1, z2 = torch.randn(32, 16), torch.randn(32, 16)
    ours = barlow_twins_loss(z1, z2, lambd).item()
    assert abs(ours - ref_barlow(z1, z2, lambd).item()) < 1e-5 * max(1, abs(ours))
    assert abs(ours - BarlowTwinsLoss(lambda_param=lambd)(z1, z2).item()) < 1e-5 * max(1, abs(ours))


def test_barlow_known_values_and_properties():
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert barlow_twins_loss(z, z).item() == pytest.approx(0.0, abs=1e-4)   # C = I
    # independent views: diagonal near 0, so the invariance term is about D
    z1, z2 = torch.randn(4096, 8), torch.randn(4096, 8)
    assert barlow_twins_loss(z1, z2, lambd=0.0).item() == pytest.approx(8.0, abs=0.2)
    perm = torch.randperm(4096)
    assert barlow_twins_loss(z1[perm], z2[perm]).item() == pytest.approx(barlow_twins_loss(z1, z2).item(),
                                                                         rel=1e-5)
    # invariant to a per-dimension affine rescaling (batch-normalised inside)
    a = barlow_twins_loss(z1[:64] * 3 + 1, z2[:64]).item()
    assert a == pytest.approx(barlow_twins_loss(z1[:64], z2[:64]).item(), rel=1e-4)
    c = cross_correlation(z1, z1)
    assert torch.allclose(c.diagonal(), torch.ones(8), atol=1e-4)


def test_barlow_terms():
    """``terms=True``: the loss and its two terms (what BarlowTwins logs) and C, same values."""
    z1, z2 = torch.randn(32, 6, dtype=torch.float64), torch.randn(32, 6, dtype=torch.float64)
    loss, on_diag, off_diag, c = barlow_twins_loss(z1, z2, 0.01, terms=True)
    assert torch.equal(loss, barlow_twins_loss(z1, z2, 0.01))
    assert torch.equal(c, cross_correlation(z1, z2))
    eye = torch.eye(6, dtype=torch.bool)
    assert on_diag.item() == pytest.approx((1 - c[eye]).pow(2).sum().item(), rel=1e-12)
    assert off_diag.item() == pytest.approx(c[~eye].pow(2).sum().item(), rel=1e-12)
    assert loss.item() == pytest.approx(ref_barlow(z1, z2, 0.01).item(), rel=1e-9)


def test_barlow_gradients():
    a = torch.randn(12, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(12, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: barlow_twins_loss(x, y, 0.1), (a, b))
    from lightly.loss import BarlowTwinsLoss
    x, y = torch.randn(16, 6, requires_grad=True), torch.randn(16, 6, requires_grad=True)
    g1 = torch.autograd.grad(barlow_twins_loss(x, y), (x, y))
    g2 = torch.autograd.grad(BarlowTwinsLoss()(x, y), (x, y))
    for u, v in zip(g1, g2):
        assert torch.allclose(u, v, atol=1e-5)


@pytest.mark.parametrize("n,d,lambd,offset", [(12, 5, 0.1, 0.0), (64, 16, 5e-3, 3.0), (300, 8, 1.0, -50.0)])
def test_barlow_plain_and_fused_agree_in_value_and_gradients(n, d, lambd, offset):
    """float64: the hand-written backward (_fused._BarlowTwins, batch norm folded into the
    products) is the gradient of the plain body, also for views far from mean 0."""
    g = torch.Generator().manual_seed(n)
    a = (offset + 2 * torch.randn(n, d, generator=g, dtype=torch.float64)).requires_grad_()
    b = (a.detach() * 0.5 + torch.randn(n, d, generator=g, dtype=torch.float64)).requires_grad_()
    plain, fused = (barlow_twins_loss(a, b, lambd, terms=True, fused=f) for f in (False, True))
    for x, y in zip(plain, fused, strict=True):
        assert torch.allclose(x, y, rtol=1e-12, atol=1e-12)
    grads = [torch.autograd.grad(out[0], (a, b)) for out in (plain, fused)]
    for x, y in zip(*grads, strict=True):
        assert torch.allclose(x, y, rtol=1e-9, atol=1e-12)
    assert not fused[3].requires_grad                               # C is for logging on this path
    assert torch.autograd.gradcheck(lambda x, y: barlow_twins_loss(x, y, lambd, fused=True),
                                    (a[:10], b[:10]))


def test_barlow_bfloat16_and_errors():
    z1, z2 = torch.randn(64, 8), torch.randn(64, 8)
    out = barlow_twins_loss(z1.bfloat16(), z2.bfloat16())
    assert torch.isfinite(out) and abs(out.float().item() - barlow_twins_loss(z1, z2).item()) < 0.1
    with pytest.raises(ValueError, match="z1 and z2 must have the same shape"):
        barlow_twins_loss(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="at least 2 samples"):
        barlow_twins_loss(torch.randn(1, 3), torch.randn(1, 3))
    with pytest.raises(ValueError, match="lambd"):
        barlow_twins_loss(torch.randn(4, 3), torch.randn(4, 3), lambd=-1.0)
    with pytest.raises(ValueError, match="z2 must be finite"):
        barlow_twins_loss(torch.randn(4, 3), torch.full((4, 3), float("nan")))


# ---------- Sinkhorn and SwAV ----------

@pytest.mark.parametrize("n_iters,epsilon", [(3, 0.05), (1, 0.1), (10, 0.05)])
def test_sinkhorn_matches_authors_and_lightly(n_iters, epsilon):
    from lightly.loss.swav_loss import sinkhorn as lightly_sinkhorn
    s = F.normalize(torch.randn(64, 10), dim=1) @ F.normalize(torch.randn(10, 10), dim=0)  # cosines
    q = sinkhorn(s, n_iters, epsilon)
    assert q.shape == (64, 10)
    assert torch.allclose(q.double(), ref_sinkhorn(s, n_iters, epsilon), atol=1e-5)
    assert torch.allclose(q, lightly_sinkhorn(s, n_iters, epsilon), atol=1e-5)


def test_sinkhorn_marginals_balanced():
    s = F.normalize(torch.randn(200, 16), dim=1) @ F.normalize(torch.randn(16, 8), dim=0)
    s[:, 0] += 0.3                                          # everyone prefers prototype 0
    naive = F.softmax(s / 0.05, dim=1).sum(0)               # codes without equipartition
    assert naive.max() > 3 * 200 / 8
    q = sinkhorn(s, n_iters=3)
    assert torch.allclose(q.sum(1), torch.ones(200), atol=1e-5)           # one unit per sample
    assert q.sum(0).max() < 1.5 * 200 / 8 and q.sum(0).min() > 0.5 * 200 / 8
    assert torch.allclose(sinkhorn(s, n_iters=10).sum(0), torch.full((8,), 25.0), rtol=0.05)
    assert torch.allclose(sinkhorn(s, n_iters=50).sum(0), torch.full((8,), 25.0), rtol=1e-3)
    assert torch.allclose(sinkhorn(torch.zeros(6, 3)), torch.full((6, 3), 1 / 3))  # known value


def test_sinkhorn_permutation_equivariant_stable_and_errors():
    s = torch.randn(30, 5)
    perm = torch.randperm(30)
    assert torch.allclose(sinkhorn(s)[perm], sinkhorn(s[perm]), atol=1e-6)
    big = torch.randn(30, 5) * 50                       # exp(50 / 0.01) overflows the naive code
    q = sinkhorn(big, epsilon=0.01)
    assert torch.isfinite(q).all() and torch.allclose(q.sum(1), torch.ones(30), atol=1e-4)
    qb = sinkhorn(s.bfloat16())
    assert qb.dtype == torch.bfloat16 and torch.isfinite(qb.float()).all()
    assert not sinkhorn(s.requires_grad_()).requires_grad   # codes are targets
    with pytest.raises(ValueError, match="scores must be a 2-d tensor"):
        sinkhorn(torch.randn(5))
    with pytest.raises(ValueError, match="epsilon must be a finite number > 0"):
        sinkhorn(torch.randn(4, 3), epsilon=0.0)
    with pytest.raises(TypeError, match="n_iters must be an int"):
        sinkhorn(torch.randn(4, 3), n_iters=2.5)


@pytest.mark.parametrize("epsilon", [0.05, 0.04, 0.1])
def test_sinkhorn_exp_and_log_domain_agree_and_the_choice_follows_the_span(epsilon):
    """The fast exp-domain iteration (the authors') and the log-domain fallback give the same
    codes; the automatic choice takes exp for cosine scores and logs past the safe span."""
    from cl_teach.losses.swav import EXP_DOMAIN_MAX_SPAN
    g = torch.Generator().manual_seed(3)
    s = (F.normalize(torch.randn(300, 16, generator=g), dim=1)
         @ F.normalize(torch.randn(16, 12, generator=g), dim=0))
    before = s.clone()
    fast = sinkhorn(s, epsilon=epsilon, log_domain=False)
    stable = sinkhorn(s, epsilon=epsilon, log_domain=True)
    assert torch.equal(s, before)                                   # the scores are not touched
    assert torch.allclose(fast, stable, atol=2e-6, rtol=1e-5)
    assert torch.allclose(fast.double(), ref_sinkhorn(s, 3, epsilon), atol=1e-5)
    assert torch.equal(sinkhorn(s, epsilon=epsilon), fast)          # cosines: span <= 2 / epsilon <= 50
    wide = s * (EXP_DOMAIN_MAX_SPAN * epsilon / float(s.max() - s.min()) * 1.01)   # span just over it
    assert torch.equal(sinkhorn(wide, epsilon=epsilon), sinkhorn(wide, epsilon=epsilon, log_domain=True))
    with pytest.raises(ValueError, match="log_domain=False needs"):
        sinkhorn(wide, epsilon=epsilon, log_domain=False)


def _scores(v, n=16, k=6):
    return [F.normalize(torch.randn(n, 8), dim=1) @ F.normalize(torch.randn(8, k), dim=0) for _ in range(v)]


@pytest.mark.parametrize("n_global,n_local", [(2, 0), (2, 3)])
def test_swav_matches_authors_and_lightly(n_global, n_local):
    from lightly.loss import SwaVLoss
    views = _scores(n_global + n_local)
    ours = swav_loss(views[:n_global], views[n_global:]).item()
    assert abs(ours - ref_swav(views, n_global).item()) < 1e-5
    assert abs(ours - SwaVLoss()(views[:n_global], views[n_global:]).item()) < 1e-5


def test_swav_queue_matches_lightly():
    from lightly.loss import SwaVLoss
    views, queue = _scores(2), _scores(2, n=40)
    ours = swav_loss(views, queue_scores=queue).item()
    assert abs(ours - SwaVLoss()(views, [], queue_outputs=queue).item()) < 1e-5


def test_swav_properties_gradients_stability_errors():
    views = _scores(2)
    perm = torch.randperm(16)
    assert swav_loss(views).item() == pytest.approx(swav_loss([v[perm] for v in views]).item(), abs=1e-5)
    # codes are stop-gradient targets, so compare gradients with the authors' formula (float64)
    a = views[0].double().requires_grad_(); b = views[1].double().requires_grad_()
    g_ours = torch.autograd.grad(swav_loss([a, b]), (a, b))
    g_ref = torch.autograd.grad(ref_swav([a, b], 2), (a, b))
    for u, v in zip(g_ours, g_ref):
        assert torch.allclose(u, v, atol=1e-8)
    from lightly.loss import SwaVLoss
    x, y = [v.clone().requires_grad_() for v in views]
    g1 = torch.autograd.grad(swav_loss([x, y]), (x, y))
    g2 = torch.autograd.grad(SwaVLoss()([x, y], []), (x, y))
    for u, v in zip(g1, g2):
        assert torch.allclose(u, v, atol=1e-5)
    assert torch.isfinite(swav_loss([s * 20 for s in views], temperature=0.01, epsilon=0.01))
    assert torch.isfinite(swav_loss([s.bfloat16() for s in views]).float())
    with pytest.raises(TypeError, match="global_scores must be a list"):
        swav_loss(views[0])
    with pytest.raises(ValueError, match="at least 2 views"):
        swav_loss(views[:1])
    with pytest.raises(ValueError, match="must have shape"):
        swav_loss([views[0], views[1][:, :3]])
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        swav_loss(views, temperature=-0.1)


# ---------- DINO ----------

@pytest.mark.parametrize("n_student", [2, 4])
def test_dino_matches_authors_and_lightly(n_student):
    from lightly.loss import DINOLoss
    k = 12
    teacher = [torch.randn(10, k) for _ in range(2)]
    student = [torch.randn(10, k) for _ in range(n_student)]
    center = torch.randn(k) * 0.1
    ours = dino_loss(student, teacher, center, 0.1, 0.04).item()
    assert abs(ours - ref_dino(student, teacher, center).item()) < 1e-5
    lt = DINOLoss(output_dim=k, teacher_temp=0.04, student_temp=0.1)
    lt.center.copy_(center.view(1, 1, k))
    assert abs(ours - lt(teacher, student, teacher_temp=0.04).item()) < 1e-5


def test_dino_known_values_properties_gradients():
    k = 16
    z = torch.zeros(5, k)
    assert dino_loss([z, z], [z, z], torch.zeros(k)).item() == pytest.approx(math.log(k), abs=1e-5)
    # the loss is the cross-entropy H(P_t, P_s) >= H(P_t); with a one-hot teacher and a uniform
    # student it is log K as well: the two collapse modes both sit at log K for a uniform student
    hot = torch.zeros(5, k); hot[:, 3] = 100.0
    assert dino_loss([z, z], [hot, hot], torch.zeros(k)).item() == pytest.approx(math.log(k), abs=1e-4)
    t, s = [torch.randn(8, k) for _ in range(2)], [torch.randn(8, k) for _ in range(3)]
    c = torch.randn(1, k)
    perm = torch.randperm(8)
    assert dino_loss(s, t, c).item() == pytest.approx(
        dino_loss([x[perm] for x in s], [x[perm] for x in t], c).item(), rel=1e-5)
    # a constant shift of the teacher is undone by centering with the shifted center
    assert dino_loss(s, [x + 3 for x in t], c + 3).item() == pytest.approx(dino_loss(s, t, c).item(),
                                                                           rel=1e-5)
    a = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    tt = torch.randn(6, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x, y: dino_loss([x, y], [tt, tt], torch.zeros(5, dtype=torch.float64), 0.3, 0.1), (a, b))
    ts = [x.clone().requires_grad_() for x in t]
    ss = [x.clone().requires_grad_() for x in s]
    dino_loss(ss, ts, c).backward()
    assert all(x.grad is not None for x in ss)
    assert all(x.grad is None for x in ts)                 # no gradient through the teacher


def test_dino_stability_and_errors():
    k = 8
    t, s = [torch.randn(6, k) * 30 for _ in range(2)], [torch.randn(6, k) * 30 for _ in range(2)]
    assert torch.isfinite(dino_loss(s, t, torch.zeros(k), student_temperature=0.01, teacher_temperature=0.01))
    assert torch.isfinite(dino_loss([x.bfloat16() for x in s], [x.bfloat16() for x in t],
                                    torch.zeros(k).bfloat16()).float())
    with pytest.raises(ValueError, match="center must have shape"):
        dino_loss(s, t, torch.zeros(k + 1))
    with pytest.raises(TypeError, match="student_out must be a list"):
        dino_loss(s[0], t, torch.zeros(k))
    with pytest.raises(ValueError, match=r"student_out\[1\] must have shape"):
        dino_loss([s[0], s[1][:, :4]], t, torch.zeros(k))
    with pytest.raises(ValueError, match="teacher_temperature must be a finite number > 0"):
        dino_loss(s, t, torch.zeros(k), teacher_temperature=0.0)
    with pytest.raises(ValueError, match="at least one"):
        dino_loss(s[:1], t[:1], torch.zeros(k))


# ---------- negative cosine (BYOL, SimSiam) ----------

def test_negative_cosine_matches_lightly_and_byol():
    from lightly.loss import NegativeCosineSimilarity
    p, z = torch.randn(20, 7), torch.randn(20, 7)
    ours = negative_cosine(p, z).item()
    assert abs(ours - NegativeCosineSimilarity()(p, z).item()) < 1e-6
    assert abs((2 + 2 * ours) - ref_byol(p, z).item()) < 1e-5
    simsiam = -(F.normalize(p.double(), dim=1) * F.normalize(z.double(), dim=1)).sum(dim=1).mean()
    assert abs(ours - simsiam.item()) < 1e-6


def test_negative_cosine_properties_gradients_errors():
    p, z = torch.randn(10, 4), torch.randn(10, 4)
    assert negative_cosine(p, p).item() == pytest.approx(-1.0, abs=1e-6)
    assert negative_cosine(p, -p).item() == pytest.approx(1.0, abs=1e-6)
    perm = torch.randperm(10)
    assert negative_cosine(p[perm], z[perm]).item() == pytest.approx(negative_cosine(p, z).item(), abs=1e-6)
    assert negative_cosine(p, 5 * z).item() == pytest.approx(negative_cosine(p, z).item(), abs=1e-6)
    a = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(negative_cosine, (a, b))
    assert torch.isfinite(negative_cosine(p.bfloat16(), z.bfloat16()).float())
    with pytest.raises(ValueError, match="p and z must have the same shape"):
        negative_cosine(torch.randn(3, 4), torch.randn(3, 5))
    with pytest.raises(TypeError, match="p must be a torch.Tensor"):
        negative_cosine([[1.0]], torch.randn(1, 1))


@pytest.mark.parametrize("detach", [False, True])
def test_negative_cosine_plain_and_fused_agree_in_value_and_gradients(detach):
    """float64: the hand-written backward (_fused._NegativeCosine) is F.cosine_similarity's
    gradient, with a target that needs none (BYOL, SimSiam) and with a zero row (norm clamped)."""
    g = torch.Generator().manual_seed(4)
    p = torch.randn(40, 9, generator=g, dtype=torch.float64)
    p[3] = 0.0
    p.requires_grad_()
    z = torch.randn(40, 9, generator=g, dtype=torch.float64).requires_grad_(not detach)
    inputs = (p,) if detach else (p, z)
    plain, fused = (negative_cosine(p, z, fused=f) for f in (False, True))
    assert torch.allclose(plain, fused, rtol=1e-12, atol=1e-14)
    for x, y in zip(torch.autograd.grad(plain, inputs), torch.autograd.grad(fused, inputs), strict=True):
        assert torch.allclose(x, y, rtol=1e-9, atol=1e-12)
    assert torch.autograd.gradcheck(lambda *t: negative_cosine(*t, fused=True),
                                    (p[4:10].detach().requires_grad_(), z[4:10].detach().requires_grad_()))
