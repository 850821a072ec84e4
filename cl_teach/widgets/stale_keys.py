"""Stale-key explorer (notebook 16): how often a WenLan queue holds a query's own key of last epoch."""
from __future__ import annotations

import numpy as np
import torch

from .._validate import check_positive
from ..data import TensorLoader
from ..palette import PALETTE
from ._explorer import explorer


def stale_key_share_expected(queue_size: int, n_pairs: int, position: int | np.ndarray | None = None):
    """The share of queries whose own key of the previous epoch is still queued, in closed form.

    A pair met at position ``p`` (pairs into its epoch) was last met at a uniform position ``p'`` of
    the previous, independently shuffled epoch, ``N - p' + p`` keys ago; a queue of K keys still
    holds it when that is at most K, with probability ``clip((K - p) / N, 0, 1)``. Averaged over a
    whole epoch (``position=None``), with ``r = K / N``: ``r^2 / 2`` for ``r <= 1``,
    ``1 - (2 - r)^2 / 2`` for ``1 <= r <= 2``, 1 beyond.

    Args:
        queue_size: K, keys in the queue (> 0).
        n_pairs: N, pairs per epoch (> 0).
        position: p, a position (or an array of them) in the epoch; ``None``: the epoch's mean.

    Returns:
        The share (a float, or an array like ``position``).

    Example:
        >>> stale_key_share_expected(512, 1024), stale_key_share_expected(1024, 1024, position=256)
        (0.125, 0.75)
    """
    check_positive("queue_size", queue_size, integer=True)
    check_positive("n_pairs", n_pairs, integer=True)
    if position is not None:
        share = np.clip((queue_size - np.asarray(position, dtype=float)) / n_pairs, 0.0, 1.0)
        return float(share) if share.ndim == 0 else share
    r = min(queue_size / n_pairs, 2.0)
    return r * r / 2 if r <= 1 else 1 - (2 - r) ** 2 / 2


def stale_key_stats(n_pairs: int, batch_size: int, queue_size: int, steps: int,
                    seed: int = 0) -> dict[str, object]:
    """Per training step, the share of queries whose own pair has a key in the queue (exact).

    The batches are the package's :class:`~cl_teach.data.TensorLoader` over ``n_pairs`` items
    with ``batch_size`` and ``seed``: the same batches ``fit`` draws from any TensorLoader of
    ``n_pairs`` rows with that batch size and seed. The queue is WenLan's: the last
    ``queue_size`` keys enqueued before the step (the batch's own keys join after its loss), so
    the share equals the ``own_key_share`` that :class:`~cl_teach.methods.WenLan` logs.

    Args:
        n_pairs: training pairs (>= batch_size).
        batch_size: pairs per step (> 0).
        queue_size: K (>= batch_size, WenLan's own rule).
        steps: training steps (> 0).
        seed: the loader's seed.

    Returns:
        dict with ``share`` (steps,) the measured share per step, ``expected`` (steps,) its closed
        form (:func:`stale_key_share_expected` at each step's position; 0 in epoch 1),
        ``steps_per_epoch``, ``per_epoch`` (pairs per epoch), ``after_epoch_1`` (the mean share
        after the first epoch), ``full_epoch_mean`` (the closed form's mean over a whole epoch)
        and the arguments.

    Raises:
        ValueError: on a non-positive argument, ``n_pairs < batch_size`` or
            ``queue_size < batch_size``.

    Example:
        >>> st = stale_key_stats(1000, 10, 1000, steps=300)
        >>> round(float(st["share"][:100].max()), 2), 0.4 < st["after_epoch_1"] < 0.6
        (0.0, True)
    """
    for name, value in (("n_pairs", n_pairs), ("batch_size", batch_size), ("queue_size", queue_size),
                        ("steps", steps)):
        check_positive(name, value, integer=True)
    if n_pairs < batch_size:
        raise ValueError(f"n_pairs must be >= batch_size ({batch_size}), got {n_pairs}")
    if queue_size < batch_size:
        raise ValueError(f"queue_size must be >= batch_size ({batch_size}), as WenLan requires, "
                         f"got {queue_size}")
    loader = TensorLoader(torch.arange(n_pairs), batch_size=batch_size, seed=seed)
    per_epoch = batch_size * len(loader)
    last = np.full(n_pairs, -np.inf)                     # where each pair's key entered the queue
    share, expected, enqueued = np.zeros(steps), np.zeros(steps), 0
    step = 0
    while step < steps:
        for idx, _ in loader.batches():
            if step == steps:
                break
            ids = idx.numpy()
            share[step] = np.mean(enqueued - last[ids] <= queue_size)        # the last K keys
            position = step % len(loader) * batch_size
            expected[step] = stale_key_share_expected(queue_size, per_epoch, position) \
                if step >= len(loader) else 0.0
            last[ids] = enqueued + np.arange(len(ids))                       # enqueued after the loss
            enqueued += len(ids)
            step += 1
    later = share[len(loader):]
    return {"share": share, "expected": expected, "steps_per_epoch": len(loader), "per_epoch": per_epoch,
            "after_epoch_1": float(later.mean()) if len(later) else float("nan"),
            "full_epoch_mean": stale_key_share_expected(queue_size, per_epoch),
            "n_pairs": n_pairs, "batch_size": batch_size, "queue_size": queue_size, "steps": steps,
            "seed": seed}


def plot_stale_key_stats(stats: dict[str, object], sweep: dict[int, float] | None = None,
                         marks: dict[str, int] | None = None):
    """Left, the share per step against its closed form; right, the mean share after epoch 1 against K.

    Args:
        stats: the dict of :func:`stale_key_stats`.
        sweep: ``{K: after_epoch_1}`` measured at other queue sizes (dots on the right panel).
        marks: ``{label: K}`` queue sizes to mark (e.g. the notebook's runs).

    Returns:
        A matplotlib Figure.
    """
    from matplotlib.figure import Figure
    n, spe = stats["per_epoch"], stats["steps_per_epoch"]
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1.5, 1])
    steps = np.arange(stats["steps"])
    ax1.plot(steps, stats["share"], lw=0.8, color=PALETTE["blue"], label="measured")
    ax1.plot(steps, stats["expected"], lw=1.2, ls="--", color=PALETTE["orange"],
             label="clip((K - p) / N, 0, 1)")
    for e in range(spe, stats["steps"], spe):
        ax1.axvline(e, color="0.8", lw=0.8, zorder=0)
    ax1.set_ylim(-0.03, 1.03)
    ax1.set_xlabel(f"training step (grey: epoch boundaries, {spe} steps)")
    ax1.set_ylabel("queries with an own key queued")
    ax1.legend(fontsize=9, loc="center left", title="epoch 1: none yet", title_fontsize=9)
    ax1.set_title(f"K = {stats['queue_size']} keys, N = {n} pairs per epoch, batch {stats['batch_size']}",
                  fontsize=9)
    r = np.linspace(0, 2.1, 200)
    ax2.plot(r, [stale_key_share_expected(max(1, round(x * n)), n) for x in r], color=PALETTE["orange"],
             lw=1.2, label="whole epochs, closed form")
    if sweep:
        ks = sorted(sweep)
        ax2.scatter([k / n for k in ks], [sweep[k] for k in ks], s=12, color=PALETTE["blue"],
                    label=f"measured, {stats['steps']} steps")
    ax2.scatter([stats["queue_size"] / n], [stats["after_epoch_1"]], s=70, color=PALETTE["red"], zorder=3,
                label="this K")
    for label, k in (marks or {}).items():
        ax2.axvline(k / n, color="0.6", lw=0.8, ls=":")
        ax2.annotate(label, (k / n, 1.0), fontsize=9, rotation=90, ha="right", va="top")
    ax2.set_xlabel("queue size / pairs per epoch, K / N")
    ax2.set_ylabel("mean share after epoch 1")
    ax2.set_ylim(-0.03, 1.05)
    ax2.legend(fontsize=9, loc="lower right")
    ax2.set_title(f"after epoch 1: {stats['after_epoch_1']:.1%} of queries", fontsize=9)
    return fig


def stale_key_sweep(n_pairs: int, batch_size: int, steps: int, seed: int = 0,
                    extra=()) -> dict[int, float]:
    """``{K: mean share after epoch 1}`` over the explorer's queue sizes, in increasing K.

    The sizes run from one batch to two epochs in steps of about a twentieth of an epoch (whole
    batches), plus the sizes in ``extra``.

    Example:
        >>> sweep = stale_key_sweep(100, 5, 60)
        >>> list(sweep)[:3], sweep[5] < sweep[100] < sweep[200]
        ([5, 10, 15], True)
    """
    check_positive("batch_size", batch_size, integer=True)
    per_epoch = batch_size * (n_pairs // batch_size)
    stride = max(batch_size, per_epoch // 20 // batch_size * batch_size)
    sizes = sorted({*range(batch_size, 2 * per_epoch + 1, stride), 2 * per_epoch, *extra})
    return {k: stale_key_stats(n_pairs, batch_size, k, steps, seed)["after_epoch_1"] for k in sizes}


def stale_key_explorer(n_pairs: int, batch_size: int, steps: int, queue_size: int = 1024,
                       seed: int = 0, marks: dict[str, int] | None = None):
    """Stale-key explorer (notebook 16): move WenLan's queue size against the own keys it holds.

    A queue of K keys over N pairs per epoch holds, for a query met p pairs into an epoch, its own
    pair's key of last epoch with probability about ``(K - p) / N``: move **K** from a fifth of an
    epoch (almost never) past one epoch (more often than not) to two (always).

    Args:
        n_pairs: the training pairs.
        batch_size: pairs per step.
        steps: the training steps.
        queue_size: K at the start (rounded to a multiple of ``batch_size`` on the slider).
        seed: the loader's seed (the notebook's ``SEED``).
        marks: ``{label: K}`` queue sizes to mark on the right panel.

    Returns:
        The ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    sweep = stale_key_sweep(n_pairs, batch_size, steps, seed, extra=(queue_size, *(marks or {}).values()))
    k_slider = W.SelectionSlider(options=list(sweep), value=queue_size, description="queue K",
                                 continuous_update=False)
    return explorer(
        [k_slider], lambda k: stale_key_stats(n_pairs, batch_size, k, steps, seed),
        plot=lambda st: plot_stale_key_stats(st, sweep, marks),
        describe=lambda st: (f"K = {st['queue_size']} ({st['queue_size'] / st['per_epoch']:.0%} of an "
                             f"epoch) | own key queued for {st['after_epoch_1']:.1%} of queries after "
                             f"epoch 1 | whole-epoch closed form {st['full_epoch_mean']:.1%}"))
