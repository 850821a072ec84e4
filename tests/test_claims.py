"""Each kind of claim the notebooks assert, shown to FAIL on a broken variant (and pass on a
sound one): an assert that cannot fail is not a claim.

- "learned beats the best baseline" (cl_teach.evaluation): fails for an untrained encoder;
- "A beats B" with a paired interval: fails for A = B and for a one-item advantage (test_intervals);
- the collapse detectors: a healthy embedding is not flagged; a collapsed one is, including the
  collapse that an affine-free output BatchNorm hides from the std monitor (notebooks 03, 09).
"""
import math

import pytest
import torch
import torch.nn.functional as F

import cl_teach
from cl_teach.data import load_fashion_mnist
from cl_teach.evaluation import (
    RAW,
    UNTRAINED,
    Evaluation,
    baselines,
    best_baseline,
    evaluate_features,
    knn_and_probe,
)
from cl_teach.metrics import effective_rank, feature_std, recalibrate_batchnorm
from cl_teach.models import SmallCNN


@pytest.fixture(scope="module")
def splits():
    train = load_fashion_mnist("train").subset(3000, seed=0)
    test = load_fashion_mnist("test").subset(1000, seed=0)
    return train, test


@pytest.fixture(scope="module")
def base(splits):
    cl_teach.seed_everything(0)
    return baselines(SmallCNN, *splits)


def beats_best_baseline(ev: Evaluation, base: dict) -> bool:
    """The notebooks' check: the paired 95% interval vs the stronger baseline excludes 0 above."""
    _, best = best_baseline(base)
    return ev.compare(best).low > 0


def test_untrained_encoder_fails_the_beats_baseline_check(splits, base):
    train, test = splits
    torch.manual_seed(1)                                  # another untrained encoder
    other = knn_and_probe(recalibrate_batchnorm(SmallCNN(), train.x), train, test)
    assert not beats_best_baseline(other, base)


def test_features_that_know_the_labels_pass_it(splits, base):
    """The same check passes for features that carry the class (so it is not always False)."""
    train, test = splits
    g = torch.Generator().manual_seed(0)
    def cheat(split):
        return F.one_hot(split.y, 10).float() + 0.3 * torch.randn(len(split.y), 10, generator=g)
    ev = evaluate_features(cheat(train), train.y, cheat(test), test.y)
    assert beats_best_baseline(ev, base)


def test_baselines_are_the_raw_pixels_and_the_recalibrated_untrained_encoder(splits, base):
    train, test = splits
    assert set(base) == {RAW, UNTRAINED}
    raw = evaluate_features(train.x.flatten(1), train.y, test.x.flatten(1), test.y)
    assert torch.equal(raw.knn_correct, base[RAW].knn_correct)
    # the untrained baseline is the same initialisation with its BN statistics re-estimated,
    # not the one in eval mode with the initial statistics (which looks collapsed, notebook 04)
    cl_teach.seed_everything(0)
    fair = knn_and_probe(recalibrate_batchnorm(SmallCNN(), train.x), train, test)
    assert torch.equal(fair.knn_correct, base[UNTRAINED].knn_correct)
    cl_teach.seed_everything(0)
    naive = knn_and_probe(SmallCNN(), train, test)
    assert not torch.equal(naive.knn_correct, base[UNTRAINED].knn_correct)
    knn, probe = base[RAW]                                           # unpacks as a pair
    assert 0.5 < knn <= 1 and 0.5 < probe <= 1


def test_evaluation_errors_name_the_argument(splits):
    train, test = splits
    with pytest.raises(TypeError, match="train_set must have .x"):
        baselines(SmallCNN, train.x, test)
    with pytest.raises(TypeError, match="make_encoder"):
        baselines(lambda: 3, train, test)
    with pytest.raises(ValueError, match="on must be"):
        best_baseline({}, on="auc")
    with pytest.raises(ValueError, match="at least one"):
        best_baseline({})


# ---- collapse detectors ---------------------------------------------------------------------

def test_std_monitor_flags_complete_collapse_not_a_healthy_embedding():
    g = torch.Generator().manual_seed(0)
    d = 64
    healthy = torch.randn(512, d, generator=g)
    collapsed = torch.randn(1, d, generator=g) + 1e-3 * torch.randn(512, d, generator=g)
    threshold = 0.1 / math.sqrt(d)                          # notebooks 03, 09
    assert feature_std(healthy) > 0.5 / math.sqrt(d)
    assert feature_std(collapsed) < threshold


def test_affine_free_batchnorm_hides_collapse_from_std_but_not_from_rank():
    """SimSiam's output BN (affine=False) pins each dimension's batch variance, so a collapse to
    one direction keeps a healthy-looking std: the std check cannot fail there; the effective
    rank can (the review's point on 07)."""
    g = torch.Generator().manual_seed(0)
    d = 64
    a = torch.randn(512, 1, generator=g)
    rank_one = a * torch.randn(1, d, generator=g) + 1e-3 * torch.randn(512, d, generator=g)
    after_bn = torch.nn.BatchNorm1d(d, affine=False)(rank_one)
    assert feature_std(after_bn) > 0.5 / math.sqrt(d)       # the std monitor is fooled
    assert effective_rank(after_bn) < 5                      # the rank is not (D = 64)
    assert effective_rank(torch.randn(512, d, generator=g)) > 0.5 * d


def test_notebook_seed_reads_the_environment(monkeypatch):
    monkeypatch.setenv("CL_TEACH_SEED", "2")
    assert cl_teach.notebook_seed() == 2
    monkeypatch.setenv("CL_TEACH_SEED", "two")
    with pytest.raises(ValueError, match="CL_TEACH_SEED must be a non-negative integer"):
        cl_teach.notebook_seed()
    monkeypatch.delenv("CL_TEACH_SEED")
    assert cl_teach.notebook_seed() == 0
