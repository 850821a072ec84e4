"""Nearest-neighbour explorer (notebook 14): a post's k nearest test posts under each system.

And the notebook's claim at that k: the share of the k nearest that share a hashtag, over all
queries, per system, with 95% intervals, and the systems' paired differences.
"""
from __future__ import annotations

import html
from collections.abc import Collection, Mapping, Sequence

import numpy as np

from .._validate import check_k, check_positive
from ..intervals import paired_difference
from ..palette import PALETTE
from ._explorer import explorer


def _rows(name: str, x) -> tuple[object, bool]:
    """A system's (M, D) matrix, rows L2-normalised: a SciPy sparse matrix stays sparse."""
    import scipy.sparse as sp
    from sklearn.preprocessing import normalize
    if hasattr(x, "detach"):                                        # a torch tensor
        x = x.detach().cpu().double().numpy()
    sparse = sp.issparse(x)
    if not sparse and not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a torch tensor, a NumPy array or a SciPy sparse matrix, "
                        f"got {type(x).__name__}")
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] == 0:
        raise ValueError(f"{name} must be a 2-d (M, D) matrix with M >= 2 posts, got shape {x.shape}")
    values = x.data if sparse else x
    if not np.issubdtype(values.dtype, np.number) or not np.isfinite(values).all():
        raise ValueError(f"{name} must hold finite real numbers")
    return normalize(x.astype(np.float64)), sparse


def _queries(queries, m: int) -> np.ndarray:
    q = np.asarray(queries)
    if q.ndim != 1 or q.size == 0 or not np.issubdtype(q.dtype, np.integer):
        raise ValueError(f"queries must be a non-empty 1-d sequence of post indices, got {queries!r:.80}")
    if q.min() < 0 or q.max() >= m or np.unique(q).size != q.size:
        raise ValueError(f"queries must be distinct post indices in [0, {m}), got values in "
                         f"[{q.min()}, {q.max()}]")
    return q


def _top(s: np.ndarray, k: int) -> np.ndarray:
    """Each row's k largest, best first, ties to the lower index: a stable argsort's first k.

    torch's top-k finds them (a full sort of every row is ~30x slower); the few rows with a tie
    at the k-th place are sorted in full.
    """
    import torch
    values, idx = (t.numpy() for t in torch.from_numpy(s).topk(k, dim=1))   # (R, k) each
    top = np.take_along_axis(idx, np.lexsort((idx, -values)), axis=1)        # ties: lower index first
    tied = np.flatnonzero((s >= values[:, -1:]).sum(1) > k)                  # a tie at the k-th place
    top[tied] = np.argsort(-s[tied], axis=1, kind="stable")[:, :k]
    return top


def neighbour_lists(systems: Mapping, queries: Sequence[int], k_max: int = 10,
                    chunk: int = 512) -> dict[str, np.ndarray]:
    """Each query's ``k_max`` nearest posts by cosine under each system, the query itself left out.

    Args:
        systems: name -> (M, D) the M posts under that system: a torch tensor, a NumPy array or a
            SciPy sparse matrix (TF-IDF); rows are L2-normalised here. Every system holds the same
            M posts in the same order.
        queries: (Q,) the indices of the query posts among the M.
        k_max: the longest list (1 <= k_max <= M - 1).
        chunk: queries scored at a time (memory: chunk x M floats).

    Returns:
        name -> (Q, k_max) int64 post indices, nearest first; ties go to the lower index.

    Raises:
        TypeError: when a system is not a matrix.
        ValueError: on an empty ``systems``, systems of different M, bad queries or k_max.

    Example:
        >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> neighbour_lists({"a": x}, [0, 2], k_max=2)["a"].tolist()
        [[1, 3], [3, 1]]
    """
    if not isinstance(systems, Mapping) or len(systems) == 0:
        raise ValueError(f"systems must be a non-empty dict of name -> (M, D) matrix, got "
                         f"{type(systems).__name__}")
    mats = {name: _rows(f"systems[{name!r}]", x) for name, x in systems.items()}
    sizes = {name: x.shape[0] for name, (x, _) in mats.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"systems must all hold the same posts (same M), got {sizes}")
    m = next(iter(sizes.values()))
    q = _queries(queries, m)
    k_max = check_k("k_max", k_max, m - 1, "the number of posts - 1")
    check_positive("chunk", chunk, integer=True)
    out = {}
    for name, (x, sparse) in mats.items():
        lists = []
        for start in range(0, q.size, chunk):
            rows = q[start:start + chunk]
            s = x[rows] @ x.T                                       # (chunk, M) cosines
            s = s.toarray() if sparse else np.asarray(s)
            s[np.arange(rows.size), rows] = -np.inf                 # not the query itself
            lists.append(_top(s, k_max))
        out[name] = np.concatenate(lists).astype(np.int64)
    return out


def neighbour_stats(lists: Mapping[str, np.ndarray], relevant: Sequence[Collection],
                    queries: Sequence[int], query: int = 0, k: int = 3, confidence: float = 0.95,
                    seed: int = 0) -> dict[str, object]:
    """How many of the k nearest posts share a hashtag, per system (behind :func:`neighbour_explorer`).

    For every query and system, the share of its ``k`` nearest posts that share a hashtag with it
    (precision@k), averaged over the queries, with a 95% t-interval over the queries
    (``scipy.stats.t``) for each k up to ``k_max``; and at the chosen ``k`` the difference of
    every two systems on the same queries with a paired bootstrap interval
    (:func:`cl_teach.intervals.paired_difference`).

    Args:
        lists: name -> (Q, k_max) nearest posts of each query, from :func:`neighbour_lists`.
        relevant: one collection per post (all M, as ``shared_label_relevance`` gives): the posts
            sharing a hashtag with it.
        queries: (Q,) the query posts, in the rows' order of ``lists``.
        query: the row (0 <= query < Q) whose neighbours are listed.
        k: the cut-off, 1 <= k <= k_max.
        confidence: of every interval.
        seed: of the bootstrap.

    Returns:
        dict with ``names``; ``ks`` (k_max,) 1..k_max; ``share``, ``low``, ``high``: name ->
        (k_max,) the mean share over queries at each k and its interval; ``per_query``: name ->
        (Q,) each query's share at ``k``; ``hit_per_query``: name -> (Q,) 1 where one of the k
        shares a hashtag (hit@k, the notebook's R@k); ``diffs``: (a, b) -> Interval of
        share(a) - share(b) at ``k`` for every later system a and earlier b; ``post`` (the
        query's post index), ``neighbours``: name -> [(post, shares a hashtag)] its k nearest;
        ``query``, ``k``, ``n_queries`` and ``confidence``.

    Raises:
        ValueError: on lists of different shapes, relevant or queries of the wrong length, a bad
            query, k or confidence.

    Example:
        >>> lists = {"a": np.array([[1, 2], [0, 2]]), "b": np.array([[2, 1], [2, 0]])}
        >>> st = neighbour_stats(lists, [{1}, {0}, set()], [0, 1], k=1)
        >>> st["share"]["a"].tolist(), st["share"]["b"].tolist(), st["neighbours"]["a"]
        ([1.0, 0.5], [0.0, 0.5], [(1, True)])
    """
    from scipy import stats
    if not isinstance(lists, Mapping) or len(lists) == 0:
        raise ValueError("lists must be a non-empty dict of name -> (Q, k_max) neighbours "
                         "(neighbour_lists)")
    arrays = {name: np.asarray(v) for name, v in lists.items()}
    shapes = {name: a.shape for name, a in arrays.items()}
    first = next(iter(shapes.values()))
    if len(first) != 2 or any(s != first for s in shapes.values()):
        raise ValueError(f"lists must all be (Q, k_max) arrays of one shape, got {shapes}")
    n_q, k_max = first
    q = _queries(queries, len(relevant))
    if q.size != n_q:
        raise ValueError(f"queries must hold one post per row of lists ({n_q}), got {q.size}")
    if isinstance(query, bool) or not isinstance(query, (int, np.integer)) or not 0 <= query < n_q:
        raise ValueError(f"query must be an int in [0, {n_q}) (a row of lists), got {query!r}")
    k = check_k("k", k, k_max, "the lists' length k_max")
    if isinstance(confidence, bool) or not isinstance(confidence, float) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    rel = [set(relevant[i]) for i in q]
    ks = np.arange(1, k_max + 1)
    share, low, high, per_query, hit = {}, {}, {}, {}, {}
    for name, a in arrays.items():
        hits = np.array([[j in r for j in row] for row, r in zip(a.tolist(), rel, strict=True)])
        prec = np.cumsum(hits, axis=1) / ks                         # (Q, k_max) share at each k
        mean, sem = prec.mean(0), stats.sem(prec, axis=0)
        lo, hi = stats.t.interval(confidence, df=n_q - 1, loc=mean, scale=np.where(sem > 0, sem, 1.0))
        share[name], low[name], high[name] = mean, np.where(sem > 0, lo, mean), np.where(sem > 0, hi, mean)
        per_query[name], hit[name] = prec[:, k - 1], hits[:, :k].any(1).astype(np.float64)
    names = list(arrays)
    diffs = {(b, a): paired_difference(per_query[b], per_query[a], confidence, seed=seed)
             for i, a in enumerate(names) for b in names[i + 1:]}
    neighbours = {name: [(int(j), int(j) in rel[query]) for j in a[query, :k]] for name, a in arrays.items()}
    return {"names": names, "ks": ks, "share": share, "low": low, "high": high, "per_query": per_query,
            "hit_per_query": hit, "diffs": diffs, "post": int(q[query]), "neighbours": neighbours,
            "query": query, "k": k, "n_queries": int(n_q), "confidence": confidence}


def plot_neighbour_stats(stats: dict[str, object]):
    """The share of the k nearest sharing a hashtag against k, and the paired differences at k.

    Left, the mean share over the queries against k, per system, with its interval, the chosen k
    marked; right, every two systems' paired difference at the chosen k, in points.

    Args:
        stats: the dict of :func:`neighbour_stats`.

    Returns:
        A matplotlib Figure.
    """
    from matplotlib.figure import Figure
    k, ks, pct = stats["k"], stats["ks"], f"{100 * stats['confidence']:.0f}%"
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1.2, 1])
    for i, name in enumerate(stats["names"]):
        color = f"C{i}"
        ax1.plot(ks, stats["share"][name], marker="o", ms=3, color=color, label=name)
        ax1.fill_between(ks, stats["low"][name], stats["high"][name], color=color, alpha=0.2, lw=0)
        ax1.plot([k], [stats["share"][name][k - 1]], marker="o", ms=8, color=color)
    ax1.axvline(k, color="0.4", ls=":", lw=1, label=f"k = {k}")
    ax1.set(xticks=ks, ylim=(0, None), xlabel="k, the nearest test posts", ylabel="share sharing a hashtag")
    ax1.legend(fontsize=9, loc="upper right")
    ax1.set_title(f"mean over {stats['n_queries']} queries, {pct} t-intervals", fontsize=9)
    pairs = list(stats["diffs"].items())
    for y, (_, d) in enumerate(pairs):
        color = PALETTE["green"] if d.low > 0 else PALETTE["red"] if d.high < 0 else "0.5"
        ax2.errorbar([100 * d.estimate], [y], fmt="o", color=color, capsize=4,
                     xerr=[[100 * (d.estimate - d.low)], [100 * (d.high - d.estimate)]])
    ax2.axvline(0, color="k", lw=1)
    ax2.set_yticks(range(len(pairs)), [f"{a}\nminus {b}" for (a, b), _ in pairs], fontsize=9)
    ax2.set(ylim=(len(pairs) - 0.4, -0.6), xlabel=f"difference of the shares at k = {k}, points")
    for color, label in ((PALETTE["green"], "first beats second"), (PALETTE["red"], "second beats first"),
                         ("0.5", "no reliable difference")):
        ax2.scatter([], [], color=color, label=label)
    ax2.legend(fontsize=9, loc="best")
    ax2.set_title(f"paired over the same queries, {pct} bootstrap", fontsize=9)
    return fig


_CELL = "white-space:nowrap;padding:0 12px 0 0;line-height:1.4"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _post(posts, tags, i: int, width: int) -> str:
    """``#hashtags# text`` of post i, in about ``width`` characters (the hashtags at most half)."""
    label = _cut("#" + "#, #".join(tags[i]) + "#", max(width // 2, 8))
    return f"<b>{html.escape(label)}</b> {html.escape(_cut(posts[i], max(width - len(label), 8)))}"


def describe_neighbour_stats(stats: dict[str, object], posts: Sequence[str], tags: Sequence[Sequence[str]],
                             width: int = 30) -> str:
    """The explorer's HTML readout of :func:`neighbour_stats`.

    The query post, its k nearest under each system (a tick: it shares a hashtag), then the mean
    shares over all queries and the paired verdicts.
    """
    k, names = stats["k"], stats["names"]
    head = "".join(f"<th style='text-align:left'>{html.escape(n)}: "
                   f"{sum(s for _, s in stats['neighbours'][n])} of {k}</th>" for n in names)
    body = "".join(
        "<tr>" + "".join(f"<td style='{_CELL}'>{'✓' if s else '✗'} {_post(posts, tags, j, width)}</td>"
                         for j, s in (stats["neighbours"][n][r] for n in names)) + "</tr>"
        for r in range(k))
    means = "; ".join(f"{html.escape(n)} {stats['share'][n][k - 1]:.3f} [{stats['low'][n][k - 1]:.3f}, "
                      f"{stats['high'][n][k - 1]:.3f}]" for n in names)
    verdicts = "; ".join(f"{html.escape(a)} minus {html.escape(b)} {d.points()} points: "
                         f"{html.escape(d.verdict(a, b))}" for (a, b), d in stats["diffs"].items())
    return (f"<div>query {stats['query']} of {stats['n_queries']}: "
            f"{_post(posts, tags, stats['post'], 80)}</div>"
            f"<table style='font-size:85%;line-height:1.4'><tr>{head}</tr>{body}</table>"
            f"<div>k = {k} | share of the {k} nearest sharing a hashtag, mean over "
            f"{stats['n_queries']} queries: {means}</div><div>{verdicts}</div>")


def neighbour_explorer(systems: Mapping, posts: Sequence[str], tags: Sequence[Sequence[str]],
                       queries: Sequence[int], relevant: Sequence[Collection], query: int = 0,
                       k: int = 3, k_max: int = 10, seed: int = 0):
    """Nearest-neighbour explorer (notebook 14): a query post and k.

    Move **query** to read one post's k nearest test posts under each system (a tick: it shares
    a hashtag) and **k** to watch the share of the k nearest that share a hashtag, over all the
    queries, and the paired verdicts between the systems at that k. The rankings are computed
    once, here; a move only counts.

    Args:
        systems: name -> (M, D) the test posts under that system (see :func:`neighbour_lists`).
        posts: the M posts' text.
        tags: the M posts' hashtags.
        queries: the query posts (those with a relevant post).
        relevant: one collection per post: the posts sharing a hashtag with it.
        query: the query row at the start.
        k: at the start.
        k_max: the largest k on the slider.
        seed: of the bootstrap.

    Returns:
        The ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    if len(posts) != len(tags) or len(posts) != len(relevant):
        raise ValueError(f"posts, tags and relevant must hold one entry per post, got {len(posts)}, "
                         f"{len(tags)} and {len(relevant)}")
    lists = neighbour_lists(systems, queries, k_max)
    pick = W.IntSlider(value=query, min=0, max=len(queries) - 1, description="query",
                       continuous_update=False)
    cut = W.IntSlider(value=k, min=1, max=k_max, description="k", continuous_update=False)
    return explorer([pick, cut], lambda i, kk: neighbour_stats(lists, relevant, queries, i, kk, seed=seed),
                    describe=lambda st: describe_neighbour_stats(st, posts, tags), plot=plot_neighbour_stats,
                    html=True)
