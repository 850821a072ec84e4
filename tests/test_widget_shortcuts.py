"""Notebook 06's shortcut explorer: its positive-finding against a brute-force reference."""
import numpy as np
import pytest
import torch

from cl_teach.widgets import shortcut_explorer, shortcut_stats
from cl_teach.widgets.shortcuts import positive_found, shortcut_views, veil_level


def garments(n=64, seed=0):
    """Blobs on a black background (as Fashion-MNIST's), veiled by t ~ U(0, 0.5) per image."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    centre = 4 + 8 * torch.rand(n, 2, generator=g)
    r2 = (yy - centre[:, 0, None, None]) ** 2 + (xx - centre[:, 1, None, None]) ** 2
    clean = (torch.rand(n, 1, 1, generator=g) * 0.5 + 0.5) * (r2 < 16).float()          # (n, 16, 16)
    clean = (clean * (0.7 + 0.3 * torch.rand(n, 16, 16, generator=g)))[:, None]
    t = torch.rand(n, generator=g).view(-1, 1, 1, 1) * 0.5
    return t + (1 - t) * clean, clean


def brute_force(views, x, feature, seed):
    """The same share, by a Python loop over the views (NumPy distances)."""
    g = torch.Generator().manual_seed(seed)
    phi = torch.cat([feature(views(x, g)), feature(views(x, g))]).double().numpy()
    n, hits = x.shape[0], 0
    for i in range(2 * n):
        d = np.sqrt(((phi - phi[i]) ** 2).sum(1))
        d[i] = np.inf
        hits += int(np.argmin(d) == (i + n) % (2 * n))
    return hits / (2 * n)


@pytest.mark.parametrize("args", [(True, 0.0, 0.0), (False, 0.4, 0.0), (True, 0.4, 0.3)])
def test_shares_equal_a_brute_force_loop(args):
    veiled, clean = garments()
    st = shortcut_stats(veiled, clean, *args, seed=5)
    views = shortcut_views(*args)
    g = torch.Generator().manual_seed(5)
    share = st["found"]["veil level, veiled images"]
    assert share == positive_found(views, veiled, veil_level, g)
    assert abs(share - brute_force(views, veiled, veil_level, 5)) <= 1 / 128
    low, high = st["ci95"]["veil level, veiled images"]
    assert low <= share <= high


def test_the_claims_the_explorer_shows_and_a_blurred_distance_that_misses_them():
    veiled, clean = garments(128)
    crops = shortcut_stats(veiled, clean, True, 0.0, 0.0)["found"]
    veil_jitter = shortcut_stats(veiled, clean, True, 0.0, 0.5)["found"]
    same = shortcut_stats(veiled, clean, False, 0.0, 0.0)["found"]
    assert crops["veil level, veiled images"] > 0.8 > 0.1 > veil_jitter["veil level, veiled images"]
    assert min(same.values()) == 1.0                          # no augmentation: every feature finds it
    # The |a|^2 + |b|^2 - 2ab distances (torch.cdist's default) round near-equal veil levels together.
    levels = torch.linspace(0.3, 0.3 + 255 * 1e-7, 256)[:, None] + 1000
    exact = torch.cdist(levels, levels, compute_mode="donot_use_mm_for_euclid_dist").fill_diagonal_(np.inf)
    blurred = torch.cdist(levels, levels, compute_mode="use_mm_for_euclid_dist").fill_diagonal_(np.inf)
    truth = (levels - levels.T).abs().fill_diagonal_(np.inf).argmin(1)
    assert torch.equal(exact.argmin(1), truth) and not torch.equal(blurred.argmin(1), truth)


def test_bad_input_names_the_argument():
    veiled, clean = garments(8)
    for kwargs, match in (({"veiled": veiled * 2}, "veiled"), ({"clean": clean[:, :, :8]}, "same shape"),
                          ({"clean": clean[:1], "veiled": veiled[:1]}, "N >= 2"),
                          ({"jitter": -0.1}, "jitter"), ({"veil_jitter": 1.5}, "veil_jitter")):
        with pytest.raises(ValueError, match=match):
            shortcut_stats(**({"veiled": veiled, "clean": clean} | kwargs))


def test_explorer_builds_and_redraws():
    veiled, clean = garments(32)
    box = shortcut_explorer(veiled, clean)
    crop, jitter, veil = box.children[0].children
    first = box.children[1].value
    assert first.startswith("positive found by: veil level ")
    crop.value = False
    assert box.children[1].value != first
    assert "image/png" in box._repr_mimebundle_()
