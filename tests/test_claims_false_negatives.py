"""The checks that notebook 10 (false negatives) asserts can fail.

Each test rebuilds one kind of check of the notebook and shows that a broken variant fails it: the
false-negative rate that counts the anchor as its own negative, the oracle mask switched off or
dropping the twin, the debiased estimator without its clamp, the ideal-estimator identity fed the
twin, the fn_share and clamp monitors on embeddings without the structure they detect, and the
paired-interval claim on two identical runs. The functions are copied from the notebook's cells
(tests never import notebooks/src).
"""
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cl_teach.data import TensorLoader
from cl_teach.evaluation import Evaluation
from cl_teach.losses import debiased_info_nce, nt_xent

T = 0.1                 # the notebook's temperature
Z_MAX = 5               # the notebook's tolerance for E[rho], in standard errors


# ---------- notebook 10's functions, copied ----------

def fn_pairs(y, C):
    n_c = torch.bincount(y, minlength=C)
    return int((n_c * (n_c - 1)).sum()), len(y) * (len(y) - 1)


def fn_rate_expected(M_c):
    M = int(M_c.sum())
    return Fraction(int((M_c * (M_c - 1)).sum()), M * (M - 1))


def fn_per_view_bruteforce(y):
    labels, n = torch.cat([y, y]), len(y)
    return torch.tensor([sum(int(labels[j] == labels[i]) for j in range(2 * n)
                             if j != i and j != (i + n) % (2 * n)) for i in range(2 * n)])


def oracle_nt_xent(z1, z2, y, temperature, keep_twin=True):
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    s = z @ z.T / temperature
    twin = torch.arange(2 * n).roll(n)
    labels = torch.cat([y, y])
    drop = labels[:, None] == labels[None, :]
    if keep_twin:                                   # broken variant: keep_twin=False
        drop[torch.arange(2 * n), twin] = False
    return F.cross_entropy(s.masked_fill(drop, float("-inf")), twin)


def debiased_inline(z1, z2, temperature, tau_plus, clamp=True):
    n, m = z1.shape[0], 2 * z1.shape[0] - 2
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    e = (z @ z.T / temperature).exp()
    twin = torch.arange(2 * n).roll(n)
    pos = e[torch.arange(2 * n), twin]
    not_neg = torch.eye(2 * n, dtype=torch.bool)
    not_neg[torch.arange(2 * n), twin] = True
    neg = e.masked_fill(not_neg, 0).sum(dim=1)
    ng = (neg - tau_plus * m * pos) / (1 - tau_plus)
    if clamp:                                       # broken variant: clamp=False
        ng = ng.clamp(min=m * math.exp(-1 / temperature))
    return -(pos / (pos + ng)).log().mean()


def ideal_debiased_ng(z1, z2, y, temperature, use_twin=False):
    n, m = z1.shape[0], 2 * z1.shape[0] - 2
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    e = (z @ z.T / temperature).exp()
    twin = torch.arange(2 * n).roll(n)
    labels = torch.cat([y, y])
    neg = ~torch.eye(2 * n, dtype=torch.bool)
    neg[torch.arange(2 * n), twin] = False
    same = neg & (labels[:, None] == labels[None, :])
    f = same.sum(dim=1)
    e_plus = (e * same).sum(dim=1) / f.clamp(min=1)
    if use_twin:                                    # broken variant: the package's sample of p+
        e_plus = e[torch.arange(2 * n), twin]
    tau_hat = f.to(e.dtype) / m
    return ((e * neg).sum(dim=1) - tau_hat * m * e_plus) / (1 - tau_hat), (e * (neg & ~same)).sum(dim=1), m, f


@torch.no_grad()
def fn_share(z1, z2, y, temperature=T):
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    twin = torch.arange(2 * n).roll(n)
    labels = torch.cat([y, y])
    not_neg = torch.eye(2 * n, dtype=torch.bool)
    not_neg[torch.arange(2 * n), twin] = True
    p = (z @ z.T / temperature).masked_fill(not_neg, float("-inf")).softmax(dim=1)
    same = (labels[:, None] == labels[None, :]) & ~not_neg
    return (p * same).sum(dim=1).mean()


@torch.no_grad()
def clamped_share(z1, z2, temperature=T, tau_plus=0.1):
    n, m = z1.shape[0], 2 * z1.shape[0] - 2
    z = F.normalize(torch.cat([z1, z2]), dim=1).double()
    e = (z @ z.T / temperature).exp()
    twin = torch.arange(2 * n).roll(n)
    pos = e[torch.arange(2 * n), twin]
    neg = e.sum(dim=1) - e.diagonal() - pos
    return ((neg - tau_plus * m * pos) / (1 - tau_plus) <= m * math.exp(-1 / temperature)).double().mean()


def _clustered(n, classes=10, d=16, spread=0.3, twin_noise=0.05, seed=0):
    """Views of n images in `classes` clusters: twins nearly equal, same-class images close."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    centers = torch.randn(classes, d, generator=g)
    x = centers[y] + spread * torch.randn(n, d, generator=g)
    return (x + twin_noise * torch.randn(n, d, generator=g),
            x + twin_noise * torch.randn(n, d, generator=g), y)


# ---------- the false-negative rate ----------

def test_fn_counts_are_exact_and_the_loop_agrees():
    y = torch.randint(0, 4, (24,), generator=torch.Generator().manual_seed(0))
    same, pairs = fn_pairs(y, 4)
    per_view = fn_per_view_bruteforce(y)
    assert Fraction(int(per_view.sum()), 48 * 46) == Fraction(same, pairs)
    assert same == int((y[:, None] == y[None]).sum()) - len(y)
    # the slip of counting the anchor as its own negative does not pass the exact check
    n_c = torch.bincount(y, minlength=4)
    assert Fraction(int((n_c ** 2).sum()), len(y) ** 2) != Fraction(same, pairs)


@pytest.mark.parametrize("N", [8, 64])
def test_expected_rate_check_rejects_the_formula_that_counts_the_anchor(N):
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 10, (3000,), generator=g)
    M_c = torch.bincount(labels, minlength=10)
    loader, batches = TensorLoader(labels, batch_size=N, seed=2), []
    while len(batches) < 200:
        batches += [b[0] for b in loader]
    rho = np.array([Fraction(*fn_pairs(b, 10)) for b in batches[:200]], dtype=float)
    se = rho.std(ddof=1) / math.sqrt(len(rho))
    assert abs(rho.mean() - float(fn_rate_expected(M_c))) < Z_MAX * se              # the notebook's check
    naive = float(sum((M_c / M_c.sum()) ** 2))                                       # sum_c pi_c^2 + ...
    naive_batch = float(fn_rate_expected(M_c)) * (N - 1) / N + 1 / N                 # E[sum (n_c/N)^2]
    assert not abs(rho.mean() - naive_batch) < Z_MAX * se                           # fails it
    assert naive == pytest.approx(float(fn_rate_expected(M_c)), abs=1e-3)          # the limit agrees


# ---------- the two cures ----------

def test_oracle_mask_checks_fail_when_the_mask_is_off_or_drops_the_twin():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(32, 16, generator=g), torch.randn(32, 16, generator=g)
    unique, repeated = torch.arange(32), torch.randint(0, 4, (32,), generator=g)
    assert torch.allclose(oracle_nt_xent(z1, z2, unique, T), nt_xent(z1, z2, T), atol=1e-5)
    assert oracle_nt_xent(z1, z2, repeated, T) < nt_xent(z1, z2, T)       # the notebook's check
    assert not nt_xent(z1, z2, T) < nt_xent(z1, z2, T)                     # mask off: fails it
    assert not torch.isfinite(oracle_nt_xent(z1, z2, unique, T, keep_twin=False))   # twin dropped
    # an extra same-class pair changes the oracle's loss and not NT-Xent's (the labels reach the mask)
    relabelled = repeated.clone()
    relabelled[1] = relabelled[0] = 5
    assert not torch.allclose(oracle_nt_xent(z1, z2, relabelled, T), oracle_nt_xent(z1, z2, repeated, T))


def test_debiased_checks_fail_without_the_clamp():
    z1, z2, _ = _clustered(64)
    for tau_plus in (0.0, 0.1):
        assert torch.allclose(debiased_inline(z1, z2, T, tau_plus), debiased_info_nce(z1, z2, T, tau_plus),
                              atol=1e-5)
    assert torch.allclose(debiased_info_nce(z1, z2, T, 0.0), nt_xent(z1, z2, T), atol=1e-5)
    broken = debiased_inline(z1, z2, T, 0.1, clamp=False)      # negative N_g: NaN or a wrong value
    assert not torch.allclose(broken, debiased_info_nce(z1, z2, T, 0.1), atol=1e-5, equal_nan=False)


def test_ideal_estimator_identity_fails_with_the_twin_as_the_positive_sample():
    z1, z2, y = _clustered(48, classes=4)
    ng, true_sum, m, f = ideal_debiased_ng(z1.double(), z2.double(), y, T)
    assert torch.allclose(ng, true_sum * m / (m - f))
    ng_twin, *_ = ideal_debiased_ng(z1.double(), z2.double(), y, T, use_twin=True)
    assert not torch.allclose(ng_twin, true_sum * m / (m - f))


# ---------- the monitors ----------

def test_fn_share_check_fails_without_class_structure():
    """'SimCLR's fn_share ends beyond 2 x the rate' and 'the oracle's is the highest' can fail."""
    g = torch.Generator().manual_seed(3)
    y = torch.randint(0, 10, (256,), generator=g)
    rho = Fraction(*fn_pairs(y, 10))
    random1, random2 = torch.randn(256, 16, generator=g), torch.randn(256, 16, generator=g)
    flat = fn_share(random1, random2, y).item()
    assert flat == pytest.approx(float(rho), abs=0.03)                    # no structure: the rate
    assert not flat > 2 * float(rho)                                        # fails the check
    z1, z2, yc = _clustered(256)
    assert fn_share(z1, z2, yc).item() > 2 * float(Fraction(*fn_pairs(yc, 10)))   # structure: passes


def test_clamped_share_matches_the_package_and_its_check_can_fail():
    z1, z2, _ = _clustered(128)                                 # twins nearly equal: clamped
    tight = clamped_share(z1, z2).item()
    assert tight > 0.5
    # twins no closer than other views, t = 0.5: no view clamped, the check fails, and the package's
    # loss is the unclamped formula; twins identical: every view clamped, the loss is the floor's
    g = torch.Generator().manual_seed(5)
    loose1, loose2 = torch.randn(128, 16, generator=g), torch.randn(128, 16, generator=g)
    assert clamped_share(loose1, loose2, 0.5).item() == 0.0
    assert not clamped_share(loose1, loose2, 0.5).item() > 0.5
    assert torch.allclose(debiased_info_nce(loose1, loose2, 0.5, 0.1),
                          debiased_inline(loose1, loose2, 0.5, 0.1, clamp=False), atol=1e-5)
    n, m = 128, 254
    z = F.normalize(torch.cat([z1, z1]), dim=1)                 # twins identical: every view clamped
    assert clamped_share(z[:n], z[n:]).item() == 1.0
    floor = torch.log1p(m * math.exp(-1 / T) / torch.full((2 * n,), math.exp(1 / T))).mean()
    assert torch.allclose(debiased_info_nce(z[:n], z[n:], T, 0.1), floor.float(), atol=1e-6)


# ---------- the paired claims ----------

def test_paired_claims_fail_on_the_broken_variants():
    """'oracle beats BYOL' (d.low > 0) fails for two identical runs (an oracle whose mask is off
    is SimCLR); 'BYOL does not beat SimCLR' (not d.low > 0) fails when BYOL is better."""
    g = torch.Generator().manual_seed(0)
    right = (torch.rand(2000, generator=g) < 0.8).float()
    better = torch.where(torch.rand(2000, generator=g) < 0.1, torch.ones(2000), right)
    a, b = Evaluation(better, better), Evaluation(right, right)
    assert a.compare(b, on="knn").low > 0 and a.compare(b, on="probe").low > 0
    assert not b.compare(b, on="knn").low > 0                  # identical runs: the claim fails
    assert not b.compare(a, on="probe").low > 0                # "b does not beat a": holds
    assert a.compare(b, on="probe").low > 0                     # "a does not beat b": fails
