"""Plots as pure functions returning matplotlib figures, and the live-plot callback.

Figures are made with ``matplotlib.figure.Figure`` (not pyplot), so nothing is displayed twice
and nothing depends on a global "current figure".
"""
from __future__ import annotations

import time
from collections.abc import Sequence

import matplotlib
import matplotlib.ticker
import numpy as np
import torch
from matplotlib.figure import Figure

from ._notebook import in_notebook
from .fonts import use_cjk_fallback
from .legible import COLUMN_INCHES, fit_width
from .palette import MANY, PALETTE, use_palette
from .train import Callback, History

#: The CJK family figures fall back to for Chinese (``None``: none installed; see cl_teach.fonts).
CJK_FONT = use_cjk_fallback()
use_palette()                   # Okabe & Ito's colour-blind-safe colours for every figure (cl_teach.palette)

#: Axis labels for the values the kit logs.
LABELS = {"loss": "training loss", "lr": "learning rate", "feature_std": "std of normalised z",
          "effective_rank": "effective rank", "alignment": "alignment (lower = better)",
          "uniformity": "uniformity (lower = better)", "knn": "kNN accuracy",
          "key_query_distance": "||theta_k - theta_q||", "prototypes_used": "prototypes used (batch)",
          "teacher_entropy": "teacher entropy (nats)", "teacher_batch_entropy": "entropy of mean P_t",
          "diag_mean": "mean diagonal of C", "offdiag_abs_mean": "mean |off-diagonal of C|",
          "dev_recall@10": "development recall@10"}


def plot_history(history: History, keys: Sequence[str] = ("loss",), title: str | None = None,
                 reference: dict[str, float] | None = None, fig: Figure | None = None,
                 ylim: dict[str, tuple] | None = None) -> Figure:
    """One panel per key: the logged value against the training step.

    Args:
        history: the :class:`History` returned by :func:`fit` (or filled during it).
        keys: logged names, one panel each.
        title: the figure's title.
        reference: optional horizontal lines, e.g. ``{"feature_std": 1 / sqrt(D)}``.
        fig: a figure to redraw in place (:class:`LivePlot`); a new one when None.
        ylim: fixed y-ranges per key, e.g. ``{"feature_std": (0, 1.05 / sqrt(D))}``, so that an
            auto-scaled axis does not turn noise into drama.
    """
    keys = list(keys)
    fig = fig or Figure(figsize=(fit_width(3.6 * len(keys)), 2.8), layout="constrained")
    fig.clear()
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    for ax, key in zip(axes, keys, strict=True):
        if key in history:
            ax.plot(history.steps(key), history[key], lw=1.5,
                    marker="o" if len(history[key]) < 30 else None, ms=3)
        if reference and key in reference:
            ax.axhline(reference[key], color="gray", ls="--", lw=1, label=f"reference {reference[key]:.3g}")
            ax.legend(fontsize=9)
        if ylim and key in ylim:
            ax.set_ylim(*ylim[key])
        ax.set_xlabel("step")
        ax.set_ylabel(LABELS.get(key, key))
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


class LivePlot(Callback):
    """Redraw :func:`plot_history` in place every ``every`` steps while :func:`fit` runs.

    In JupyterLab (and under nbval) the figure updates in one output; elsewhere it is only drawn
    at the end and kept as ``self.fig`` (``fig.savefig(...)`` to look at it); the run's
    :class:`History` is kept as ``self.history``.
    """

    def __init__(self, keys: Sequence[str] = ("loss",), every: int = 25, title: str | None = None,
                 reference: dict[str, float] | None = None, ylim: dict[str, tuple] | None = None):
        self.keys, self.every, self.title, self.reference = list(keys), every, title, reference
        self.ylim = ylim
        self.fig, self._handle, self._last = None, None, 0.0

    def _draw(self, history):
        self.fig = plot_history(history, self.keys, self.title, self.reference, self.fig, self.ylim)
        if self._handle is not None:
            self._handle.update(self.fig)

    def on_fit_start(self, method, history, total_steps):
        """Start a fresh figure; in a notebook, draw it and keep its display handle."""
        self.fig = None
        if in_notebook():
            from IPython.display import display
            self._draw(history)
            self._handle = display(self.fig, display_id=True)

    def on_step_end(self, step, logs, method, history):
        """Redraw in place every ``every`` steps, at most once a second (in a notebook only)."""
        # Redraw every ``every`` steps but at most once a second (each redraw sends a PNG).
        if self._handle is not None and step % self.every == 0 and time.monotonic() - self._last >= 1.0:
            self._draw(history)
            self._last = time.monotonic()

    def on_fit_end(self, method, history):
        """Draw the final figure (kept as ``self.fig``, the run's History as ``self.history``)."""
        self.history = history
        self._draw(history)


def show_images(x: torch.Tensor, nrow: int = 8, titles: Sequence[str] | None = None,
                title: str | None = None, scale: float = 1.2) -> Figure:
    """A grid of (N, C, H, W) images in [0, 1], with optional per-image titles."""
    n = x.shape[0]
    ncol = min(nrow, n)
    nr = -(-n // ncol)
    scale = min(scale, COLUMN_INCHES / ncol)          # no wider than the column (cl_teach.legible)
    fig = Figure(figsize=(scale * ncol, scale * nr + (0.3 if title else 0) + (0.25 * nr if titles else 0)),
                 layout="constrained")
    axes = fig.subplots(nr, ncol, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = x[i].detach().cpu().float().clamp(0, 1)
        if img.shape[0] == 1:
            ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(img.permute(1, 2, 0).numpy())
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def plot_spectrum(z_by_name: dict[str, torch.Tensor], title: str = "singular values of the embeddings",
                  relative: bool = False) -> Figure:
    """Log singular-value spectra of several (N, D) embedding matrices (dimensional collapse).

    The spectrum is the one :func:`cl_teach.metrics.effective_rank` reads: rows L2-normalised,
    not centred. ``relative=True`` plots sigma_i / sigma_1 against i / D, so that embeddings of
    different dimensions D compare on one axis.
    """
    import torch.nn.functional as F

    from .metrics import singular_values
    fig = Figure(figsize=(5, 3.2), layout="constrained")
    ax = fig.subplots()
    for name, z in z_by_name.items():
        s = singular_values(F.normalize(z.float(), dim=1), center=False).numpy()
        i = np.arange(1, len(s) + 1)
        if relative:
            ax.semilogy(i / z.shape[1], np.maximum(s / s[0], 1e-12), marker=".",
                        label=f"{name} (D={z.shape[1]})")
        else:
            ax.semilogy(i, np.maximum(s, 1e-12), marker=".", label=name)
    ax.set_xlabel("singular value index i / D" if relative else "singular value index")
    ax.set_ylabel("sigma_i / sigma_1 (log)" if relative else
                  "singular value of L2-normalised z (log)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    return fig


def plot_scores(scores: dict[str, float], xlabel: str = "accuracy", title: str | None = None,
                highlight: Sequence[str] = (), xlim: Sequence[float] | None = None,
                errors: dict[str, tuple] | None = None) -> Figure:
    """Horizontal bars, one per named score, each labelled with its value (baselines vs methods).

    Args:
        scores: ``{name: value}``, drawn top to bottom in order.
        xlabel: label of the value axis.
        title: the axes' title.
        highlight: names drawn in colour; the others grey (use it for the baselines).
        xlim: fixed ``(low, high)`` range of the value axis.
        errors: optional ``{name: (low, high)}`` 95% intervals, drawn as error bars.
    """
    names = list(scores)
    fig = Figure(figsize=(6.5, 0.45 * len(names) + 1.1), layout="constrained")
    ax = fig.subplots()
    colors = [PALETTE["blue"] if n in highlight else PALETTE["grey"] for n in names]
    y = np.arange(len(names))[::-1]
    ax.barh(y, [scores[n] for n in names], color=colors)
    for yi, n in zip(y, names, strict=True):
        if errors and n in errors:
            lo, hi = errors[n]
            ax.errorbar(scores[n], yi, xerr=[[scores[n] - lo], [hi - scores[n]]], color="black",
                        capsize=3, lw=1)
        ax.text((errors[n][1] if errors and n in errors else scores[n]), yi, f" {scores[n]:.3f}",
                va="center", fontsize=9)
    ax.set_yticks(y, names)
    if xlim is not None:
        ax.set_xlim(*xlim)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    return fig


def plot_matrices(matrices: dict[str, torch.Tensor], title: str | None = None, vmin: float = -1.0,
                  vmax: float = 1.0, cmap: str = "RdBu_r", colorbar_label: str = "value") -> Figure:
    """Heatmaps of several square matrices side by side, on one colour scale.

    E.g. Barlow Twins' cross-correlation at a few steps.
    """
    fig = Figure(figsize=(fit_width(2.9 * len(matrices) + 0.8), 3.0), layout="constrained")
    axes = fig.subplots(1, len(matrices), squeeze=False)[0]
    im = None
    for ax, (name, m) in zip(axes, matrices.items(), strict=True):
        im = ax.imshow(m.detach().cpu().float().numpy(), cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("dimension of z2")
        ax.set_ylabel("dimension of z1")
    if im is not None:
        fig.colorbar(im, ax=list(axes), shrink=0.8, label=colorbar_label)
    if title:
        fig.suptitle(title)
    return fig


def plot_curves(curves: dict[str, tuple], xlabel: str, ylabel: str, title: str | None = None,
                xscale: str = "linear", reference: dict[str, float] | None = None,
                points: dict[str, tuple] | None = None,
                errors: dict[str, tuple] | None = None) -> Figure:
    """One line per name: ``curves[name] = (x, y)`` or ``(x, y, point_labels)``.

    Optional horizontal reference lines ``{label: y}`` (e.g. a baseline), single points
    ``{label: (x, y)}`` (e.g. the exact method on a speed/recall plot) and error bars
    ``errors[name] = (low, high)`` (sequences like y: a 95% interval per point).
    """
    fig = Figure(figsize=(5.2, 3.4), layout="constrained")
    ax = fig.subplots()
    for name, c in curves.items():
        x, y = c[0], c[1]
        line, = ax.plot(x, y, marker="o", ms=4, label=name)
        if errors and name in errors:
            lo, hi = (np.asarray(v, dtype=float) for v in errors[name])
            yv = np.asarray(y, dtype=float)
            ax.errorbar(x, yv, yerr=[yv - lo, hi - yv], fmt="none", ecolor=line.get_color(), capsize=3)
        for xi, yi, lab in zip(x, y, c[2] if len(c) > 2 else (), strict=False):
            ax.annotate(str(lab), (xi, yi), textcoords="offset points", xytext=(3, 3), fontsize=9)
    for label, y in (reference or {}).items():
        ax.axhline(y, color="gray", ls="--", lw=1, label=label)
    for label, (x, y) in (points or {}).items():
        ax.plot([x], [y], marker="*", ms=12, ls="none", color="black", label=label)
    ax.set_xscale(xscale)
    if xscale == "log":
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    return fig


def plot_embedding_2d(xy: np.ndarray, labels: Sequence[str], title: str | None = None,
                      top: int = 10) -> Figure:
    """A 2-d map (UMAP, t-SNE) coloured by the ``top`` most frequent labels; the rest in grey."""
    labels = np.asarray(labels, dtype=object)
    names, counts = np.unique(labels, return_counts=True)
    keep = names[np.argsort(-counts, kind="stable")[:top]]
    fig = Figure(figsize=(7.5, 5), layout="constrained")
    ax = fig.subplots()
    other = ~np.isin(labels, keep)
    ax.scatter(xy[other, 0], xy[other, 1], s=3, c="lightgray", label="other")
    for i, name in enumerate(keep):
        m = labels == name
        ax.scatter(xy[m, 0], xy[m, 1], s=6, color=MANY[i % len(MANY)], label=str(name))
    ax.set_xlabel("dimension 1")
    ax.set_ylabel("dimension 2")
    ax.legend(fontsize=9, markerscale=2, loc="center left", bbox_to_anchor=(1, 0.5))
    if title:
        ax.set_title(title)
    return fig
