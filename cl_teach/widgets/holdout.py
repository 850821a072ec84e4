"""Held-out-size explorer (notebook 13): how many test items a claim against the baseline needs."""
from __future__ import annotations

import numpy as np
import torch

from .._validate import check_positive
from ..intervals import paired_difference
from ..palette import PALETTE
from ._explorer import explorer


def holdout_stats(evaluations: dict, baseline, n_items: int, on: str = "knn",
                  seed: int = 0) -> dict[str, object]:
    """Each method minus the baseline on ``n_items`` of the shared test items, paired bootstrap.

    The items are the first ``n_items`` of a permutation seeded ``seed``, kept in their original
    order, so at ``n_items`` = all of them the intervals are exactly ``Evaluation.compare``'s.

    Args:
        evaluations: ``{name: Evaluation}`` (``cl_teach.evaluation``), on the same M test items.
        baseline: the ``Evaluation`` to beat (the better baseline), on the same items.
        n_items: how many of the M items (10 <= n_items <= M).
        on: "knn" or "probe".
        seed: of the subset.

    Returns:
        dict with ``diffs`` ({name: Interval}, in points of accuracy as fractions), ``ahead`` (the
        names whose interval is above 0), ``behind`` (below 0), ``half_width_sd`` ({name: the
        standard deviation of the per-item differences, which gives the normal half-width
        1.96 sd / sqrt(n) at any n}), ``n_items``, ``n_total``, ``on``.

    Raises:
        ValueError: on an empty ``evaluations``, outcomes of different lengths, ``on`` not "knn" /
            "probe", or ``n_items`` outside [10, M].

    Example:
        >>> from cl_teach.evaluation import Evaluation
        >>> good = Evaluation(torch.tensor([1.0, 1, 1, 0] * 100), torch.ones(400))
        >>> base = Evaluation(torch.tensor([1.0, 0, 0, 0] * 100), torch.ones(400))
        >>> evals = {"good": good}
        >>> holdout_stats(evals, base, 400)["ahead"], holdout_stats(evals, base, 400)["behind"]
        (['good'], [])
    """
    if on not in ("knn", "probe"):
        raise ValueError(f"on must be 'knn' or 'probe', got {on!r}")
    if not evaluations:
        raise ValueError("evaluations must hold at least one {name: Evaluation}, got none")
    base = getattr(baseline, f"{on}_correct")
    total = base.numel()
    for name, ev in evaluations.items():
        if getattr(ev, f"{on}_correct").numel() != total:
            raise ValueError(f"evaluations[{name!r}] has {getattr(ev, f'{on}_correct').numel()} test items, "
                             f"the baseline {total}: they must be the same items")
    check_positive("n_items", n_items, integer=True)
    if not 10 <= n_items <= total:
        raise ValueError(f"n_items must be in [10, {total}] (the test items), got {n_items}")
    items = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n_items].sort().values
    diffs, sds = {}, {}
    for name, ev in evaluations.items():
        mine = getattr(ev, f"{on}_correct")
        diffs[name] = paired_difference(mine[items], base[items])
        sds[name] = float((mine - base).double().std())
    return {"diffs": diffs, "ahead": [n for n, d in diffs.items() if d.low > 0],
            "behind": [n for n, d in diffs.items() if d.high < 0], "half_width_sd": sds,
            "n_items": n_items, "n_total": total, "on": on}


def plot_holdout_stats(stats: dict[str, object], baseline_name: str = "the baseline"):
    """Left, each method minus the baseline at this n (95% interval); right, the half-widths against n.

    Args:
        stats: the dict of :func:`holdout_stats`.
        baseline_name: the baseline's name, for the labels.

    Returns:
        A matplotlib Figure.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter, ScalarFormatter
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1.2, 1])
    names = sorted(stats["diffs"], key=lambda n: stats["diffs"][n].estimate)
    y = np.arange(len(names))
    est = np.array([100 * stats["diffs"][n].estimate for n in names])
    err = np.array([[100 * (stats["diffs"][n].estimate - stats["diffs"][n].low) for n in names],
                    [100 * (stats["diffs"][n].high - stats["diffs"][n].estimate) for n in names]])
    colors = [PALETTE["green"] if n in stats["ahead"] else PALETTE["red"] if n in stats["behind"] else "0.6"
              for n in names]
    ax1.barh(y, est, xerr=err, color=colors, capsize=3, error_kw={"lw": 1})
    ax1.axvline(0, color="black", lw=1)
    ax1.set_yticks(y, names, fontsize=9)
    label = {"knn": "kNN", "probe": "linear probe"}[stats["on"]]
    ax1.set_xlabel(f"{label} accuracy minus {baseline_name} (points, 95% paired bootstrap)")
    ax1.set_title(f"{stats['n_items']} of {stats['n_total']} test items: {len(stats['ahead'])} ahead "
                  f"(green), {len(stats['behind'])} behind (red)", fontsize=9)
    n = np.geomspace(10, stats["n_total"], 100)
    for name in names:
        ax2.plot(n, 100 * 1.96 * stats["half_width_sd"][name] / np.sqrt(n), lw=1, color="0.7")
    widths = [100 * (stats["diffs"][m].high - stats["diffs"][m].low) / 2 for m in names]
    ax2.scatter([stats["n_items"]] * len(names), widths, c=colors, s=18, zorder=3,
                label="bootstrap half-widths, this n")
    ax2.plot([], [], color="0.7", label="1.96 sd / sqrt(n), per method")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    low, high = ax2.get_ylim()
    ax2.set_yticks([t for t in (0.5, 1, 2, 5, 10, 20, 50, 100) if low <= t <= high])
    ax2.yaxis.set_major_formatter(ScalarFormatter())
    ax2.yaxis.set_minor_formatter(NullFormatter())
    ax2.set_xlabel("test items n")
    ax2.set_ylabel("interval half-width (points)")
    ax2.legend(fontsize=9, loc="upper right")
    ax2.set_title("four times the items halve the interval", fontsize=9)
    return fig


def holdout_explorer(evaluations: dict, baselines: dict, seed: int = 0):
    """Held-out-size explorer (notebook 13): fewer test items, wider intervals, fewer claims.

    Move **n** down from all the test items: each method's interval against the better baseline
    widens as 1 / sqrt(n), and the methods that are "ahead" fall back to "no reliable difference";
    switch between kNN and the linear probe (each has its own better baseline).

    Args:
        evaluations: ``{name: Evaluation}`` of the methods, on the same test items.
        baselines: ``{"knn": (name, Evaluation), "probe": (name, Evaluation)}``, the better
            baseline per measure (``cl_teach.evaluation.best_baseline``).
        seed: of the subsets.

    Returns:
        The ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    total = next(iter(evaluations.values())).knn_correct.numel()
    sizes = sorted({int(round(x)) for x in np.geomspace(50, total, 12)} | {total})
    n_slider = W.SelectionSlider(options=sizes, value=total, description="test items",
                                 continuous_update=False)
    measure = W.ToggleButtons(options=[("kNN", "knn"), ("linear probe", "probe")], value="knn",
                              description="measure")

    def describe(st):
        name = baselines[st["on"]][0]
        label = {"knn": "kNN", "probe": "linear probe"}[st["on"]]
        return (f"{label}, n = {st['n_items']} of {st['n_total']} | ahead of {name}: "
                f"{', '.join(st['ahead']) or 'none'} | behind: {', '.join(st['behind']) or 'none'}")

    return explorer([n_slider, measure],
                    lambda n, on: holdout_stats(evaluations, baselines[on][1], n, on, seed),
                    describe=describe, plot=lambda st: plot_holdout_stats(st, baselines[st["on"]][0]))
