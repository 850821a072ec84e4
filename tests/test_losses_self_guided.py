"""Self-Guided contrastive learning (SG-OPT) and SimCSE's false-negative mask.

The SG-OPT loss is checked against the paper's formula written out with loops (Kim, Yoo & Lee,
ACL 2021, Sec. 3.2: anchors c_i, positives h_ik, negatives h_mn for m != i at every layer n) and
against the construction of the authors' code (galsang/SG-BERT ``loss.py``, ``NTXentLoss``:
per-layer similarity matrices, positives stacked layer by layer, the off-diagonal negatives of
all layers repeated for every layer, cross-entropy with target 0), re-expressed here; plus
gradients (gradcheck), properties, and clear errors. The method: the guide is never updated, it
stays in eval mode, the embedding layer is frozen, the regulariser is the squared distance.
"""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cl_teach.data import TensorLoader
from cl_teach.losses import masked_info_nce, self_guided_loss, simcse_loss, weight_distance
from cl_teach.methods import SelfGuided, SimCSE
from cl_teach.methods.self_guided import layer_views
from cl_teach.models import TinyTransformer
from cl_teach.train import fit


def paper_formula(c, h, tau):
    """L_opt = -1/(N K) sum_i sum_k log phi(c_i,h_ik) / (phi(c_i,h_ik) + sum_{m!=i} sum_n phi(c_i,h_mn))."""
    n, k = h.shape[:2]

    def phi(u, v):
        return math.exp(float(F.cosine_similarity(u, v, dim=0)) / tau)

    total = 0.0
    for i in range(n):
        neg = sum(phi(c[i], h[m, j]) for m in range(n) if m != i for j in range(k))
        for j in range(k):
            pos = phi(c[i], h[i, j])
            total -= math.log(pos / (pos + neg))
    return total / (n * k)


def authors_construction(c, h, tau):
    """The tensor construction of the authors' NTXentLoss.forward (cosine similarity, sum / (N K))."""
    n, k = h.shape[:2]
    positives, negatives = [], []
    off = ~torch.eye(n, dtype=torch.bool)
    for j in range(k):
        sim = F.cosine_similarity(c[:, None], h[None, :, j], dim=-1)       # (N, N)
        positives.append(sim.diagonal())
        negatives.append(sim[off].view(n, n - 1))
    positives = torch.cat(positives).view(-1, 1)                         # (K N, 1), layer-major
    negatives = torch.cat(negatives, dim=1).repeat(k, 1)                 # (K N, K (N - 1))
    logits = torch.cat([positives, negatives], dim=1) / tau
    return F.cross_entropy(logits, torch.zeros(n * k, dtype=torch.long), reduction="sum") / (n * k)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(n=st.integers(2, 6), k=st.integers(1, 4), d=st.integers(2, 7), tau=st.sampled_from([0.01, 0.1, 1.0]),
       seed=st.integers(0, 1000))
def test_self_guided_loss_equals_the_paper_and_the_authors_code(n, k, d, tau, seed):
    g = torch.Generator().manual_seed(seed)
    c, h = torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, k, d, generator=g,
                                                                           dtype=torch.float64)
    ours = self_guided_loss(c, h, tau).item()
    assert ours == pytest.approx(paper_formula(c, h, tau), rel=1e-9, abs=1e-9)
    assert ours == pytest.approx(authors_construction(c, h, tau).item(), rel=1e-9, abs=1e-9)


def test_one_layer_is_simcse_and_the_gradient_is_right():
    g = torch.Generator().manual_seed(0)
    c, h = torch.randn(5, 4, generator=g), torch.randn(5, 1, 4, generator=g)
    assert torch.allclose(self_guided_loss(c, h, 0.05), simcse_loss(c, h[:, 0], 0.05), atol=1e-6)
    c64 = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    h64 = torch.randn(4, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: self_guided_loss(a, b, 0.2), (c64, h64))


def test_self_guided_loss_properties():
    g = torch.Generator().manual_seed(1)
    c, h = torch.randn(6, 4, generator=g), torch.randn(6, 3, 4, generator=g)
    base = self_guided_loss(c, h, 0.1)
    assert torch.allclose(self_guided_loss(3 * c, 0.5 * h, 0.1), base, atol=1e-5)      # cosines only
    perm = torch.randperm(6, generator=g)
    assert torch.allclose(self_guided_loss(c[perm], h[perm], 0.1), base, atol=1e-5)    # order-free
    assert torch.allclose(self_guided_loss(c, h.flip(1), 0.1), base, atol=1e-5)        # layer order-free
    # the other layers of sentence i are not negatives: moving them changes only their own rows
    e = torch.eye(4)
    aligned = self_guided_loss(e, e[:, None].repeat(1, 2, 1), 0.01)
    assert aligned.item() < 1e-6
    # finite at a tiny temperature (log-sum-exp)
    assert torch.isfinite(self_guided_loss(c, h, 1e-4))


@pytest.mark.parametrize("bad,match", [
    (dict(c=torch.randn(1, 3), h=torch.randn(1, 2, 3)), "at least 2"),
    (dict(c=torch.randn(4, 3), h=torch.randn(5, 2, 3)), "h must have shape"),
    (dict(c=torch.randn(4, 3), h=torch.randn(4, 2, 4)), "h must have shape"),
    (dict(c=torch.randn(4, 3), h=torch.randn(4, 3)), "h must be a 3-d"),
    (dict(c=torch.randn(4, 3), h=torch.randn(4, 0, 3)), "h must be non-empty"),
    (dict(c=torch.randn(4, 3), h=torch.randn(4, 2, 3), temperature=0.0), "temperature"),
])
def test_self_guided_loss_errors_name_the_argument(bad, match):
    with pytest.raises(ValueError, match=match):
        self_guided_loss(**bad)
    with pytest.raises(TypeError, match="c and h"):
        self_guided_loss(torch.randn(4, 3), torch.randn(4, 2, 3, dtype=torch.float64))


def test_weight_distance():
    a = torch.nn.Linear(3, 2)
    b = copy.deepcopy(a)
    assert weight_distance(a, b).item() == 0.0
    with torch.no_grad():
        a.weight.add_(0.5)
    d = weight_distance(a, b)
    assert d.item() == pytest.approx(6 * 0.25)
    d.backward()
    assert torch.allclose(a.weight.grad, torch.full_like(a.weight, 1.0))             # 2 (theta_T - theta_F)
    with pytest.raises(TypeError, match="fixed"):
        weight_distance(a, "b")
    with pytest.raises(ValueError, match="tuned and fixed"):
        weight_distance(a, torch.nn.Linear(3, 3))


def _encoder(seed=0):
    torch.manual_seed(seed)
    return TinyTransformer(40, dim=16, out_dim=8, n_heads=2, n_layers=2, max_len=8)


def _ids(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, 40, (n, 8), generator=g)
    ids[::3, 5:] = 0                                                 # some padding
    return ids


def test_layer_views_end_with_the_encoder_output():
    f = _encoder().eval()
    ids = _ids(6)
    v = layer_views(f, ids)
    assert v.shape == (6, 3, 8)
    assert torch.allclose(v[:, -1], f(ids), atol=1e-5)
    with pytest.raises(TypeError, match="encoder"):
        layer_views(torch.nn.Linear(2, 2), ids)


def test_self_guided_guide_is_fixed_no_momentum():
    f = _encoder()
    m = SelfGuided(f, temperature=0.05, head_dim=16)
    guide_before = copy.deepcopy(m.guide.state_dict())
    emb_before = f.embed.weight.detach().clone()
    hist = fit(m, TensorLoader(_ids(), batch_size=8, seed=0), steps=6, lr=1e-2)
    for name, p in m.guide.state_dict().items():
        assert torch.equal(p, guide_before[name]), f"the guide moved: {name}"
    assert not m.guide.training and all(not p.requires_grad for p in m.guide.parameters())
    assert torch.equal(f.embed.weight, emb_before)                   # the authors' --freeze
    assert not torch.equal(f.out.weight, m.guide.out.weight)         # T did train
    assert hist["distance"][-1] > 0
    assert m.after_step(1, 6) is None
    with pytest.raises(TypeError, match="encoder"):
        SelfGuided(torch.nn.Linear(3, 3))
    with pytest.raises(TypeError, match="ids"):
        m.training_step(torch.randn(4, 8))


def test_simcse_mask_removes_false_negatives_only():
    g = torch.Generator().manual_seed(2)
    z1, z2, zn = (torch.randn(5, 4, generator=g) for _ in range(3))
    none = torch.zeros(5, 10, dtype=torch.bool)
    assert torch.allclose(simcse_loss(z1, z2, 0.1, zn, same=none), simcse_loss(z1, z2, 0.1, zn))
    same = torch.zeros(5, 10, dtype=torch.bool)
    same[0, 3] = same[0, 7] = same[2, 2] = True                      # [2, 2] is the positive: kept
    z2b = z2.clone()
    z2b[3] = 100 * torch.randn(4, generator=g)                       # move a key masked for row 0
    # a symmetric mask with z1 == z2 and no hard negatives: both directions agree, = masked_info_nce
    sym = torch.zeros(5, 5, dtype=torch.bool)
    sym[0, 1] = sym[1, 0] = True
    assert torch.allclose(simcse_loss(z1, z1, 0.1, same=sym), masked_info_nce(z1, z1, sym, 0.1), atol=1e-6)
    # the row of a masked key no longer depends on it
    row = lambda a, b, c: F.cross_entropy(                         # noqa: E731
        (F.normalize(a[:1]) @ F.normalize(torch.cat([b, c])).T / 0.1).masked_fill(same[:1], float("-inf")),
        torch.tensor([0]))
    assert torch.allclose(row(z1, z2, zn), row(z1, z2b, zn))          # row 0 ignores it
    assert not torch.allclose(simcse_loss(z1, z2b, 0.1, zn, same=same),
                              simcse_loss(z1, z2, 0.1, zn, same=same))                 # other rows see it
    with pytest.raises(ValueError, match="same must have shape"):
        simcse_loss(z1, z2, 0.1, zn, same=torch.zeros(5, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match="same must be a boolean"):
        simcse_loss(z1, z2, 0.1, same=torch.zeros(5, 5))


def test_simcse_method_builds_the_mask_from_labels():
    f = _encoder()
    m = SimCSE(f, temperature=0.05).eval()                           # eval: no dropout, deterministic
    ids = _ids(4)
    tags = torch.zeros(4, 3, 3, dtype=torch.bool)                    # (N, anchor/positive/negative, T)
    tags[:, 0, 0] = tags[:, 1, 0] = True                             # every pair shares hashtag 0
    tags[:, 2, 1] = True                                             # the hard negatives have tag 1
    out = m.training_step((ids, ids.roll(1, 0), ids.roll(2, 0), tags))
    z = f(ids)
    same = torch.zeros(4, 8, dtype=torch.bool)
    same[:, :4] = True                                               # the other positives: false negatives
    ref = simcse_loss(z, f(ids.roll(1, 0)), 0.05, f(ids.roll(2, 0)), same=same)
    assert torch.allclose(out["loss"], ref, atol=1e-6)
    assert out["false_negatives"].item() == 3.0
    with pytest.raises(ValueError, match="labels must be"):
        m.training_step((ids, ids, tags[:, :2, :1].repeat(1, 2, 1)))
    with pytest.raises(ValueError, match="labels must be"):
        m.training_step((ids, tags[:, :1]))
