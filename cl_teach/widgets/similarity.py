"""Similarity explorer (notebook 02): from the dot product to the cosine, one power of the length."""
from __future__ import annotations

import torch

from .._validate import check_labels, check_tensor
from ..intervals import paired_difference
from ..palette import PALETTE
from ._explorer import explorer


class LengthPowerKNN:
    """kNN votes by ``s_p(q, b) = q.b / |b|^p`` over a fixed bank: p = 0 the dot product, 1 the cosine.

    For ranking the bank for one query, ``|q|`` is a positive constant, so p = 1 orders the bank as
    the cosine does, and p = 0 as the dot product; in between, long bank vectors (images with
    much ink) are favoured less and less, beyond 1 they are penalised. The dot products are
    computed once, each power is then a division and a top-k.

    Args:
        bank: (N, D) the bank (e.g. raw pixels of the training images).
        bank_y: (N,) its labels.
        queries: (M, D) the queries.
        query_y: (M,) their labels.

    Example:
        >>> bank = torch.tensor([[1.0, 0.0], [0.0, 3.0]]); q = torch.tensor([[1.0, 0.5]])
        >>> knn = LengthPowerKNN(bank, torch.tensor([0, 1]), q, torch.tensor([0]))
        >>> knn.stats(0.0, k=1)["nearest"].tolist(), knn.stats(1.0, k=1)["nearest"].tolist()
        ([[1]], [[0]])
    """

    def __init__(self, bank: torch.Tensor, bank_y: torch.Tensor, queries: torch.Tensor,
                 query_y: torch.Tensor):
        check_tensor("bank", bank, ndim=2)
        check_tensor("queries", queries, ndim=2)
        if bank.shape[1] != queries.shape[1]:
            raise ValueError(f"bank and queries must have the same dimension, got {bank.shape[1]} and "
                             f"{queries.shape[1]}")
        self.bank_y = check_labels("bank_y", bank_y, bank.shape[0], of="bank rows")
        self.query_y = check_labels("query_y", query_y, queries.shape[0], of="queries")
        self.dots = queries.double() @ bank.double().T                  # (M, N), once
        self.bank_norm = bank.double().norm(dim=1)                     # (N,)
        if (self.bank_norm == 0).any():
            raise ValueError("bank has an all-zero row: its cosine is undefined")
        self._dot_hits = {}

    def stats(self, power: float, k: int = 20) -> dict[str, object]:
        """Votes at length power ``power`` (>= 0) among the ``k`` most similar bank items.

        Returns:
            dict with ``hits`` (M,) 1.0 where the vote is right, ``accuracy``, ``nearest`` (M, k),
            ``neighbour_norm`` (the mean |b| of the neighbours), ``bank_norm`` (the bank's mean
            |b|), ``vs_dot`` (the paired interval of the accuracy minus the dot product's, p = 0, at
            the same k), ``power`` and ``k``.
        """
        if isinstance(power, bool) or not isinstance(power, (int, float)) or not 0 <= power <= 4:
            raise ValueError(f"power must be a number in [0, 4], got {power!r}")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(self.bank_y):
            raise ValueError(f"k must be an int in [1, {len(self.bank_y)}], got {k!r}")
        nearest = (self.dots / self.bank_norm ** power).topk(k, dim=1).indices   # (M, k)
        hits = (torch.mode(self.bank_y[nearest], dim=1).values == self.query_y).float()
        if k not in self._dot_hits:
            self._dot_hits[k] = hits if power == 0 else self.stats(0.0, k)["hits"]
        return {"hits": hits, "accuracy": hits.mean().item(), "nearest": nearest,
                "neighbour_norm": self.bank_norm[nearest].mean().item(),
                "bank_norm": self.bank_norm.mean().item(),
                "vs_dot": paired_difference(hits, self._dot_hits[k]), "power": float(power), "k": k}


def plot_similarity_stats(stats: dict[str, object], curve: dict[float, dict]):
    """Accuracy and the neighbours' mean length against the power, the chosen one marked.

    Args:
        stats: :meth:`LengthPowerKNN.stats` at the chosen power.
        curve: ``{power: stats}`` at the same k, for the curves.

    Returns:
        A matplotlib Figure.
    """
    from matplotlib.figure import Figure
    ps = sorted(curve)
    fig = Figure(figsize=(9, 3.3), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(ps, [100 * curve[p]["accuracy"] for p in ps], color=PALETTE["blue"], marker="o", ms=3)
    err = [[100 * (stats["vs_dot"].estimate - stats["vs_dot"].low)],
           [100 * (stats["vs_dot"].high - stats["vs_dot"].estimate)]]
    ax1.errorbar([stats["power"]], [100 * stats["accuracy"]], yerr=err, fmt="o", color=PALETTE["red"], ms=7,
                 capsize=4, label="this p (bar: 95% interval of\nits gap to the dot product)")
    ax2.plot(ps, [curve[p]["neighbour_norm"] for p in ps], color=PALETTE["purple"], marker="o", ms=3,
             label="the k neighbours")
    ax2.axhline(stats["bank_norm"], color="0.5", ls="--", lw=1, label="the whole bank")
    ax2.scatter([stats["power"]], [stats["neighbour_norm"]], s=50, color=PALETTE["red"], zorder=3)
    for ax in (ax1, ax2):
        ax.axvline(0, color="0.85", lw=6, zorder=0)
        ax.axvline(1, color="0.85", lw=6, zorder=0)
        ax.set_xlabel("p in q.b / |b|^p   (grey: 0, the dot product; 1, the cosine)")
    ax1.set_ylabel(f"kNN accuracy (%), k = {stats['k']}")
    ax1.legend(fontsize=9, loc="lower center")
    ax1.set_title(f"p = {stats['power']:g}: {100 * stats['accuracy']:.1f}%, "
                  f"{stats['vs_dot'].points()} points over the dot product", fontsize=9)
    ax2.set_ylabel("mean length |b| (the amount of ink)")
    ax2.legend(fontsize=9, loc="upper right")
    ax2.set_title("which bank items the measure picks", fontsize=9)
    return fig


def similarity_explorer(knn: LengthPowerKNN, k: int = 20):
    """Similarity explorer (notebook 02): move the length power p from the dot product to the cosine.

    Args:
        knn: a :class:`LengthPowerKNN` over the bank and queries.
        k: the neighbours that vote, at the start.

    Returns:
        The ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    powers = [round(0.25 * i, 2) for i in range(9)]                    # 0, 0.25, ..., 2
    curves = {}

    def at(power, kk):
        if kk not in curves:
            curves[kk] = {p: knn.stats(p, kk) for p in powers}
        return {"stats": curves[kk][power], "curve": curves[kk]}

    p_slider = W.SelectionSlider(options=powers, value=1.0, description="power p",
                                 continuous_update=False)
    k_slider = W.SelectionSlider(options=[1, 5, 10, 20, 50], value=k, description="k",
                                 continuous_update=False)

    def describe(both):
        st = both["stats"]
        return (f"p = {st['power']:g}, k = {st['k']} | kNN accuracy {100 * st['accuracy']:.2f}% | "
                f"minus the dot product: {st['vs_dot'].points()} points | neighbours' mean |b| "
                f"{st['neighbour_norm']:.2f} (bank {st['bank_norm']:.2f})")

    return explorer([p_slider, k_slider], at, describe=describe,
                    plot=lambda both: plot_similarity_stats(both["stats"], both["curve"]))
