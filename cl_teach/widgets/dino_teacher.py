"""DINO teacher explorer (notebook 12): the teacher temperature and centering as two entropies."""
from __future__ import annotations

import math

import numpy as np
import torch

from .._validate import check_temperature, check_tensor
from ._explorer import explorer


def _entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy in nats along the last dimension (0 log 0 = 0)."""
    return -(p * p.clamp_min(1e-300).log()).sum(-1)


def dino_teacher_stats(teacher_out: torch.Tensor, center: torch.Tensor, teacher_temperature: float = 0.04,
                       centering: bool = True) -> dict[str, object]:
    """DINO's teacher distribution ``P_t = softmax((t - c) / tau_t)`` on a batch, and its entropies.

    The two entropies tell DINO's collapse modes apart (behind :func:`dino_teacher_explorer`).
    They are those of :func:`cl_teach.losses.dino.teacher_entropies`, in float64 here (the
    explorer also shows P_t itself, which that function does not return).

    Args:
        teacher_out: (N, K) teacher head outputs of a batch.
        center: (K,) the center c.
        teacher_temperature: tau_t.
        centering: subtract ``center`` (False: c = 0).

    Returns:
        dict with ``entropy`` (mean per-image entropy of P_t: log K = uniform, 0 = one-hot),
        ``batch_entropy`` (entropy of the batch-mean P_t: low = the same dimensions win for every
        image), ``log_k``, ``profile`` (K,) each image's sorted P_t averaged over the batch,
        ``usage`` (K,) the batch-mean P_t sorted, and the inputs ``teacher_temperature`` and
        ``centering``.

    Raises:
        ValueError: on a non-finite or empty ``teacher_out`` that is not (N, K), a center without
            K entries, or a temperature <= 0.

    Example:
        >>> t = torch.randn(64, 16, generator=torch.Generator().manual_seed(0))
        >>> sharp = dino_teacher_stats(t, torch.zeros(16), 0.04)
        >>> soft = dino_teacher_stats(t, torch.zeros(16), 1.0)
        >>> sharp["entropy"] < soft["entropy"] <= soft["log_k"]
        True
    """
    check_tensor("teacher_out", teacher_out, ndim=2)
    check_tensor("center", center)
    k = teacher_out.shape[1]
    if center.numel() != k:
        raise ValueError(f"center must have K = {k} entries (teacher_out's columns), got shape "
                         f"{tuple(center.shape)}")
    check_temperature(teacher_temperature, "teacher_temperature")
    c = center.reshape(1, k).double() if centering else 0.0
    p = torch.softmax((teacher_out.double() - c) / teacher_temperature, dim=1)   # (N, K)
    mean = p.mean(0)                                                              # (K,)
    return {"entropy": float(_entropy(p).mean()), "batch_entropy": float(_entropy(mean)),
            "log_k": math.log(k), "profile": p.sort(dim=1, descending=True).values.mean(0).numpy(),
            "usage": mean.sort(descending=True).values.numpy(),
            "teacher_temperature": float(teacher_temperature), "centering": bool(centering)}


def plot_dino_teacher_stats(stats: dict[str, object]):
    """Two panels: how peaked each image's P_t is, and how the batch spreads over the K outputs.

    Args:
        stats: the dict of :func:`dino_teacher_stats`.

    Returns:
        A matplotlib Figure.
    """
    from matplotlib.figure import Figure
    k = len(stats["profile"])
    rank = np.arange(1, k + 1)
    fig = Figure(figsize=(9, 2.8), layout="constrained")
    a, b = fig.subplots(1, 2)
    a.plot(rank, stats["profile"], marker=".", ms=3)
    a.axhline(1 / k, color="k", ls="--", lw=1, label="uniform 1/K")
    a.set_xscale("log")
    a.set_ylim(0, 1.02)
    a.set_xlabel("rank of the output dimension (per image)")
    a.set_ylabel("mean probability")
    a.set_title(f"per image: entropy {stats['entropy']:.2f} of log K = {stats['log_k']:.2f}", fontsize=9)
    a.legend(fontsize=9)
    b.bar(rank, stats["usage"], width=1.0)
    b.axhline(1 / k, color="k", ls="--", lw=1)
    b.set_xlabel("output dimension (sorted by use)")
    b.set_ylabel("batch-mean probability")
    b.set_title(f"over the batch: entropy {stats['batch_entropy']:.2f} of {stats['log_k']:.2f}", fontsize=9)
    fig.suptitle(f"teacher tau_t = {stats['teacher_temperature']:.3g}, centering "
                 f"{'on' if stats['centering'] else 'off'}", fontsize=10)
    return fig


def dino_teacher_explorer(teacher_out: torch.Tensor, center: torch.Tensor, teacher_temperature: float = 0.04,
                          centering: bool = True):
    """DINO teacher explorer (notebook 12): the teacher temperature and centering on/off.

    The teacher temperature moves on a log slider (0.01..1) over a trained teacher's outputs; the
    readout and figure show the two collapse modes as two entropies.

    Args:
        teacher_out: (N, K) teacher head outputs of a batch.
        center: (K,) the teacher's center.
        teacher_temperature: tau_t at the start.
        centering: whether centering is on at the start.

    Returns:
        The ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    tau = W.FloatLogSlider(value=teacher_temperature, base=10, min=-2, max=0, step=0.05,
                           description="teacher tau", readout_format=".3g", continuous_update=False)
    center_box = W.Checkbox(value=centering, description="centering", indent=False)
    return explorer(
        [tau, center_box], lambda t, c: dino_teacher_stats(teacher_out, center, t, c),
        plot=plot_dino_teacher_stats,
        describe=lambda st: (f"tau_t = {st['teacher_temperature']:.3g} | centering "
                             f"{'on' if st['centering'] else 'off'} | entropy per image = {st['entropy']:.3f}"
                             f" | of the batch mean = {st['batch_entropy']:.3f} | log K = {st['log_k']:.3f}"))
