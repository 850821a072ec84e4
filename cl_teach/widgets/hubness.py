"""Hubness explorer (notebook 19): how hard CSLS pushes the hubs down, and what that does to N_10."""
from __future__ import annotations

import numpy as np

from .._validate import check_k, check_positive
from ..palette import PALETTE
from ..retrieval import _as_matrix, _normalize
from ._explorer import explorer


def hubness_stats(candidates, queries, query_pool, penalty: float = 0.5, neighbours: int = 10,
                  k: int = 10, n_hubs: int = 5) -> dict[str, object]:
    """The k-occurrence of every candidate, hubs pushed down by ``penalty`` (:func:`hubness_explorer`).

    Queries rank candidates by ``cos(x, y) - penalty * r_S(y)``, where r_S(y) is the mean cosine
    of candidate y to its ``neighbours`` nearest ``query_pool`` rows. Penalty 0 is plain cosine;
    penalty 0.5 ranks exactly as CSLS (Conneau et al., 2018: ``2 cos - r_T(x) - r_S(y)``, whose
    r_T(x) is one constant per query); 1 pushes twice as hard.

    Args:
        candidates: (N, D) what is retrieved (emoji pictures); rows are L2-normalised here.
        queries: (Q, D) the queries (test posts).
        query_pool: (P, D) the queries r_S is measured on (held-out posts).
        penalty: the weight of r_S (>= 0).
        neighbours: K of r_S (1 <= K <= P).
        k: the top-k whose occurrences are counted.
        n_hubs: the hubs named: the candidates with the largest N_k under plain cosine.

    Returns:
        dict with ``n_k`` (N,) occurrences, ``skewness`` (of n_k), ``max``, ``never`` (share of
        candidates in nobody's top-k), ``hub_share`` (share of queries whose top-k holds one of
        the ``n_hubs`` cosine hubs), ``penalty``, ``neighbours`` and ``k``.

    Raises:
        ValueError: on bad shapes, penalty or neighbours.

    Example:
        >>> from cl_teach.retrieval import csls_search
        >>> rng = np.random.default_rng(0)
        >>> c, q, p = rng.standard_normal((50, 8)), rng.standard_normal((80, 8)), rng.standard_normal((90, 8))
        >>> mine = hubness_stats(c, q, p, 0.5)["n_k"]
        >>> bool((mine == np.bincount(csls_search(c, q, 10, query_pool=p)[1].ravel(), minlength=50)).all())
        True
    """
    from scipy.stats import skew
    x = _normalize(_as_matrix("candidates", candidates).astype(np.float64))              # (N, D)
    q = _normalize(_as_matrix("queries", queries, dim=x.shape[1]).astype(np.float64))     # (Q, D)
    pool = _normalize(_as_matrix("query_pool", query_pool, dim=x.shape[1]).astype(np.float64))
    check_positive("penalty", penalty, allow_zero=True)
    neighbours = check_k("neighbours", neighbours, pool.shape[0], "the number of query_pool rows")
    k = check_k("k", k, x.shape[0], "the number of candidates")
    n = x.shape[0]
    r_s = -np.sort(-(pool @ x.T), axis=0)[:neighbours].mean(0)                          # (N,)
    cos = q @ x.T                                                                       # (Q, N)

    def top(scores):
        return np.argsort(-scores, axis=1, kind="stable")[:, :k]                        # (Q, k)

    n_k = np.bincount(top(cos - penalty * r_s).ravel(), minlength=n)
    hubs = np.argsort(-np.bincount(top(cos).ravel(), minlength=n), kind="stable")[:n_hubs]
    return {"n_k": n_k, "skewness": float(skew(n_k)), "max": int(n_k.max()),
            "never": float(np.mean(n_k == 0)),
            "hub_share": float(np.isin(top(cos - penalty * r_s), hubs).any(1).mean()),
            "penalty": float(penalty), "neighbours": int(neighbours), "k": int(k)}


def plot_hubness_stats(stats: dict[str, object]):
    """The candidates' k-occurrence, largest first, against the mean (no hubs: flat near it).

    Args:
        stats: the dict of :func:`hubness_stats`.

    Returns:
        A matplotlib Figure.
    """
    from matplotlib.figure import Figure
    n_k = np.sort(stats["n_k"])[::-1]
    fig = Figure(figsize=(8, 2.8), layout="constrained")
    ax = fig.subplots()
    ax.bar(np.arange(len(n_k)), n_k, width=1.0, color=PALETTE["blue"])
    ax.axhline(n_k.mean(), color="k", ls="--", lw=1, label=f"mean N_{stats['k']}")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_xlabel("candidates, most retrieved first")
    ax.set_ylabel(f"N_{stats['k']} (queries whose\ntop {stats['k']} holds it)")
    ax.legend(fontsize=9)
    ax.set_title(f"penalty {stats['penalty']:.2f} x r_S (0.5 = CSLS), K = {stats['neighbours']}: skewness "
                 f"{stats['skewness']:.2f}, largest {stats['max']}, never retrieved {stats['never']:.0%}",
                 fontsize=9)
    return fig


def hubness_explorer(candidates, queries, query_pool, penalty: float = 0.5, neighbours: int = 10):
    """Hubness explorer (notebook 19): the hub penalty's weight and neighbourhood.

    Move **penalty** from 0 (cosine) through 0.5 (CSLS) to 1, and **K**, the neighbourhood that
    measures how hub-like a candidate is; watch the k-occurrence flatten and the hubs leave the
    queries' lists.

    Args:
        candidates: (N, D) what is retrieved.
        queries: (Q, D) the queries.
        query_pool: (P, D) the held-out queries r_S is measured on.
        penalty: at the start (0.5: CSLS).
        neighbours: K at the start.

    Returns:
        The ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    n_pool = len(query_pool)
    weight = W.FloatSlider(value=penalty, min=0.0, max=1.0, step=0.05, description="penalty",
                           continuous_update=False)
    size = W.IntSlider(value=neighbours, min=1, max=min(100, n_pool), description="K",
                       continuous_update=False)
    return explorer(
        [weight, size], lambda p, kk: hubness_stats(candidates, queries, query_pool, p, kk),
        plot=plot_hubness_stats,
        describe=lambda st: (f"penalty = {st['penalty']:.2f} | K = {st['neighbours']} | N_10 skewness = "
                             f"{st['skewness']:.2f} | largest N_10 = {st['max']} | never retrieved = "
                             f"{st['never']:.1%} | queries holding a cosine hub = {st['hub_share']:.1%}"))
