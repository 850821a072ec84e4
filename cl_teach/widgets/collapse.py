"""Collapse explorer (notebook 03): squeeze an embedding into fewer directions, watch the monitors."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .._validate import check_embeddings, check_positive
from ..metrics import effective_rank, feature_std
from ..palette import PALETTE
from ._explorer import explorer


def collapse_stats(z: torch.Tensor, keep: int, noise: float = 0.0, seed: int = 0) -> dict[str, object]:
    """The collapse monitors of an embedding squeezed into ``keep`` directions (:func:`collapse_explorer`).

    ``z`` is cut to its ``keep`` largest singular directions (uncentred SVD: a collapsed embedding
    keeps its shared direction) and isotropic Gaussian noise of ``noise`` times z's entry std is
    added. Both monitors read the result: SimSiam's std of the L2-normalised embeddings (healthy
    about 1 / sqrt(D)) and the effective rank (exp of the entropy of the normalised singular
    values). So does the std monitor after an affine-free BatchNorm over the batch (what a
    projector ending in BN shows in train mode): BN rescales every dimension to variance 1, so
    that std stays near 1 / sqrt(D) whatever ``keep`` is.

    Args:
        z: (N, D) embeddings, N >= 2.
        keep: directions kept, 1 <= keep <= min(N, D).
        noise: the added noise's std, in units of z's entry std (>= 0).
        seed: of the noise.

    Returns:
        dict with ``std``, ``rank``, ``std_after_bn``, ``spectrum`` (the normalised singular values
        the rank reads, descending), ``keep``, ``noise`` and ``d``.

    Raises:
        ValueError: on bad z, keep or noise.

    Example:
        >>> z = torch.randn(512, 32, generator=torch.Generator().manual_seed(0))
        >>> full, one = collapse_stats(z, 32), collapse_stats(z, 1)
        >>> full["rank"] > 25 > 2 > one["rank"], one["std_after_bn"] > 0.5 * full["std"]
        (True, True)
    """
    check_embeddings("z", z)
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"z must be (N, D) with N >= 2, got {tuple(z.shape)}")
    n, d = z.shape
    if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= min(n, d):
        raise ValueError(f"keep must be an int from 1 to min(N, D) = {min(n, d)}, got {keep!r}")
    check_positive("noise", noise, allow_zero=True)
    z = z.detach().double()
    u, s, vh = torch.linalg.svd(z, full_matrices=False)
    squeezed = (u[:, :keep] * s[:keep]) @ vh[:keep]                                   # (N, D)
    g = torch.Generator().manual_seed(seed)
    squeezed = squeezed + noise * z.std() * torch.randn(n, d, generator=g, dtype=torch.float64)
    bn = (squeezed - squeezed.mean(0)) / (squeezed.var(0, unbiased=False) + 1e-5).sqrt()  # affine-free BN
    sv = torch.linalg.svdvals(F.normalize(squeezed, dim=1))
    return {"std": feature_std(squeezed).item(), "rank": effective_rank(squeezed).item(),
            "std_after_bn": feature_std(bn).item(), "spectrum": (sv / sv.sum()).numpy(),
            "keep": keep, "noise": float(noise), "d": d}


def plot_collapse_stats(stats: dict[str, object]):
    """The spectrum the effective rank reads, with both monitors in the title.

    Args:
        stats: the dict of :func:`collapse_stats`.

    Returns:
        A matplotlib Figure.
    """
    import numpy as np
    from matplotlib.figure import Figure
    d, spec = stats["d"], stats["spectrum"]
    fig = Figure(figsize=(8, 2.8), layout="constrained")
    ax = fig.subplots()
    ax.bar(np.arange(1, len(spec) + 1), spec, color=PALETTE["blue"])
    ax.axhline(1 / len(spec), color="k", ls="--", lw=1, label="all directions used equally")
    ax.set_xlabel("singular direction (largest first)")
    ax.set_ylabel("share of the singular values")
    ax.set_ylim(0, max(0.05, float(spec.max()) * 1.1))
    ax.legend(fontsize=9)
    ax.set_title(f"{stats['keep']} of {d} directions kept: effective rank {stats['rank']:.1f}; std of "
                 f"z/|z| {stats['std']:.3f}, after BN {stats['std_after_bn']:.3f} "
                 f"(healthy 1/sqrt(D) = {1 / np.sqrt(d):.3f})", fontsize=9)
    return fig


def collapse_explorer(z: torch.Tensor, keep: int | None = None, noise: float = 0.0):
    """Collapse explorer (notebook 03): the directions an embedding keeps, and a little noise.

    Move **directions** down to 1 (complete collapse) and watch the effective rank follow while
    the std monitor behind a BatchNorm does not; add **noise** to see why a collapsed run reads a
    rank of 2 or 3 and not 1.

    Args:
        z: (N, D) embeddings (the notebook's trained SimCLR on test images).
        keep: directions at the start (default: all D).
        noise: noise at the start, in units of z's entry std.

    Returns:
        The ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    check_embeddings("z", z)
    d = min(z.shape)
    keep = d if keep is None else keep
    directions = W.IntSlider(value=keep, min=1, max=d, description="directions", continuous_update=False)
    amount = W.FloatSlider(value=noise, min=0.0, max=0.2, step=0.01, description="noise",
                           continuous_update=False)
    return explorer(
        [directions, amount], lambda k, e: collapse_stats(z, k, e), plot=plot_collapse_stats,
        describe=lambda st: (f"directions = {st['keep']} | noise = {st['noise']:.2f} | effective rank = "
                             f"{st['rank']:.2f} | std(z/|z|) = {st['std']:.4f} | after BN = "
                             f"{st['std_after_bn']:.4f}"))
