"""The claim checks of notebook 07's MoCo v3 part fail on broken variants (issue 13, item 5).

Each test rebuilds one kind of check of the notebook on small data and shows that a broken
variant fails it: the inline loss without its 2 tau, with the keys of the same view, or averaged
over the views; the gradient identity without the 2 tau; "training beats the untrained ViT" for
a run that did not train; "raw pixels beat the ViT" for an encoder as good as the pixels; "the
frozen patch projection never moved" for a projection whose freeze was undone. The dip and spike
measurements (printed, not asserted) are checked on curves with and without a dip or a spike.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cl_teach.augment import Augment
from cl_teach.data import ViewLoader, load_fashion_mnist
from cl_teach.methods import MoCoV3
from cl_teach.metrics import knn_predict, paired_difference
from cl_teach.models import TinyViT, embed
from cl_teach.train import fit

# --- the notebook's inline code (ctr_inline with a switch for the broken variant) ------------

def ctr_inline(q, k, tau, scale=True):
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    logits = q @ k.T / tau
    labels = torch.arange(q.shape[0])
    return F.cross_entropy(logits, labels) * (2 * tau if scale else 1.0)


def heads(m, x1, x2):
    q1, q2 = (m.predictor(m.projector(m.encoder(x))) for x in (x1, x2))
    with torch.no_grad():
        k1, k2 = (m.momentum_projector(m.momentum_encoder(x)) for x in (x1, x2))
    return q1, q2, k1, k2


def largest_drop(acc):
    acc = np.asarray(acc, dtype=float)
    return float((np.maximum.accumulate(acc) - acc).max())


def spike(g, skip=15):
    g = np.asarray(g, dtype=float)[skip:]
    return float(g.max() / np.median(g)), int(g.argmax()) + skip


# --- data and two short runs, shared -------------------------------------------------------------

@pytest.fixture(scope="module")
def data():
    return load_fashion_mnist("train").subset(2048, seed=0), load_fashion_mnist("test").subset(1000, seed=1)


def _evaluate(f, train, test):
    """Per-test-image kNN outcomes (1 = right), what ``Evaluation.compare(on="knn")`` pairs."""
    return (knn_predict(embed(f, train.x), train.y, embed(f, test.x), k=20) == test.y).float()


def compare(a, b):
    return paired_difference(a, b)


def _train(train, lr, steps=20, frozen=False, unfreeze=False):
    torch.manual_seed(0)
    m = MoCoV3(TinyViT(frozen_patch_embed=frozen))
    if unfreeze:                                       # the broken freeze: the flag is ignored
        m.encoder.patch_embed.requires_grad_(True)
    w0 = m.encoder.patch_embed.weight.detach().clone()
    fit(m, ViewLoader(train.x, [Augment()] * 2, batch_size=128, seed=0), steps=steps, lr=lr, progress=False)
    return m, w0


@pytest.fixture(scope="module")
def trained(data):
    train, test = data
    torch.manual_seed(0)
    init = _evaluate(TinyViT(), train, test)           # the runs' initialisation (same seed)
    m, _ = _train(train, lr=1e-2)
    return init, _evaluate(m.encoder, train, test)


# --- the derivation -----------------------------------------------------------------------------

def test_inline_loss_equals_the_package_and_broken_versions_do_not():
    torch.manual_seed(0)
    m = MoCoV3(TinyViT())
    g = torch.Generator().manual_seed(1)
    x1, x2 = torch.rand(32, 1, 28, 28, generator=g), torch.rand(32, 1, 28, 28, generator=g)
    with torch.no_grad():                              # keys from a different network than the queries
        for p in m.momentum_projector.parameters():
            p.add_(0.05 * torch.randn_like(p))
    pkg = m.training_step((x1, x2))["loss"]
    q1, q2, k1, k2 = heads(m, x1, x2)
    t = m.temperature
    assert torch.allclose(pkg, ctr_inline(q1, k2, t) + ctr_inline(q2, k1, t), atol=1e-5)
    broken = {"no 2 tau": ctr_inline(q1, k2, t, scale=False) + ctr_inline(q2, k1, t, scale=False),
              "keys of the same view": ctr_inline(q1, k1, t) + ctr_inline(q2, k2, t),
              "averaged, not summed": (ctr_inline(q1, k2, t) + ctr_inline(q2, k1, t)) / 2,
              "one direction only": 2 * ctr_inline(q1, k2, t)}
    for name, loss in broken.items():
        assert not torch.allclose(pkg, loss, atol=1e-5), name


@pytest.mark.parametrize("tau", [0.1, 0.2, 1.0])
def test_gradient_identity_holds_with_2_tau_and_fails_without(tau):
    g = torch.Generator().manual_seed(0)
    u, v = (F.normalize(torch.randn(16, 8, generator=g), dim=1) for _ in range(2))
    n, want = 16, None
    for scale in (2 * tau, 1.0):
        s = (u @ v.T).requires_grad_()
        (F.cross_entropy(s / tau, torch.arange(n)) * scale).backward()
        want = 2 * (torch.softmax(s.detach() / tau, dim=1) - torch.eye(n)) / n
        ok = torch.allclose(s.grad, want, atol=1e-6)
        assert ok == (scale == 2 * tau)                # without 2 tau it is off by 1 / (2 tau)


# --- the asserted claims of the experiment ---------------------------------------------------------

def test_training_beats_the_untrained_vit_and_a_run_that_did_not_train_does_not(data, trained):
    init, after = trained
    assert compare(init, init).low == 0                # the same model: no difference
    assert compare(after, init).low > 0                # the notebook's check passes a real run
    train, test = data
    m, _ = _train(train, lr=1e-9, steps=5)             # broken: the weights barely move
    assert not compare(_evaluate(m.encoder, train, test), init).low > 0


def test_raw_pixels_beat_the_vit_check_fails_for_an_encoder_as_good_as_pixels(data, trained):
    train, test = data
    _, after = trained
    raw = _evaluate(torch.nn.Flatten(), train, test)
    assert compare(raw, after).low > 0                 # the notebook's kind of claim, on small data
    as_pixels = _evaluate(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Identity()), train, test)
    assert not compare(raw, as_pixels).low > 0         # broken: the "ViT" is the pixels


def test_frozen_projection_check_fails_when_the_freeze_is_undone(data):
    train, _ = data

    def moved(m, w0):
        return ((m.encoder.patch_embed.weight.detach() - w0).norm() / w0.norm()).item()

    frozen, learn, broken = (_train(train, 1e-2, steps=3, frozen=f, unfreeze=u)
                             for f, u in ((True, False), (False, False), (True, True)))
    assert moved(*frozen) == 0 and moved(*learn) > 0.01
    assert moved(*broken) > 0                         # the broken freeze fails the check


# --- the printed measurements --------------------------------------------------------------------

def test_largest_drop_sees_a_dip_and_nothing_on_a_rising_curve():
    assert largest_drop([0.5, 0.6, 0.7, 0.8]) == 0
    assert largest_drop([0.5, 0.7, 0.6, 0.75]) == pytest.approx(0.1)
    assert largest_drop([0.5, 0.8, 0.6, 0.65, 0.82]) == pytest.approx(0.2)   # against the best so far


def test_spike_ratio_is_small_for_noise_and_large_for_a_spike():
    rng = np.random.default_rng(0)
    noise = 1 + 0.1 * rng.standard_normal(100)
    noise[:15] = 50                                    # the warm-up is skipped
    assert spike(noise)[0] < 1.5
    spiked = noise.copy()
    spiked[60] = 20
    assert spike(spiked) == (pytest.approx(20 / np.median(spiked[15:])), 60)
