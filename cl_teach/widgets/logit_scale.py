"""Logit-scale explorer (notebook 15): CLIP's image->text softmax at a logit scale s = 1 / tau."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .._validate import check_positive
from ._explorer import explorer


def logit_scale_stats(similarities: torch.Tensor, logit_scale: float) -> dict[str, object]:
    """CLIP's image->text softmax at a logit scale (the numbers behind :func:`logit_scale_explorer`).

    The loss is :func:`cl_teach.losses.clip_loss`'s symmetric cross-entropy, taken on the
    similarity matrix itself (``clip_loss`` starts from the embeddings).

    Args:
        similarities: (N, N) cosine similarities, image i's caption is text i.
        logit_scale: s = 1 / tau (CLIP learns log s, clamped so that s <= 100).

    Returns:
        dict with ``probs`` (N, N) row-wise softmax of ``s * similarities``, ``loss`` (the
        symmetric CLIP loss at that scale), ``diag_prob`` (mean probability of the right caption)
        and ``logit_scale``.

    Raises:
        ValueError: on a logit scale <= 0 or a similarity matrix that is not square.

    Example:
        >>> st = logit_scale_stats(torch.eye(3) * 0.5, 1.0), logit_scale_stats(torch.eye(3) * 0.5, 100.0)
        >>> st[0]["diag_prob"] < st[1]["diag_prob"]
        True
    """
    check_positive("logit_scale", logit_scale)
    if not isinstance(similarities, torch.Tensor) or similarities.dim() != 2 or \
            similarities.shape[0] != similarities.shape[1]:
        raise ValueError(f"similarities must be a square (N, N) tensor, got "
                         f"{getattr(similarities, 'shape', type(similarities).__name__)}")
    logits = logit_scale * similarities.double()                    # (N, N): row = an image
    labels = torch.arange(logits.shape[0])
    loss = float((F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2)
    probs = torch.softmax(logits, dim=1)
    return {"probs": probs.numpy(), "loss": loss, "diag_prob": float(probs.diag().mean()),
            "logit_scale": float(logit_scale)}


def plot_logit_scale_stats(stats: dict[str, object], row_labels: Sequence | None = None,
                           col_labels: Sequence | None = None):
    """Heat map of the image->text probabilities (rows: images, columns: captions).

    Args:
        stats: the dict of :func:`logit_scale_stats`.
        row_labels: one tick label per image (default: the index).
        col_labels: one tick label per caption (default: the index).

    Returns:
        A matplotlib Figure.
    """
    from matplotlib.figure import Figure
    p = stats["probs"]
    n = p.shape[0]
    fig = Figure(figsize=(1.0 + 0.55 * n + 2.5, 0.8 + 0.45 * n), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(p, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(n), col_labels if col_labels is not None else range(n), rotation=45,
                  ha="right", fontsize=9)
    ax.set_yticks(range(n), row_labels if row_labels is not None else range(n), fontsize=9)
    ax.set_xlabel("caption")
    ax.set_ylabel("image")
    ax.set_title(f"softmax(s * cos), s = {stats['logit_scale']:.3g}: "
                 f"P(right caption) = {stats['diag_prob']:.2f}", fontsize=9)
    fig.colorbar(im, ax=ax, label="probability")
    return fig


def logit_scale_explorer(similarities: torch.Tensor, row_labels: Sequence | None = None,
                         col_labels: Sequence | None = None, logit_scale: float = 14.3):
    """Logit-scale explorer (notebook 15): CLIP's s = 1 / tau over a real similarity matrix.

    A log slider (1..100) for s; the readout and heat map show which caption each image would
    pick, and how sure.

    Args:
        similarities: (N, N) image-caption cosine similarities, image i's caption is text i.
        row_labels: one tick label per image (default: the index).
        col_labels: one tick label per caption (default: the index).
        logit_scale: s at the start.

    Returns:
        The ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    s = W.FloatLogSlider(value=logit_scale, base=10, min=0, max=2, step=0.05,
                         description="logit scale", readout_format=".3g", continuous_update=False)
    return explorer(
        [s], lambda scale: logit_scale_stats(similarities, scale),
        describe=lambda st: (f"s = {st['logit_scale']:.3g} (tau = {1 / st['logit_scale']:.3g}) | CLIP loss = "
                             f"{st['loss']:.3f} | mean P(right caption) = {st['diag_prob']:.3f}"),
        plot=lambda st: plot_logit_scale_stats(st, row_labels, col_labels))
