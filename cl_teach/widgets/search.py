"""Approximate-search explorer (notebook 18): Faiss's nprobe (IVF) or ef_search (HNSW) against recall."""
from __future__ import annotations

import time

import numpy as np

from ..palette import PALETTE
from ._explorer import explorer


def search_stats(index, vectors, queries, exact_ids, knob: int, k: int = 10) -> dict[str, object]:
    """Recall of the exact top-k at one setting of an approximate index (behind :func:`search_explorer`).

    Sets ``index.nprobe`` (IVF) or ``index.ef_search`` (HNSW) to ``knob``, searches the ``queries``
    rows of ``vectors`` for k + 1 neighbours, drops each query itself, and compares with
    ``exact_ids`` (the flat index's top-k, the query removed the same way). The time is the best
    of 3 batched searches: this machine's, at this moment, so it is reported, never compared.

    Args:
        index: a fitted :class:`cl_teach.retrieval.EmbeddingIndex` of kind ``"ivf"`` or ``"hnsw"``.
        vectors: (N, D) the indexed vectors.
        queries: (Q,) row numbers of ``vectors`` used as queries.
        exact_ids: (Q, k) the exact top-k of each query, itself removed.
        knob: nprobe (1 <= knob <= nlist) or ef_search (>= k + 1: the beam must hold the results).
        k: neighbours compared.

    Returns:
        dict with ``recall`` (mean share of the exact top-k returned), ``per_query`` (Q,) shares,
        ``scanned`` (IVF: mean share of the database in the visited cells; HNSW: None),
        ``ms_per_query``, ``knob``, ``knob_name``, ``k`` and ``n``.

    Raises:
        ValueError: on an exact index, a knob out of range, or ids of the wrong shape.

    Example:
        >>> from cl_teach.retrieval import EmbeddingIndex
        >>> x = np.random.default_rng(0).standard_normal((2000, 16)).astype(np.float32)
        >>> ivf = EmbeddingIndex(kind="ivf", nlist=16).fit(x)
        >>> q = np.arange(50)
        >>> exact = np.argsort(-(x[q] @ x.T), axis=1)[:, 1:11]
        >>> search_stats(ivf, x, q, exact, 16)["recall"] > search_stats(ivf, x, q, exact, 1)["recall"]
        True
    """
    kind = getattr(index, "kind", None)
    if kind not in ("ivf", "hnsw") or not hasattr(index, "index_"):
        raise ValueError(f"index must be a fitted EmbeddingIndex of kind 'ivf' or 'hnsw', got {index!r}")
    queries = np.asarray(queries)
    exact_ids = np.asarray(exact_ids)
    if exact_ids.shape != (len(queries), k):
        raise ValueError(f"exact_ids must be (Q, k) = ({len(queries)}, {k}), got {exact_ids.shape}")
    if kind == "ivf":
        nlist = index.index_.nlist
        if isinstance(knob, bool) or not isinstance(knob, (int, np.integer)) or not 1 <= knob <= nlist:
            raise ValueError(f"knob (nprobe) must be an int from 1 to nlist = {nlist}, got {knob!r}")
        index.nprobe = int(knob)
    else:
        if isinstance(knob, bool) or not isinstance(knob, (int, np.integer)) or knob < k + 1:
            raise ValueError(f"knob (ef_search) must be an int >= k + 1 = {k + 1}, got {knob!r}")
        index.ef_search = int(knob)
    xq = np.ascontiguousarray(vectors[queries], dtype=np.float32)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        _, ids = index.search(xq, k + 1)
        best = min(best, time.perf_counter() - t)
    rows = zip(ids.tolist(), queries.tolist(), strict=True)
    found = [[j for j in row if j != q][:k] for row, q in rows]              # the query itself removed
    per_query = np.array([len(set(a) & set(b)) / k for a, b in zip(found, exact_ids.tolist(), strict=True)])
    scanned = None
    if kind == "ivf":
        _, cells = index.index_.quantizer.search(xq, int(knob))
        sizes = np.array([index.index_.invlists.list_size(int(c)) for c in range(nlist)])
        scanned = float(sizes[cells].sum(1).mean() / index.ntotal_)
    return {"recall": float(per_query.mean()), "per_query": per_query, "scanned": scanned,
            "ms_per_query": 1000 * best / len(queries), "knob": int(knob),
            "knob_name": "nprobe" if kind == "ivf" else "ef_search", "k": k, "n": int(index.ntotal_)}


def plot_search_stats(stats: dict[str, object]):
    """Histogram of the per-query recall of the exact top-k.

    The mean hides the queries that lose most of their neighbours; the bars show them.

    Args:
        stats: the dict of :func:`search_stats`.

    Returns:
        A matplotlib Figure.
    """
    from matplotlib.figure import Figure
    k = stats["k"]
    fig = Figure(figsize=(8, 2.8), layout="constrained")
    ax = fig.subplots()
    counts = np.bincount(np.rint(stats["per_query"] * k).astype(int), minlength=k + 1)
    ax.bar(np.arange(k + 1), counts / counts.sum(), color=PALETTE["blue"])
    ax.set_xticks(range(k + 1))
    ax.set_xlabel(f"of the exact top-{k}, found by the index")
    ax.set_ylabel("share of the queries")
    scanned = "" if stats["scanned"] is None else f", {100 * stats['scanned']:.1f}% of the posts scanned"
    ax.set_title(f"{stats['knob_name']} = {stats['knob']}: recall {stats['recall']:.3f}{scanned}", fontsize=9)
    return fig


def search_explorer(index, vectors, queries, exact_ids, knob: int | None = None, k: int = 10):
    """Approximate-search explorer (notebook 18): move IVF's nprobe or HNSW's ef_search.

    The readout gives the recall of the exact top-k, the share of the database an IVF query scans
    and the time per query on this machine; the figure, how the recall is spread over the queries.

    Args:
        index: a fitted ``EmbeddingIndex`` of kind "ivf" or "hnsw" (its knob is changed).
        vectors: (N, D) the indexed vectors.
        queries: (Q,) row numbers of ``vectors`` used as queries.
        exact_ids: (Q, k) the exact top-k of each query, itself removed.
        knob: the setting at the start (default: the index's own).
        k: neighbours compared.

    Returns:
        The ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    if getattr(index, "kind", None) == "ivf" and hasattr(index, "index_"):
        nlist = index.index_.nlist
        options = sorted({*(2 ** i for i in range(int(np.log2(nlist)) + 1)), nlist})
        name, start = "nprobe", index.nprobe if knob is None else knob
    elif getattr(index, "kind", None) == "hnsw" and hasattr(index, "index_"):
        options, name = [k + 1, 16, 24, 32, 48, 64, 96, 128, 256], "ef_search"
        start = index.ef_search if knob is None else knob
    else:
        raise ValueError(f"index must be a fitted EmbeddingIndex of kind 'ivf' or 'hnsw', got {index!r}")
    options = sorted({*options, start})
    slider = W.SelectionSlider(options=options, value=start, description=name, continuous_update=False)
    return explorer(
        [slider], lambda v: search_stats(index, vectors, queries, exact_ids, v, k), plot=plot_search_stats,
        describe=lambda st: (f"{st['knob_name']} = {st['knob']} | recall of the exact top-{st['k']} = "
                             f"{st['recall']:.3f}"
                             + ("" if st["scanned"] is None else f" | scanned {100 * st['scanned']:.1f}%")
                             + f" | {st['ms_per_query']:.3f} ms per query (this machine, now)"))
