"""The claims of notebook 12's multi-crop, warm-up and DINOv2 parts, shown to FAIL on broken variants.

- Multi-crop: the inline loss (each global view predicts the other, each local crop both global
  views, 2 + 2V terms) equals ``DINO.training_step``; a teacher that also sees the local crops,
  or a loss that keeps the same-view pairs, gives another number. The teacher runs on the global
  views only. The "same images" check of the experiment fails for loaders with other seeds.
- The multi-crop claim ("teacher healthy AND kNN beats the better baseline") fails for a
  collapsed teacher even with a winning interval, and for an untrained encoder's kNN.
- The warm-up: ``DINO(warmup_teacher_temperature=..., warmup_teacher_temperature_steps=...)``
  follows the schedule step by step and its loss uses the current tau_t; without a warm-up the
  trajectory check fails and tau_t is left alone; bad settings are refused.
- "The per-image entropy rises with tau_t" fails for a teacher whose output is constant.
- KoLeo: inline = ``koleo_loss``, lower for spread points; a variant that forgets to exclude
  each point itself (every nearest distance 0) cannot tell spread from clumped.
"""
import math

import pytest
import torch
import torch.nn.functional as F

import cl_teach
from cl_teach.augment import Augment, multi_crop
from cl_teach.data import ViewLoader, load_fashion_mnist
from cl_teach.losses import dino_loss, koleo_loss
from cl_teach.methods import DINO
from cl_teach.methods.dino import teacher_temperature_at
from cl_teach.metrics import Interval, recalibrate_batchnorm
from cl_teach.models import SmallCNN
from cl_teach.widgets import dino_teacher_stats

K = 64
GLOBAL, LOCAL = Augment(), Augment(crop_scale=(0.1, 0.4), size=12)


def multicrop_loss_inline(s_global, s_local, t_global, c, tau_s=0.1, tau_t=0.04):
    """Notebook 12's derivation: global-to-global terms, then every local crop against both targets."""
    p_t = [F.softmax((t.detach() - c) / tau_t, dim=1) for t in t_global]

    def h(p, s):
        return -(p * F.log_softmax(s / tau_s, dim=1)).sum(dim=1).mean()

    terms = [h(p_t[0], s_global[1]), h(p_t[1], s_global[0])] + [h(p, s) for s in s_local for p in p_t]
    return sum(terms) / len(terms), len(terms)


def koleo_inline(x, eps=1e-8, exclude_self=True):
    x = F.normalize(x, dim=1)
    d = (x[:, None, :] - x[None, :, :]).norm(dim=2)
    if exclude_self:
        d = d + torch.diag(torch.full((len(x),), float("inf")))
    return -torch.log(d.min(dim=1).values + eps).mean()


def multicrop_claim(mode, knn_vs_best: Interval) -> bool:
    """Notebook 12's multi-crop claim: the teacher has not collapsed and kNN beats the better baseline."""
    return mode is None and knn_vs_best.low > 0


@pytest.fixture(scope="module")
def images():
    return load_fashion_mnist("test").subset(256, seed=0).x


def _views(x, n_local, seed=0):
    return tuple(multi_crop(x, GLOBAL, 2, LOCAL, n_local, generator=torch.Generator().manual_seed(seed)))


# ---------------------------------------------------------------- multi-crop loss
@pytest.mark.parametrize("n_local", [0, 2, 4])
def test_multicrop_inline_equals_the_method_and_counts_2_plus_2v_terms(images, n_local):
    cl_teach.seed_everything(0)
    dino = DINO(SmallCNN(), n_outputs=K)
    dino.center.normal_()
    views = _views(images[:32], n_local)
    out = dino.training_step(views)
    s = [dino.head(dino.encoder(v)) for v in views]
    with torch.no_grad():
        t = [dino.teacher_head(dino.teacher_encoder(v)) for v in views[:2]]
    ours, n_terms = multicrop_loss_inline(s[:2], s[2:], t, dino.center)
    assert n_terms == 2 + 2 * n_local
    assert torch.allclose(ours, out["loss"], atol=1e-5)
    assert torch.allclose(ours, dino_loss(s, t, dino.center), atol=1e-5)


def test_multicrop_check_fails_when_the_teacher_also_sees_the_local_crops(images):
    views = _views(images[:32], 4)
    cl_teach.seed_everything(0)
    paper = DINO(SmallCNN(), n_outputs=K)
    cl_teach.seed_everything(0)
    every = DINO(SmallCNN(), n_outputs=K, n_global=6)           # broken: local crops as targets
    s = [paper.head(paper.encoder(v)) for v in views]
    with torch.no_grad():
        t = [paper.teacher_head(paper.teacher_encoder(v)) for v in views[:2]]
    ours, _ = multicrop_loss_inline(s[:2], s[2:], t, paper.center)
    assert not torch.allclose(ours, every.training_step(views)["loss"], atol=1e-5)


def test_multicrop_check_fails_when_same_view_pairs_are_kept(images):
    views = _views(images[:32], 2)
    cl_teach.seed_everything(0)
    dino = DINO(SmallCNN(), n_outputs=K)
    s = [dino.head(dino.encoder(v)) for v in views]
    with torch.no_grad():
        t = [dino.teacher_head(dino.teacher_encoder(v)) for v in views[:2]]
    p_t = [F.softmax((x - dino.center) / 0.04, dim=1) for x in t]
    with_self = torch.stack([-(p * F.log_softmax(y / 0.1, dim=1)).sum(1).mean()
                             for p in p_t for y in s]).mean()     # broken: i == v included
    assert not torch.allclose(with_self, dino.training_step(views)["loss"], atol=1e-5)


def test_teacher_runs_on_the_global_views_only(images):
    cl_teach.seed_everything(0)
    dino = DINO(SmallCNN(), n_outputs=K)
    seen = []
    dino.teacher_encoder.register_forward_hook(lambda m, inp, out: seen.append(tuple(inp[0].shape[-2:])))
    dino.training_step(_views(images[:16], 4))
    assert seen == [(28, 28), (28, 28)]


def test_same_images_check_fails_for_another_loader_seed():
    x = torch.rand(64, 1, 28, 28)
    two = ViewLoader(x, [GLOBAL] * 2, batch_size=16, seed=0)
    multi = ViewLoader(x, [GLOBAL] * 2 + [LOCAL] * 2, batch_size=16, seed=0)
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(two.batches(), multi.batches()))
    other = ViewLoader(x, [GLOBAL] * 2 + [LOCAL] * 2, batch_size=16, seed=1)
    two = ViewLoader(x, [GLOBAL] * 2, batch_size=16, seed=0)
    assert not all(torch.equal(a, b) for (a, _), (b, _) in zip(two.batches(), other.batches()))


# ---------------------------------------------------------------- the multi-crop claim
def test_multicrop_claim_fails_for_a_collapsed_teacher_even_with_a_winning_interval(images):
    winning = Interval(0.02, 0.01, 0.03)
    assert multicrop_claim(None, winning)
    cl_teach.seed_everything(0)
    dino = DINO(SmallCNN(), n_outputs=K)
    recalibrate_batchnorm(torch.nn.Sequential(dino.teacher_encoder, dino.teacher_head), images)
    with torch.no_grad():
        dino.teacher_head.last.copy_(dino.teacher_head.last[:1].expand(K, -1))   # every logit equal
    assert not multicrop_claim(dino.collapse_mode(images), winning)


def test_multicrop_claim_fails_for_an_untrained_encoders_knn(untrained_vs_best_baseline):
    assert not multicrop_claim(None, untrained_vs_best_baseline(on="knn"))


# ---------------------------------------------------------------- the teacher temperature warm-up
def tau_t_inline(step, tau_end=0.07, tau_start=0.04, warmup=30):
    return tau_start + (tau_end - tau_start) * min(step / warmup, 1.0)


def _trajectory(method, steps=50):
    seen = []
    for step in range(steps):
        seen.append(method.teacher_temperature)
        method.after_step(step, steps)
    return seen


def test_warmup_follows_the_schedule_and_a_method_without_it_fails_the_check():
    warm = DINO(SmallCNN(), n_outputs=K, teacher_temperature=0.07, warmup_teacher_temperature=0.04,
                warmup_teacher_temperature_steps=30)
    seen = _trajectory(warm)
    assert all(math.isclose(seen[k], tau_t_inline(k), abs_tol=1e-12) for k in range(50))
    assert all(math.isclose(teacher_temperature_at(k, 0.07, 0.04, 30), tau_t_inline(k)) for k in range(50))
    assert warm.teacher_temperature == 0.07                        # after the warm-up: the final value
    plain = DINO(SmallCNN(), n_outputs=K, teacher_temperature=0.07)   # broken: no warm-up
    assert not all(math.isclose(v, tau_t_inline(k), abs_tol=1e-12) for k, v in enumerate(_trajectory(plain)))


def test_warmup_loss_uses_the_current_teacher_temperature(images):
    cl_teach.seed_everything(0)
    warm = DINO(SmallCNN(), n_outputs=K, teacher_temperature=0.07, warmup_teacher_temperature=0.04,
                warmup_teacher_temperature_steps=10)
    views = _views(images[:16], 0)
    for step in range(5):
        warm.after_step(step, 20)
    out = warm.training_step(views)
    s = [warm.head(warm.encoder(v)) for v in views]
    with torch.no_grad():
        t = [warm.teacher_head(warm.teacher_encoder(v)) for v in views]
    assert math.isclose(warm.teacher_temperature, tau_t_inline(5, warmup=10))
    now = tau_t_inline(5, warmup=10)
    assert torch.allclose(out["loss"], dino_loss(s, t, warm.center, 0.1, now), atol=1e-5)
    assert not torch.allclose(out["loss"], dino_loss(s, t, warm.center, 0.1, 0.07), atol=1e-5)


def test_without_warmup_after_step_leaves_tau_t_alone():
    dino = DINO(SmallCNN(), n_outputs=K)
    assert dino.teacher_temperature == 0.04
    dino.teacher_temperature = 0.05                                # set by hand: kept
    dino.after_step(0, 10)
    assert dino.teacher_temperature == 0.05


def test_warmup_settings_are_checked():
    with pytest.raises(ValueError, match="sharpening"):
        DINO(SmallCNN(), sharpening=False, warmup_teacher_temperature=0.04,
             warmup_teacher_temperature_steps=5)
    with pytest.raises(ValueError, match="warmup_teacher_temperature_steps"):
        DINO(SmallCNN(), warmup_teacher_temperature=0.04, warmup_teacher_temperature_steps=0)
    with pytest.raises(TypeError, match="warmup_teacher_temperature_steps"):
        DINO(SmallCNN(), warmup_teacher_temperature=0.04, warmup_teacher_temperature_steps=2.5)
    with pytest.raises(ValueError, match="warmup_teacher_temperature"):
        DINO(SmallCNN(), warmup_teacher_temperature=0.0, warmup_teacher_temperature_steps=5)


# ---------------------------------------------------------------- entropy along tau_t
def test_entropy_rises_with_tau_and_the_check_fails_for_a_constant_teacher():
    taus = [0.04, 0.05, 0.06, 0.07, 0.1]
    t = torch.randn(128, K, generator=torch.Generator().manual_seed(0))
    along = [dino_teacher_stats(t, torch.zeros(K), tau) for tau in taus]
    assert all(a["entropy"] < b["entropy"] for a, b in zip(along, along[1:]))
    flat = [dino_teacher_stats(torch.zeros(128, K), torch.zeros(K), tau) for tau in taus]   # broken teacher
    assert not all(a["entropy"] < b["entropy"] for a, b in zip(flat, flat[1:]))


# ---------------------------------------------------------------- KoLeo
def _points(seed=0):
    g = torch.Generator().manual_seed(seed)
    spread = torch.randn(64, 16, generator=g)
    clumped = torch.randn(1, 16, generator=g) + 0.05 * torch.randn(64, 16, generator=g)
    return spread, clumped


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_koleo_inline_equals_the_package_and_is_lower_for_spread_points(seed):
    spread, clumped = _points(seed)
    for x in (spread, clumped):
        assert torch.allclose(koleo_inline(x), koleo_loss(x), atol=1e-5)
    assert koleo_inline(spread) < koleo_inline(clumped)


def test_koleo_check_fails_when_a_point_may_be_its_own_neighbour():
    spread, clumped = _points()
    broken = {name: koleo_inline(x, exclude_self=False) for name, x in (("s", spread), ("c", clumped))}
    assert not broken["s"] < broken["c"]                           # both -log(eps): no information
    assert not torch.allclose(koleo_inline(spread, exclude_self=False), koleo_loss(spread), atol=1e-5)
