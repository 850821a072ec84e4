"""InfoNCE / NT-Xent against independent references: a direct float64 formula, lightly's
NTXentLoss and pytorch-metric-learning's NTXentLoss, plus properties and gradients."""
import math

import pytest
import torch
import torch.nn.functional as F

from cl_teach.losses import info_nce, info_nce_logits, nt_xent


def ref_info_nce(q, k, t, neg=None):
    """Direct formula, a loop in float64: -log( e^{q.k+/t} / sum_j e^{q.k_j/t} )."""
    q = F.normalize(q.double(), dim=1); k = F.normalize(k.double(), dim=1)
    losses = []
    for i in range(q.shape[0]):
        cands = k if neg is None else torch.cat([k[i:i + 1], F.normalize(neg.double(), dim=1)])
        pos = (q[i] @ k[i]) / t
        losses.append(-(pos - torch.log(torch.exp(cands @ q[i] / t).sum())))
    return torch.stack(losses).mean()


def ref_nt_xent(z1, z2, t):
    z = F.normalize(torch.cat([z1, z2]).double(), dim=1); n = z1.shape[0]
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        den = sum(math.exp(float(z[i] @ z[m]) / t) for m in range(2 * n) if m != i)
        total += -(float(z[i] @ z[j]) / t - math.log(den))
    return total / (2 * n)


@pytest.mark.parametrize("t", [0.07, 0.5, 1.0])
def test_info_nce_matches_formula(t):
    q, k = torch.randn(12, 8), torch.randn(12, 8)
    assert abs(info_nce(q, k, t).item() - ref_info_nce(q, k, t).item()) < 1e-5


def test_info_nce_with_negatives_matches_formula():
    q, k, neg = torch.randn(6, 5), torch.randn(6, 5), torch.randn(20, 5)
    assert abs(info_nce(q, k, 0.2, negatives=neg).item() - ref_info_nce(q, k, 0.2, neg).item()) < 1e-5
    logits, labels = info_nce_logits(q, k, 0.2, negatives=neg)
    assert logits.shape == (6, 21) and labels.eq(0).all()


@pytest.mark.parametrize("t", [0.1, 0.5])
def test_nt_xent_matches_formula_and_lightly(t):
    from lightly.loss import NTXentLoss
    z1, z2 = torch.randn(10, 16), torch.randn(10, 16)
    ours = nt_xent(z1, z2, t).item()
    assert abs(ours - ref_nt_xent(z1, z2, t)) < 1e-5
    assert abs(ours - NTXentLoss(temperature=t)(z1, z2).item()) < 1e-5


def test_nt_xent_matches_pytorch_metric_learning():
    from pytorch_metric_learning.losses import NTXentLoss
    z1, z2 = torch.randn(16, 8), torch.randn(16, 8)
    emb = torch.cat([z1, z2]); labels = torch.arange(16).repeat(2)
    assert abs(nt_xent(z1, z2, 0.5).item() - NTXentLoss(temperature=0.5)(emb, labels).item()) < 1e-5


def test_nt_xent_gradients_match_lightly():
    from lightly.loss import NTXentLoss
    a = torch.randn(8, 6, requires_grad=True); b = torch.randn(8, 6, requires_grad=True)
    ga = torch.autograd.grad(nt_xent(a, b, 0.2), (a, b))
    gb = torch.autograd.grad(NTXentLoss(temperature=0.2)(a, b), (a, b))
    for x, y in zip(ga, gb):
        assert torch.allclose(x, y, atol=1e-6)


def test_gradcheck_float64():
    q = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    k = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: info_nce(a, b, 0.3), (q, k))
    assert torch.autograd.gradcheck(lambda a, b: nt_xent(a, b, 0.3), (q, k))


def test_random_embeddings_loss_near_log_2n_minus_1():
    n = 256
    z1, z2 = torch.randn(n, 128), torch.randn(n, 128)
    assert abs(nt_xent(z1, z2, 1.0).item() - math.log(2 * n - 1)) < 0.05


def test_permutation_invariance():
    q, k = torch.randn(9, 4), torch.randn(9, 4)
    perm = torch.randperm(9)
    assert torch.allclose(info_nce(q, k), info_nce(q[perm], k[perm]), atol=1e-6)
    assert torch.allclose(nt_xent(q, k), nt_xent(q[perm], k[perm]), atol=1e-6)
    assert torch.allclose(nt_xent(q, k), nt_xent(k, q), atol=1e-6)    # symmetric in the views


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_finite_at_low_temperature(dtype):
    a = torch.randn(64, 32, dtype=dtype, requires_grad=True)
    b = torch.randn(64, 32, dtype=dtype, requires_grad=True)
    for loss in (info_nce(a, b, 0.01), nt_xent(a, b, 0.01), info_nce(a, b, 0.01, negatives=torch.randn(50, 32, dtype=dtype))):
        assert torch.isfinite(loss)
        ga, gb = torch.autograd.grad(loss, (a, b))
        assert torch.isfinite(ga).all() and torch.isfinite(gb).all()


@pytest.mark.parametrize("t", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_temperature(t):
    with pytest.raises(ValueError, match="temperature"):
        info_nce(torch.randn(3, 2), torch.randn(3, 2), t)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(torch.randn(3, 2), torch.randn(3, 2), t)


def test_bad_shapes_and_values():
    with pytest.raises(ValueError, match="same shape"):
        nt_xent(torch.randn(3, 2), torch.randn(4, 2))
    with pytest.raises(ValueError, match="2-d"):
        info_nce(torch.randn(3), torch.randn(3))
    with pytest.raises(ValueError, match="non-empty"):
        nt_xent(torch.randn(0, 2), torch.randn(0, 2))
    with pytest.raises(ValueError, match="finite"):
        info_nce(torch.tensor([[float("nan"), 1.0]]), torch.ones(1, 2))
    with pytest.raises(ValueError, match="negatives"):
        info_nce(torch.randn(3, 2), torch.randn(3, 2), negatives=torch.randn(5, 3))
    with pytest.raises(TypeError, match="floating"):
        nt_xent(torch.ones(3, 2, dtype=torch.long), torch.ones(3, 2, dtype=torch.long))
