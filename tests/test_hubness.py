"""CSLS (``cl_teach.retrieval.csls_search``) against two independent implementations, its
properties, hubness it must reduce, fuzz cases and its errors.

References written here, not imported: the MUSE formula as its code computes it (mean of the
top-K similarities per row and per column, ``2 * scores - r_T[:, None] - r_S[None, :]``; Conneau
et al., ICLR 2018, facebookresearch/MUSE ``get_csls``) in torch, and a plain Python loop over
every pair.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cl_teach.retrieval import brute_force_search, csls_search


def muse_csls(vectors, queries, k_nn, pool=None):
    """(Q, N) CSLS scores the way MUSE computes them (torch, float64)."""
    x = F.normalize(torch.as_tensor(vectors, dtype=torch.float64), dim=1)
    q = F.normalize(torch.as_tensor(queries, dtype=torch.float64), dim=1)
    p = q if pool is None else F.normalize(torch.as_tensor(pool, dtype=torch.float64), dim=1)
    r_t = (q @ x.T).topk(k_nn, dim=1).values.mean(1)        # average_dist of each query
    r_s = (x @ p.T).topk(k_nn, dim=1).values.mean(1)        # average_dist of each vector
    return 2 * (q @ x.T) - r_t[:, None] - r_s[None, :]


def loop_csls(vectors, queries, k_nn, pool=None):
    """The same by the definition, one pair at a time in Python floats."""
    def cos(a, b):
        return sum(u * v for u, v in zip(a, b)) / math.sqrt(sum(u * u for u in a) * sum(v * v for v in b))
    vectors, queries = np.asarray(vectors).tolist(), np.asarray(queries).tolist()
    pool = queries if pool is None else np.asarray(pool).tolist()
    r_t = [sum(sorted((cos(x, y) for y in vectors), reverse=True)[:k_nn]) / k_nn for x in queries]
    r_s = [sum(sorted((cos(y, x) for x in pool), reverse=True)[:k_nn]) / k_nn for y in vectors]
    return np.array([[2 * cos(x, y) - r_t[i] - r_s[j] for j, y in enumerate(vectors)]
                     for i, x in enumerate(queries)])


def _data(seed, n=30, q=20, d=8, p=None):
    g = np.random.default_rng(seed)
    out = [g.normal(size=(n, d)), g.normal(size=(q, d))]
    return out + [g.normal(size=(p, d)) if p else None]


# ---------- equal to the references ----------

@pytest.mark.parametrize("seed,k_nn,pool", [(0, 10, None), (1, 1, None), (2, 5, 40), (3, 20, 25)])
def test_scores_and_ranks_equal_muse_and_the_loop(seed, k_nn, pool):
    x, q, p = _data(seed, p=pool)
    ref = muse_csls(x, q, k_nn, p).numpy()
    np.testing.assert_allclose(ref, loop_csls(x, q, k_nn, p), atol=1e-12)
    scores, pos = csls_search(x, q, k=x.shape[0], neighbours=k_nn, query_pool=p)
    np.testing.assert_allclose(scores, np.take_along_axis(ref, pos, 1), atol=1e-5)
    np.testing.assert_array_equal(pos, np.argsort(-ref, axis=1, kind="stable"))


def test_torch_tensors_and_float32_give_the_same_answer():
    x, q, _ = _data(4)
    s1, p1 = csls_search(x, q, k=5)
    s2, p2 = csls_search(torch.tensor(x, dtype=torch.float32), torch.tensor(q, dtype=torch.float32), k=5)
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_allclose(s1, s2, atol=1e-5)
    assert s1.dtype == np.float32 and p1.dtype == np.int64 and s1.shape == p1.shape == (20, 5)


# ---------- properties ----------

@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 25), q=st.integers(1, 25), d=st.integers(1, 6),
       data=st.data())
def test_properties(seed, n, q, d, data):
    x, qs, _ = _data(seed, n, q, d)
    k_nn = data.draw(st.integers(1, min(n, q)))
    k = data.draw(st.integers(1, n))
    scores, pos = csls_search(x, qs, k=k, neighbours=k_nn)
    assert (np.diff(scores, axis=1) <= 1e-6).all()                        # best first
    assert all(len(set(row)) == k for row in pos.tolist())               # k distinct candidates
    # scale invariance: cosine, so positive row scales change nothing
    g = np.random.default_rng(seed + 1)
    _, pos2 = csls_search(x * g.uniform(0.1, 10, (n, 1)), qs * g.uniform(0.1, 10, (q, 1)), k=k,
                          neighbours=k_nn)
    ref = muse_csls(x, qs, k_nn).numpy()
    # r_T(x) is one constant per query: the ranking is that of 2 cos - r_S (up to near-ties)
    full = np.take_along_axis(ref, pos, 1)
    np.testing.assert_allclose(full, np.take_along_axis(ref, pos2, 1), atol=1e-9)
    np.testing.assert_allclose(scores, full, atol=1e-5)


def test_with_equal_penalties_csls_ranks_as_cosine():
    """Candidates symmetric around the queries (equal r_S): CSLS and cosine give the same lists."""
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    circle = np.stack([np.cos(angles), np.sin(angles)], 1)               # queries = candidates
    _, cos_pos = brute_force_search(circle, circle + 0.01, k=12, normalize=True)
    _, csls_pos = csls_search(circle, circle + 0.01, k=12, neighbours=3)
    np.testing.assert_array_equal(cos_pos[:, 0], csls_pos[:, 0])


def test_a_hub_is_pushed_down():
    """Queries in a cone: the vector on its axis is in most cosine top-5 lists; CSLS cuts that."""
    g = np.random.default_rng(0)
    mu = 3.0 * np.eye(16)[:1]
    queries, vectors = g.normal(size=(400, 16)) + mu, g.normal(size=(100, 16))
    vectors[99] = mu[0]                                                   # row 99: the hub
    _, plain = brute_force_search(vectors, queries, k=5, normalize=True)
    _, csls = csls_search(vectors, queries, k=5)
    n_plain, n_csls = (np.bincount(p.ravel(), minlength=100) for p in (plain, csls))   # N_5
    assert n_plain[99] == n_plain.max() > 0.8 * len(queries)
    assert n_csls[99] < 0.8 * n_plain[99]
    assert n_plain.sum() == n_csls.sum() == 5 * len(queries)


@pytest.mark.parametrize("seed", [0, 1])
def test_csls_lowers_the_skew_of_the_k_occurrence(seed):
    """High dimension and a shared offset give a right-skewed N_10 (Radovanovic et al., 2010)."""
    from scipy.stats import skew
    g = np.random.default_rng(seed)
    mu = np.full(64, 64 ** -0.25)
    queries = g.normal(size=(1000, 64)) + mu
    vectors = g.normal(size=(200, 64)) * g.uniform(0.3, 1.5, (200, 1)) + mu
    _, plain = brute_force_search(vectors, queries, k=10, normalize=True)
    _, csls = csls_search(vectors, queries, k=10)
    n_plain, n_csls = (np.bincount(p.ravel(), minlength=200) for p in (plain, csls))   # N_10
    assert skew(n_plain) > 1.0
    assert skew(n_csls) < skew(n_plain) - 0.3
    assert n_csls.max() < 0.8 * n_plain.max()


def test_held_out_pool_is_used_for_the_penalty():
    x, q, p = _data(5, p=30)
    _, own = csls_search(x, q, k=30)
    _, held = csls_search(x, q, k=30, query_pool=p)
    np.testing.assert_array_equal(held, np.argsort(-muse_csls(x, q, 10, p).numpy(), 1, kind="stable"))
    assert not np.array_equal(own, held)


# ---------- errors ----------

@pytest.mark.parametrize("kwargs,exc,words", [
    (dict(k=31), ValueError, "k must be <= the number of vectors (30)"),
    (dict(k=0), ValueError, "k must be"),
    (dict(k=2.0), TypeError, "k must be an int"),
    (dict(k=2, neighbours=21), ValueError, "neighbours must be <="),
    (dict(k=2, neighbours=True), TypeError, "neighbours must be an int"),
    (dict(k=2, query_pool=np.zeros((5, 3))), ValueError, "query_pool must have dimension 8"),
    (dict(k=2, query_pool=[[1.0] * 8]), TypeError, "query_pool must be a NumPy array"),
    (dict(k=2, neighbours=6, query_pool=np.ones((5, 8))), ValueError, "query_pool rows"),
])
def test_clear_errors(kwargs, exc, words):
    x, q, _ = _data(6)
    with pytest.raises(exc) as e:
        csls_search(x, q, **kwargs)
    assert words in str(e.value), str(e.value)


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(which=st.sampled_from(["vectors", "queries", "query_pool"]),
       how=st.sampled_from(["nan", "inf", "1d", "3d", "empty", "dim", "list", "complex"]))
def test_fuzz_one_broken_argument_gives_an_error_that_names_it(which, how):
    x, q, p = _data(7, p=12)
    args = {"vectors": x, "queries": q, "query_pool": p}
    a = args[which].copy()
    broken = {"nan": lambda: np.where(np.arange(a.size).reshape(a.shape) == 3, np.nan, a),
              "inf": lambda: np.where(np.arange(a.size).reshape(a.shape) == 0, np.inf, a),
              "1d": lambda: a[0], "3d": lambda: a[None], "empty": lambda: a[:0],
              "dim": lambda: a[:, :5], "list": lambda: a.tolist(),
              "complex": lambda: a.astype(np.complex128)}[how]()
    args[which] = broken
    named = "queries" if (which, how) == ("vectors", "dim") else which   # D is checked against vectors
    with pytest.raises((ValueError, TypeError)) as e:
        csls_search(args["vectors"], args["queries"], k=3, neighbours=3, query_pool=args["query_pool"])
    assert named in str(e.value), (which, how, str(e.value))
