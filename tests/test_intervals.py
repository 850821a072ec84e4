"""cl_teach.intervals against independent references, and its input checks."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from cl_teach.intervals import Interval, paired_difference, seed_interval


def test_paired_bootstrap_matches_the_normal_approximation():
    """At n = 4000 binary outcomes the percentile bootstrap of a mean difference is close to
    mean +- 1.96 se (the paired z-interval): a reference that shares no code with scipy's bootstrap."""
    rng = np.random.default_rng(1)
    a = (rng.random(4000) < 0.80).astype(float)
    b = np.where(rng.random(4000) < 0.9, a, 1 - a)          # b agrees with a on ~90% of items
    d = a - b
    se = d.std(ddof=1) / math.sqrt(d.size)
    got = paired_difference(a, b, n_resamples=4000)
    assert got.estimate == pytest.approx(d.mean(), abs=1e-12)
    assert got.low == pytest.approx(d.mean() - 1.96 * se, abs=0.25 * se)
    assert got.high == pytest.approx(d.mean() + 1.96 * se, abs=0.25 * se)
    assert got.n == 4000 and got.confidence == 0.95


def test_paired_is_narrower_than_unpaired_when_models_agree():
    """Pairing is the point: two models that agree on most items differ far less noisily than
    two independent accuracies suggest."""
    rng = np.random.default_rng(0)
    a = (rng.random(2000) < 0.8).astype(float)
    b = a.copy()
    flip = rng.choice(2000, 40, replace=False)
    b[flip] = 1 - b[flip]
    width = paired_difference(a, b).high - paired_difference(a, b).low
    unpaired_se = math.sqrt(a.var() / a.size + b.var() / b.size)
    assert width < 0.5 * 2 * 1.96 * unpaired_se


def test_verdict_follows_the_interval_and_can_fail():
    better = torch.tensor([1.0] * 600 + [0.0] * 400)
    worse = torch.tensor([1.0] * 500 + [0.0] * 500)
    assert paired_difference(better, worse).verdict("A", "B") == "A beats B"
    assert paired_difference(worse, better).verdict("A", "B") == "B beats A"
    # a broken claim: the "better" model is the same model; the check must not pass
    same = paired_difference(better, better)
    assert not same.excludes_zero and same.verdict("A", "B").startswith("no reliable difference")
    # a noisy claim: a 1-item advantage out of 1000 is not a claim either
    noisy = better.clone(); noisy[600] = 1.0
    assert not paired_difference(noisy, better).excludes_zero


def test_deterministic_for_given_inputs():
    a = torch.rand(500) < 0.7
    b = torch.rand(500) < 0.6
    assert paired_difference(a, b) == paired_difference(a, b)
    assert paired_difference(a, b, seed=1) != paired_difference(a, b, seed=2)


def test_seed_interval_matches_scipy_t_interval():
    v = [0.812, 0.807, 0.821, 0.815]
    got = seed_interval(v)
    low, high = stats.t.interval(0.95, df=3, loc=np.mean(v), scale=stats.sem(v))
    assert (got.low, got.high) == pytest.approx((low, high), abs=1e-12)
    assert got.sd == pytest.approx(np.std(v, ddof=1)) and got.n == 4


def test_points_and_str():
    iv = Interval(0.0123, 0.004, 0.0206, n=10)
    assert iv.points() == "+1.2 [+0.4, +2.1]"
    assert "95% interval" in str(iv)


@pytest.mark.parametrize("kwargs, match", [
    (dict(a=[1, 0], b=[1, 0, 1]), "same test items"),
    (dict(a=[], b=[]), "non-empty"),
    (dict(a=[[1, 0]], b=[[1, 0]]), "1-d"),
    (dict(a=[1, float("nan")], b=[1, 0]), "finite"),
    (dict(a=[1, 0], b=[1, 0], confidence=1.5), "confidence"),
    (dict(a=[1, 0], b=[1, 0], n_resamples=10), "n_resamples"),
])
def test_paired_difference_errors_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        paired_difference(**kwargs)


def test_seed_interval_errors():
    with pytest.raises(ValueError, match="at least 2 runs"):
        seed_interval([0.8])
    with pytest.raises(TypeError, match="values must be"):
        seed_interval(object())
