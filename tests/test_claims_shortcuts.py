"""The checks that notebook 06 (augmentation shortcuts) asserts can fail.

Each test rebuilds one kind of claim of the notebook on small synthetic data and shows that a
broken variant fails it: a "veil jitter" that gives both views the same veil (the shortcut left
open), an encoder that is invariant to the veil (no shortcut, so no cost and no veil in h), the
untrained encoder compared with itself. The notebook's functions are copied here (tests never
import notebooks/src).
"""
import pytest
import torch

from cl_teach.augment import Augment, color_jitter
from cl_teach.metrics import knn_predict, paired_difference

T_MAX = 0.5
CHANCE = 1 / 511                        # 2N - 1 candidates for N = 256


pytestmark = pytest.mark.usefixtures("one_thread")       # conftest.py; seed 0 comes from _seed


# --- the notebook's definitions ------------------------------------------------------------
def veil(x, t):
    t = t.view(-1, 1, 1, 1).to(x.dtype)
    return t + (1 - t) * x


class VeilJitter:
    def __init__(self, augment, u_max=T_MAX):
        self.augment, self.u_max = augment, u_max

    def __call__(self, x, generator=None):
        y = self.augment(x, generator)
        return veil(y, torch.rand(x.shape[0], generator=generator) * self.u_max)


def positive_found(views, x, feature, generator):
    n = x.shape[0]
    phi = torch.cat([feature(views(x, generator)), feature(views(x, generator))])
    dist = (phi[:, None] - phi[None]).norm(dim=-1)
    dist.fill_diagonal_(float("inf"))
    positive = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return (dist.argmin(dim=1) == positive).float().mean().item()


def veil_level(v):
    return v.amin(dim=(1, 2, 3))[:, None]


def intensity_histogram(v, bins=32):
    idx = (v.flatten(1) * bins).long().clamp(max=bins - 1)
    h = torch.zeros(v.shape[0], bins).scatter_add_(1, idx, torch.ones(idx.shape))
    return (h / idx.shape[1])[:, 1:]


# --- data: centred "garments" on an exactly black background, 4 shape classes -----------------
def _garments(n, seed=0):
    """(x, y): class-dependent centred shapes, random brightness, size and texture, background 0."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    r = torch.linspace(-1, 1, 28)
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    size = 0.45 + 0.25 * torch.rand(n, 1, 1, generator=g)
    shapes = torch.stack([(xx.abs() < 0.6) & (yy.abs() < 0.6),                  # square
                          xx ** 2 + yy ** 2 < 0.5,                              # disc
                          (xx.abs() < 0.25) | (yy.abs() < 0.25),               # cross
                          (yy > xx - 0.3) & (yy < xx + 0.3)]).float()           # diagonal band
    x = shapes[y] * (xx[None] ** 2 + yy[None] ** 2 < 2 * size ** 2)            # centred, per size
    x = x * (0.4 + 0.6 * torch.rand(n, 1, 1, generator=g))                      # garment brightness
    texture = torch.nn.functional.interpolate(torch.rand(n, 1, 7, 7, generator=g), size=28,
                                              mode="bilinear", align_corners=False)
    return x[:, None] * (0.6 + 0.4 * texture), y                                 # each one unique


def _veils(n, seed):
    return torch.rand(n, generator=torch.Generator().manual_seed(seed)) * T_MAX


# --- 1. the veil is an exact, label-free identifier -----------------------------------------
def test_veil_level_is_the_darkest_pixel():
    x, _ = _garments(64)
    t = _veils(64, 1)
    marked = veil(x, t)
    assert torch.allclose(veil_level(marked)[:, 0], t, atol=1e-6)
    assert marked.min() >= 0 and marked.max() <= 1


# --- 2. the InfoNCE view: a content-free feature finds the positive ------------------------
class SameVeilForBothViews(VeilJitter):
    """Broken fix: the 'per-view' veil is drawn from a generator seeded afresh at every call, so
    both views of an image get the same u: the veil is shared again and the shortcut stays open."""

    def __call__(self, x, generator=None):
        y = self.augment(x, generator)
        return veil(y, torch.rand(x.shape[0], generator=torch.Generator().manual_seed(0)) * self.u_max)


@pytest.mark.parametrize("broken", [False, True])
def test_veil_jitter_check_fails_when_both_views_share_the_veil(broken):
    x, _ = _garments(256)
    marked = veil(x, _veils(256, 1))
    g = torch.Generator().manual_seed(2)
    assert positive_found(Augment(strength=0), marked, veil_level, g) > 0.8       # open shortcut
    fix = (SameVeilForBothViews if broken else VeilJitter)(Augment(strength=0))
    closed = positive_found(fix, marked, veil_level, g) < 10 * CHANCE              # notebook's check
    assert closed != broken


def test_positive_found_is_1_for_identical_views_and_chance_like_for_a_constant_feature():
    x, _ = _garments(256)
    g = torch.Generator().manual_seed(3)
    assert positive_found(lambda v, gen: v, x, lambda v: v.flatten(1), g) == 1.0
    assert positive_found(Augment(), x, lambda v: torch.zeros(v.shape[0], 1), g) < 10 * CHANCE


def test_histogram_check_fails_when_jitter_is_switched_off():
    """The notebook asserts jitter at least halves the histogram's share under crops; a 'jitter'
    of strength 0 (crop only) does not."""
    x, _ = _garments(256, seed=4)
    g = torch.Generator().manual_seed(5)
    crop = positive_found(Augment(strength=0), x, intensity_histogram, g)
    assert crop > 50 * CHANCE
    jitter = positive_found(Augment(), x, intensity_histogram, g)
    assert jitter < 0.5 * crop
    off = positive_found(Augment(strength=0.0), x, intensity_histogram, g)
    assert not off < 0.5 * crop


def pixel_layout(v):
    v = v.flatten(1)
    return (v - v.mean(dim=1, keepdim=True)) / v.std(dim=1, keepdim=True)


def _jitter_only(x, generator=None):
    return color_jitter(x, brightness=0.4, contrast=0.4, saturation=0.0, p=0.8, generator=generator)


@pytest.mark.parametrize("broken", [False, True])
def test_layout_check_fails_when_the_composition_loses_its_crop(broken):
    """Jitter alone: the standardised pixels find > 90% of positives; crop + jitter must bring
    that below 30%. A 'crop + jitter' whose crop is missing fails the second check."""
    x, _ = _garments(256, seed=9)
    g = torch.Generator().manual_seed(10)
    assert positive_found(_jitter_only, x, pixel_layout, g) > 0.9
    composed = _jitter_only if broken else Augment()
    assert (positive_found(composed, x, pixel_layout, g) < 0.3) != broken


# --- 3. the cost of the shortcut and the veil-in-h diagnostic --------------------------------
def _content(x):
    """A veil-invariant encoder: undo the veil (its level is the darkest pixel), keep the pixels."""
    t = veil_level(x).view(-1, 1, 1, 1)
    return ((x - t) / (1 - t)).flatten(1)


def _shortcut(x, weight=3.0):
    """An encoder that keeps the pixels and, heavily weighted, the veil level (RBF-coded): what a
    network that learned the shortcut looks like to kNN."""
    centres = torch.linspace(0, T_MAX, 16)
    code = torch.exp(-(veil_level(x) - centres) ** 2 / (2 * 0.03 ** 2))
    return torch.cat([_content(x), weight * x.flatten(1).norm(dim=1, keepdim=True) * code], dim=1)


@pytest.fixture(scope="module")
def split():
    x, y = _garments(3000, seed=6)
    t = _veils(3000, 7)
    return {"x": x[:2000], "y": y[:2000], "xq": x[2000:], "yq": y[2000:],
            "t": t[:2000], "tq": t[2000:]}


def _knn_correct(encode, bank, query, bank_y, query_y):
    return (knn_predict(encode(bank), bank_y, encode(query)) == query_y).float()


@pytest.mark.parametrize("broken", [False, True])
def test_shortcut_cost_check_fails_for_a_veil_invariant_encoder(split, broken):
    """cost = kNN(veiled run on veiled test) - kNN(clean run on clean test) must have high < 0."""
    s = split
    encode = _content if broken else _shortcut                # broken: no shortcut learned
    veiled = _knn_correct(encode, veil(s["x"], s["t"]), veil(s["xq"], s["tq"]), s["y"], s["yq"])
    clean = _knn_correct(_content, s["x"], s["xq"], s["y"], s["yq"])
    cost = paired_difference(veiled, clean)
    assert (cost.high < 0) != broken
    # ... and the fix check (invariant minus shortcut, both on veiled images, low > 0)
    fixed = _knn_correct(_content, veil(s["x"], s["t"]), veil(s["xq"], s["tq"]), s["y"], s["yq"])
    assert (paired_difference(fixed, veiled).low > 0) != broken


@pytest.mark.parametrize("broken", [False, True])
def test_veil_decile_diagnostic_fails_when_neither_encoder_keeps_the_veil(split, broken):
    s = split
    bins = torch.linspace(0, T_MAX, 11)[1:-1]
    d, dq = torch.bucketize(s["t"], bins), torch.bucketize(s["tq"], bins)
    bank, query = veil(s["x"], s["t"]), veil(s["xq"], s["tq"])
    first = _knn_correct(_content if broken else _shortcut, bank, query, d, dq)
    second = _knn_correct(_content, bank, query, d, dq)
    assert (paired_difference(first, second).low > 0) != broken


# --- 4. the ablation's "below the untrained encoder" check -----------------------------------
def test_below_untrained_check_fails_for_the_encoder_itself(split):
    """vs_untrained.high < 0: an encoder worse than the untrained one passes, the same encoder fails."""
    s = split
    g = torch.Generator().manual_seed(8)
    projection = torch.randn(784, 64, generator=g)
    untrained = _knn_correct(lambda x: x.flatten(1) @ projection, s["x"], s["xq"], s["y"], s["yq"])
    damaged = _knn_correct(lambda x: x.flatten(1) @ projection[:, :1], s["x"], s["xq"], s["y"], s["yq"])
    assert paired_difference(damaged, untrained).high < 0
    assert not paired_difference(untrained, untrained).high < 0
