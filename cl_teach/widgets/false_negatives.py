"""False-negative explorer (notebook 10): batch size and classes against same-class negatives."""
from __future__ import annotations

import numpy as np

from .._validate import check_positive
from ..intervals import seed_interval
from ..palette import PALETTE
from ._explorer import explorer

BATCH_SIZES = (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
N_CLASSES = (2, 5, 10, 20, 50, 100, 1000)


def false_negative_stats(n_classes: int, batch_size: int, n_images: int = 12_000, n_batches: int = 200,
                         seed: int = 0) -> dict[str, object]:
    """The false negatives of SimCLR's batches (behind :func:`false_negative_explorer`).

    A training set of ``n_images`` in ``n_classes`` balanced classes (M_c = n_images // n_classes
    each), drawn ``batch_size`` at a time without replacement.

    The share of a view's 2N - 2 negatives that share its label is
    rho = sum_c n_c (n_c - 1) / (N (N - 1)); its expectation, exact for batches drawn without
    replacement, is sum_c M_c (M_c - 1) / (M (M - 1)) whatever N. ``n_batches`` batches' class
    counts are drawn from the multivariate hypergeometric law (what a shuffled loader gives), and
    their mean share comes with a 95% t-interval over the batches
    (:func:`~cl_teach.intervals.seed_interval`).

    Args:
        n_classes: C, the number of balanced classes (1 <= C <= n_images / 2).
        batch_size: N, images per batch (2 <= N <= C M_c).
        n_images: M, the training set's size (the notebook's 12,000).
        n_batches: batches drawn for the measured share (>= 2).
        seed: of the draws.

    Returns:
        dict with ``expected`` (E[rho]), ``measured`` (the batches' mean rho), ``ci95`` (its
        interval), ``per_anchor`` (same-class views per anchor, 2 (N - 1) E[rho]), ``p_any`` (the
        probability that an anchor's batch holds another image of its class), ``n_classes``,
        ``batch_size`` and ``class_size`` (M_c).

    Raises:
        ValueError: on a non-positive count, or a batch larger than the training set.

    Example:
        >>> st = false_negative_stats(10, 256)
        >>> round(st["expected"], 4), abs(st["measured"] - st["expected"]) < 0.005
        (0.0999, True)
    """
    from scipy import stats
    for name, v in (("n_classes", n_classes), ("batch_size", batch_size), ("n_images", n_images),
                    ("n_batches", n_batches)):
        check_positive(name, v, integer=True)
    class_size = n_images // n_classes
    if class_size < 2:
        raise ValueError(f"n_classes must leave at least 2 of the {n_images:,} images per class, "
                         f"got {n_classes}")
    m = n_classes * class_size
    if not 2 <= batch_size <= m:
        raise ValueError(f"batch_size must be between 2 and the {m:,} training images, got {batch_size}")
    if n_batches < 2:
        raise ValueError(f"n_batches must be at least 2 for an interval, got {n_batches}")
    counts = np.full(n_classes, class_size, dtype=np.int64)
    expected = float((counts * (counts - 1)).sum() / (m * (m - 1)))
    n_c = np.random.default_rng(seed).multivariate_hypergeometric(counts, batch_size, size=n_batches)
    rho = (n_c * (n_c - 1)).sum(1) / (batch_size * (batch_size - 1))                     # (B,)
    measured = seed_interval(rho)                           # a t-interval over independent batches
    p_any = 1 - stats.hypergeom(m - 1, class_size - 1, batch_size - 1).pmf(0)
    return {"expected": expected, "measured": measured.estimate, "ci95": (measured.low, measured.high),
            "per_anchor": 2 * (batch_size - 1) * expected, "p_any": float(p_any),
            "n_classes": int(n_classes), "batch_size": int(batch_size), "class_size": int(class_size)}


def plot_false_negative_stats(stats: dict[str, object]):
    """Two panels against the batch size N: the share of same-class negatives and their number.

    Left, the share (flat in N) with the measured batches' interval at the chosen N; right, the
    same-class views per anchor (growing with N) with the chosen N marked.

    Args:
        stats: the dict of :func:`false_negative_stats`.

    Returns:
        A matplotlib Figure.
    """
    from matplotlib.figure import Figure
    n, c, e = stats["batch_size"], stats["n_classes"], stats["expected"]
    ns = np.array([b for b in BATCH_SIZES if b <= c * stats["class_size"]] or [n])
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.axhline(e, color="k", lw=1, label=r"$E[\rho]$ (any N)")
    lo, hi = stats["ci95"]
    ax1.errorbar([n], [stats["measured"]], yerr=[[stats["measured"] - lo], [hi - stats["measured"]]],
                 fmt="o", color=PALETTE["orange"], capsize=4, label="measured, 200 batches (95%)")
    ax1.set_xscale("log", base=2)
    ax1.set_xlim(ns.min() / 1.5, ns.max() * 1.5)
    ax1.set_ylim(0, max(2 * e, hi * 1.1))
    ax1.set_xlabel("batch size N (images)")
    ax1.set_ylabel("share of a view's negatives\nof its own class")
    ax1.set_title(f"{c} classes: the share does not fall with N", fontsize=9)
    ax1.legend(fontsize=9, loc="lower right")
    ax2.loglog(ns, 2 * (ns - 1) * e, "k-", lw=1, label="same-class views, 2 (N - 1) E[rho]")
    ax2.loglog(ns, 2 * ns - 2, ":", color="gray", label="all negatives, 2N - 2")
    ax2.loglog([n], [stats["per_anchor"]], "o", color=PALETTE["orange"])
    ax2.set_xlabel("batch size N (images)")
    ax2.set_ylabel("negative views per anchor")
    ax2.set_title(f"N = {n}: {stats['per_anchor']:.1f} false negatives per anchor", fontsize=9)
    ax2.legend(fontsize=9)
    return fig


def false_negative_explorer(n_images: int = 12_000, n_classes: int = 10, batch_size: int = 256):
    """False-negative explorer (notebook 10): the batch size N and the number of balanced classes C.

    The readout and figure show the share of a view's negatives of its own class (flat in N, about
    1 / C), the measured share of 200 batches with its interval, the false negatives per anchor
    (growing with N) and the chance that an anchor meets its class at all. Each setting draws its
    own batches (seed 10,000 C + N), so about one setting in twenty shows an interval that misses
    the formula's line: what a 95% interval means.

    Args:
        n_images: the training set's size M (split into C balanced classes).
        n_classes: C at the start (one of 2, 5, 10, 20, 50, 100, 1000).
        batch_size: N at the start (a power of 2 from 8 to 4096).

    Returns:
        The ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    if n_classes not in N_CLASSES or batch_size not in BATCH_SIZES:
        raise ValueError(f"n_classes must be one of {N_CLASSES} and batch_size one of {BATCH_SIZES}, "
                         f"got {n_classes} and {batch_size}")
    size = W.SelectionSlider(options=list(BATCH_SIZES), value=batch_size, description="batch N",
                             continuous_update=False)
    classes = W.SelectionSlider(options=list(N_CLASSES), value=n_classes, description="classes C",
                                continuous_update=False)
    return explorer(
        [size, classes], lambda n, c: false_negative_stats(c, n, n_images, seed=10_000 * c + n),
        plot=plot_false_negative_stats,
        describe=lambda st: (f"N = {st['batch_size']} | C = {st['n_classes']} | E[rho] = "
                             f"{st['expected']:.3g} | measured {st['measured']:.3g} "
                             f"[{st['ci95'][0]:.3g}, {st['ci95'][1]:.3g}] | false negatives per anchor "
                             f"= {st['per_anchor']:.1f} | P(anchor meets its class) = {st['p_any']:.3f}"))
