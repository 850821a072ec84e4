"""The claims of notebooks 12 (DINO) and 13 (method arena), shown to FAIL on a broken variant.

- 09's collapse diagnosis (``DINO.collapse_mode``, on ``losses.dino.teacher_entropies``): a
  healthy teacher is not flagged; a uniform teacher and a teacher whose outputs agree for every
  image are, each as its own mode.
- 09's feature claim is "not collapsed AND the probe beats the better baseline": a collapsed run
  fails it even with a winning probe interval (the collapsing runs' backbones do beat pixels).
- 10's head-level collapse check (spread of the normalised head output): a fresh head passes, a
  head whose output no longer depends on the image fails, also behind SimSiam's output BN.
- 10's "beats the better baseline by linear probe": fails for an untrained encoder.
"""
import math

import pytest
import torch

import cl_teach
from cl_teach.data import load_fashion_mnist
from cl_teach.losses.dino import teacher_entropies
from cl_teach.methods import DINO, SimCLR, SimSiam
from cl_teach.metrics import Interval, feature_std, recalibrate_batchnorm
from cl_teach.models import SmallCNN, embed

K = 64
SPREAD_MIN = 0.1             # notebook 13's threshold


@pytest.fixture(scope="module")
def images():
    return load_fashion_mnist("test").subset(512, seed=0).x


def head_spread(method, x):
    """Notebook 13's check: sqrt(D) * mean std of the L2-normalised head output (eval mode)."""
    head = method.head if isinstance(method, DINO) else method.projector
    z = embed(torch.nn.Sequential(method.encoder, head), x)
    return feature_std(z).item() * z.shape[1] ** 0.5


def dino_claim(method, x, probe_vs_best: Interval) -> bool:
    """Notebook 12's claim: the teacher has not collapsed and the probe beats the better baseline."""
    return method.collapse_mode(x) is None and probe_vs_best.low > 0


# ---------------------------------------------------------------- the two entropies
def test_teacher_entropies_tell_the_modes_apart():
    log_k = math.log(K)
    c = torch.zeros(K)
    healthy = torch.eye(K).repeat(4, 1) * 10                   # peaked, a different output per image
    e, b = teacher_entropies(healthy, c, 0.1)
    assert e < 0.1 * log_k and b > 0.99 * log_k
    e, b = teacher_entropies(torch.randn(256, K), c, 100.0)     # uniform for every image
    assert e > 0.99 * log_k
    same = torch.zeros(256, K)
    same[:, 3] = 10                                             # the same one-hot for everyone
    e, b = teacher_entropies(same, c, 0.1)
    assert e < 0.01 and b < 0.01
    e2, b2 = teacher_entropies(same, same[0], 0.1)             # the center removes what all share
    assert b2 > 0.99 * log_k


def test_teacher_entropies_match_the_training_monitor(images):
    cl_teach.seed_everything(0)
    dino = DINO(SmallCNN(), n_outputs=K)
    dino.center.normal_()
    out = dino.training_step((images[:64], images[64:128]))
    with torch.no_grad():
        t = dino.teacher_head(dino.teacher_encoder(images[:64]))
    e, b = teacher_entropies(t, dino.center, dino.teacher_temperature)
    assert torch.allclose(e, out["teacher_entropy"]) and torch.allclose(b, out["teacher_batch_entropy"])


def test_teacher_entropies_errors():
    with pytest.raises(ValueError, match="center"):
        teacher_entropies(torch.zeros(4, K), torch.zeros(K + 1))
    with pytest.raises(ValueError):
        teacher_entropies(torch.zeros(4, K), torch.zeros(K), 0.0)


# ---------------------------------------------------------------- DINO.collapse_mode
def _dino(images):
    cl_teach.seed_everything(0)
    dino = DINO(SmallCNN(), n_outputs=K)
    recalibrate_batchnorm(torch.nn.Sequential(dino.teacher_encoder, dino.teacher_head), images)
    return dino


def test_collapse_mode_flags_a_uniform_teacher(images):
    dino = _dino(images)
    with torch.no_grad():
        dino.teacher_head.last.copy_(dino.teacher_head.last[:1].expand(K, -1))   # every logit equal
    assert dino.collapse_mode(images) == "uniform"


def test_collapse_mode_flags_the_same_output_for_everyone(images):
    dino = _dino(images)
    with torch.no_grad():
        dino.center.fill_(0.0)[5] = -5.0          # (t - c) / tau_t: output 5 wins for every image
    assert dino.collapse_mode(images) == "few outputs"


def test_collapse_mode_passes_a_healthy_teacher(images):
    dino = _dino(images)
    with torch.no_grad():                         # a teacher that sorts images by a direction of h
        w = torch.randn(K, dino.teacher_head.last.shape[1], generator=torch.Generator().manual_seed(1))
        dino.teacher_head.last.copy_(w)
        t = dino.teacher_head(dino.teacher_encoder.eval()(images))
        dino.center.copy_(t.mean(0))              # centred, as after training
    e, b = teacher_entropies(t, dino.center, dino.teacher_temperature)
    assert dino.collapse_mode(images) is None, (e.item(), b.item(), math.log(K))
    assert dino.training is True                  # collapse_mode restores the mode


def test_a_collapsed_run_fails_the_feature_claim_even_with_a_winning_probe(images):
    winning = Interval(0.03, 0.01, 0.05)
    dino = _dino(images)
    with torch.no_grad():
        dino.teacher_head.last.copy_(dino.teacher_head.last[:1].expand(K, -1))
    assert not dino_claim(dino, images, winning)
    assert not dino_claim(dino, images, Interval(0.01, -0.01, 0.03))


# ---------------------------------------------------------------- notebook 13's head check
@pytest.mark.parametrize("make", [SimCLR, SimSiam, lambda f: DINO(f, n_outputs=K)])
def test_head_spread_fresh_passes_and_a_constant_head_fails(make, images):
    cl_teach.seed_everything(0)
    method = make(SmallCNN())
    recalibrate_batchnorm(torch.nn.Sequential(method.encoder, method.head if isinstance(method, DINO)
                                              else method.projector), images)
    assert head_spread(method, images) > SPREAD_MIN
    head = method.head.mlp if isinstance(method, DINO) else method.projector
    first = next(m for m in head.modules() if isinstance(m, torch.nn.Linear))
    with torch.no_grad():                         # the head no longer sees the image
        first.weight.zero_()
    recalibrate_batchnorm(torch.nn.Sequential(method.encoder, method.head if isinstance(method, DINO)
                                              else method.projector), images)
    assert head_spread(method, images) < SPREAD_MIN


def test_untrained_encoder_fails_beats_the_better_baseline_by_probe(untrained_vs_best_baseline):
    assert not untrained_vs_best_baseline(on="probe").low > 0
