"""BYOL/SimSiam explorer (notebook 09): the target's momentum, the stop-gradient and the predictor.

Each setting trains the package's own ``BYOL`` or ``SimSiam`` heads with ``cl_teach.train.fit`` on
precomputed frozen features h of two augmented views (a TensorLoader, no encoder pass), and
reads the collapse monitors of z on held-out views as training goes.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .._validate import check_pair, check_positive
from ..data import TensorLoader
from ..methods import BYOL, SimSiam
from ..metrics import effective_rank, feature_std
from ..models import FeatureTower
from ..palette import PALETTE
from ..train import Callback, fit
from ._explorer import explorer

#: The explorer's "target" slider: (label, (momentum, stop_gradient)), from no asymmetry at all to a
#: slow EMA target. ``momentum=None``: the target is the online network itself (SimSiam's form).
TARGETS = (("no stop-grad", (None, False)), ("stop-grad (SimSiam)", (None, True)),
           ("EMA tau 0.9", (0.9, True)), ("EMA tau 0.99", (0.99, True)), ("EMA tau 0.996", (0.996, True)))


def setting_label(momentum: float | None, stop_gradient: bool, predictor: bool) -> str:
    """A short name of one setting, e.g. ``"EMA tau 0.99, predictor"``.

    Example:
        >>> setting_label(None, True, False)
        'stop-grad (SimSiam), no predictor'
    """
    target = (f"EMA tau {momentum:g}" if momentum is not None
              else "stop-grad (SimSiam)" if stop_gradient else "no stop-grad")
    return f"{target}, {'predictor' if predictor else 'no predictor'}"


def byol_heads(in_dim: int, momentum: float | None = None, stop_gradient: bool = True,
               predictor: bool = True, projection_dim: int = 64, hidden_dim: int = 128) -> nn.Module:
    """The method of one setting, over frozen features: the package's BYOL or SimSiam.

    Every setting has the same heads, BYOL's: a projector g = MLP(in_dim, hidden, projection)
    without a final BatchNorm (so a collapse shows in the std of z too) and a predictor
    q = MLP(projection, hidden, projection), or the identity without one; the encoder is the
    identity (``FeatureTower(in_dim, None)``). ``momentum`` a float: ``BYOL`` with tau fixed at it
    (``schedule="constant"``; its target never gets a gradient). ``None``: ``SimSiam``, the target
    is the online network itself, with or without ``stop_gradient``. Built from the global RNG
    (seed it first); the same seed gives every setting the same initial online weights.
    """
    check_positive("in_dim", in_dim, integer=True)
    if momentum is not None and not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be None (SimSiam) or in [0, 1), got {momentum!r}")
    if momentum is not None and not stop_gradient:
        raise ValueError("stop_gradient=False needs momentum=None: an EMA target never gets a gradient")
    byol = BYOL(FeatureTower(in_dim, None), projection_dim=projection_dim, hidden_dim=hidden_dim,
                momentum=0.0 if momentum is None else momentum, schedule="constant")
    if not predictor:
        byol.predictor = nn.Identity()
    if momentum is not None:
        return byol
    simsiam = SimSiam(FeatureTower(in_dim, None), projection_dim=projection_dim, output_bn=False,
                      stop_gradient=stop_gradient, predictor=predictor)
    simsiam.projector, simsiam.predictor = byol.projector, byol.predictor      # BYOL's heads
    return simsiam


@torch.no_grad()
def held_out_monitors(method: nn.Module, held_out: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
    """Eval-mode monitors of a method on held-out view pairs (h1, h2) of frozen features.

    Returns ``loss`` (the symmetrised 2 - 2 cos of each view's prediction against the other's
    target, BYOL's scale for SimSiam too: 0 when they agree), ``rank`` (effective rank of z of
    the first views) and ``std`` (per-dimension std of the normalised z: 1/sqrt(D) healthy, 0
    collapsed). The method is put back in training mode.
    """
    method.eval()
    try:
        out = method.training_step(held_out)
    finally:
        method.train()
    loss = out["loss"].item()
    loss = 2 + 2 * loss if isinstance(method, SimSiam) else loss      # SimSiam's -cos -> 2 - 2 cos
    return {"loss": loss, "rank": effective_rank(out["z1"]).item(), "std": feature_std(out["z1"]).item()}


class _HeldOut(Callback):
    """Held-out monitors before training and after every ``every``-th step (and the last)."""

    def __init__(self, held_out, every: int):
        self.held_out, self.every, self.rows = held_out, every, []

    def on_fit_start(self, method, history, total_steps):
        self.total, self.rows = total_steps, [(0, held_out_monitors(method, self.held_out))]

    def on_step_end(self, step, logs, method, history):
        if (step + 1) % self.every == 0 or step + 1 == self.total:
            self.rows.append((step + 1, held_out_monitors(method, self.held_out)))


def byol_stats(views: tuple[torch.Tensor, torch.Tensor], held_out: tuple[torch.Tensor, torch.Tensor],
               momentum: float | None = None, stop_gradient: bool = True, predictor: bool = True,
               steps: int = 150, every: int = 10, lr: float = 5e-3, batch_size: int = 128,
               seed: int = 0) -> dict[str, object]:
    """Train one setting's heads with ``fit`` and follow its collapse monitors (behind :func:`byol_explorer`).

    Args:
        views: (N, F) frozen features of two augmented views of N training images.
        held_out: (M, F) the same of M held-out images (M >= 2).
        momentum: the EMA target's fixed tau (BYOL), or None: the online network is the target
            (SimSiam).
        stop_gradient: with ``momentum=None``, no gradient through the target branch.
        predictor: the predictor q on the online branch (False: the identity).
        steps: optimiser steps.
        every: steps between held-out readings.
        lr: fit's learning rate.
        batch_size: the loader's batch.
        seed: of the initial weights and of the batches; the global RNG is left as it was.

    Returns:
        dict with ``steps`` (readings' steps, from 0), held-out ``rank``, ``std`` and ``loss``
        (2 - 2 cos) at each, ``dim`` (D of z), ``label``, the setting's ``momentum``,
        ``stop_gradient``, ``predictor``, and the trained ``method``.

    Raises:
        ValueError: on views of different shapes, too few of them, a momentum outside [0, 1),
            stop_gradient=False with a momentum, or a step count that is not a positive int.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> h = torch.randn(256, 8, generator=g)
        >>> pair = (h + 0.1 * torch.randn(256, 8, generator=g), h + 0.1 * torch.randn(256, 8, generator=g))
        >>> st = byol_stats(pair, pair, steps=20, every=10, batch_size=64)
        >>> st["steps"].tolist(), st["dim"], len(st["rank"])
        ([0, 10, 20], 64, 3)
    """
    check_pair("views[0]", views[0], "views[1]", views[1])
    check_pair("held_out[0]", held_out[0], "held_out[1]", held_out[1])
    if views[0].dim() != 2 or held_out[0].shape[1] != views[0].shape[1] or len(held_out[0]) < 2:
        raise ValueError(f"views and held_out must be (N, F) and (M >= 2, F) with the same F, got "
                         f"{tuple(views[0].shape)} and {tuple(held_out[0].shape)}")
    check_positive("steps", steps, integer=True)
    check_positive("every", every, integer=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        method = byol_heads(views[0].shape[1], momentum, stop_gradient, predictor)
    monitor = _HeldOut(tuple(h.float() for h in held_out), every)
    fit(method, TensorLoader(views[0].float(), views[1].float(), batch_size=batch_size, seed=seed),
        steps=steps, lr=lr, progress=False, callbacks=[monitor], device=torch.device("cpu"))
    rows = monitor.rows
    return {"steps": np.array([s for s, _ in rows]), "dim": method.projector[-1].out_features,
            **{k: np.array([r[k] for _, r in rows]) for k in ("rank", "std", "loss")},
            "label": setting_label(momentum, stop_gradient, predictor), "momentum": momentum,
            "stop_gradient": bool(stop_gradient), "predictor": bool(predictor), "method": method}


def byol_runs(views, held_out, steps: int = 150, seed: int = 0, **kw) -> dict[tuple, dict]:
    """:func:`byol_stats` of every setting of the explorer, keyed ``(momentum, stop_gradient, predictor)``."""
    return {(m, sg, p): byol_stats(views, held_out, m, sg, p, steps=steps, seed=seed, **kw)
            for _, (m, sg) in TARGETS for p in (True, False)}


def plot_byol_stats(stats: dict[str, object]):
    """Three panels over training: effective rank of z, std of normalised z, held-out loss.

    Args:
        stats: the dict of :func:`byol_stats`.

    Returns:
        A matplotlib Figure.
    """
    from matplotlib.figure import Figure
    s, d = stats["steps"], stats["dim"]
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    a, b, c = fig.subplots(1, 3)
    a.plot(s, stats["rank"], marker=".", color=PALETTE["blue"])
    a.axhline(1, color=PALETTE["red"], ls="--", lw=1, label="1 = collapsed to one direction")
    a.set_yscale("log")
    a.set_ylim(0.8, d)
    a.set_ylabel(f"effective rank of z (of D = {d})")
    a.set_title(f"rank {stats['rank'][0]:.1f} -> {stats['rank'][-1]:.1f}", fontsize=9)
    b.plot(s, stats["std"], marker=".", color=PALETTE["green"])
    b.axhline(1 / math.sqrt(d), color="k", ls="--", lw=1, label="1/sqrt(D): spread out")
    b.set_ylim(0, 1.1 / math.sqrt(d))
    b.set_ylabel("std of normalised z")
    b.set_title(f"std {stats['std'][-1]:.3f} (0 = one point)", fontsize=9)
    c.plot(s, stats["loss"], marker=".", color=PALETTE["orange"])
    c.set_ylim(0, max(2.0, 1.05 * float(np.max(stats["loss"]))))
    c.set_ylabel("held-out loss, 2 - 2 cos")
    c.set_title(f"loss {stats['loss'][-1]:.3f} (0 = the views agree)", fontsize=9)
    for ax in (a, b, c):
        ax.set_xlabel("training step")
    fig.legend(loc="outside lower center", ncols=2, fontsize=9)
    fig.suptitle(stats["label"], fontsize=10)
    return fig


def describe_byol_stats(st: dict[str, object]) -> str:
    """The explorer's one-line readout of :func:`byol_stats`."""
    return (f"{st['label']} | after {st['steps'][-1]} steps: effective rank {st['rank'][-1]:.1f} of "
            f"{st['dim']} | std of z {st['std'][-1]:.3f} (1/sqrt(D) = {1 / math.sqrt(st['dim']):.3f}) | "
            f"held-out loss {st['loss'][-1]:.3f}")


def byol_explorer(views, held_out, runs: dict | None = None, target: str = "stop-grad (SimSiam)",
                  predictor: bool = True, **kw):
    """BYOL/SimSiam explorer (notebook 09): the target (no stop-grad / SimSiam / EMA tau) and the predictor.

    Args:
        views: as in :func:`byol_stats`.
        held_out: as in :func:`byol_stats`.
        runs: :func:`byol_runs` precomputed (each move is then a redraw); a setting missing from
            it is trained on the move (about a second) and added.
        target: the slider's label at the start (one of :data:`TARGETS`).
        predictor: the checkbox at the start.
        **kw: passed on to :func:`byol_stats` (steps, seed, ...) for the missing settings.

    Returns:
        The ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    labels = dict(TARGETS)
    if target not in labels:
        raise ValueError(f"target must be one of {list(labels)}, got {target!r}")
    runs = {} if runs is None else runs

    def stats(setting, pred):
        key = (*setting, bool(pred))
        if key not in runs:
            runs[key] = byol_stats(views, held_out, *key, **kw)
        return runs[key]

    slider = W.SelectionSlider(options=list(TARGETS), value=labels[target], description="target",
                               continuous_update=False, layout=W.Layout(width="420px"),
                               style={"description_width": "50px"})
    box = W.Checkbox(value=predictor, description="predictor", indent=False)
    return explorer([slider, box], stats, describe=describe_byol_stats, plot=plot_byol_stats)
