"""The claim checks of notebooks 04 and 05, shown to FAIL on a broken variant and pass on a sound one.

- 03, "training improves alignment and uniformity" and "alignment and uniformity trade off across
  tau": alignment compared paired over test images (``paired_difference``), uniformity over five
  disjoint chunks (``seed_interval``). Two identical embeddings fail both; a sound pair passes.
- 04, "z = g(h) against a random 64-d projection of h" (the effective-rank claim at equal
  dimension, replacing ``rank_h > rank_z`` that the dimensions alone decided): a head that
  collapses h onto a few directions fails it.
"""
import torch
import torch.nn.functional as F

from cl_teach.metrics import alignment, effective_rank, paired_difference, seed_interval, uniformity


def alignment_items(z1, z2):
    return (F.normalize(z1, dim=1) - F.normalize(z2, dim=1)).pow(2).sum(1)


def tradeoff_check(a_views, a_images, b_views, b_images):
    """03's check: a aligns its views better (lower) AND spreads its images worse (higher) than b."""
    da = paired_difference(alignment_items(*a_views), alignment_items(*b_views))
    du = seed_interval([uniformity(ca).item() - uniformity(cb).item()
                        for ca, cb in zip(a_images.chunk(5), b_images.chunk(5))])
    return da.high < 0 and du.low > 0


def _embedding(noise, dim, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1000, dim, generator=g)
    views = (x + noise * torch.randn(1000, dim, generator=g), x + noise * torch.randn(1000, dim, generator=g))
    return views, torch.randn(2000, dim, generator=g)


def test_the_same_embedding_fails_the_tradeoff_check():
    views, images = _embedding(0.5, 16, seed=0)
    assert not tradeoff_check(views, images, views, images)


def test_an_embedding_that_is_better_on_both_fails_it():
    """Better alignment AND better uniformity is not a trade-off: the check must say no."""
    tight_views, spread = _embedding(0.1, 16, seed=0)
    loose_views, _ = _embedding(0.8, 16, seed=1)
    clumped = torch.randn(2000, 16, generator=torch.Generator().manual_seed(2)) * 0.1 + 1.0
    assert uniformity(spread) < uniformity(clumped)
    assert not tradeoff_check(tight_views, spread, loose_views, clumped)


def test_a_real_tradeoff_passes_it():
    tight_views, _ = _embedding(0.1, 16, seed=0)
    loose_views, spread = _embedding(0.8, 16, seed=1)
    clumped = torch.randn(2000, 16, generator=torch.Generator().manual_seed(2)) * 0.3 + 1.0
    assert alignment(*tight_views) < alignment(*loose_views)
    assert tradeoff_check(tight_views, clumped, loose_views, spread)


def _post_relu_h(n=2000, d=1024, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.relu(torch.randn(n, 128, generator=g) @ torch.randn(128, d, generator=g))


def test_a_head_that_collapses_h_fails_the_equal_dimension_rank_claim():
    h = _post_relu_h()
    random64 = h @ torch.randn(h.shape[1], 64, generator=torch.Generator().manual_seed(1))
    collapsing = h @ torch.randn(h.shape[1], 3, generator=torch.Generator().manual_seed(2)) \
        @ torch.randn(3, 64, generator=torch.Generator().manual_seed(3))     # rank 3 of 64
    assert effective_rank(collapsing) < effective_rank(random64)


def test_the_raw_rank_comparison_is_decided_by_the_dimensions():
    """Why 04 no longer asserts rank(h) > rank(z): a 1024-d h beats a 64-d z even when the 64-d
    z is a random projection of it (no learning involved)."""
    h = _post_relu_h()
    centred = h - h.mean(0)
    random64 = centred @ torch.randn(h.shape[1], 64, generator=torch.Generator().manual_seed(1))
    assert effective_rank(centred) > effective_rank(random64)
