"""Temperature explorer (notebook 01): what tau does to InfoNCE's softmax over the negatives."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .._validate import check_positive
from ..losses import info_nce_logits
from ..palette import PALETTE
from ._explorer import explorer


def negatives_with_similarities(sims: torch.Tensor, dim: int = 64, generator=None) -> tuple:
    """A query, a positive and negatives on the unit sphere with prescribed cosine similarities.

    Args:
        sims: (1 + K,) cosine similarities to the query: the positive's first, then K negatives'.
        dim: the dimension of the sphere's space.
        generator: the ``torch.Generator`` of the random directions orthogonal to the query.

    Returns:
        ``(q, k, negatives)`` of shapes (1, dim), (1, dim), (K, dim); ``q = e_1``.
    """
    n = sims.shape[0]
    u = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    u[:, 0] = 0                                                     # orthogonal to q = e_1
    u = u / u.norm(dim=1, keepdim=True)
    s = sims.double().clamp(-1, 1)[:, None]
    v = s * torch.eye(dim, dtype=torch.float64)[0] + (1 - s ** 2).sqrt() * u   # (1 + K, dim)
    q = torch.eye(dim, dtype=torch.float64)[:1]
    return q, v[:1], v[1:]


def temperature_stats(temperature: float, n_negatives: int = 32, hardness: float = 0.5,
                      positive_similarity: float = 0.7, seed: int = 0) -> dict[str, object]:
    """What InfoNCE does with one query at a temperature: the numbers behind the explorer.

    Negatives get cosine similarities spread below ``hardness`` (0: around 0, unrelated;
    1: close to the positive). The logits are :func:`cl_teach.losses.info_nce_logits`'s, and the
    loss and its gradient are taken by autograd through them: dL/ds_j = p_j / tau for each
    negative's similarity s_j, so each negative's share of the gradient weight is its softmax
    probability over the negatives.

    Args:
        temperature: tau > 0.
        n_negatives: K, the number of negatives.
        hardness: in [0, 1], where the negatives' similarities centre, as a share of the positive's.
        positive_similarity: the positive's cosine similarity to the query.
        seed: seeds the negatives' similarities and directions.

    Returns:
        dict with ``similarities`` (K,) sorted descending, ``weights`` (K,) each negative's share of
        the total gradient weight on negatives (sums to 1), ``loss``, ``hardest_share`` (the share
        of the hardest negative), ``positive_prob``, ``uniform_share`` = 1/K for reference and
        ``temperature``.

    Raises:
        ValueError: on a temperature or number of negatives <= 0, or a hardness outside [0, 1].

    Example:
        >>> cold, hot = temperature_stats(0.05), temperature_stats(5.0)
        >>> cold["hardest_share"] > hot["hardest_share"]
        True
    """
    check_positive("temperature", temperature)
    check_positive("n_negatives", n_negatives, integer=True)
    if not 0 <= hardness <= 1:
        raise ValueError(f"hardness must be in [0, 1], got {hardness!r}")
    g = torch.Generator().manual_seed(seed)
    # Negatives: mean similarity rises with hardness, spread 0.15, capped below the positive.
    neg = hardness * positive_similarity + 0.15 * torch.randn(n_negatives, generator=g, dtype=torch.float64)
    neg = neg.clamp(-0.99, positive_similarity - 1e-3).sort(descending=True).values
    sims = torch.cat([torch.tensor([positive_similarity], dtype=torch.float64), neg])   # (1 + K,)
    q, k, negatives = negatives_with_similarities(sims, generator=g)
    # The same logits the course trains with: [s_+, s_1, ..., s_K] / tau, label 0.
    logits, labels = info_nce_logits(q, k, temperature, negatives=negatives)          # (1, 1 + K)
    logits.requires_grad_(True)
    loss = F.cross_entropy(logits, labels)
    (grad,) = torch.autograd.grad(loss, logits)                    # p_j for negatives: tau * dL/ds_j
    w = grad[0, 1:]
    weights = (w / w.sum()).numpy()
    return {"similarities": neg.numpy(), "weights": weights, "loss": float(loss.detach()),
            "hardest_share": float(weights[0]),
            "positive_prob": float(torch.softmax(logits.detach(), 1)[0, 0]),
            "uniform_share": 1.0 / n_negatives, "temperature": float(temperature)}


def plot_temperature_stats(stats: dict[str, object]):
    """Bar chart: each negative's similarity to the query and its share of the gradient weight.

    Args:
        stats: the dict of :func:`temperature_stats`.

    Returns:
        A matplotlib Figure with two panels.
    """
    from matplotlib.figure import Figure
    fig = Figure(figsize=(8, 3), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    idx = np.arange(len(stats["similarities"]))
    ax1.bar(idx, stats["similarities"], color=PALETTE["grey"])
    ax1.set_xlabel("negative (hardest first)")
    ax1.set_ylabel("cosine similarity to query")
    ax1.set_ylim(-1, 1)
    ax1.set_title("how hard are the negatives?")
    ax2.bar(idx, stats["weights"], color=PALETTE["red"])
    ax2.axhline(stats["uniform_share"], color="k", ls="--", lw=1, label="uniform share 1/K")
    ax2.set_xlabel("negative (hardest first)")
    ax2.set_ylabel("share of gradient weight")
    ax2.set_ylim(0, 1)
    ax2.set_title(f"tau = {stats['temperature']:.3g}: softmax over negatives")
    ax2.legend(fontsize=9)
    return fig


def temperature_explorer(temperature: float = 0.1, n_negatives: int = 32, hardness: float = 0.5):
    """Temperature explorer (notebook 01): tau, the number of negatives and their hardness.

    Tau moves on a log slider (0.01..10); the readout and figure show the softmax over the
    negatives, each negative's gradient weight, and the loss.

    Args:
        temperature: tau at the start.
        n_negatives: the number of negatives at the start (4..256).
        hardness: the negatives' hardness at the start (0..1).

    Returns:
        The ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    tau = W.FloatLogSlider(value=temperature, base=10, min=-2, max=1, step=0.1, description="tau",
                           readout_format=".3g", continuous_update=False)
    n = W.IntSlider(value=n_negatives, min=4, max=256, step=4, description="negatives",
                    continuous_update=False)
    hard = W.FloatSlider(value=hardness, min=0, max=1, step=0.05, description="hardness",
                         continuous_update=False)
    return explorer(
        [tau, n, hard], temperature_stats, plot=plot_temperature_stats,
        describe=lambda s: (f"tau = {s['temperature']:.3g} | loss = {s['loss']:.4f} | hardest negative's "
                            f"share of gradient = {s['hardest_share']:.3f} "
                            f"(uniform: {s['uniform_share']:.3f})"))
