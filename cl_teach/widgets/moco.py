"""MoCo queue explorer (notebook 07): the momentum m and the queue size K against key consistency."""
from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from .._validate import check_positive, check_tensor
from ..data import TensorLoader
from ..methods import MoCo
from ..models import FeatureTower
from ..palette import PALETTE
from ..train import fit
from ._explorer import explorer

MOMENTA = (0.0, 0.5, 0.9, 0.99, 0.999, 0.9999)
QUEUE_SIZES = (256, 512, 1024, 2048, 4096)
WARMUP = 1.0                             # fit's warm-up share: the whole run
CONSISTENT = 0.9                         # a queued key "still consistent": cos >= this with today's key


class TracedMoCo(MoCo):
    """MoCo that also remembers which item and which step each queued key came from.

    Batches are ``(h1, h2, ids)``; ``training_step`` is MoCo's on ``(h1, h2)``, and ``after_step``
    writes ``ids`` and the step into ``queue_ids`` / ``queue_step`` at the slots where MoCo's own
    ``after_step`` then writes the keys (-1: a slot still holding its initial random vector).
    """

    def __init__(self, encoder, **kwargs):
        super().__init__(encoder, **kwargs)
        self.register_buffer("queue_ids", torch.full((self.queue_size,), -1, dtype=torch.long))   # (K,)
        self.register_buffer("queue_step", torch.full((self.queue_size,), -1, dtype=torch.long))  # (K,)
        self._ids = None

    def training_step(self, batch) -> dict:
        """MoCo's step on the batch's two views; keeps the batch's ids for ``after_step``."""
        self._ids = batch[2] if len(batch) > 2 else None
        return super().training_step(batch[:2])

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        """Record ids and step at the slots MoCo's ``after_step`` fills, then run it."""
        if self.queue_size and self._keys is not None and self._ids is not None:
            n = self._ids.shape[0]
            idx = (self.queue_ptr + torch.arange(n, device=self.queue.device)) % self.queue_size
            self.queue_ids[idx] = self._ids.to(self.queue_ids.device)
            self.queue_step[idx] = step
        self._ids = None
        super().after_step(step, total_steps)


def moco_queue_stats(h1: torch.Tensor, h2: torch.Tensor, momentum: float, queue_size: int,
                     batch_size: int = 32, steps: int = 160, lr: float = 5e-3,
                     seed: int = 0) -> dict[str, object]:
    """Train MoCo over frozen features and measure its queue's consistency (behind the explorer).

    ``MoCo(FeatureTower(D, 128, 64), queue_size=K, momentum=m, bn_splits=1)`` is trained with
    ``cl_teach.fit`` on ``TensorLoader(h1, h2, ids)`` (two views' features of the same images)
    for ``steps`` steps at ``batch_size``, its warm-up spanning the whole run (``warmup=1.0``: the
    run ends at its full learning rate, so the last steps, whose keys the queue holds, move the
    encoders as the middle of a long run would, not as the end of a cosine decay, where nothing
    moves any more). Then every queued key k (computed ``age`` steps ago by
    the key encoder of that time) is compared with the key of the same view recomputed by today's
    key encoder, batch by batch as it was computed (so batch norm sees the same batch):
    ``cos(k, k_now)``; 1 means the queue is consistent with today's keys.

    Args:
        h1: (M, D) features of the first views (the queries' inputs).
        h2: (M, D) features of the second views (the keys' inputs); M >= steps * batch_size, so
            that no image comes back while its old key may still be queued.
        momentum: m of the key encoder, in [0, 1].
        queue_size: K, a multiple of ``batch_size`` and at most ``(steps - 1) * batch_size``.
        batch_size: N.
        steps: optimiser steps.
        lr: AdamW's learning rate (the notebook's 5e-3).
        seed: of the initialisation and of the loader's order.

    Returns:
        dict with ``age`` (K,) steps since each key was enqueued (0: the last step), ``consistency``
        (K,) its cosine with today's key, ``ages`` (K / N,) and ``by_age`` (K / N,) the mean per
        age, ``youngest`` / ``oldest`` (the mean at age 0 / K / N - 1), ``mean`` (over the
        queue), ``consistent`` (keys with cosine >= 0.9), ``method`` (the trained
        :class:`TracedMoCo`), ``momentum``, ``queue_size``, ``batch_size``, ``extent`` (K / N
        steps), ``lag`` (1 / (1 - m) steps; inf at m = 1) and ``loss`` (of the last step).

    Raises:
        ValueError: on features of other shapes, m outside [0, 1], or a K that is not a multiple
            of N, or too large for the steps or features.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> h = torch.randn(2048, 16, generator=g)
        >>> h1, h2 = h + 0.1 * torch.randn(2048, 16, generator=g), h
        >>> slow, fast = (moco_queue_stats(h1, h2, m, 256, steps=60) for m in (0.999, 0.5))
        >>> slow["oldest"] > fast["oldest"], bool((slow["age"] < 8).all())
        (True, True)
    """
    check_tensor("h1", h1, ndim=2)
    check_tensor("h2", h2, ndim=2)
    if h1.shape != h2.shape:
        raise ValueError(f"h1 and h2 must have the same shape (M, D), got {tuple(h1.shape)} and "
                         f"{tuple(h2.shape)}")
    m = float(momentum)
    if not 0.0 <= m <= 1.0:                                     # also refuses NaN
        raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
    for name, v in (("queue_size", queue_size), ("batch_size", batch_size), ("steps", steps)):
        check_positive(name, v, integer=True)
    check_positive("lr", lr)
    if queue_size % batch_size or queue_size > (steps - 1) * batch_size:
        raise ValueError(f"queue_size must be a multiple of batch_size ({batch_size}) and at most "
                         f"(steps - 1) * batch_size = {(steps - 1) * batch_size}, got {queue_size}")
    if h1.shape[0] < steps * batch_size:
        raise ValueError(f"h1 and h2 must hold at least steps * batch_size = {steps * batch_size} "
                         f"rows (each image once), got {h1.shape[0]}")
    h1, h2 = h1.detach().float().cpu(), h2.detach().float().cpu()
    with torch.random.fork_rng(devices=[]):                     # the caller's random state untouched
        torch.manual_seed(seed)
        method = TracedMoCo(FeatureTower(h1.shape[1], 128, 64), queue_size=queue_size, momentum=m,
                            hidden_dim=128, bn_splits=1)    # one BN batch: a recomputed key sees it again
        loader = TensorLoader(h1, h2, torch.arange(h1.shape[0]), batch_size=batch_size, seed=seed)
        history = fit(method, loader, steps=steps, lr=lr, warmup=WARMUP, progress=False,
                      device=torch.device("cpu"))
    age = int(method.queue_step.max()) - method.queue_step                               # (K,)
    key_now = copy.deepcopy(torch.nn.Sequential(method.encoder_k, method.projector_k)).train()
    consistency = torch.empty(queue_size)
    with torch.no_grad():
        for s in method.queue_step.unique():                    # one enqueued batch at a time
            slots = (method.queue_step == s).nonzero().squeeze(1)
            k_now = F.normalize(key_now(h2[method.queue_ids[slots]]), dim=1)            # (N, P)
            consistency[slots] = (method.queue[slots] * k_now).sum(1)
    extent = queue_size // batch_size
    by_age = torch.stack([consistency[age == a].mean() for a in range(extent)])         # (K / N,)
    return {"age": age, "consistency": consistency, "ages": np.arange(extent), "by_age": by_age.numpy(),
            "youngest": by_age[0].item(), "oldest": by_age[-1].item(), "mean": consistency.mean().item(),
            "consistent": int((consistency >= CONSISTENT).sum()), "method": method, "momentum": m,
            "queue_size": int(queue_size), "batch_size": int(batch_size), "extent": extent,
            "lag": float("inf") if m == 1 else 1 / (1 - m), "loss": history["loss"][-1]}


def plot_moco_queue_stats(stats: dict[str, object], max_extent: int | None = None):
    """Key consistency against the key's age, and the negatives a query gets.

    Left, ``cos(queued key, today's key)`` of every queued key against its age (dots) and its
    mean per age (line), with the queue's extent K / N and the key encoder's memory 1 / (1 - m)
    marked; right, the negatives per query: in-batch (N - 1), the queue's K, and the queued keys
    still consistent with today's (cosine >= 0.9).

    Args:
        stats: the dict of :func:`moco_queue_stats`.
        max_extent: the age axis's length in steps (default: the largest queue of the explorer).

    Returns:
        A matplotlib Figure.
    """
    from matplotlib.figure import Figure
    n, k, extent = stats["batch_size"], stats["queue_size"], stats["extent"]
    span = max_extent or max(QUEUE_SIZES) // n
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[2, 1])
    ax1.scatter(stats["age"].numpy(), stats["consistency"].numpy(), s=2, alpha=0.25, color=PALETTE["blue"],
                label="each queued key")
    ax1.plot(stats["ages"], stats["by_age"], color=PALETTE["blue"], lw=2, label="mean per age")
    ax1.axvline(extent - 0.5, color=PALETTE["red"], lw=1.5,
                label=f"queue's extent: K / N = {extent} steps")
    if stats["lag"] <= span:
        ax1.axvline(stats["lag"], color="k", ls="--", lw=1,
                    label=f"key encoder's memory 1 / (1 - m) = {stats['lag']:,.0f} steps")
    ax1.axvspan(extent - 0.5, span, color="0.92", zorder=0, label="older keys: already dequeued")
    ax1.set_xlim(-1, span)
    ax1.set_ylim(min(-0.05, float(stats["consistency"].min()) - 0.05), 1.05)
    ax1.set_xlabel("age of the queued key (steps since its key encoder computed it)")
    ax1.set_ylabel("cos(queued key, same image's\nkey by today's key encoder)")
    ax1.set_title(f"m = {stats['momentum']:g}, K = {k}: oldest keys' mean cosine {stats['oldest']:.3f}",
                  fontsize=9)
    ax1.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2)
    labels = ["in-batch: N - 1", "queue: K", f"queued, cos >= {CONSISTENT:g}"]
    values = [n - 1, k, stats["consistent"]]
    bars = ax2.barh(labels, values, color=["0.6", PALETTE["blue"], PALETTE["green"]])
    ax2.bar_label(bars, labels=[f"{v:,}" for v in values], fontsize=9, padding=2)
    ax2.set_xscale("log")
    ax2.set_xlim(10, max(QUEUE_SIZES) * 4)
    ax2.invert_yaxis()
    ax2.set_xlabel("negatives per query")
    ax2.set_title(f"negatives per query at N = {n}", fontsize=9)
    return fig


def moco_queue_explorer(h1: torch.Tensor, h2: torch.Tensor, momentum: float = 0.9,
                        queue_size: int = 4096, batch_size: int = 32, steps: int = 160, seed: int = 0):
    """MoCo queue explorer (notebook 07): move the momentum m and the queue size K.

    Each move trains a small MoCo over the frozen features ``h1``, ``h2`` (about a second; a
    setting seen before is kept) and redraws how far each queued key is from the key today's key
    encoder computes for the same image, against the key's age. Move **m** down and old keys drift
    away from today's; move **K** up and the queue reaches further back.

    Args:
        h1: (M, D) features of the first views.
        h2: (M, D) features of the second views.
        momentum: m at the start (one of 0, 0.5, 0.9, 0.99, 0.999, 0.9999).
        queue_size: K at the start (a power of 2 from 256 to 4096).
        batch_size: N of every run.
        steps: optimiser steps of every run.
        seed: of every run.

    Returns:
        The ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    if momentum not in MOMENTA or queue_size not in QUEUE_SIZES:
        raise ValueError(f"momentum must be one of {MOMENTA} and queue_size one of {QUEUE_SIZES}, "
                         f"got {momentum} and {queue_size}")
    wide = {"description_width": "initial"}
    m_slider = W.SelectionSlider(options=list(MOMENTA), value=momentum, description="momentum m",
                                 continuous_update=False, style=wide)
    k_slider = W.SelectionSlider(options=list(QUEUE_SIZES), value=queue_size, description="queue K",
                                 continuous_update=False, style=wide)
    seen = {}

    def stats(m, k):
        if (m, k) not in seen:
            seen[m, k] = moco_queue_stats(h1, h2, m, k, batch_size=batch_size, steps=steps, seed=seed)
        return seen[m, k]

    return explorer([m_slider, k_slider], stats, plot=plot_moco_queue_stats, describe=describe_moco_queue,
                    html=True)                          # the readout wraps instead of being cut off


def describe_moco_queue(st: dict[str, object]) -> str:
    """The explorer's readout for the dict of :func:`moco_queue_stats`."""
    lag = "never forgets" if st["lag"] == float("inf") else f"memory 1 / (1 - m) = {st['lag']:,.0f} steps"
    return (f"m = {st['momentum']:g} ({lag}) | K = {st['queue_size']} negatives per query (in-batch: "
            f"{st['batch_size'] - 1}), spanning {st['extent']} steps | cos(queued key, today's key): "
            f"youngest {st['youngest']:.3f}, oldest {st['oldest']:.3f}, mean {st['mean']:.3f} | "
            f"{st['consistent']:,} of "
            f"{st['queue_size']} keys at cos >= {CONSISTENT:g}")
