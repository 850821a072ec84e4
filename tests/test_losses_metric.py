"""Metric-learning losses (contrastive pairs, triplets with mining, N-pairs, SupCon), the debiased
contrastive loss and KoLeo against independent references: pytorch-metric-learning (pml), torch's
TripletMarginLoss, transcriptions of the authors' code (HobbitLong/SupContrast losses.py,
chingyaoc/DCL main.py, facebookresearch/dinov2 koleo_loss.py, tensorflow/addons
triplet_semihard_loss) and slow explicit loops of the papers' formulas, all in float64; plus the
identities with InfoNCE / NT-Xent, properties, float64 gradient checks, low-temperature and
large-input stability, and the errors."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import distances, miners, reducers, regularizers
from pytorch_metric_learning import losses as pml

from cl_teach.losses import (
    batch_triplet_loss,
    contrastive_pair_loss,
    debiased_info_nce,
    info_nce,
    koleo_loss,
    n_pair_loss,
    nt_xent,
    supcon_loss,
    triplet_loss,
)

TIGHT = dict(rtol=1e-12, atol=1e-12)


def _x(*shape, seed=0, scale=1.0):
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _close(got, want, **tol):
    torch.testing.assert_close(got, want.to(got.dtype) if isinstance(want, torch.Tensor) else
                               torch.tensor(want, dtype=got.dtype), **(tol or TIGHT))


# ---------- references: the papers' formulas as loops, the authors' code transcribed ----------

def ref_hadsell(x1, x2, same, margin, normalize=False):
    """Hadsell et al. 2006, eq. 4 with Y = 1 for a dissimilar pair and its 1/2 factors, times 2."""
    if normalize:
        x1, x2 = F.normalize(x1, dim=1), F.normalize(x2, dim=1)
    total = 0.0
    for i in range(len(x1)):
        d = math.sqrt(sum((float(a) - float(b)) ** 2 for a, b in zip(x1[i], x2[i])))
        y = 0 if bool(same[i]) else 1
        total += (1 - y) * 0.5 * d ** 2 + y * 0.5 * max(0.0, margin - d) ** 2
    return 2 * total / len(x1)


def ref_batch_triplet(x, y, margin, mining):
    """A triple loop: batch-hard (Hermans et al.), semi-hard as TF's rule, or every triplet."""
    def d(i, j):
        return math.sqrt(sum((float(a) - float(b)) ** 2 for a, b in zip(x[i], x[j])))
    out = []
    for a in range(len(x)):
        ps = [p for p in range(len(x)) if p != a and y[p] == y[a]]
        ns = [n for n in range(len(x)) if y[n] != y[a]]
        if mining == "hard":
            if ps and ns:
                out.append(max(0.0, max(d(a, p) for p in ps) - min(d(a, n) for n in ns) + margin))
            continue
        for p in ps:
            if mining == "all":
                out += [max(0.0, d(a, p) - d(a, n) + margin) for n in ns]
            else:
                farther = [d(a, n) for n in ns if d(a, n) > d(a, p)]
                chosen = min(farther) if farther else max(d(a, n) for n in ns)
                out.append(max(0.0, d(a, p) - chosen + margin))
    return sum(out) / len(out)


def tf_semihard(embeddings, labels, margin, squared=False):
    """tensorflow/addons losses/triplet.py triplet_semihard_loss, transcribed (tf.tile = repeat).

    Its default "L_2" is the *squared* distance (FaceNet's); ``squared=False`` is our Euclidean.
    """
    pdist = torch.cdist(embeddings, embeddings, compute_mode="donot_use_mm_for_euclid_dist")
    pdist = pdist ** 2 if squared else pdist
    adjacency = labels[:, None] == labels[None]
    adjacency_not = ~adjacency
    n = labels.numel()

    def masked_minimum(data, mask):
        mx = data.max(1, keepdim=True).values
        return ((data - mx) * mask).min(1, keepdim=True).values + mx

    def masked_maximum(data, mask):
        mn = data.min(1, keepdim=True).values
        return ((data - mn) * mask).max(1, keepdim=True).values + mn

    pdist_tile = pdist.repeat(n, 1)
    mask = adjacency_not.repeat(n, 1) & (pdist_tile > pdist.T.reshape(-1, 1))
    mask_final = (mask.double().sum(1, keepdim=True) > 0).reshape(n, n).T
    negatives_outside = masked_minimum(pdist_tile, mask.double()).reshape(n, n).T
    negatives_inside = masked_maximum(pdist, adjacency_not.double()).repeat(1, n)
    semi_hard_negatives = torch.where(mask_final, negatives_outside, negatives_inside)
    loss_mat = margin + pdist - semi_hard_negatives
    mask_positives = adjacency.double() - torch.eye(n, dtype=torch.float64)
    return (loss_mat * mask_positives).clamp_min(0).sum() / mask_positives.sum()


def hobbitlong_supcon(features, labels=None, temperature=0.07, base_temperature=0.07, log_eps=1e-9):
    """HobbitLong/SupContrast losses.py SupConLoss.forward, contrast_mode='all', transcribed.

    ``log_eps``: the 1e-9 it adds inside the log (a 1e-8 relative change); 0 for a tight comparison.
    """
    batch_size = features.shape[0]
    if labels is None:
        mask = torch.eye(batch_size, dtype=torch.float64)
    else:
        labels = labels.contiguous().view(-1, 1)
        mask = torch.eq(labels, labels.T).double()
    contrast_count = features.shape[1]
    contrast_feature = torch.cat(torch.unbind(features, dim=1), dim=0)
    anchor_feature, anchor_count = contrast_feature, contrast_count
    anchor_dot_contrast = torch.div(torch.matmul(anchor_feature, contrast_feature.T), temperature)
    logits_max, _ = torch.max(anchor_dot_contrast, dim=1, keepdim=True)
    logits = anchor_dot_contrast - logits_max.detach()
    mask = mask.repeat(anchor_count, contrast_count)
    logits_mask = torch.scatter(torch.ones_like(mask), 1,
                                torch.arange(batch_size * anchor_count).view(-1, 1), 0)
    mask = mask * logits_mask
    exp_logits = torch.exp(logits) * logits_mask
    log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True) + log_eps)
    mean_log_prob_pos = (mask * log_prob).sum(1) / mask.sum(1)
    loss = - (temperature / base_temperature) * mean_log_prob_pos
    return loss.view(anchor_count, batch_size).mean()


def get_negative_mask(batch_size):
    negative_mask = torch.ones((batch_size, 2 * batch_size), dtype=bool)
    for i in range(batch_size):
        negative_mask[i, i] = 0
        negative_mask[i, i + batch_size] = 0
    return torch.cat((negative_mask, negative_mask), 0)


def dcl_criterion(out_1, out_2, temperature, tau_plus, debiased=True):
    """chingyaoc/DCL main.py, the loss of its train loop; its model returns L2-normalised outputs.

    The repository's ``debiased=False`` branch reads ``Ng = neg`` (a broadcast); the sum is meant.
    """
    batch_size = out_1.shape[0]
    out = torch.cat([out_1, out_2], dim=0)
    neg = torch.exp(torch.mm(out, out.t().contiguous()) / temperature)
    mask = get_negative_mask(batch_size)
    neg = neg.masked_select(mask).view(2 * batch_size, -1)
    pos = torch.exp(torch.sum(out_1 * out_2, dim=-1) / temperature)
    pos = torch.cat([pos, pos], dim=0)
    if debiased:
        N = batch_size * 2 - 2
        Ng = (-tau_plus * N * pos + neg.sum(dim=-1)) / (1 - tau_plus)
        Ng = torch.clamp(Ng, min=N * np.e**(-1 / temperature))
    else:
        Ng = neg.sum(dim=-1)
    return (- torch.log(pos / (pos + Ng))).mean()


def dinov2_koleo(student_output, eps=1e-8):
    """facebookresearch/dinov2 dinov2/loss/koleo_loss.py KoLeoLoss.forward, transcribed."""
    pdist = torch.nn.PairwiseDistance(2, eps=1e-8)
    student_output = F.normalize(student_output, eps=eps, p=2, dim=-1)
    dots = torch.mm(student_output, student_output.t())
    n = student_output.shape[0]
    dots.view(-1)[:: (n + 1)].fill_(-1)
    _, I = torch.max(dots, dim=1)  # noqa: E741
    distances_ = pdist(student_output, student_output[I])
    return -torch.log(distances_ + eps).mean()


def _labels(n, seed, classes=4):
    """Random labels with a repeated one and two classes at least (a batch with triplets)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    y[:3] = torch.tensor([0, 0, 1])
    return y


L2 = distances.LpDistance(normalize_embeddings=False)


# ---------- contrastive pairs (Hadsell et al. 2006) ----------

@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("margin", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("seed", range(3))
def test_contrastive_pair_matches_the_paper_and_pml(seed, margin, normalize):
    x1, x2 = _x(8, 5, seed=seed), _x(8, 5, seed=seed + 10)
    same = torch.arange(8) % 3 == 0
    got = contrastive_pair_loss(x1, x2, same, margin, normalize=normalize)
    _close(got, ref_hadsell(x1, x2, same, margin, normalize))
    # pml's ContrastiveLoss has per-pair terms relu(d - pos_margin) and relu(neg_margin - d) (not
    # squared) and averages each kind over its non-zero terms: the per-pair terms, squared and
    # averaged over all N pairs, are Hadsell's.
    fn = pml.ContrastiveLoss(pos_margin=0, neg_margin=margin, reducer=reducers.DoNothingReducer(),
                             distance=distances.LpDistance(normalize_embeddings=normalize))
    i = torch.arange(8)
    terms = fn(torch.cat([x1, x2]), indices_tuple=(i[same], i[same] + 8, i[~same], i[~same] + 8))
    want = (terms["pos_loss"]["losses"].pow(2).sum() + terms["neg_loss"]["losses"].pow(2).sum()) / 8
    _close(got, want)


def test_contrastive_pair_properties():
    x1, x2, same = _x(6, 3), _x(6, 3, seed=1), torch.tensor([1, 0, 1, 0, 0, 1])
    base = contrastive_pair_loss(x1, x2, same)
    _close(contrastive_pair_loss(x2, x1, same), base)                       # symmetric
    _close(contrastive_pair_loss(x1, x2, same.bool()), base)                # 0/1 ints == bool
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(0))
    _close(contrastive_pair_loss(x1[perm], x2[perm], same[perm]), base)     # pairs in any order
    _close(contrastive_pair_loss(3 * x1, 3 * x2, same, normalize=True),
           contrastive_pair_loss(x1, x2, same, normalize=True))             # scale-free when normalised
    far = x1 + 10.0 * F.normalize(_x(6, 3, seed=2), dim=1) * (1 - same)[:, None]
    assert contrastive_pair_loss(x1, far, same, margin=5.0).item() == 0.0   # done: similar coincide,
    assert contrastive_pair_loss(x1, far, same, margin=15.0).item() > 0     # dissimilar past the margin


# ---------- triplets (FaceNet 2015, Hermans et al. 2017) ----------

@pytest.mark.parametrize("margin", [0.2, 1.0])
def test_triplet_matches_torch_and_pml(margin):
    a, p, n = _x(10, 4), _x(10, 4, seed=1), _x(10, 4, seed=2)
    got = triplet_loss(a, p, n, margin)
    _close(got, torch.nn.TripletMarginLoss(margin=margin, p=2, eps=0)(a, p, n))
    # torch's default adds eps = 1e-6 to every difference vector
    _close(got, torch.nn.TripletMarginLoss(margin=margin, p=2)(a, p, n), rtol=0, atol=1e-5)
    i = torch.arange(10)
    fn = pml.TripletMarginLoss(margin=margin, distance=L2, reducer=reducers.MeanReducer())
    _close(got, fn(torch.cat([a, p, n]), indices_tuple=(i, i + 10, i + 20)))


def test_triplet_zero_once_the_margin_holds():
    a = _x(5, 3)
    p, n = a + 0.01, a + 1.0
    assert triplet_loss(a, p, n, margin=0.5).item() == 0.0
    _close(triplet_loss(a, p, n, margin=3.0),                         # d_an = sqrt 3, d_ap = 0.01 sqrt 3
           3.0 - 0.99 * math.sqrt(3), rtol=0, atol=1e-12)


@pytest.mark.parametrize("mining", ["hard", "semi-hard", "all"])
@pytest.mark.parametrize("seed", range(4))
def test_batch_triplet_matches_the_triple_loop(mining, seed):
    x, y = _x(14, 3, seed=seed), _labels(14, seed)
    _close(batch_triplet_loss(x, y, 0.3, mining), ref_batch_triplet(x, y, 0.3, mining),
           rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed", range(4))
def test_batch_triplet_matches_pml_and_tensorflow(seed):
    x, y = _x(16, 4, seed=seed), _labels(16, seed)
    hard = pml.TripletMarginLoss(margin=0.3, distance=L2, reducer=reducers.MeanReducer())
    _close(batch_triplet_loss(x, y, 0.3, "hard"), hard(x, y, miners.BatchHardMiner(distance=L2)(x, y)),
           rtol=1e-10, atol=1e-10)
    every = pml.TripletMarginLoss(margin=0.3, distance=L2, reducer=reducers.MeanReducer(),
                                  triplets_per_anchor="all")
    _close(batch_triplet_loss(x, y, 0.3, "all"), every(x, y), rtol=1e-10, atol=1e-10)
    # pml's TripletMarginMiner("semihard") keeps *all* triplets with d_ap < d_an <= d_ap + m: not
    # FaceNet's one negative per positive pair; TensorFlow's rule is the reference here.
    _close(batch_triplet_loss(x, y, 0.3, "semi-hard"), tf_semihard(x, y, 0.3), rtol=1e-10, atol=1e-10)


def test_batch_triplet_properties():
    x, y = _x(16, 4, seed=5), torch.arange(16) % 4                   # 4 classes of 4: balanced
    hard, semi, every = (batch_triplet_loss(x, y, 0.5, m) for m in ("hard", "semi-hard", "all"))
    assert hard > every > 0 and hard >= semi                         # the hardest triplet of each anchor
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(1))
    q, _ = torch.linalg.qr(_x(4, 4, seed=6))                         # a rotation, and a shift
    for m, base in (("hard", hard), ("semi-hard", semi), ("all", every)):
        _close(batch_triplet_loss(x[perm], y[perm], 0.5, m), base, rtol=1e-10, atol=1e-10)
        _close(batch_triplet_loss(x, 7 - 2 * y, 0.5, m), base, rtol=1e-10, atol=1e-10)   # relabelled
        _close(batch_triplet_loss(x @ q + 5.0, y, 0.5, m), base, rtol=1e-9, atol=1e-9)
    # two classes far apart, each tight: nothing left to learn
    tight = torch.cat([_x(4, 2) * 0.01, 10 + _x(4, 2, seed=1) * 0.01])
    for m in ("hard", "semi-hard", "all"):
        assert batch_triplet_loss(tight, torch.arange(8) // 4, 1.0, m).item() == 0.0


# ---------- N-pairs (Sohn 2016) ----------

@pytest.mark.parametrize("l2_reg", [0.0, 0.002, 0.5])
def test_n_pair_matches_the_formula_and_pml(l2_reg):
    a, p = _x(7, 5), _x(7, 5, seed=1)
    got = n_pair_loss(a, p, l2_reg=l2_reg)
    want = torch.stack([torch.log1p(sum(torch.exp(a[i] @ p[j] - a[i] @ p[i]) for j in range(7) if j != i))
                        for i in range(7)]).mean()
    want = want + l2_reg * (a.pow(2).sum() + p.pow(2).sum()) / 14
    _close(got, want)
    y = torch.arange(7)
    fn = pml.NPairsLoss(distance=distances.DotProductSimilarity(normalize_embeddings=False),
                        embedding_regularizer=regularizers.LpRegularizer(p=2, power=2) if l2_reg else None,
                        embedding_reg_weight=l2_reg or 1)
    _close(got, fn(torch.cat([a, p]), torch.cat([y, y])))


@pytest.mark.parametrize("temperature", [1.0, 0.1, 0.02])
def test_info_nce_is_n_pairs_on_the_sphere(temperature):
    """info_nce(q, k, t) = n_pair_loss(q / (|q| sqrt t), k / (|k| sqrt t)); at t = 1 on unit
    vectors they are the same function. (info_nce normalises inside, so not on raw embeddings.)"""
    q, k = _x(9, 4, scale=5.0), _x(9, 4, seed=1)
    s = math.sqrt(temperature)
    _close(n_pair_loss(F.normalize(q, dim=1) / s, F.normalize(k, dim=1) / s), info_nce(q, k, temperature))
    assert not torch.isclose(n_pair_loss(q, k), info_nce(q, k, 1.0))


def test_n_pair_large_inputs_stay_exact():
    """Logit gaps of ~1e4 overflow a literal log(1 + sum exp); the cross-entropy does not."""
    a, p = _x(6, 4, scale=100.0), _x(6, 4, seed=1, scale=100.0)
    logits = a @ p.T
    want = torch.stack([torch.logsumexp(logits[i] - logits[i, i], 0) for i in range(6)]).mean()
    assert not torch.isfinite(torch.log1p(torch.exp(logits - logits.diag()[:, None]).sum(1) - 1)).all()
    got32 = n_pair_loss(a.float(), p.float())
    assert torch.isfinite(got32)
    _close(got32, want, rtol=1e-5, atol=1e-2)


# ---------- SupCon (Khosla et al. 2020) ----------

@pytest.mark.parametrize("temperature", [0.07, 0.1, 0.5])
@pytest.mark.parametrize("views", [2, 3])
def test_supcon_matches_the_authors_and_pml(views, temperature):
    f, y = _x(10, views, 6), torch.tensor([0, 1, 0, 2, 3, 3, 1, 4, 5, 0])
    got = supcon_loss(f, y, temperature)
    # the authors scale by temperature / base_temperature (0.07): base_temperature = t undoes it
    authors = F.normalize(f, dim=-1), y, temperature, temperature
    _close(got, hobbitlong_supcon(*authors, log_eps=0))
    _close(got, hobbitlong_supcon(*authors), rtol=1e-6, atol=0)      # as published, with its 1e-9
    flat = f.transpose(0, 1).reshape(views * 10, 6)
    _close(got, pml.SupConLoss(temperature=temperature)(flat, y.repeat(views)))


def test_supcon_one_view_leaves_anchors_without_positives_out():
    f, y = _x(8, 5), torch.tensor([0, 0, 1, 2, 2, 3, 4, 4])       # 1 and 3 are seen once
    got = supcon_loss(f, y, 0.1)
    _close(got, pml.SupConLoss(temperature=0.1)(f, y))                # pml: average over non-zero
    keep = torch.tensor([0, 1, 3, 4, 6, 7])
    fk = F.normalize(f, dim=1)[:, None]
    # those anchors' positives are gone, their negatives remain: not the loss of the subset
    assert not torch.isclose(got, hobbitlong_supcon(fk[keep], y[keep], 0.1, 0.1, 0))
    yy = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])                      # every anchor has a positive
    _close(supcon_loss(f, yy, 0.1), hobbitlong_supcon(fk, yy, 0.1, 0.1, log_eps=0))


@pytest.mark.parametrize("temperature", [0.5, 0.1, 0.01])
def test_supcon_with_distinct_labels_and_two_views_is_nt_xent(temperature):
    z1, z2 = _x(12, 8), _x(12, 8, seed=1)
    got = supcon_loss(torch.stack([z1, z2], dim=1), torch.arange(12), temperature)
    _close(got, nt_xent(z1, z2, temperature, fused=False))
    _close(got, hobbitlong_supcon(F.normalize(torch.stack([z1, z2], 1), dim=-1), None, temperature,
                                  temperature, log_eps=0))           # the authors' SimCLR mode


def test_supcon_properties():
    f, y = _x(8, 2, 4), torch.arange(8) % 3
    base = supcon_loss(f, y)
    _close(supcon_loss(4.0 * f, 10 + 3 * y), base)                    # scale-free, labels are names
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    _close(supcon_loss(f[perm], y[perm]), base)
    _close(supcon_loss(f.flip(1), y), base)                           # views in any order
    assert not torch.isclose(supcon_loss(f, y.roll(1)), base)         # the labels matter
    _close(supcon_loss(torch.ones(8, 2, 4, dtype=torch.float64), y),   # all logits equal: log(2N - 1)
           math.log(15.0))


# ---------- debiased contrastive (Chuang et al. 2020) ----------

@pytest.mark.parametrize("tau_plus", [0.0, 0.05, 0.1, 0.3, 0.6])
@pytest.mark.parametrize("temperature", [0.5, 0.2, 1.0])
@pytest.mark.parametrize("aligned", [False, True])
def test_debiased_matches_the_authors(aligned, temperature, tau_plus):
    z1 = _x(10, 6)
    z2 = z1 + 0.1 * _x(10, 6, seed=1) if aligned else _x(10, 6, seed=1)
    got = debiased_info_nce(z1, z2, temperature, tau_plus)
    _close(got, dcl_criterion(F.normalize(z1, dim=1), F.normalize(z2, dim=1), temperature, tau_plus))


def test_debiased_clamp_binds_and_is_the_floor():
    """Identical views of orthogonal samples: the estimate is negative for tau_plus = 0.3 and t = 0.5,
    so Ng = M e^{-1/t}: each view's loss is log(1 + M e^{-2/t}) (its positive logit is 1/t)."""
    z = torch.eye(6, dtype=torch.float64)[:3]
    m, t = 4, 0.5
    s = math.exp(1 / t)
    assert (m * 1.0 - 0.3 * m * s) < 0                                # the estimate before the clamp
    got = debiased_info_nce(z, z, t, tau_plus=0.3)
    _close(got, math.log1p(m * math.exp(-2 / t)))
    _close(got, dcl_criterion(z, z, t, 0.3))
    assert not torch.isclose(got, nt_xent(z, z, t))


@pytest.mark.parametrize("temperature", [0.5, 0.1, 0.01])
def test_debiased_with_tau_plus_zero_is_nt_xent(temperature):
    z1, z2 = _x(12, 8), _x(12, 8, seed=1)
    _close(debiased_info_nce(z1, z2, temperature, tau_plus=0.0), nt_xent(z1, z2, temperature, fused=False))
    assert not torch.isclose(debiased_info_nce(z1, z2, temperature, tau_plus=0.1),
                             nt_xent(z1, z2, temperature, fused=False))


def test_debiased_stable_at_low_temperature():
    """At t = 0.02 the authors' exp overflows float32 (e^50 is fine, e^{1/0.01} is not at t = 0.01);
    the log-domain form stays finite and equals their float64 value."""
    z1 = _x(16, 8); z2 = z1 + 0.05 * _x(16, 8, seed=1)
    for t in (0.02, 0.01):
        want = dcl_criterion(F.normalize(z1, dim=1), F.normalize(z2, dim=1), t, 0.1)
        got = debiased_info_nce(z1.float(), z2.float(), t, 0.1)
        assert torch.isfinite(got)
        _close(got, want, rtol=1e-4, atol=1e-4)
    z = F.normalize(z1.float(), dim=1)
    assert not torch.isfinite(dcl_criterion(z, z, 0.01, 0.1))          # the naive form: inf / inf


def test_debiased_decreases_with_tau_plus_when_positives_are_near():
    z1 = _x(8, 4); z2 = z1 + 0.1 * _x(8, 4, seed=1)
    values = [debiased_info_nce(z1, z2, 0.5, p).item() for p in (0.0, 0.03, 0.06, 0.1)]
    assert all(a > b for a, b in zip(values, values[1:])), values


# ---------- KoLeo (Sablayrolles et al. 2019, DINOv2) ----------

@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shape", [(2, 3), (9, 4), (32, 8)])
def test_koleo_matches_dinov2(shape, seed):
    x = _x(*shape, seed=seed, scale=3.0)
    _close(koleo_loss(x), dinov2_koleo(x))
    nn_dist = torch.cdist(F.normalize(x, dim=1), F.normalize(x, dim=1)).fill_diagonal_(float("inf")).amin(1)
    _close(koleo_loss(x), -torch.log(nn_dist + 1e-8).mean(), rtol=0, atol=1e-6)   # the formula


def test_koleo_properties():
    x = _x(10, 4)
    q, _ = torch.linalg.qr(_x(4, 4, seed=1))
    _close(koleo_loss(x @ q, eps=1e-15), koleo_loss(x, eps=1e-15))    # rotation invariant (eps * 1,
    _close(koleo_loss(x @ q), koleo_loss(x), rtol=1e-7, atol=0)       # added to each difference, is not)
    _close(koleo_loss(5.0 * x), koleo_loss(x))                        # scale-free
    _close(koleo_loss(x[torch.randperm(10)]), koleo_loss(x))
    dup = torch.cat([x[:1], x[:1], -x[:1]])                          # two coincident points
    want = -(2 * math.log(1e-8 * (2 + 1)) + math.log(2 + 1e-8 * 3)) / 3   # ||eps 1|| = 2 eps in D = 4
    _close(koleo_loss(dup), want, rtol=1e-6, atol=0)
    x = _x(16, 3).requires_grad_()                                    # a gradient step spreads the points
    before = koleo_loss(x)
    before.backward()
    assert koleo_loss((x - 0.05 * x.grad).detach()) < before
    antipodal = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    _close(koleo_loss(antipodal), -math.log(2 + 1e-8), rtol=1e-6, atol=0)   # dinov2 picks itself
    assert dinov2_koleo(antipodal) > 5


# ---------- gradients (float64 gradcheck) ----------

GRADCHECKS = {
    "contrastive_pair_loss": (lambda a, b: contrastive_pair_loss(a, b, torch.arange(6) % 2 == 0, 2.5), 2),
    "contrastive_pair_loss (normalized)": (
        lambda a, b: contrastive_pair_loss(a, b, torch.arange(6) % 2 == 0, 1.2, normalize=True), 2),
    "triplet_loss": (lambda a, b, c: triplet_loss(a, b, c, margin=2.0), 3),
    **{f"batch_triplet_loss ({m})": (lambda a, m=m: batch_triplet_loss(a, torch.arange(6) % 2, 2.0, m), 1)
       for m in ("hard", "semi-hard", "all")},
    "n_pair_loss": (lambda a, b: n_pair_loss(a, b, l2_reg=0.01), 2),
    "supcon_loss": (lambda a, b: supcon_loss(torch.stack([a, b], 1), torch.arange(6) % 3, 0.2), 2),
    "supcon_loss (one view)": (lambda a: supcon_loss(a, torch.arange(6) % 3, 0.2), 1),
    "debiased_info_nce": (lambda a, b: debiased_info_nce(a, b, 0.5, 0.1), 2),
    "debiased_info_nce (clamp binds in some rows)": (lambda a, b: debiased_info_nce(a, b, 0.5, 0.2), 2),
    "koleo_loss": (lambda a: koleo_loss(a), 1),
}


@pytest.mark.parametrize("name", list(GRADCHECKS))
def test_gradcheck(name):
    fn, n_args = GRADCHECKS[name]
    args = [_x(6, 4, seed=s).requires_grad_() for s in range(n_args)]
    if "clamp" in name:                                                # near views: some rows clamp
        args[1] = (args[0].detach() + 0.5 * _x(6, 4, seed=9)).requires_grad_()
        z = F.normalize(torch.cat([args[0], args[1]]).detach(), dim=1)
        pos = torch.exp((z[:6] * z[6:]).sum(1) / 0.5).repeat(2)
        neg = torch.exp(z @ z.T / 0.5).masked_select(get_negative_mask(6)).view(12, -1).sum(1)
        est = (neg - 0.2 * 10 * pos) / 0.8
        floor = 10 * math.exp(-1 / 0.5)
        assert (est < floor).any() and (est > floor).any()
    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-6)


# ---------- errors ----------

@pytest.mark.parametrize("fn,exc,match", [
    (lambda: batch_triplet_loss(_x(4, 2), torch.arange(4) % 2, mining="semihard"), ValueError, "mining"),
    (lambda: batch_triplet_loss(_x(4, 2), torch.arange(4) % 2, mining=None), TypeError, "mining"),
    (lambda: batch_triplet_loss(_x(4, 2), torch.arange(4), mining="all"), ValueError, "labels"),
    (lambda: batch_triplet_loss(_x(4, 2), torch.zeros(4, dtype=torch.long)), ValueError, "labels"),
    (lambda: supcon_loss(_x(4, 2), torch.arange(4)), ValueError, "labels"),
    (lambda: supcon_loss(_x(4, 2), torch.arange(4).float()), TypeError, "labels"),
    (lambda: contrastive_pair_loss(_x(3, 2), _x(3, 2), torch.tensor([0, 1, 2])), ValueError, "same"),
    (lambda: contrastive_pair_loss(_x(3, 2), _x(3, 2), torch.tensor([0.0, 1.0, 1.0])), TypeError, "same"),
    (lambda: contrastive_pair_loss(_x(3, 2), _x(3, 2), torch.tensor([True, False])), ValueError, "same"),
    (lambda: debiased_info_nce(_x(1, 2), _x(1, 2)), ValueError, "z1"),
    (lambda: debiased_info_nce(_x(3, 2), _x(3, 2), tau_plus=1.0), ValueError, "tau_plus"),
    (lambda: koleo_loss(_x(1, 3)), ValueError, "x"),
    (lambda: triplet_loss(_x(3, 2), _x(3, 2), _x(4, 2)), ValueError, "negative"),
])
def test_clear_errors(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn()
