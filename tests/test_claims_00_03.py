"""The checks behind the claims of notebooks 01 and 03 fail on a broken variant.

01 asserts that the NT-Xent loss of random embeddings lies within 4 standard errors
(1 / (tau sqrt(D N))) of log K + 1/(2 D tau^2), K = 2N - 1. 02 asserts its collapse thresholds
(std of normalised z below a fifth of 1/sqrt(D) and effective rank below 5 for a collapsed run;
above half of 1/sqrt(D) and rank above 5 for a healthy one). Each check is written here as the
notebook writes it, and is shown to pass on what it should pass and to fail on a broken variant.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from cl_teach import losses, metrics


def random_loss_ok(loss, n, d, tau, with_correction=True):
    """01's check: |loss - prediction| < 4 SE, prediction log K (+ 1/(2 D tau^2))."""
    pred = math.log(2 * n - 1) + (1 / (2 * d * tau**2) if with_correction else 0.0)
    return abs(loss - pred) < 4 / (tau * math.sqrt(d * n))


def collapsed(z, d=64):
    return metrics.feature_std(z).item() < 0.2 / math.sqrt(d) and metrics.effective_rank(z).item() < 5


def healthy(z, d=64):
    return metrics.feature_std(z).item() > 0.5 / math.sqrt(d) and metrics.effective_rank(z).item() > 5


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n,d,tau", [(16, 128, 0.5), (256, 128, 0.5), (256, 128, 0.2), (256, 64, 0.1)])
def test_random_loss_within_4_se_at_several_seeds(seed, n, d, tau):
    g = torch.Generator().manual_seed(seed)
    z1, z2 = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    assert random_loss_ok(losses.nt_xent(z1, z2, temperature=tau).item(), n, d, tau)


def test_random_loss_check_fails_without_the_correction_at_low_tau():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(256, 64, generator=g), torch.randn(256, 64, generator=g)
    loss = losses.nt_xent(z1, z2, temperature=0.1).item()
    assert not random_loss_ok(loss, 256, 64, 0.1, with_correction=False)


def test_random_loss_check_fails_on_a_loss_that_is_not_at_chance():
    """Embeddings whose views agree (a trained-like pairing) are far below chance: the check fails."""
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(256, 128, generator=g)
    z2 = z1 + 0.3 * torch.randn(256, 128, generator=g)
    assert not random_loss_ok(losses.nt_xent(z1, z2, temperature=0.5).item(), 256, 128, 0.5)


def test_random_loss_check_fails_on_unnormalised_logits():
    """A broken NT-Xent that forgets to L2-normalise gives a loss far from the prediction."""
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(256, 128, generator=g), torch.randn(256, 128, generator=g)
    z = torch.cat([z1, z2])
    sim = (z @ z.T / 0.5).fill_diagonal_(float("-inf"))
    pos = torch.cat([torch.arange(256, 512), torch.arange(0, 256)])
    broken = F.cross_entropy(sim, pos).item()
    assert not random_loss_ok(broken, 256, 128, 0.5)


def test_collapse_detector_fails_on_a_healthy_embedding_and_passes_a_collapsed_one():
    g = torch.Generator().manual_seed(0)
    spread = torch.randn(1000, 64, generator=g)
    direction = F.normalize(torch.randn(64, generator=g), dim=0)
    one_point = direction + 0.002 * torch.randn(1000, 64, generator=g)
    assert not collapsed(spread) and healthy(spread)
    assert collapsed(one_point) and not healthy(one_point)


def test_collapse_detector_sees_a_low_rank_embedding_as_not_healthy():
    """Two directions: the std is not tiny, but the rank check keeps it from passing as healthy."""
    g = torch.Generator().manual_seed(0)
    flat = torch.randn(1000, 2, generator=g) @ torch.randn(2, 64, generator=g)
    assert not healthy(flat) and not collapsed(flat)


def test_one_direction_plus_small_isotropic_noise_reads_about_two():
    """02's explanation of a collapsed run's rank of about 2: the residual comes from the spread."""
    g = torch.Generator().manual_seed(0)
    direction = F.normalize(torch.randn(64, generator=g), dim=0)
    z = direction + 0.002 * torch.randn(1000, 64, generator=g)
    assert 1.3 < metrics.effective_rank(z).item() < 2.5
    z_tight = direction + 1e-5 * torch.randn(1000, 64, generator=g)
    assert metrics.effective_rank(z_tight).item() < 1.05
