"""Gather explorer (notebook 20): what reaches each process's rows with and without the gather's gradient."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .._validate import check_pair, check_positive
from ..losses import nt_xent
from ..palette import PALETTE
from ._explorer import explorer

VARIANTS = (("gather", "global"), ("gather", "local"), ("gather_no_grad", "global"),
            ("gather_no_grad", "local"))


def _own_anchor_loss(z1: torch.Tensor, z2: torch.Tensor, tau: float, rank: int, n: int) -> torch.Tensor:
    """NT-Xent of process ``rank``'s 2n anchors (its rows of the gathered views) against all 2B views."""
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    mine = torch.arange(rank * n, (rank + 1) * n)
    own = torch.cat([mine, b + mine])
    sim = z[own] @ z.T / tau
    sim[torch.arange(2 * n), own] = float("-inf")
    return F.cross_entropy(sim, (own + b) % (2 * b))


def emulated_gradient(z1: torch.Tensor, z2: torch.Tensor, world_size: int, gather: str, loss: str,
                      tau: float = 0.1) -> torch.Tensor:
    """The gradient on the global batch's embeddings that W processes and DDP's average produce.

    Process r holds rows ``[r n, (r + 1) n)`` of both views (``n = B / W``) and computes its loss
    on the gathered views: the whole batch's NT-Xent (``loss="global"``) or only its own anchors'
    (``"local"``). With ``gather="gather"`` (autograd's all_gather) the backward sends every
    process's gradient with respect to a row back to the row's owner; with ``"gather_no_grad"``
    the other processes' rows are constants, so a process's rows get only its own loss's gradient.
    DDP then averages over the W processes. In float64.

    Args:
        z1: (B, D) the first views' embeddings of the global batch (B a multiple of W).
        z2: (B, D) the second views', row for row.
        world_size: W >= 1.
        gather: "gather" or "gather_no_grad".
        loss: "global" or "local".
        tau: NT-Xent's temperature.

    Returns:
        (2, B, D): the gradient on z1 and z2.

    Example:
        >>> z1, z2 = torch.randn(8, 4), torch.randn(8, 4)
        >>> right = emulated_gradient(z1, z2, 1, "gather", "global")
        >>> torch.allclose(emulated_gradient(z1, z2, 4, "gather_no_grad", "global"), right / 4)
        True
    """
    check_pair("z1", z1, "z2", z2)
    check_positive("world_size", world_size, integer=True)
    check_positive("tau", tau)
    if z1.shape[0] % world_size:
        raise ValueError(f"the batch ({z1.shape[0]} rows) must be a multiple of world_size, got {world_size}")
    if gather not in ("gather", "gather_no_grad"):
        raise ValueError(f"gather must be 'gather' or 'gather_no_grad', got {gather!r}")
    if loss not in ("global", "local"):
        raise ValueError(f"loss must be 'global' or 'local', got {loss!r}")
    leaf = torch.stack([z1, z2]).detach().double().requires_grad_(True)       # (2, B, D)
    b, n = z1.shape[0], z1.shape[0] // world_size
    total = torch.zeros_like(leaf)
    for rank in range(world_size):
        mine = torch.zeros(b, dtype=torch.bool)
        mine[rank * n:(rank + 1) * n] = True
        # gather_no_grad: the others' rows arrive as constants
        views = leaf if gather == "gather" else torch.where(mine[None, :, None], leaf, leaf.detach())
        value = (nt_xent(views[0], views[1], tau) if loss == "global"
                 else _own_anchor_loss(views[0], views[1], tau, rank, n))
        (grad,) = torch.autograd.grad(value, leaf)
        total += grad                                           # gather: all reach the owner; else
    return total / world_size                                   # only its own rows had a path


def gather_stats(z1: torch.Tensor, z2: torch.Tensor, world_size: int,
                 tau: float = 0.1) -> dict[str, object]:
    """Each of the four (gather, loss) variants against the one-process gradient, at W processes.

    Args:
        z1: (B, D) the first views' embeddings of the global batch.
        z2: (B, D) the second views', row for row.
        world_size: W (B a multiple of it).
        tau: NT-Xent's temperature.

    Returns:
        dict with ``ratio`` and ``cosine`` ({(gather, loss): |g| / |g_right| and cos(g, g_right)},
        g_right the gradient of one process on the whole batch), ``world_size``, ``per_process``
        (B / W) and ``tau``.

    Example:
        >>> st = gather_stats(torch.randn(16, 4), torch.randn(16, 4), 4)
        >>> round(st["ratio"]["gather_no_grad", "global"], 6), st["cosine"]["gather_no_grad", "local"] < 1
        (0.25, True)
    """
    right = emulated_gradient(z1, z2, 1, "gather", "global", tau).flatten()
    ratio, cosine = {}, {}
    for gather, loss in VARIANTS:
        g = emulated_gradient(z1, z2, world_size, gather, loss, tau).flatten()
        ratio[gather, loss] = (g.norm() / right.norm()).item()
        cosine[gather, loss] = F.cosine_similarity(g, right, dim=0).item()
    return {"ratio": ratio, "cosine": cosine, "world_size": world_size,
            "per_process": z1.shape[0] // world_size, "tau": tau}


def plot_gather_stats(stats: dict[str, object], sweep: dict[int, dict] | None = None):
    """The norm ratio and the cosine to the right gradient of the four variants, against W.

    Args:
        stats: the dict of :func:`gather_stats` at the chosen W.
        sweep: ``{W: gather_stats(...)}`` for the curves (default: the chosen W alone).

    Returns:
        A matplotlib Figure.
    """
    from matplotlib.figure import Figure
    sweep = sweep or {stats["world_size"]: stats}
    ws = sorted(sweep)
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    styles = {("gather", "global"): (PALETTE["blue"], "-", "o"),
              ("gather", "local"): (PALETTE["sky"], "--", "s"),
              ("gather_no_grad", "global"): (PALETTE["orange"], "-", "^"),
              ("gather_no_grad", "local"): (PALETTE["red"], "-", "v")}
    for key, (color, ls, marker) in styles.items():
        label = f"{key[0]} + {key[1]} loss"
        ax1.plot(ws, [sweep[w]["ratio"][key] for w in ws], color=color, ls=ls, marker=marker, ms=4,
                 label=label)
        ax2.plot(ws, [1 - sweep[w]["cosine"][key] for w in ws], color=color, ls=ls, marker=marker, ms=4,
                 label=label)
    for ax in (ax1, ax2):
        ax.axvline(stats["world_size"], color="0.6", lw=1, ls=":")
        ax.set_xscale("log", base=2)
        ax.set_xticks(ws, [str(w) for w in ws])
        ax.set_xlabel(f"processes W (global batch {stats['world_size'] * stats['per_process']})")
    ax1.plot(ws, [1 / w for w in ws], color="0.5", lw=0.8, ls=":", label="1 / W")
    ax1.set_yscale("log", base=2)
    ax1.set_yticks([1 / w for w in ws], ["1" if w == 1 else f"1/{w}" for w in ws])
    ax1.set_ylabel("|gradient| / |one process's gradient|")
    ax1.legend(fontsize=9, loc="lower left")
    ax1.set_title(f"W = {stats['world_size']}: the norms", fontsize=9)
    ax2.set_yscale("symlog", linthresh=1e-6)
    ax2.set_ylim(-1e-7, 2)
    ax2.set_ylabel("1 - cosine to one process's gradient")
    ax2.set_title("the directions (0: the right one)", fontsize=9)
    return fig


def gather_explorer(z1: torch.Tensor, z2: torch.Tensor, tau: float = 0.1, world_size: int = 2):
    """Gather explorer (notebook 20): split one global batch over W processes, four ways.

    Move **W**: with ``gather`` both losses give one process's gradient exactly; ``gather_no_grad``
    with the global loss gives it divided by W (AdamW does not notice), and with a local loss it
    turns away from it, more with every process added.

    Args:
        z1: (B, D) the first views' embeddings of one global batch (64 rows: the curves over W
            take a backward pass per process and W; a second or two).
        z2: (B, D) the second views', row for row.
        tau: NT-Xent's temperature.
        world_size: W at the start.

    Returns:
        The ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    b = z1.shape[0]
    sizes = [w for w in (1, 2, 4, 8, 16, 32, 64) if b % w == 0 and w <= b // 2]
    sweep = {w: gather_stats(z1, z2, w, tau) for w in sizes}
    w_slider = W.SelectionSlider(options=sizes, value=world_size, description="W",
                                 continuous_update=False)

    def describe(st):
        r, c = st["ratio"], st["cosine"]
        return (f"W = {st['world_size']} of N = {st['per_process']} | gather, global / local loss: "
                f"x{r['gather', 'global']:.3f} / x{r['gather', 'local']:.3f} | gather_no_grad + global: "
                f"x{r['gather_no_grad', 'global']:.3f} | gather_no_grad + local: "
                f"x{r['gather_no_grad', 'local']:.3f}, 1 - cos {1 - c['gather_no_grad', 'local']:.1e}")

    return explorer([w_slider], lambda w: sweep[w], describe=describe,
                    plot=lambda st: plot_gather_stats(st, sweep))
