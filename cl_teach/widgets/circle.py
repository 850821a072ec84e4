"""Alignment-and-uniformity explorer (notebook 04): points on the circle, how clumped, how aligned."""
from __future__ import annotations

import math

import numpy as np
import torch

from .._validate import check_positive
from ..losses import alignment, uniformity
from ..palette import PALETTE
from ._explorer import explorer


def uniform_circle_uniformity(t: float = 2.0) -> float:
    """Wang & Isola's uniformity of the uniform distribution on the circle: ``-2t + log I0(2t)``.

    For two independent uniform angles, ``||x - y||^2 = 2 - 2 cos(delta)`` with delta uniform, and
    ``E exp(2t cos delta) = I0(2t)`` (the modified Bessel function), so the limit of a large sample.

    Example:
        >>> round(uniform_circle_uniformity(2.0), 3)
        -1.575
    """
    from scipy.special import i0e
    check_positive("t", t)
    return float(math.log(i0e(2 * t)))                 # log(I0(2t) e^{-2t}), stable for large t


def circle_stats(concentration: float, noise: float, n: int = 400, t: float = 2.0,
                 seed: int = 0) -> dict[str, object]:
    """Alignment and uniformity of points on the circle (behind :func:`circle_explorer`).

    ``n`` angles are drawn from a von Mises distribution of ``concentration`` kappa around 0
    (kappa 0: uniform on the circle; large: one clump), and each gets a positive at its angle plus
    Gaussian noise of ``noise`` radians (0: perfectly aligned).

    Args:
        concentration: kappa >= 0.
        noise: the positives' angular noise, radians (>= 0).
        n: points (>= 2).
        t: uniformity's temperature (> 0).
        seed: of the draws.

    Returns:
        dict with ``x``, ``y`` (n, 2) the points and their positives, ``alignment`` (alpha = 2),
        ``uniformity`` (at t), ``uniform_limit`` (the uniform circle's uniformity), ``concentration``,
        ``noise`` and ``t``.

    Raises:
        ValueError: on a negative concentration or noise, n < 2, or t <= 0.

    Example:
        >>> spread, clump = circle_stats(0.0, 0.1), circle_stats(20.0, 0.1)
        >>> clump["uniformity"] > spread["uniformity"], circle_stats(1.0, 0.0)["alignment"] < 1e-12
        (True, True)
    """
    check_positive("concentration", concentration, allow_zero=True)
    check_positive("noise", noise, allow_zero=True)
    check_positive("t", t)
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    rng = np.random.default_rng(seed)
    theta = rng.vonmises(0.0, concentration, n) if concentration > 0 else rng.uniform(-np.pi, np.pi, n)
    theta_pos = theta + noise * rng.standard_normal(n)
    x = torch.tensor(np.stack([np.cos(theta), np.sin(theta)], 1))                     # (n, 2)
    y = torch.tensor(np.stack([np.cos(theta_pos), np.sin(theta_pos)], 1))
    return {"x": x, "y": y, "alignment": alignment(x, y).item(), "uniformity": uniformity(x, t).item(),
            "uniform_limit": uniform_circle_uniformity(t), "concentration": float(concentration),
            "noise": float(noise), "t": float(t)}


def plot_circle_stats(stats: dict[str, object]):
    """The points on the circle, and where they sit in the (alignment, uniformity) plane.

    Left, the points with 40 of them joined to their positives; right, the point against the two
    corners of the plane (aligned and uniform; collapsed).

    Args:
        stats: the dict of :func:`circle_stats`.

    Returns:
        A matplotlib Figure.
    """
    from matplotlib.figure import Figure
    x, y = stats["x"].numpy(), stats["y"].numpy()
    fig = Figure(figsize=(8, 3.4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 1.3])
    ring = np.linspace(0, 2 * np.pi, 200)
    ax1.plot(np.cos(ring), np.sin(ring), color="0.8", lw=1)
    for a, b in zip(x[:40], y[:40], strict=True):
        ax1.plot([a[0], b[0]], [a[1], b[1]], color=PALETTE["orange"], lw=1)
    ax1.scatter(x[:, 0], x[:, 1], s=6, color=PALETTE["blue"], label="f(x)")
    ax1.scatter(y[:40, 0], y[:40, 1], s=6, color=PALETTE["orange"], label="its positive (40 shown)")
    ax1.set_aspect("equal")
    ax1.set_xlim(-1.25, 1.25)
    ax1.set_ylim(-1.25, 1.25)
    ax1.axis("off")
    ax1.legend(fontsize=9, loc="lower center", ncols=2, bbox_to_anchor=(0.5, -0.12))
    ax1.set_title(f"kappa = {stats['concentration']:.2g}, noise = {stats['noise']:.2f} rad", fontsize=9)
    ax2.scatter([stats["alignment"]], [stats["uniformity"]], s=60, color=PALETTE["blue"], zorder=3,
                label="these points")
    ax2.scatter([0], [stats["uniform_limit"]], marker="*", s=120, color=PALETTE["green"],
                label="aligned and uniform (the goal)")
    ax2.scatter([0], [0], marker="x", s=60, color=PALETTE["red"], label="collapsed to one point")
    ax2.set_xlim(-0.1, max(1.0, stats["alignment"] * 1.15))
    ax2.set_ylim(stats["uniform_limit"] - 0.2, 0.15)
    ax2.set_xlabel("alignment (lower is better)")
    ax2.set_ylabel(f"uniformity, t = {stats['t']:g} (lower is better)")
    ax2.legend(fontsize=9, loc="upper right")
    ax2.set_title(f"alignment {stats['alignment']:.3f}, uniformity {stats['uniformity']:.3f}", fontsize=9)
    return fig


def circle_explorer(concentration: float = 0.0, noise: float = 0.3, t: float = 2.0):
    """Alignment-and-uniformity explorer (notebook 04): clump the points, loosen the positives.

    Move **kappa** up from 0 to clump the points (uniformity rises towards 0, the collapse) and
    **noise** up to loosen the positives (alignment rises); the goal is the corner where both are
    low, which no single one of the two terms reaches alone.

    Args:
        concentration: kappa at the start (0: uniform).
        noise: the positives' angular noise at the start, radians.
        t: uniformity's temperature.

    Returns:
        The ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    kappa = W.FloatSlider(value=concentration, min=0.0, max=20.0, step=0.5, description="kappa",
                          continuous_update=False)
    spread = W.FloatSlider(value=noise, min=0.0, max=1.5, step=0.05, description="noise",
                           continuous_update=False)
    return explorer(
        [kappa, spread], lambda k, e: circle_stats(k, e, t=t), plot=plot_circle_stats,
        describe=lambda st: (f"kappa = {st['concentration']:.1f} | noise = {st['noise']:.2f} rad | "
                             f"alignment = {st['alignment']:.3f} | uniformity = {st['uniformity']:.3f} "
                             f"(uniform circle {st['uniform_limit']:.3f}, one point 0)"))
