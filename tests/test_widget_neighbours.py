"""The numbers behind notebook 14's nearest-neighbour explorer (the browser test drives the widget)."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from cl_teach.intervals import paired_difference
from cl_teach.ranking import hit_rate_at_k, precision_at_k, shared_label_relevance
from cl_teach.widgets import neighbour_lists, neighbour_stats, plot_neighbour_stats
from cl_teach.widgets.neighbours import describe_neighbour_stats


def corpus(m=300, d=16, n_tags=12, seed=0):
    """m posts with one or two of n_tags hashtags; a post's embedding leans towards its first tag's
    direction (so neighbours share hashtags more often than chance)."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, n_tags, m)
    tags = [[f"t{a}"] + ([f"t{b}"] if rng.random() < 0.3 else [])
            for a, b in zip(first, rng.integers(0, n_tags, m), strict=True)]
    centres = rng.standard_normal((n_tags, d))
    z = torch.tensor(centres[first] + 1.5 * rng.standard_normal((m, d)))
    relevant = shared_label_relevance(tags)
    queries = [i for i, r in enumerate(relevant) if r]
    return z, tags, relevant, queries


def reference_lists(z, queries, k):
    """Top-k by cosine in torch, the query itself masked: an independent ranking."""
    z = F.normalize(torch.as_tensor(z, dtype=torch.float64), dim=1)
    s = z[queries] @ z.T
    s[torch.arange(len(queries)), torch.tensor(queries)] = -float("inf")
    return s.topk(k, dim=1).indices.numpy()


def agrees(st, lists, relevant, queries):
    """The stats' shares and hits are precision@k and hit@k of the ranking package, at every k."""
    rel = [relevant[i] for i in queries]
    for name, a in lists.items():
        for k in st["ks"]:
            if not np.isclose(st["share"][name][k - 1], precision_at_k(a, rel, int(k)), atol=1e-12):
                return False
        if not np.array_equal(st["per_query"][name], precision_at_k(a, rel, st["k"], per_query=True)):
            return False
        if not np.array_equal(st["hit_per_query"][name], hit_rate_at_k(a, rel, st["k"], per_query=True)):
            return False
    return True


def test_neighbour_lists_match_an_independent_ranking_sparse_or_dense():
    z, _, _, queries = corpus()
    lists = neighbour_lists({"dense": z, "numpy": z.numpy(), "sparse": sp.csr_matrix(z.numpy())},
                            queries, k_max=7, chunk=50)
    ref = reference_lists(z, queries, 7)
    for a in lists.values():
        assert a.shape == (len(queries), 7) and a.dtype == np.int64
        assert np.array_equal(a, ref)
        assert not (a == np.asarray(queries)[:, None]).any()                 # never the query itself
    dup = torch.cat([z[:1], z])                                              # post 1 = post 0 exactly
    assert neighbour_lists({"a": dup}, [0], 1)["a"][0, 0] == 1               # its exact copy first
    assert neighbour_lists({"a": dup}, [1], 1)["a"][0, 0] == 0


def test_neighbour_stats_are_precision_and_hit_at_k_and_reject_a_broken_variant():
    z, tags, relevant, queries = corpus()
    noise = torch.randn(len(z), 16, generator=torch.Generator().manual_seed(1))
    lists = neighbour_lists({"good": z, "noise": noise}, queries)
    st = neighbour_stats(lists, relevant, queries, query=4, k=5, seed=3)
    assert agrees(st, lists, relevant, queries)
    broken = dict(st, share={n: np.array([hit_rate_at_k(a, [relevant[i] for i in queries], int(k))
                                          for k in st["ks"]]) for n, a in lists.items()})
    assert not agrees(broken, lists, relevant, queries)                      # hit rate is not the share
    assert st["share"]["good"][4] > st["share"]["noise"][4]
    d = st["diffs"][("noise", "good")]                                       # later minus earlier
    ref = paired_difference(st["per_query"]["noise"], st["per_query"]["good"], seed=3)
    assert (d.estimate, d.low, d.high) == (ref.estimate, ref.low, ref.high) and d.high < 0
    for name in lists:
        assert (st["low"][name] <= st["share"][name]).all() and (st["share"][name] <= st["high"][name]).all()
        assert st["high"][name][0] - st["low"][name][0] < 0.2
    i = queries[4]
    assert st["post"] == i
    assert st["neighbours"]["good"] == [(int(j), int(j) in relevant[i]) for j in lists["good"][4, :5]]
    k1 = neighbour_stats(lists, relevant, queries, k=1)
    assert np.array_equal(k1["per_query"]["good"], k1["hit_per_query"]["good"])   # at k = 1: share = hit
    text = describe_neighbour_stats(st, ["<b>&" + str(j) for j in range(len(z))], tags)
    assert "&lt;b&gt;&amp;" in text and "<b>&" not in text                  # post text is escaped
    assert text.count("✓") == sum(s for n in lists for _, s in st["neighbours"][n])
    fig = plot_neighbour_stats(st)
    assert fig.axes[0].get_xlabel() and fig.axes[1].get_xlabel() and fig.axes[0].get_legend()


def test_neighbour_stats_bad_input():
    z, _, relevant, queries = corpus(m=60)
    lists = neighbour_lists({"a": z}, queries, k_max=4)
    for kwargs, match in (({"k": 0}, "k"), ({"k": 5}, "k"), ({"query": -1}, "query"),
                          ({"query": len(queries)}, "query"), ({"confidence": 1.5}, "confidence")):
        with pytest.raises(ValueError, match=match):
            neighbour_stats(lists, relevant, queries, **kwargs)
    with pytest.raises(ValueError, match="queries"):
        neighbour_stats(lists, relevant, queries[:-1])
    with pytest.raises(ValueError, match="lists"):
        neighbour_stats({"a": lists["a"], "b": lists["a"][:, :2]}, relevant, queries)
    with pytest.raises(ValueError, match="systems"):
        neighbour_lists({}, queries)
    with pytest.raises(ValueError, match="same posts"):
        neighbour_lists({"a": z, "b": z[:-1]}, queries)
    with pytest.raises(ValueError, match="queries"):
        neighbour_lists({"a": z}, [0, 60])
    with pytest.raises(ValueError, match="queries"):
        neighbour_lists({"a": z}, [1, 1])
    with pytest.raises(ValueError, match="k_max"):
        neighbour_lists({"a": z}, queries, k_max=60)
    with pytest.raises(TypeError, match="systems"):
        neighbour_lists({"a": [[1.0, 2.0]]}, [0])
    with pytest.raises(ValueError, match="finite"):
        neighbour_lists({"a": z.clone().fill_(float("nan"))}, queries)


def test_neighbour_lists_break_ties_like_a_stable_sort():
    """Many posts at exactly the same distance (duplicates, integer vectors): the fast top-k must
    give a stable argsort's first k (ties to the lower index), not whichever order torch returns."""
    from sklearn.preprocessing import normalize
    x = torch.randint(0, 3, (120, 3), generator=torch.Generator().manual_seed(0)).double() + 0.0
    x[x.sum(1) == 0] = 1.0
    queries = list(range(0, 120, 3))
    z = normalize(x.numpy())
    s = z[queries] @ z.T
    s[np.arange(len(queries)), queries] = -np.inf
    ref = np.argsort(-s, axis=1, kind="stable")[:, :9]
    assert np.array_equal(neighbour_lists({"a": x}, queries, k_max=9)["a"], ref)
