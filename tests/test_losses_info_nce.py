"""InfoNCE / NT-Xent / masked InfoNCE / queue InfoNCE against independent references: a direct
float64 formula, lightly's NTXentLoss and pytorch-metric-learning's NTXentLoss, plus properties
and gradients, and the plain NT-Xent body against its fused fast path."""
import inspect
import math

import pytest
import torch
import torch.nn.functional as F

from cl_teach.losses import clip_loss, info_nce, info_nce_logits, masked_info_nce, nt_xent, queue_nce
from cl_teach.losses import info_nce as info_nce_module


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
    bank = torch.randn(50, 32, dtype=dtype)
    for loss in (info_nce(a, b, 0.01), nt_xent(a, b, 0.01), nt_xent(a, b, 0.01, fused=False),
                 info_nce(a, b, 0.01, negatives=bank)):
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


# ---------- the plain NT-Xent body and its fused fast path ----------

@pytest.mark.parametrize("n,d,t", [(1, 3, 0.5), (5, 4, 0.3), (16, 8, 0.07)])
def test_nt_xent_plain_and_fused_agree_in_value_and_gradient(n, d, t):
    """float64: the hand-written backward (_fused.py) is the gradient of the plain body."""
    a = torch.randn(n, d, dtype=torch.float64, requires_grad=True)
    b = torch.randn(n, d, dtype=torch.float64, requires_grad=True)
    plain, fused = nt_xent(a, b, t, fused=False), nt_xent(a, b, t, fused=True)
    assert torch.allclose(plain, fused, rtol=0, atol=1e-12)
    assert abs(plain.item() - ref_nt_xent(a.detach(), b.detach(), t)) < 1e-10
    for gp, gf in zip(torch.autograd.grad(plain, (a, b)), torch.autograd.grad(fused, (a, b))):
        assert torch.allclose(gp, gf, rtol=0, atol=1e-12)
    for fused_ in (False, True):
        assert torch.autograd.gradcheck(lambda x, y, f=fused_: nt_xent(x, y, t, fused=f), (a, b))


def test_nt_xent_reads_as_the_equation():
    """What a reader opens is the plain body; the autograd.Function lives in _fused.py."""
    src = inspect.getsource(nt_xent)
    for line in ("sim = z @ z.T / temperature", "sim.fill_diagonal_(float(\"-inf\"))",
                 "return F.cross_entropy(sim, pos)"):
        assert line in src, line
    assert "autograd.Function" not in inspect.getsource(info_nce_module)
    assert "fused" in inspect.signature(nt_xent).parameters
    assert inspect.signature(nt_xent).parameters["fused"].default is True      # the fast path stays


# ---------- masked InfoNCE (false negatives left out) ----------

def ref_masked_info_nce(q, k, same, t):
    """Direct formula, a loop in float64: each direction's softmax skips the masked pairs."""
    q, k = F.normalize(q.double(), dim=1), F.normalize(k.double(), dim=1)
    n = q.shape[0]
    total = 0.0
    for a, b in ((q, k), (k, q)):
        mask = same if a is q else same.T
        for i in range(n):
            den = sum(math.exp(float(a[i] @ b[j]) / t) for j in range(n) if j == i or not mask[i, j])
            total += -(float(a[i] @ b[i]) / t - math.log(den))
    return total / (2 * n)


@pytest.mark.parametrize("t", [0.05, 0.5])
def test_masked_info_nce_matches_formula(t):
    g = torch.Generator().manual_seed(3)
    q, k = torch.randn(9, 5, generator=g), torch.randn(9, 5, generator=g)
    same = torch.rand(9, 9, generator=g) < 0.3                      # not symmetric: both directions
    same.fill_diagonal_(True)                                       # the diagonal is ignored
    assert abs(masked_info_nce(q, k, same, t).item() - ref_masked_info_nce(q, k, same, t)) < 1e-5
    none = torch.zeros(9, 9, dtype=torch.bool)
    assert abs(masked_info_nce(q, k, none, t).item() - ref_masked_info_nce(q, k, none, t)) < 1e-5
    assert torch.allclose(masked_info_nce(q, k, none, t), clip_loss(q, k, t), atol=1e-6)


def test_masked_info_nce_gradcheck_and_errors():
    q = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    k = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    same = torch.eye(5, dtype=torch.bool) | torch.eye(5, dtype=torch.bool).roll(1, 1)
    assert torch.autograd.gradcheck(lambda a, b: masked_info_nce(a, b, same, 0.3), (q, k))
    with pytest.raises(TypeError, match="same must be a boolean"):
        masked_info_nce(q, k, same.float(), 0.3)
    with pytest.raises(ValueError, match=r"same \(N, N\)"):
        masked_info_nce(q, k, same[:4], 0.3)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        masked_info_nce(q, k, same, 0.0)


# ---------- InfoNCE against the batch's keys and a queue (WenLan) ----------

def ref_queue_nce(q, k, queue, t):
    """Direct formula, a loop in float64: candidates of query i are all N keys, then the queue."""
    q, k = F.normalize(q.double(), dim=1), F.normalize(k.double(), dim=1)
    cands = torch.cat([k, F.normalize(queue.double(), dim=1)]) if len(queue) else k
    total = 0.0
    for i in range(q.shape[0]):
        den = sum(math.exp(float(q[i] @ c) / t) for c in cands)
        total += -(float(q[i] @ k[i]) / t - math.log(den))
    return total / q.shape[0]


@pytest.mark.parametrize("k_queue,t", [(0, 0.07), (1, 0.5), (20, 0.07)])
def test_queue_nce_matches_formula(k_queue, t):
    g = torch.Generator().manual_seed(4)
    q, k, queue = (torch.randn(m, 6, generator=g) for m in (7, 7, k_queue))
    assert abs(queue_nce(q, k, queue, t).item() - ref_queue_nce(q, k, queue, t)) < 1e-5
    assert abs(queue_nce(q, k, queue, torch.tensor(t)).item() - ref_queue_nce(q, k, queue, t)) < 1e-5


def test_queue_nce_properties_gradients_and_errors():
    g = torch.Generator().manual_seed(5)
    q, k, queue = (torch.randn(m, 4, generator=g) for m in (6, 6, 10))
    # an empty queue: one direction of CLIP's loss; the queue only adds negatives
    assert torch.allclose((queue_nce(q, k, queue[:0], 0.1) + queue_nce(k, q, queue[:0], 0.1)) / 2,
                          clip_loss(q, k, 0.1), atol=1e-6)
    assert queue_nce(q, k, queue, 0.1) > queue_nce(q, k, queue[:0], 0.1)
    perm = torch.randperm(10, generator=g)
    assert torch.allclose(queue_nce(q, k, queue, 0.1), queue_nce(q, k, queue[perm], 0.1), atol=1e-6)
    assert torch.allclose(queue_nce(q, k, queue.double(), 0.1), queue_nce(q, k, queue, 0.1))   # cast to key's
    a, b = (x.double().requires_grad_() for x in (q, k))
    assert torch.autograd.gradcheck(lambda x, y: queue_nce(x, y, queue.double(), 0.3), (a, b))
    with pytest.raises(ValueError, match=r"queue must be a \(K, 4\) tensor"):
        queue_nce(q, k, torch.randn(10, 5), 0.1)
    with pytest.raises(ValueError, match="queue must be a 2-d"):
        queue_nce(q, k, torch.randn(10), 0.1)
    with pytest.raises(ValueError, match="queue must be finite"):
        queue_nce(q, k, queue.index_fill(0, torch.tensor([3]), float("nan")), 0.1)
    with pytest.raises(TypeError, match="queue must have a floating dtype"):
        queue_nce(q, k, queue.long(), 0.1)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        queue_nce(q, k, queue, 0.0)
    with pytest.raises(ValueError, match="query and key must have the same shape"):
        queue_nce(q, k[:5], queue, 0.1)


def ref_queue_nce_own_keys(q, k, queue, t, q_ids, queue_ids):
    """The same loop with each query's own keys taken out of the queue (a different queue per row)."""
    total = 0.0
    for i in range(q.shape[0]):
        keep = queue[queue_ids != q_ids[i]]
        qi = F.normalize(q[i].double(), dim=0)
        cands = torch.cat([F.normalize(k.double(), dim=1), F.normalize(keep.double(), dim=1)])
        den = sum(math.exp(float(qi @ c) / t) for c in cands)
        total += -(float(qi @ F.normalize(k[i].double(), dim=0)) / t - math.log(den))
    return total / q.shape[0]


@pytest.mark.parametrize("k_queue,t", [(0, 0.07), (5, 0.5), (20, 0.07)])
def test_queue_nce_own_keys_match_the_loop(k_queue, t):
    g = torch.Generator().manual_seed(6)
    q, k, queue = (torch.randn(m, 6, generator=g) for m in (7, 7, k_queue))
    q_ids, queue_ids = torch.arange(7), torch.randint(0, 9, (k_queue,), generator=g)
    got = queue_nce(q, k, queue, t, query_ids=q_ids, queue_ids=queue_ids)
    assert abs(got.item() - ref_queue_nce_own_keys(q, k, queue, t, q_ids, queue_ids)) < 1e-5


def test_queue_nce_own_keys_properties_gradients_and_errors():
    g = torch.Generator().manual_seed(7)
    q, k, queue = (torch.randn(m, 4, generator=g) for m in (6, 6, 10))
    q_ids = torch.arange(6)
    # ids that match nothing change nothing; every queue key the query's own: the queue is gone
    assert torch.allclose(queue_nce(q, k, queue, 0.1, q_ids, torch.full((10,), 99)),
                          queue_nce(q, k, queue, 0.1), atol=1e-6)
    same = torch.zeros(6, dtype=torch.long)
    assert torch.allclose(queue_nce(q, k, queue, 0.1, same, torch.zeros(10, dtype=torch.long)),
                          queue_nce(q, k, queue[:0], 0.1), atol=1e-6)
    # a stale copy of the positive in the queue: masked, the loss is the loss without it
    stale = torch.cat([queue, k[:1]])
    ids = torch.cat([torch.full((10,), 99), torch.tensor([0])])
    assert queue_nce(q, k, stale, 0.1) > queue_nce(q, k, queue, 0.1)
    assert torch.allclose(queue_nce(q, k, stale, 0.1, q_ids, ids)[None],
                          torch.tensor([ref_queue_nce_own_keys(q, k, stale, 0.1, q_ids, ids)]).float(),
                          atol=1e-5)
    a, b = (x.double().requires_grad_() for x in (q, k))
    qi = torch.randint(0, 4, (10,), generator=g)
    assert torch.autograd.gradcheck(lambda x, y: queue_nce(x, y, queue.double(), 0.3, q_ids, qi), (a, b))
    with pytest.raises(ValueError, match="query_ids and queue_ids go together"):
        queue_nce(q, k, queue, 0.1, query_ids=q_ids)
    with pytest.raises(ValueError, match="query_ids and queue_ids go together"):
        queue_nce(q, k, queue, 0.1, queue_ids=qi)
    with pytest.raises(ValueError, match=r"queue_ids must be a 1-d tensor of length 10"):
        queue_nce(q, k, queue, 0.1, q_ids, qi[:3])
    with pytest.raises(ValueError, match=r"query_ids must be a 1-d tensor of length 6"):
        queue_nce(q, k, queue, 0.1, q_ids[:5], qi)
    with pytest.raises(TypeError, match="query_ids must hold integer class labels"):
        queue_nce(q, k, queue, 0.1, q_ids.float(), qi)
