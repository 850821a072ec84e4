"""Sinkhorn explorer (notebook 08): how epsilon and the rounds of Sinkhorn-Knopp spread SwAV's codes."""
from __future__ import annotations

import numpy as np
import torch

from ..losses import sinkhorn
from ._explorer import explorer


def sinkhorn_stats(scores: torch.Tensor, epsilon: float = 0.05, n_iters: int = 3) -> dict[str, object]:
    """SwAV's codes for a batch at one epsilon and number of rounds (behind :func:`sinkhorn_explorer`).

    Args:
        scores: (N, K) prototype scores of a batch (cosines).
        epsilon: the entropic regulariser.
        n_iters: Sinkhorn-Knopp rounds (0: a plain softmax of ``scores / epsilon`` over the batch).

    Returns:
        dict with ``mass`` (K,) the codes' total per prototype (equipartition: N / K each),
        ``argmax_mass`` (K,) the images whose best prototype it is, ``imbalance`` (largest mass over
        N / K), ``max_code`` (mean over images of the largest code, 1 / K soft .. 1 one-hot),
        ``epsilon``, ``n_iters``, ``n`` and ``k``.

    Raises:
        ValueError: on bad scores, epsilon or n_iters (checked by :func:`cl_teach.losses.sinkhorn`).

    Example:
        >>> s = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
        >>> sinkhorn_stats(s, 0.05, 3)["imbalance"] < sinkhorn_stats(s, 0.05, 0)["imbalance"]
        True
    """
    q = sinkhorn(scores, n_iters=n_iters, epsilon=epsilon)            # validates scores/epsilon/n_iters
    n, k = scores.shape
    mass = q.sum(0).double()
    return {"mass": mass.numpy(),
            "argmax_mass": torch.bincount(scores.argmax(1), minlength=k).double().numpy(),
            "imbalance": float(mass.max() / (n / k)), "max_code": float(q.max(1).values.double().mean()),
            "epsilon": float(epsilon), "n_iters": int(n_iters), "n": n, "k": k}


def plot_sinkhorn_stats(stats: dict[str, object]):
    """Bars: the codes' mass per prototype next to the argmax assignment, with the N / K line.

    Args:
        stats: the dict of :func:`sinkhorn_stats`.

    Returns:
        A matplotlib Figure.
    """
    from matplotlib.figure import Figure
    k, n = stats["k"], stats["n"]
    x = np.arange(k)
    fig = Figure(figsize=(8, 2.8), layout="constrained")
    ax = fig.subplots()
    ax.bar(x - 0.2, stats["argmax_mass"], width=0.4, color="0.7", label="argmax of the scores")
    ax.bar(x + 0.2, stats["mass"], width=0.4, label="Sinkhorn codes")
    ax.axhline(n / k, color="k", ls="--", lw=1, label="N / K")
    ax.set_xlabel("prototype")
    ax.set_ylabel("images assigned (mass)")
    ax.legend(fontsize=9)
    ax.set_title(f"epsilon = {stats['epsilon']:.3g}, {stats['n_iters']} rounds: largest mass "
                 f"{stats['imbalance']:.2f} x N/K, mean largest code {stats['max_code']:.2f}", fontsize=9)
    return fig


def sinkhorn_explorer(scores: torch.Tensor, epsilon: float = 0.05, n_iters: int = 3):
    """Sinkhorn explorer (notebook 08): epsilon and the number of Sinkhorn-Knopp rounds.

    Epsilon moves on a log slider (0.001..1), the rounds from 0 to 10; the readout and figure show
    how evenly the codes spread the batch over the prototypes, and how hard (one-hot) each
    image's code is.

    Args:
        scores: (N, K) prototype scores of a batch (cosines).
        epsilon: epsilon at the start.
        n_iters: the number of rounds at the start.

    Returns:
        The ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    eps = W.FloatLogSlider(value=epsilon, base=10, min=-3, max=0, step=0.1, description="epsilon",
                           readout_format=".3g", continuous_update=False)
    rounds = W.IntSlider(value=n_iters, min=0, max=10, description="rounds", continuous_update=False)
    return explorer(
        [eps, rounds], lambda e, n: sinkhorn_stats(scores, e, n), plot=plot_sinkhorn_stats,
        describe=lambda st: (f"epsilon = {st['epsilon']:.3g} | rounds = {st['n_iters']} | largest "
                             f"prototype mass = {st['imbalance']:.2f} x N/K | mean largest code = "
                             f"{st['max_code']:.3f}"))
