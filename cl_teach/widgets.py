"""Thin ipywidgets bindings over ``cl_teach.plotting`` and ``cl_teach.losses``.

Each explorer is a pure ``*_stats`` function (tested without a browser) plus a widget that
re-draws a figure and a one-line readout when a control moves (tested in a real browser).
"""
from __future__ import annotations

import math
import warnings
from typing import Dict

import numpy as np
import torch

from ._validate import check_positive
from .losses import info_nce_logits


def negatives_with_similarities(sims: torch.Tensor, dim: int = 64, generator=None) -> tuple:
    """A query, a positive and negatives on the unit sphere with prescribed cosine similarities.

    Args:
        sims: (1 + K,) cosine similarities to the query: the positive's first, then K negatives'.
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
                      positive_similarity: float = 0.7, seed: int = 0) -> Dict[str, object]:
    """What InfoNCE does with one query at a temperature: the numbers behind the explorer.

    Negatives get cosine similarities spread below ``hardness`` (0: around 0, unrelated;
    1: close to the positive). The loss and the gradient with respect to each similarity are
    taken by autograd through :func:`cl_teach.losses.info_nce_logits`.

    Returns:
        dict with ``similarities`` (K,) sorted descending, ``weights`` (K,) each negative's share of
        the total gradient weight on negatives (sums to 1), ``loss``, ``hardest_share`` (the share
        of the hardest negative), ``positive_prob`` and ``uniform_share`` = 1/K for reference.

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
    neg = (hardness * positive_similarity + 0.15 * torch.randn(n_negatives, generator=g, dtype=torch.float64))
    neg = neg.clamp(-0.99, positive_similarity - 1e-3).sort(descending=True).values
    q, k, negatives = negatives_with_similarities(torch.cat([torch.tensor([positive_similarity], dtype=torch.float64), neg]), generator=g)
    sims = torch.cat([(q * k).sum(1), (q @ negatives.T)[0]]).requires_grad_(True)  # (1 + K,)
    # Route the similarities through the package's logits: the same formula the course trains with.
    pkg_logits, labels = info_nce_logits(q, k, temperature, negatives=negatives)
    logits = sims[None] / temperature                              # the same values, with a graph to sims
    assert torch.allclose(logits.detach(), pkg_logits), "similarities and package logits disagree"
    loss = torch.nn.functional.cross_entropy(logits, labels)
    (grad,) = torch.autograd.grad(loss, sims)                      # dL/ds_j = p_j / tau for negatives
    w = grad[1:].detach()
    weights = (w / w.sum()).numpy()
    return {"similarities": neg.numpy(), "weights": weights, "loss": float(loss.detach()),
            "hardest_share": float(weights[0]), "positive_prob": float(torch.softmax(logits.detach(), 1)[0, 0]),
            "uniform_share": 1.0 / n_negatives, "temperature": float(temperature)}


def plot_temperature_stats(stats: Dict[str, object]):
    """Bar chart: each negative's similarity to the query and its share of the gradient weight."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(8, 3), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    idx = np.arange(len(stats["similarities"]))
    ax1.bar(idx, stats["similarities"], color="tab:gray")
    ax1.set_xlabel("negative (hardest first)")
    ax1.set_ylabel("cosine similarity to query")
    ax1.set_ylim(-1, 1)
    ax1.set_title("how hard are the negatives?")
    ax2.bar(idx, stats["weights"], color="tab:red")
    ax2.axhline(stats["uniform_share"], color="k", ls="--", lw=1, label="uniform share 1/K")
    ax2.set_xlabel("negative (hardest first)")
    ax2.set_ylabel("share of gradient weight")
    ax2.set_ylim(0, 1)
    ax2.set_title(f"tau = {stats['temperature']:.3g}: softmax over negatives")
    ax2.legend(fontsize=8)
    return fig


def _explorer(controls, stats, describe, plot):
    """The body every explorer shares: controls, a one-line readout and a figure that redraw
    together whenever a control moves. ``stats(*values)`` -> dict; ``describe(dict)`` -> the
    readout; ``plot(dict)`` -> a Figure. Returns the ``ipywidgets.VBox``."""
    import ipywidgets as W
    from IPython.display import display

    readout = W.Label()
    out = W.Output()

    def redraw(*_):
        st = stats(*(c.value for c in controls))
        readout.value = describe(st)
        with out, warnings.catch_warnings():
            # Emoji in labels have no glyph in matplotlib's fonts (a box is drawn); the warning
            # would otherwise fill the widget with red text on every move.
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
            out.clear_output(wait=True)
            display(plot(st))

    for c in controls:
        c.observe(redraw, names="value")
    redraw()
    return W.VBox([W.HBox(list(controls)) if len(controls) > 1 else controls[0], readout, out])


def temperature_explorer(temperature: float = 0.1, n_negatives: int = 32, hardness: float = 0.5):
    """Temperature explorer (notebook 01): tau on a log slider 0.01..10, number and hardness of
    negatives -> the softmax over negatives, each negative's gradient weight, and the loss.

    Returns the ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    tau = W.FloatLogSlider(value=temperature, base=10, min=-2, max=1, step=0.1, description="tau",
                           readout_format=".3g", continuous_update=False)
    n = W.IntSlider(value=n_negatives, min=4, max=256, step=4, description="negatives",
                    continuous_update=False)
    hard = W.FloatSlider(value=hardness, min=0, max=1, step=0.05, description="hardness",
                         continuous_update=False)
    return _explorer(
        [tau, n, hard], temperature_stats, plot=plot_temperature_stats,
        describe=lambda s: (f"tau = {s['temperature']:.3g} | loss = {s['loss']:.4f} | hardest negative's "
                            f"share of gradient = {s['hardest_share']:.3f} (uniform: {s['uniform_share']:.3f})"))


def augmentation_views(x: torch.Tensor, strength: float = 1.0, crop_min: float = 0.25,
                       n_views: int = 6, seed: int = 0) -> torch.Tensor:
    """``n_views`` random SimCLR views of each image in ``x`` (the numbers behind the explorer).

    Args:
        x: (P, C, H, W) images in [0, 1].
        strength: scales every colour jitter (:class:`cl_teach.augment.Augment`); 0 = crop + flip.
        crop_min: the smallest crop, as a share of the image's area (SimCLR: 0.08).

    Returns:
        (P * (1 + n_views), C, H, W): each image followed by its views, row by row.

    Example:
        >>> augmentation_views(torch.rand(2, 3, 16, 16), n_views=3).shape
        torch.Size([8, 3, 16, 16])
    """
    from .augment import Augment
    check_positive("n_views", n_views, integer=True)
    if not 0 < crop_min <= 1:
        raise ValueError(f"crop_min must be in (0, 1], got {crop_min!r}")
    aug = Augment(crop_scale=(crop_min, 1.0), strength=strength)
    g = torch.Generator().manual_seed(seed)
    views = torch.stack([aug(x, g) for _ in range(n_views)], dim=1)   # (P, V, C, H, W)
    return torch.cat([x[:, None], views], dim=1).flatten(0, 1)


def augmentation_explorer(x: torch.Tensor, strength: float = 1.0, crop_min: float = 0.25,
                          n_views: int = 6):
    """Augmentation-strength explorer (notebook 04): sliders for the jitter strength and the
    smallest crop; each row shows an image and ``n_views`` random views of it.

    Args:
        x: (P, C, H, W) images in [0, 1], a few (each becomes a row).

    Returns the ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W
    from IPython.display import display

    from .plotting import show_images

    s = W.FloatSlider(value=strength, min=0, max=3, step=0.25, description="strength",
                      continuous_update=False)
    c = W.FloatSlider(value=crop_min, min=0.05, max=1, step=0.05, description="smallest crop",
                      continuous_update=False)
    seed = W.IntSlider(value=0, min=0, max=20, description="seed", continuous_update=False)
    out = W.Output()

    def redraw(*_):
        grid = augmentation_views(x, s.value, c.value, n_views, seed.value)
        with out:
            out.clear_output(wait=True)
            display(show_images(grid, nrow=1 + n_views, scale=0.8,
                                title=f"first column: original; strength {s.value:g}, "
                                      f"crop area {c.value:g}-1"))

    for w in (s, c, seed):
        w.observe(redraw, names="value")
    redraw()
    return W.VBox([W.HBox([s, c, seed]), out])


def hashtag_box(recommend, value: str = "今天 的 我是歌手 现场 太 好听 了", k: int = 3):
    """Type a post, read its top-``k`` hashtags (notebook 14).

    Args:
        recommend: ``recommend(text, k) -> [(hashtag, score), ...]``, e.g. the notebook's
            CD-TOM system. value: the starting text.

    Returns the ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    box = W.Text(value=value, description="post", continuous_update=False,
                 layout=W.Layout(width="90%"))
    readout = W.HTML()

    def redraw(*_):
        rows = "".join(f"<li>#{tag}# &nbsp; <small>score {score:.2f}</small></li>"
                       for tag, score in recommend(box.value, k))
        readout.value = f"<ol>{rows}</ol>"

    box.observe(redraw, names="value")
    redraw()
    return W.VBox([box, readout])


def logit_scale_stats(similarities: torch.Tensor, logit_scale: float) -> Dict[str, object]:
    """CLIP's image->text softmax at a logit scale (the numbers behind :func:`logit_scale_explorer`).

    Args:
        similarities: (N, N) cosine similarities, image i's caption is text i.
        logit_scale: s = 1 / tau (CLIP learns log s, clamped so that s <= 100).

    Returns:
        dict with ``probs`` (N, N) row-wise softmax of ``s * similarities``, ``loss`` (the
        symmetric CLIP loss at that scale), ``diag_prob`` (mean probability of the right caption)
        and ``logit_scale``.

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
    s = similarities.double()
    probs = torch.softmax(logit_scale * s, dim=1)
    labels = torch.arange(s.shape[0])                    # clip_loss's two cross-entropies, on the matrix
    ce = torch.nn.functional.cross_entropy
    loss = float((ce(logit_scale * s, labels) + ce(logit_scale * s.T, labels)) / 2)
    return {"probs": probs.numpy(), "loss": loss, "diag_prob": float(probs.diag().mean()),
            "logit_scale": float(logit_scale)}


def plot_logit_scale_stats(stats: Dict[str, object], row_labels=None, col_labels=None):
    """Heat map of the image->text probabilities (rows: images, columns: captions)."""
    from matplotlib.figure import Figure
    p = stats["probs"]
    n = p.shape[0]
    fig = Figure(figsize=(1.0 + 0.55 * n + 2.5, 0.8 + 0.45 * n), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(p, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(n), col_labels if col_labels is not None else range(n), rotation=45,
                  ha="right", fontsize=8)
    ax.set_yticks(range(n), row_labels if row_labels is not None else range(n), fontsize=8)
    ax.set_xlabel("caption")
    ax.set_ylabel("image")
    ax.set_title(f"softmax(s * cos), s = {stats['logit_scale']:.3g}: "
                 f"P(right caption) = {stats['diag_prob']:.2f}", fontsize=9)
    fig.colorbar(im, ax=ax, label="probability")
    return fig


def logit_scale_explorer(similarities: torch.Tensor, row_labels=None, col_labels=None,
                         logit_scale: float = 14.3):
    """Logit-scale explorer (notebook 12): a log slider for CLIP's s = 1/tau (1..100) over a real
    image-caption similarity matrix; shows which caption each image would pick, and how sure.

    Returns the ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    s = W.FloatLogSlider(value=logit_scale, base=10, min=0, max=2, step=0.05,
                         description="logit scale", readout_format=".3g", continuous_update=False)
    return _explorer(
        [s], lambda scale: logit_scale_stats(similarities, scale),
        describe=lambda st: (f"s = {st['logit_scale']:.3g} (tau = {1 / st['logit_scale']:.3g}) | CLIP loss = "
                             f"{st['loss']:.3f} | mean P(right caption) = {st['diag_prob']:.3f}"),
        plot=lambda st: plot_logit_scale_stats(st, row_labels, col_labels))


def sinkhorn_stats(scores: torch.Tensor, epsilon: float = 0.05, n_iters: int = 3) -> Dict[str, object]:
    """SwAV's codes for a batch at one epsilon and number of rounds (behind :func:`sinkhorn_explorer`).

    Args:
        scores: (N, K) prototype scores of a batch (cosines). epsilon: the entropic regulariser.
        n_iters: Sinkhorn-Knopp rounds (0: a plain softmax of ``scores / epsilon`` over the batch).

    Returns:
        dict with ``mass`` (K,) the codes' total per prototype (equipartition: N / K each),
        ``argmax_mass`` (K,) the images whose best prototype it is, ``imbalance`` (largest mass over
        N / K), ``max_code`` (mean over images of the largest code, 1 / K soft .. 1 one-hot),
        ``epsilon`` and ``n_iters``.

    Example:
        >>> s = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
        >>> sinkhorn_stats(s, 0.05, 3)["imbalance"] < sinkhorn_stats(s, 0.05, 0)["imbalance"]
        True
    """
    from .losses import sinkhorn
    q = sinkhorn(scores, n_iters=n_iters, epsilon=epsilon)            # validates scores/epsilon/n_iters
    n, k = scores.shape
    mass = q.sum(0).double()
    return {"mass": mass.numpy(), "argmax_mass": torch.bincount(scores.argmax(1), minlength=k).double().numpy(),
            "imbalance": float(mass.max() / (n / k)), "max_code": float(q.max(1).values.double().mean()),
            "epsilon": float(epsilon), "n_iters": int(n_iters), "n": n, "k": k}


def plot_sinkhorn_stats(stats: Dict[str, object]):
    """Bars: the codes' mass per prototype next to the argmax assignment, with the N / K line."""
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
    ax.legend(fontsize=8)
    ax.set_title(f"epsilon = {stats['epsilon']:.3g}, {stats['n_iters']} rounds: largest mass "
                 f"{stats['imbalance']:.2f} x N/K, mean largest code {stats['max_code']:.2f}", fontsize=9)
    return fig


def sinkhorn_explorer(scores: torch.Tensor, epsilon: float = 0.05, n_iters: int = 3):
    """Sinkhorn explorer (notebook 06): epsilon on a log slider (0.001..1) and the number of
    Sinkhorn-Knopp rounds (0..10) -> how evenly the codes spread the batch over the prototypes,
    and how hard (one-hot) each image's code is.

    Returns the ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    eps = W.FloatLogSlider(value=epsilon, base=10, min=-3, max=0, step=0.1, description="epsilon",
                           readout_format=".3g", continuous_update=False)
    rounds = W.IntSlider(value=n_iters, min=0, max=10, description="rounds", continuous_update=False)
    return _explorer(
        [eps, rounds], lambda e, n: sinkhorn_stats(scores, e, n), plot=plot_sinkhorn_stats,
        describe=lambda st: (f"epsilon = {st['epsilon']:.3g} | rounds = {st['n_iters']} | largest prototype "
                             f"mass = {st['imbalance']:.2f} x N/K | mean largest code = {st['max_code']:.3f}"))


def _entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy in nats along the last dimension (0 log 0 = 0)."""
    return -(p * p.clamp_min(1e-300).log()).sum(-1)


def dino_teacher_stats(teacher_out: torch.Tensor, center: torch.Tensor, teacher_temperature: float = 0.04,
                       centering: bool = True) -> Dict[str, object]:
    """DINO's teacher distribution ``P_t = softmax((t - c) / tau_t)`` on a batch, and the two
    numbers that tell its collapse modes apart (behind :func:`dino_teacher_explorer`).

    Args:
        teacher_out: (N, K) teacher head outputs of a batch. center: (K,) the center c.
        teacher_temperature: tau_t. centering: subtract ``center`` (False: c = 0).

    Returns:
        dict with ``entropy`` (mean per-image entropy of P_t: log K = uniform, 0 = one-hot),
        ``batch_entropy`` (entropy of the batch-mean P_t: low = the same dimensions win for every
        image), ``log_k``, ``profile`` (K,) each image's sorted P_t averaged over the batch,
        ``usage`` (K,) the batch-mean P_t sorted, and the inputs.

    Example:
        >>> t = torch.randn(64, 16, generator=torch.Generator().manual_seed(0))
        >>> sharp, soft = dino_teacher_stats(t, torch.zeros(16), 0.04), dino_teacher_stats(t, torch.zeros(16), 1.0)
        >>> sharp["entropy"] < soft["entropy"] <= soft["log_k"]
        True
    """
    from ._validate import check_temperature, check_tensor
    check_tensor("teacher_out", teacher_out, ndim=2)
    check_tensor("center", center)
    k = teacher_out.shape[1]
    if center.numel() != k:
        raise ValueError(f"center must have K = {k} entries (teacher_out's columns), got shape "
                         f"{tuple(center.shape)}")
    check_temperature(teacher_temperature, "teacher_temperature")
    c = center.reshape(1, k).double() if centering else 0.0
    p = torch.softmax((teacher_out.double() - c) / teacher_temperature, dim=1)   # (N, K)
    mean = p.mean(0)
    return {"entropy": float(_entropy(p).mean()), "batch_entropy": float(_entropy(mean)),
            "log_k": math.log(k), "profile": p.sort(dim=1, descending=True).values.mean(0).numpy(),
            "usage": mean.sort(descending=True).values.numpy(),
            "teacher_temperature": float(teacher_temperature), "centering": bool(centering)}


def plot_dino_teacher_stats(stats: Dict[str, object]):
    """Two panels: how peaked each image's P_t is, and how the batch spreads over the K outputs."""
    from matplotlib.figure import Figure
    k = len(stats["profile"])
    rank = np.arange(1, k + 1)
    fig = Figure(figsize=(9, 2.8), layout="constrained")
    a, b = fig.subplots(1, 2)
    a.plot(rank, stats["profile"], marker=".", ms=3)
    a.axhline(1 / k, color="k", ls="--", lw=1, label="uniform 1/K")
    a.set_xscale("log"); a.set_ylim(0, 1.02)
    a.set_xlabel("rank of the output dimension (per image)"); a.set_ylabel("mean probability")
    a.set_title(f"per image: entropy {stats['entropy']:.2f} of log K = {stats['log_k']:.2f}", fontsize=9)
    a.legend(fontsize=8)
    b.bar(rank, stats["usage"], width=1.0)
    b.axhline(1 / k, color="k", ls="--", lw=1)
    b.set_xlabel("output dimension (sorted by use)"); b.set_ylabel("batch-mean probability")
    b.set_title(f"over the batch: entropy {stats['batch_entropy']:.2f} of {stats['log_k']:.2f}", fontsize=9)
    fig.suptitle(f"teacher tau_t = {stats['teacher_temperature']:.3g}, centering "
                 f"{'on' if stats['centering'] else 'off'}", fontsize=10)
    return fig


def dino_teacher_explorer(teacher_out: torch.Tensor, center: torch.Tensor, teacher_temperature: float = 0.04,
                          centering: bool = True):
    """DINO teacher explorer (notebook 09): the teacher temperature on a log slider (0.01..1) and
    centering on/off, over a trained teacher's outputs -> the two collapse modes as two entropies.

    Returns the ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    tau = W.FloatLogSlider(value=teacher_temperature, base=10, min=-2, max=0, step=0.05,
                           description="teacher tau", readout_format=".3g", continuous_update=False)
    center_box = W.Checkbox(value=centering, description="centering", indent=False)
    return _explorer(
        [tau, center_box], lambda t, c: dino_teacher_stats(teacher_out, center, t, c),
        plot=plot_dino_teacher_stats,
        describe=lambda st: (f"tau_t = {st['teacher_temperature']:.3g} | centering "
                             f"{'on' if st['centering'] else 'off'} | entropy per image = {st['entropy']:.3f}"
                             f" | of the batch mean = {st['batch_entropy']:.3f} | log K = {st['log_k']:.3f}"))
