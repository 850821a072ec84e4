"""Shortcut explorer (notebook 06): which augmentations close which feature's way to the positive."""
from __future__ import annotations

import torch

from .._validate import check_positive, check_tensor
from ..augment import Augment, color_jitter
from ..palette import PALETTE
from ._explorer import explorer

FEATURES = ("veil level, veiled images", "intensity histogram, clean images", "pixel layout, clean images")


def veil_level(v: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) -> (N, 1): the darkest pixel, the veil of a veiled Fashion-MNIST view."""
    return v.amin(dim=(1, 2, 3))[:, None]


def intensity_histogram(v: torch.Tensor, bins: int = 32) -> torch.Tensor:
    """(N, 1, H, W) -> (N, bins - 1): the share of pixels per intensity bin, the background bin dropped."""
    idx = (v.flatten(1) * bins).long().clamp(max=bins - 1)
    h = torch.zeros(v.shape[0], bins).scatter_add_(1, idx, torch.ones(idx.shape))
    return (h / idx.shape[1])[:, 1:]


def pixel_layout(v: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) -> (N, H W): the pixels standardised to mean 0, std 1 (template matching)."""
    v = v.flatten(1)
    return (v - v.mean(dim=1, keepdim=True)) / v.std(dim=1, keepdim=True)


def shortcut_views(crop: bool, jitter: float, veil_jitter: float):
    """The view family ``(x, generator) -> view`` of :func:`shortcut_explorer`.

    An optional crop + flip (``Augment(strength=0)``), brightness and contrast jitter of ``jitter``
    on 80% of the views, then a per-view veil of level ``u ~ U(0, veil_jitter)``; a part at 0 (or
    ``crop=False``) draws nothing from the generator.
    """
    check_positive("jitter", jitter, allow_zero=True)
    check_positive("veil_jitter", veil_jitter, allow_zero=True)
    if veil_jitter > 1:
        raise ValueError(f"veil_jitter must be in [0, 1] (a grey level), got {veil_jitter}")
    cropper = Augment(strength=0) if crop else None

    def view(x, generator=None):
        y = cropper(x, generator) if cropper is not None else x
        if jitter > 0:
            y = color_jitter(y, brightness=jitter, contrast=jitter, saturation=0.0, p=0.8,
                             generator=generator)
        if veil_jitter > 0:
            t = (torch.rand(x.shape[0], generator=generator) * veil_jitter).view(-1, 1, 1, 1).to(y.dtype)
            y = t + (1 - t) * y
        return y
    return view


def positive_found(views, x: torch.Tensor, feature, generator: torch.Generator) -> float:
    """Share of the 2N views whose nearest other view by ``feature`` (Euclidean) is their positive.

    Distances are of exact differences (``torch.cdist`` without its ``|a|^2 + |b|^2 - 2ab`` shortcut,
    whose rounding blurs near-equal features, such as a 1-d veil level).
    """
    n = x.shape[0]
    phi = torch.cat([feature(views(x, generator)), feature(views(x, generator))])     # (2N, F)
    dist = torch.cdist(phi, phi, compute_mode="donot_use_mm_for_euclid_dist")          # (2N, 2N)
    nearest = dist.fill_diagonal_(float("inf")).argmin(dim=1)                          # not itself
    positive = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return (nearest == positive).float().mean().item()


def shortcut_stats(veiled: torch.Tensor, clean: torch.Tensor, crop: bool = True, jitter: float = 0.0,
                   veil_jitter: float = 0.0, seed: int = 0) -> dict[str, object]:
    """How often three features that need no learning find each view's positive (behind the explorer).

    Two views of every image are made by :func:`shortcut_views`; for the veil level on ``veiled``,
    then the intensity histogram and the pixel layout on ``clean``, in this order and from one
    generator seeded ``seed`` (notebook 06's Derive cell draws them so), the share of views whose
    nearest other view is their positive. Chance is ``1 / (2N - 1)``.

    Args:
        veiled: (N, 1, H, W) veiled images in [0, 1] (a grey level t + (1 - t) x per image).
        clean: (N, 1, H, W) the same images without the veil.
        crop: crop + flip (``Augment(strength=0)``).
        jitter: brightness and contrast jitter, factors in [1 - jitter, 1 + jitter] (0: none).
        veil_jitter: a second, per-view veil of level U(0, veil_jitter) (0: none).
        seed: the views' generator.

    Returns:
        dict with ``found`` ({feature: share}), ``ci95`` ({feature: (low, high)}, Wilson intervals
        over the 2N views, which come in correlated pairs), ``chance``, ``examples`` (2, 6, 1, H, W)
        two views of the first six veiled images, and the arguments.

    Raises:
        ValueError: on images that are not (N, 1, H, W) in [0, 1] with N >= 2, different shapes, a
            negative jitter or a veil_jitter outside [0, 1].

    Example:
        >>> x = torch.rand(16, 1, 8, 8) * 0.5
        >>> t = torch.linspace(0.1, 0.4, 16).view(-1, 1, 1, 1)
        >>> st = shortcut_stats(t + (1 - t) * x, x, crop=False)
        >>> st["found"]["pixel layout, clean images"], st["found"]["veil level, veiled images"]
        (1.0, 1.0)
    """
    from scipy.stats import binomtest

    for name, x in (("veiled", veiled), ("clean", clean)):
        check_tensor(name, x, ndim=4)
        if x.shape[0] < 2 or x.shape[1] != 1 or x.min() < 0 or x.max() > 1:
            raise ValueError(f"{name} must be (N, 1, H, W) grey images in [0, 1] with N >= 2, got shape "
                             f"{tuple(x.shape)}, range [{float(x.min()):.3g}, {float(x.max()):.3g}]")
    if veiled.shape != clean.shape:
        raise ValueError(f"veiled and clean must have the same shape, got {tuple(veiled.shape)} and "
                         f"{tuple(clean.shape)}")
    views = shortcut_views(crop, jitter, veil_jitter)
    g = torch.Generator().manual_seed(seed)
    found = {FEATURES[0]: positive_found(views, veiled, veil_level, g),
             FEATURES[1]: positive_found(views, clean, intensity_histogram, g),
             FEATURES[2]: positive_found(views, clean, pixel_layout, g)}
    m = 2 * veiled.shape[0]
    ci95 = {}
    for name, share in found.items():
        ci = binomtest(round(share * m), m).proportion_ci(0.95, method="wilson")
        ci95[name] = (float(ci.low), float(ci.high))
    eg = torch.Generator().manual_seed(seed + 1)
    examples = torch.stack([views(veiled[:6], eg), views(veiled[:6], eg)])
    return {"found": found, "ci95": ci95, "chance": 1 / (m - 1), "examples": examples, "crop": bool(crop),
            "jitter": float(jitter), "veil_jitter": float(veil_jitter), "n_views": m}


def plot_shortcut_stats(stats: dict[str, object]):
    """Left, two views of six veiled images; right, each feature's share of positives found (log scale).

    Args:
        stats: the dict of :func:`shortcut_stats`.

    Returns:
        A matplotlib Figure.
    """
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 1.1])
    ex = stats["examples"][:, :, 0]                                         # (2, 6, H, W)
    grid = torch.cat([torch.cat(list(ex[v]), dim=1) for v in range(2)], dim=0)
    ax1.imshow(grid.numpy(), cmap="gray", vmin=0, vmax=1)
    ax1.set_xticks([])
    ax1.set_yticks([ex.shape[-2] / 2, 1.5 * ex.shape[-2]], ["view 1", "view 2"])
    ax1.set_title("six veiled images, two views each", fontsize=9)
    names = list(stats["found"])
    shares = np.array([stats["found"][k] for k in names])
    floor = stats["chance"] / 4
    low = np.array([stats["ci95"][k][0] for k in names])
    high = np.array([stats["ci95"][k][1] for k in names])
    y = np.arange(len(names))[::-1]
    ax2.barh(y, np.maximum(shares, floor), color=[PALETTE["red"], PALETTE["purple"], PALETTE["green"]],
             alpha=0.8)
    ax2.errorbar(np.maximum(shares, floor), y, xerr=[np.maximum(shares, floor) - np.maximum(low, floor),
                                                    np.maximum(high, floor) - np.maximum(shares, floor)],
                 fmt="none", color="black", capsize=3, lw=1)
    ax2.axvline(stats["chance"], color="0.4", ls="--", lw=1, label=f"chance 1/{stats['n_views'] - 1}")
    ax2.set_xscale("log")
    ax2.set_xlim(floor, 3)
    ax2.set_yticks(y, [k.replace(", ", "\n(") + ")" for k in names], fontsize=9)
    for yi, s, hi in zip(y, shares, high, strict=True):
        ax2.annotate(f"{s:.3f}", (max(hi, floor), yi), xytext=(5, 0), textcoords="offset points",
                     va="center", fontsize=9)
    ax2.set_xlabel("views whose nearest other view is their positive\n"
                   "(share, 95% Wilson interval, log scale)")
    ax2.legend(fontsize=9, loc="lower right")
    parts = [p for p, on in (("crop", stats["crop"]), (f"jitter {stats['jitter']:g}", stats["jitter"] > 0),
                             (f"veil jitter {stats['veil_jitter']:g}", stats["veil_jitter"] > 0)) if on]
    ax2.set_title("views: " + (" + ".join(parts) if parts else "none (the image itself)"), fontsize=9)
    return fig


def shortcut_explorer(veiled: torch.Tensor, clean: torch.Tensor, seed: int = 0):
    """Shortcut explorer (notebook 06): switch the crop on, move the jitter and the veil jitter.

    Each augmentation closes one feature's way to the positive: crops break the pixel layout,
    brightness/contrast jitter the intensity histogram, a per-view veil the veil level; only all
    three bring every feature near chance.

    Args:
        veiled: (N, 1, H, W) veiled images (256 in the notebook: each move redraws in about a second).
        clean: the same images without the veil.
        seed: the views' generator.

    Returns:
        The ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    crop = W.Checkbox(value=True, description="crop + flip")
    jitter = W.FloatSlider(value=0.0, min=0.0, max=0.8, step=0.1, description="jitter",
                           continuous_update=False)
    veil = W.FloatSlider(value=0.0, min=0.0, max=0.5, step=0.05, description="veil jitter",
                         continuous_update=False)

    def describe(st):
        shares = " | ".join(f"{k.split(',')[0]} {v:.3f}" for k, v in st["found"].items())
        return f"positive found by: {shares} (chance {st['chance']:.4f})"

    return explorer([crop, jitter, veil], lambda c, j, v: shortcut_stats(veiled, clean, c, j, v, seed),
                    describe=describe, plot=plot_shortcut_stats)
