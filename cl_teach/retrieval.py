"""Nearest-neighbour search over embeddings (Faiss), checked against an exact NumPy search.

:class:`EmbeddingIndex` wraps three Faiss indexes behind one scikit-learn-style interface:

* ``"flat"``: exact search, every vector compared with every query (``IndexFlatIP``);
* ``"ivf"``: an inverted file (Jegou et al., 2011): k-means cells, only ``nprobe`` cells searched;
* ``"hnsw"``: a navigable small-world graph (Malkov & Yashunin, 2018), greedy walk with a beam
  of ``ef_search``.

Scores are inner products, so on L2-normalised embeddings they are cosine similarities
(``normalize=True`` normalises for you). :func:`brute_force_search` computes the same thing in
NumPy for checking; :func:`csls_search` re-scores it against hubs (CSLS, Conneau et al., 2018).
The metrics that judge a ranking are in :mod:`cl_teach.ranking`.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from ._validate import check_k

__all__ = ["EmbeddingIndex", "brute_force_search", "csls_search"]

KINDS = ("flat", "ivf", "hnsw")


def _as_matrix(name: str, x, dim: int | None = None) -> np.ndarray:
    """A (N, D) float32 C-contiguous NumPy matrix from an array or a torch tensor."""
    if hasattr(x, "detach"):                                        # a torch tensor
        x = x.detach().cpu()
        x = (x.float() if x.is_floating_point() else x).numpy()     # NumPy has no bfloat16
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array or a torch tensor, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-d (N, D) array, got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} must be finite, got {int((~np.isfinite(x)).sum())} NaN/inf value(s)")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} must have dimension {dim} (the index's), got shape {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32)


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def brute_force_search(vectors, queries, k: int, normalize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product in NumPy: the reference every index is checked against.

    Args:
        vectors: (N, D) the database.
        queries: (Q, D).
        k: 1 <= k <= N.
        normalize: L2-normalise both first (scores become cosine similarities).

    Returns:
        ``(scores, positions)``: float32 (Q, k) best first, and int64 (Q, k) row numbers.

    Example:
        >>> s, i = brute_force_search(np.eye(3), np.array([[0.0, 2.0, 1.0]]), k=2)
        >>> s.tolist(), i.tolist()
        ([[2.0, 1.0]], [[1, 2]])
    """
    x = _as_matrix("vectors", vectors)
    q = _as_matrix("queries", queries, dim=x.shape[1])
    k = check_k("k", k, x.shape[0], "the number of indexed vectors")
    if normalize:
        x, q = _normalize(x), _normalize(q)
    sims = q.astype(np.float64) @ x.astype(np.float64).T            # (Q, N)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]         # ties: lower row first
    return np.take_along_axis(sims, order, 1).astype(np.float32), order.astype(np.int64)


def csls_search(vectors, queries, k: int, neighbours: int = 10,
                query_pool=None) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by CSLS, cross-domain similarity local scaling: cosine with the hubs pushed down.

    ``CSLS(x, y) = 2 cos(x, y) - r_T(x) - r_S(y)`` (Conneau, Lample, Ranzato, Denoyer & Jegou,
    "Word translation without parallel data", ICLR 2018), where r_T(x) is the mean cosine of query
    x to its ``neighbours`` nearest vectors and r_S(y) the mean cosine of vector y to its
    ``neighbours`` nearest queries. A *hub*, a vector close to many queries, has a large r_S(y)
    and loses rank; r_T(x) is one constant per query, so it changes scores, not rankings.

    Args:
        vectors: (N, D) the candidates (target domain T), e.g. emoji pictures.
        queries: (Q, D) the queries (source domain S), e.g. posts.
        k: top-k to return, 1 <= k <= N.
        neighbours: K of the two neighbourhoods (the paper's 10), <= N and <= the pool size.
        query_pool: (P, D) the source-domain sample r_S is measured on; default ``queries``
            (pass held-out queries to keep the test queries out of the penalty).

    Returns:
        ``(scores, positions)``: float32 (Q, k) CSLS scores best first, int64 (Q, k) row numbers.

    Example:
        >>> v = np.array([[1.0, 0.0], [0.0, 1.0]])                  # row 0 is near every query
        >>> q = np.array([[1.0, 0.0], [1.0, 0.2], [1.0, 0.6], [1.0, 0.8]])
        >>> brute_force_search(v, q, k=1, normalize=True)[1].ravel().tolist()
        [0, 0, 0, 0]
        >>> csls_search(v, q, k=1, neighbours=2)[1].ravel().tolist()
        [0, 0, 0, 1]
    """
    x = _normalize(_as_matrix("vectors", vectors).astype(np.float64))            # (N, D)
    q = _normalize(_as_matrix("queries", queries, dim=x.shape[1]).astype(np.float64))
    pool = q if query_pool is None else _normalize(
        _as_matrix("query_pool", query_pool, dim=x.shape[1]).astype(np.float64))  # (P, D)
    k = check_k("k", k, x.shape[0], "the number of vectors")
    neighbours = check_k("neighbours", neighbours, min(x.shape[0], pool.shape[0]),
                         "the number of vectors and of query_pool rows")
    cos = q @ x.T                                                                # (Q, N)
    r_t = -np.sort(-cos, axis=1)[:, :neighbours].mean(1)                         # (Q,)
    r_s = -np.sort(-(pool @ x.T), axis=0)[:neighbours].mean(0)                   # (N,)
    csls = 2 * cos - r_t[:, None] - r_s[None, :]
    order = np.argsort(-csls, axis=1, kind="stable")[:, :k]                      # ties: lower row first
    return np.take_along_axis(csls, order, 1).astype(np.float32), order.astype(np.int64)


class EmbeddingIndex:
    """Top-k inner-product search over (N, D) embeddings, exact or approximate.

    Args:
        kind: ``"flat"`` (exact, the default), ``"ivf"`` or ``"hnsw"``.
        normalize: L2-normalise vectors and queries (cosine similarity). Default False: the
            caller's embeddings are usually normalised already.
        nlist: IVF cells; default about ``4 * sqrt(N)``, capped so each cell gets >= 39
            training points (Faiss's own rule of thumb).
        nprobe: IVF cells visited per query (more = slower and more exact).
        train_size: IVF only: train the k-means on a seeded random subsample of this many
            vectors (default None: all of them; Faiss itself keeps at most 256 per cell, and
            warns below 39). ``benchmarks/bench_faiss.py`` uses ``64 * nlist`` (256k at N = 1M).
        m: HNSW neighbours per node. ef_search / ef_construction: HNSW beam widths.
        threads: Faiss OpenMP threads for fit/search (default 1, the course's setting; Faiss's
            thread count is process-wide, so it is set before each call).

    Attributes (after ``fit``): ``index_`` (the Faiss index), ``ids_`` (N,), ``dim_``, ``ntotal_``.
    :meth:`index_bytes` is the index's size (its serialised form: vectors, graph or lists).

    Example:
        >>> x = np.eye(4, dtype=np.float32)
        >>> index = EmbeddingIndex().fit(x, ids=[10, 11, 12, 13])
        >>> scores, ids = index.search(x[[2]], k=2)
        >>> ids[0, 0], scores[0, 0]
        (np.int64(12), np.float32(1.0))
    """

    def __init__(self, kind: str = "flat", normalize: bool = False, nlist: int | None = None,
                 nprobe: int = 8, m: int = 32, ef_search: int = 64, ef_construction: int = 64,
                 threads: int = 1, train_size: int | None = None):
        self.kind, self.normalize, self.nlist, self.nprobe = kind, normalize, nlist, nprobe
        self.m, self.ef_search, self.ef_construction, self.threads = m, ef_search, ef_construction, threads
        self.train_size = train_size

    def _params(self) -> dict:
        return {k: getattr(self, k) for k in ("kind", "normalize", "nlist", "nprobe", "m", "ef_search",
                                               "ef_construction", "threads", "train_size")}

    def __repr__(self) -> str:
        size = f", ntotal={self.ntotal_}, dim={self.dim_}" if hasattr(self, "index_") else ""
        return f"EmbeddingIndex(kind={self.kind!r}{size})"

    def __len__(self) -> int:
        return getattr(self, "ntotal_", 0)

    def _check_params(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        for name in (("nprobe", "m", "ef_search", "ef_construction", "threads")
                     + tuple(k for k in ("nlist", "train_size") if getattr(self, k) is not None)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")

    def fit(self, vectors, ids: Sequence | None = None) -> EmbeddingIndex:
        """Index ``vectors`` (N, D); ``ids`` (N,) are returned by :meth:`search` (default 0..N-1)."""
        import faiss
        self._check_params()
        x = _as_matrix("vectors", vectors)
        n, d = x.shape
        if ids is None:
            ids = np.arange(n, dtype=np.int64)
        ids = np.asarray(ids)
        if ids.shape != (n,):
            raise ValueError(f"ids must have one entry per vector, shape ({n},), got shape {ids.shape}")
        if ids.dtype.kind not in "iuU":
            raise TypeError(f"ids must be integers or strings, got dtype {ids.dtype}")
        if self.normalize:
            x = _normalize(x)
        faiss.omp_set_num_threads(self.threads)
        if self.kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif self.kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, self.m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
        else:
            nlist = self.nlist or max(1, min(int(4 * np.sqrt(n)), n // 39))
            if nlist > n:
                raise ValueError(f"nlist must be <= the number of vectors ({n}), got {nlist}")
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = 0                                       # k-means is seeded: reruns agree
            train = x
            if self.train_size is not None and self.train_size < n:
                if self.train_size < nlist:
                    raise ValueError(f"train_size must be >= nlist ({nlist}), got {self.train_size}")
                rows = np.random.default_rng(0).choice(n, self.train_size, replace=False)
                train = x[np.sort(rows)]
            index.train(train)
        index.add(x)
        self.index_, self.ids_, self.dim_, self.ntotal_ = index, ids, d, n
        self._set_search_params()
        return self

    def _set_search_params(self) -> None:
        if self.kind == "ivf":
            self.index_.nprobe = min(self.nprobe, self.index_.nlist)
        elif self.kind == "hnsw":
            self.index_.hnsw.efSearch = self.ef_search

    def search(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best-scoring indexed vectors for each query.

        Args:
            queries: (Q, D) with the index's D.
            k: 1 <= k <= N.

        Returns:
            ``(scores, ids)``, each (Q, k), best first. An approximate index that finds fewer
            than k vectors pads with score ``-inf`` and id -1 (or "" for string ids).

        Raises:
            RuntimeError: before :meth:`fit`. ValueError: wrong dimension, k > N, NaN/inf.
        """
        if not hasattr(self, "index_"):
            raise RuntimeError("the index is empty: call fit(vectors) before search(queries, k)")
        import faiss
        q = _as_matrix("queries", queries, dim=self.dim_)
        k = check_k("k", k, self.ntotal_, "the number of indexed vectors")
        if self.normalize:
            q = _normalize(q)
        faiss.omp_set_num_threads(self.threads)
        self._set_search_params()
        scores, pos = self.index_.search(q, k)                      # (Q, k) each
        missing = pos < 0
        ids = self.ids_[np.where(missing, 0, pos)]
        if missing.any():
            ids[missing] = "" if self.ids_.dtype.kind == "U" else -1
            scores[missing] = -np.inf
        return scores, ids

    def index_bytes(self) -> int:
        """Bytes of the Faiss index: the length of its serialised form (what it holds in memory)."""
        if not hasattr(self, "index_"):
            raise RuntimeError("the index is empty: call fit(vectors) before index_bytes()")
        import faiss
        return int(faiss.serialize_index(self.index_).nbytes)

    def save(self, path: str | os.PathLike) -> None:
        """Write the index, its ids and settings to one ``.npz`` file (no pickle)."""
        if not hasattr(self, "index_"):
            raise RuntimeError("the index is empty: call fit(vectors) before save(path)")
        import faiss
        with open(path, "wb") as f:
            np.savez(f, index=faiss.serialize_index(self.index_), ids=self.ids_,
                     params=np.array(json.dumps(self._params())))

    @classmethod
    def load(cls, path: str | os.PathLike) -> EmbeddingIndex:
        """Read an index written by :meth:`save`."""
        import faiss
        with np.load(path, allow_pickle=False) as f:
            self = cls(**json.loads(str(f["params"])))
            self.index_ = faiss.deserialize_index(f["index"])
            self.ids_ = f["ids"]
        self.dim_, self.ntotal_ = self.index_.d, self.index_.ntotal
        self._set_search_params()
        return self
