"""Barlow Twins' lambda explorer (notebook 11): the redundancy term against copies of one feature."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._validate import check_pair, check_positive
from ..data import TensorLoader
from ..losses import barlow_twins_loss, cross_correlation
from ..methods import BarlowTwins
from ..metrics import effective_rank
from ..models import FeatureTower, embed
from ..palette import PALETTE
from ..train import fit
from ._explorer import explorer

#: The lambdas of the explorer's slider: none, below, at and above the paper's 5e-3.
LAMBDAS = (0.0, 1e-3, 5e-3, 2e-2, 0.1)


def barlow_stats(h1: torch.Tensor, h2: torch.Tensor, lambd: float, projection_dim: int = 128,
                 hidden_dim: int = 128, steps: int = 100, batch_size: int = 256, lr: float = 5e-3,
                 seed: int = 0) -> dict[str, object]:
    """Train Barlow Twins' projector at ``lambd`` on frozen features, then read C and z.

    The numbers behind :func:`lambda_explorer`.

    The encoder f is frozen: ``h1``, ``h2`` are its features of two augmented views of the same
    images, so only the 3-layer projector g trains, with the package's :class:`BarlowTwins` and
    :func:`~cl_teach.train.fit` on a :class:`~cl_teach.data.TensorLoader` of the pairs (a second
    or less on one CPU thread, where the whole network takes minutes). Then, in eval mode, the
    projections of all the pairs: their cross-correlation C (:func:`cross_correlation`), its mean
    diagonal and mean absolute off-diagonal, the loss at ``lambd`` and the effective rank of z.
    The initialisation and the batches derive from ``seed``; the caller's random state is left as
    it was.

    Args:
        h1: (N, F) frozen features of the first views.
        h2: (N, F) frozen features of the second views (row i: the same image as ``h1[i]``).
        lambd: the redundancy term's weight (>= 0; the paper's 5e-3).
        projection_dim: D, the width of z.
        hidden_dim: the projector's hidden width (128 here for speed; notebook 11's CNN run: 256).
        steps: training steps (> 0).
        batch_size: pairs per step (2 <= batch_size <= N).
        lr: AdamW's learning rate.
        seed: of the projector's initialisation and of the loader.

    Returns:
        dict with ``c`` (D, D), ``z1``, ``z2`` (N, D) the eval-mode projections, ``diag_mean``,
        ``offdiag_abs_mean`` (the mean |C_ij| over i != j), ``loss`` (Barlow Twins' loss of z1, z2
        at ``lambd``), ``rank`` (the effective rank of z1), ``train_loss`` (per step), ``lambd``,
        ``d`` and ``n``.

    Raises:
        ValueError: on mismatched or non-finite features, lambd < 0, a non-positive width, step
            count or learning rate, or a batch_size outside [2, N].
        TypeError: on a non-integer width, step count or batch size.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> h = torch.randn(512, 16, generator=g)
        >>> h1, h2 = h + 0.3 * torch.randn(512, 16, generator=g), h + 0.3 * torch.randn(512, 16, generator=g)
        >>> kw = dict(projection_dim=16, hidden_dim=32, steps=60, batch_size=128)
        >>> copies, spread = barlow_stats(h1, h2, 0.0, **kw), barlow_stats(h1, h2, 0.1, **kw)
        >>> copies["offdiag_abs_mean"] > spread["offdiag_abs_mean"], copies["rank"] < spread["rank"]
        (True, True)
    """
    check_pair("h1", h1, "h2", h2)
    check_positive("lambd", lambd, allow_zero=True)
    for name, value in (("projection_dim", projection_dim), ("hidden_dim", hidden_dim), ("steps", steps),
                        ("batch_size", batch_size)):
        check_positive(name, value, integer=True)
    check_positive("lr", lr)
    n = h1.shape[0]
    if not 2 <= batch_size <= n:
        raise ValueError(f"batch_size must be from 2 to the number of pairs N = {n}, got {batch_size}")
    h1, h2 = h1.detach().float(), h2.detach().float()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        method = BarlowTwins(FeatureTower(h1.shape[1], hidden_dim=None), projection_dim=projection_dim,
                             hidden_dim=hidden_dim, lambd=float(lambd))      # f = identity on frozen h
        history = fit(method, TensorLoader(h1, h2, batch_size=batch_size, seed=seed), steps=steps, lr=lr,
                      progress=False)
    g = nn.Sequential(method.encoder, method.projector)
    z1, z2 = embed(g, h1), embed(g, h2)                                         # (N, D), eval mode
    c = cross_correlation(z1, z2)                                               # (D, D)
    d = c.shape[0]
    off = c - torch.diag(c.diagonal())
    return {"c": c, "z1": z1, "z2": z2, "diag_mean": c.diagonal().mean().item(),
            "offdiag_abs_mean": (off.abs().sum() / (d * d - d)).item(),
            "loss": barlow_twins_loss(z1, z2, float(lambd)).item(), "rank": effective_rank(z1).item(),
            "train_loss": history["loss"], "lambd": float(lambd), "d": d, "n": n}


def barlow_sweep(h1: torch.Tensor, h2: torch.Tensor, lambdas: Sequence[float] = LAMBDAS,
                 **kwargs) -> dict[float, dict[str, object]]:
    """:func:`barlow_stats` at each of ``lambdas`` (same features, seed, steps): ``{lambda: stats}``.

    Raises:
        ValueError: on an empty ``lambdas`` (and as :func:`barlow_stats`).
    """
    if isinstance(lambdas, (str, bytes)) or not hasattr(lambdas, "__iter__") or len(lambdas) == 0:
        raise ValueError(f"lambdas must be a non-empty sequence of numbers >= 0, got {lambdas!r}")
    return {float(lam): barlow_stats(h1, h2, lam, **kwargs) for lam in lambdas}


def _label(lambd: float) -> str:
    return "0" if lambd == 0 else f"{lambd:.0e}".replace("e-0", "e-")


def plot_barlow_stats(stats: dict[str, object], sweep: dict[float, dict[str, object]] | None = None):
    """C as a heatmap, and the diagonal, the off-diagonal and the rank of z against lambda.

    Args:
        stats: the dict of :func:`barlow_stats` (the lambda shown).
        sweep: ``{lambda: stats}`` (:func:`barlow_sweep`) for the two right panels; ``None``: only
            ``stats``.

    Returns:
        A matplotlib Figure.
    """
    import numpy as np
    from matplotlib.figure import Figure
    sweep = {stats["lambd"]: stats} if sweep is None else sweep
    lams = sorted(sweep)
    xs, here = np.arange(len(lams)), lams.index(stats["lambd"]) if stats["lambd"] in sweep else None
    d = stats["d"]
    fig = Figure(figsize=(10.2, 3.6))                 # a fixed layout: constrained would double the redraw
    ax1, ax2, ax3 = fig.subplots(1, 3, width_ratios=[1.15, 1, 1],
                                 gridspec_kw=dict(left=0.06, right=0.99, bottom=0.14, top=0.91, wspace=0.45))
    im = ax1.imshow(stats["c"].numpy(), vmin=-1, vmax=1, cmap="RdBu_r", interpolation="nearest")
    fig.colorbar(im, ax=ax1, shrink=0.85, pad=0.03).set_label("C_ij", labelpad=-2)
    ax1.set_xlabel("dimension j of z (view 2)")
    ax1.set_ylabel("dimension i of z (view 1)")
    ax1.set_title(f"C at lambda = {_label(stats['lambd'])} (target: the identity)", fontsize=9)
    ax2.plot(xs, [sweep[lam]["diag_mean"] for lam in lams], "o-", color=PALETTE["blue"],
             label="mean C_ii (to 1)")
    ax2.plot(xs, [sweep[lam]["offdiag_abs_mean"] for lam in lams], "s-", color=PALETTE["red"],
             label="mean |C_ij|, i != j (to 0)")
    ax2.set_ylim(0, 1.3)
    ax2.set_ylabel("cross-correlation C")
    ax2.set_title(f"diagonal {stats['diag_mean']:.3f}, |off-diagonal| {stats['offdiag_abs_mean']:.3f}",
                  fontsize=9)
    ax3.plot(xs, [sweep[lam]["rank"] for lam in lams], "o-", color=PALETTE["green"],
             label="effective rank of z")
    ax3.set_ylim(0, max(sweep[lam]["rank"] for lam in lams) * 1.15)
    ax3.set_ylabel(f"effective rank of z (of D = {d})")
    ax3.set_title(f"effective rank {stats['rank']:.1f} of D = {d}", fontsize=9)
    for ax in (ax2, ax3):
        if here is not None:
            ax.axvline(here, color="0.5", ls="--", lw=1, label="the lambda shown")
        ax.set_xticks(xs, [_label(lam) for lam in lams])
        ax.set_xlabel("lambda (redundancy weight)")
        ax.legend(fontsize=9, loc="upper right" if ax is ax2 else "upper left")
    return fig


def lambda_explorer(sweep: dict[float, dict[str, object]], lambd: float = 5e-3):
    """Barlow Twins' lambda explorer (notebook 11): move lambda, watch C and the rank of z.

    The projectors are trained beforehand, one per lambda (:func:`barlow_sweep`, a few seconds in
    all), so each move only redraws. Move **lambda** to 0: the off-diagonal of C fills in and the
    effective rank of z drops (the dimensions become copies); move it up: the off-diagonal nears
    the identity's 0, at the cost of a lower diagonal.

    Args:
        sweep: ``{lambda: stats}`` of :func:`barlow_sweep` (notebook 11: on its trained encoder's
            features of two views); its lambdas are the slider's values.
        lambd: the lambda at the start (one of the sweep's).

    Returns:
        The ``ipywidgets.VBox``; display it (the last expression of a cell).

    Raises:
        ValueError: on an empty sweep, or a start lambda that is not in it.
    """
    import ipywidgets as W

    if not isinstance(sweep, dict) or not sweep:
        raise ValueError(f"sweep must be a non-empty dict {{lambda: stats}} of barlow_sweep, got {sweep!r}")
    if lambd not in sweep:
        raise ValueError(f"lambd must be one of the sweep's lambdas {sorted(sweep)}, got {lambd!r}")
    slider = W.SelectionSlider(options=[(_label(lam), lam) for lam in sorted(sweep)], value=lambd,
                               description="lambda", continuous_update=False)
    return explorer(
        [slider], lambda lam: sweep[lam], plot=lambda st: plot_barlow_stats(st, sweep),
        describe=lambda st: (f"lambda = {_label(st['lambd'])} | mean diagonal of C = {st['diag_mean']:.3f} | "
                             f"mean |off-diagonal| = {st['offdiag_abs_mean']:.3f} | effective rank of z = "
                             f"{st['rank']:.1f} of D = {st['d']}"))
