"""Uncertainty of a measured claim: paired bootstrap over test items, t-intervals over seeds.

"A beats B" is a claim only when the 95% interval of the difference excludes 0. Two helpers:

- :func:`paired_difference`: per-item outcomes of two models *on the same test items* (e.g. kNN
  correct / wrong), the difference of their means with a paired bootstrap interval
  (``scipy.stats.bootstrap``; Efron & Tibshirani, 1993). It captures the test-set noise only.
- :func:`seed_interval`: one number per seed (or per-seed differences), mean, sd and a Student-t
  interval. It captures the training noise too, at the price of one run per seed.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

__all__ = ["Interval", "paired_difference", "seed_interval"]


@dataclass(frozen=True)
class Interval:
    """An estimate with its two-sided confidence interval ``[low, high]``."""

    estimate: float
    low: float
    high: float
    confidence: float = 0.95
    sd: float = float("nan")       # spread over seeds (seed_interval only)
    n: int = 0                      # test items or seeds

    @property
    def excludes_zero(self) -> bool:
        """Whether 0 lies outside ``[low, high]``: only then is the difference a claim."""
        return self.low > 0 or self.high < 0

    def verdict(self, a: str = "A", b: str = "B") -> str:
        """``"a beats b"``, ``"b beats a"`` or ``"no reliable difference between a and b"``.

        The words of the claim, decided by the interval alone (what a checked cell may print).
        """
        if self.low > 0:
            return f"{a} beats {b}"
        if self.high < 0:
            return f"{b} beats {a}"
        return f"no reliable difference between {a} and {b}"

    def __str__(self) -> str:
        return (f"{self.estimate:+.4f} [{self.low:+.4f}, {self.high:+.4f}] "
                f"({100 * self.confidence:.0f}% interval, n={self.n})")

    def points(self, scale: float = 100.0, digits: int = 1) -> str:
        """The interval in points (x100 by default): ``"+1.2 [+0.4, +2.0]"``."""
        f = f"{{:+.{digits}f}}"
        return (f"{f.format(scale * self.estimate)} [{f.format(scale * self.low)}, "
                f"{f.format(scale * self.high)}]")


def _as_1d(name: str, v) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().double().numpy()
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be a 1-d sequence of numbers, got {type(v).__name__}") from e
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-d sequence of numbers, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite, got {int((~np.isfinite(a)).sum())} non-finite values")
    return a


def _check_confidence(confidence: float) -> None:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")


def paired_difference(a, b, confidence: float = 0.95, n_resamples: int = 2000,
                      seed: int = 0) -> Interval:
    """mean(a) - mean(b) over the same test items, with a paired bootstrap interval.

    Args:
        a: (M,) per-item outcomes of the first model on the *same* M test items as ``b``, in the
            same order (e.g. ``Evaluation.knn_correct``: 1 where the prediction is right).
        b: (M,) per-item outcomes of the second model, item for item with ``a``.
        confidence: of the two-sided interval.
        n_resamples: bootstrap resamples.
        seed: the resampling seed (the interval is deterministic for given inputs).

    Returns:
        :class:`Interval` of the difference; ``excludes_zero`` says whether it is a claim.

    Example:
        >>> a = torch.tensor([1, 1, 1, 0] * 50); b = torch.tensor([1, 0, 0, 0] * 50)
        >>> d = paired_difference(a, b); round(d.estimate, 2), d.excludes_zero
        (0.5, True)
        >>> paired_difference(a, a).verdict("A", "B")
        'no reliable difference between A and B'
    """
    a, b = _as_1d("a", a), _as_1d("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must hold outcomes on the same test items (same length), got "
                         f"{a.shape[0]} and {b.shape[0]}")
    _check_confidence(confidence)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 100:
        raise ValueError(f"n_resamples must be an int >= 100, got {n_resamples!r}")
    d = a - b
    est = float(d.mean())
    if np.all(d == d[0]) or d.size < 2:             # no spread: the bootstrap is degenerate
        return Interval(est, est, est, confidence, n=int(d.size))
    res = stats.bootstrap((d,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                          method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    ci = res.confidence_interval
    return Interval(est, float(ci.low), float(ci.high), confidence, n=int(d.size))


def seed_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean +- sd over independent runs (seeds) with a Student-t interval of the mean.

    Pass per-seed differences (``[a_s - b_s for each seed s]``) for a paired claim over seeds.

    Example:
        >>> r = seed_interval([0.80, 0.82, 0.81]); round(r.estimate, 3), round(r.sd, 3)
        (0.81, 0.01)
        >>> seed_interval([0.01, 0.02, 0.015]).excludes_zero
        True
    """
    v = _as_1d("values", values)
    if v.size < 2:
        raise ValueError(f"values must hold at least 2 runs to estimate a spread, got {v.size}")
    _check_confidence(confidence)
    mean, sd = float(v.mean()), float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df=v.size - 1)) * sd / math.sqrt(v.size)
    return Interval(mean, mean - half, mean + half, confidence, sd=sd, n=int(v.size))
