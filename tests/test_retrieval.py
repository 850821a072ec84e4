"""EmbeddingIndex against NumPy brute force, save/load, errors; ranking metrics against direct
formulas written out per query."""
import numpy as np
import pytest
import torch

from cl_teach.ranking import (
    hit_rate_at_k,
    mean_average_precision,
    mean_reciprocal_rank,
    precision_at_k,
    ranking_report,
    recall_at_k,
)
from cl_teach.retrieval import EmbeddingIndex, brute_force_search


def clustered(n=600, d=16, centers=12, seed=0):
    """Real embeddings are clustered; random points make approximate search look bad."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, d))
    x = c[rng.integers(0, centers, n)] + 0.3 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_flat_equals_brute_force():
    x, q = clustered(), clustered(50, seed=1)
    s, ids = EmbeddingIndex().fit(x).search(q, k=10)
    s_ref, i_ref = brute_force_search(x, q, k=10)
    assert s.shape == ids.shape == (50, 10)
    np.testing.assert_allclose(s, s_ref, atol=1e-5)
    np.testing.assert_array_equal(ids, i_ref)


def test_brute_force_is_the_direct_formula():
    x, q = clustered(40), clustered(5, seed=2)
    s, i = brute_force_search(x, q, k=3)
    for a in range(5):
        sims = [float(np.dot(q[a].astype(np.float64), x[b])) for b in range(40)]
        best = sorted(range(40), key=lambda b: -sims[b])[:3]
        assert i[a].tolist() == best
        np.testing.assert_allclose(s[a], [sims[b] for b in best], atol=1e-6)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_find_most_true_neighbours(kind):
    x, q = clustered(2000), clustered(100, seed=3)
    _, ids = EmbeddingIndex(kind=kind, nprobe=4).fit(x).search(q, k=10)
    _, ref = brute_force_search(x, q, k=10)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids.tolist(), ref.tolist())])
    assert overlap > 0.8, overlap


def test_ivf_with_every_cell_probed_is_exact():
    x, q = clustered(800), clustered(30, seed=4)
    index = EmbeddingIndex(kind="ivf", nlist=8, nprobe=8).fit(x)
    np.testing.assert_array_equal(index.search(q, 5)[1], brute_force_search(x, q, 5)[1])


def test_ivf_trained_on_a_subsample_and_index_bytes():
    x, q = clustered(2000), clustered(50, seed=6)
    sub = EmbeddingIndex(kind="ivf", nlist=16, nprobe=16, train_size=400).fit(x)
    assert sub.index_.is_trained and len(sub) == 2000                # trained on 400, holds all
    np.testing.assert_array_equal(sub.search(q, 5)[1], brute_force_search(x, q, 5)[1])
    flat = EmbeddingIndex().fit(x)
    assert 2000 * 16 * 4 <= flat.index_bytes() < 2000 * 16 * 4 + 1024  # the vectors + a header
    assert sub.index_bytes() > flat.index_bytes()                    # + ids and centroids
    with pytest.raises(ValueError, match=r"train_size must be >= nlist \(16\), got 8"):
        EmbeddingIndex(kind="ivf", nlist=16, train_size=8).fit(x)
    with pytest.raises(ValueError, match="train_size must be an int >= 1"):
        EmbeddingIndex(kind="ivf", train_size=0).fit(x)
    with pytest.raises(RuntimeError, match="empty"):
        EmbeddingIndex().index_bytes()


def test_ids_are_kept_and_torch_inputs_work():
    x = clustered(100)
    ids = np.arange(100) * 7 + 1000
    index = EmbeddingIndex().fit(torch.from_numpy(x), ids=ids)
    _, got = index.search(torch.from_numpy(x[:5]), k=1)
    assert got[:, 0].tolist() == ids[:5].tolist()
    tags = np.array([f"tag{i}" for i in range(100)])
    _, got = EmbeddingIndex().fit(x, ids=tags).search(x[[3]], k=1)
    assert got[0, 0] == "tag3"


def test_normalize_gives_cosine():
    x = clustered(50) * np.linspace(0.5, 3, 50, dtype=np.float32)[:, None]
    s, _ = EmbeddingIndex(normalize=True).fit(x).search(x[:4] * 5, k=1)
    np.testing.assert_allclose(s[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_save_load_roundtrip(tmp_path, kind):
    x, q = clustered(500), clustered(20, seed=5)
    index = EmbeddingIndex(kind=kind).fit(x, ids=np.arange(500) + 10)
    index.save(tmp_path / "index.npz")
    again = EmbeddingIndex.load(tmp_path / "index.npz")
    assert again.kind == kind and len(again) == 500 and again.dim_ == 16
    for a, b in zip(index.search(q, 7), again.search(q, 7)):
        np.testing.assert_array_equal(a, b)


def test_errors_name_the_problem():
    x = clustered(30)
    with pytest.raises(RuntimeError, match="empty"):
        EmbeddingIndex().search(x, 1)
    with pytest.raises(RuntimeError, match="empty"):
        EmbeddingIndex().save("unused.npz")
    index = EmbeddingIndex().fit(x)
    with pytest.raises(ValueError, match="dimension 16"):
        index.search(np.ones((2, 8), np.float32), 1)
    with pytest.raises(ValueError, match=r"k must be <= .*\(30\), got 31"):
        index.search(x, 31)
    with pytest.raises(ValueError, match="k must be >= 1"):
        index.search(x, 0)
    with pytest.raises(TypeError, match="k must be an int"):
        index.search(x, 2.0)
    bad = x.copy(); bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="vectors must be finite"):
        EmbeddingIndex().fit(bad)
    with pytest.raises(ValueError, match="queries must be finite"):
        index.search(np.full((1, 16), np.inf, np.float32), 1)
    with pytest.raises(ValueError, match="non-empty"):
        EmbeddingIndex().fit(np.zeros((0, 16), np.float32))
    with pytest.raises(ValueError, match="2-d"):
        EmbeddingIndex().fit(np.zeros(16, np.float32))
    with pytest.raises(ValueError, match="kind must be one of"):
        EmbeddingIndex(kind="lsh").fit(x)
    with pytest.raises(ValueError, match=r"ids must have one entry per vector, shape \(30,\)"):
        EmbeddingIndex().fit(x, ids=np.arange(29))
    with pytest.raises(TypeError, match="NumPy array or a torch tensor"):
        EmbeddingIndex().fit(x.tolist())


# --- metrics: each against the textbook formula written out for one query at a time ----------

def random_ranking(seed=0, queries=40, n_items=30, k=10):
    rng = np.random.default_rng(seed)
    retrieved = np.stack([rng.permutation(n_items)[:k] for _ in range(queries)])
    relevant = [set(rng.choice(n_items, size=rng.integers(1, 4), replace=False).tolist())
                for _ in range(queries)]
    return retrieved, relevant


@pytest.mark.parametrize("k", [1, 3, 10])
def test_metrics_match_direct_formulas(k):
    retrieved, relevant = random_ranking()
    rec, prec, rr, ap, hit = [], [], [], [], []
    for row, rel in zip(retrieved.tolist(), relevant):
        top = row[:k]
        found = [r for r in top if r in rel]
        rec.append(len(found) / len(rel))
        prec.append(len(found) / k)
        hit.append(float(bool(found)))
        ranks = [j + 1 for j, r in enumerate(top) if r in rel]
        rr.append(1 / ranks[0] if ranks else 0.0)
        ap.append(sum((n + 1) / rank for n, rank in enumerate(ranks)) / len(rel))
    assert recall_at_k(retrieved, relevant, k) == pytest.approx(np.mean(rec))
    assert precision_at_k(retrieved, relevant, k) == pytest.approx(np.mean(prec))
    assert hit_rate_at_k(retrieved, relevant, k) == pytest.approx(np.mean(hit))
    assert mean_reciprocal_rank(retrieved, relevant, k) == pytest.approx(np.mean(rr))
    assert mean_average_precision(retrieved, relevant, k) == pytest.approx(np.mean(ap))


def test_metric_properties():
    retrieved, relevant = random_ranking(seed=1)
    recalls = [recall_at_k(retrieved, relevant, k) for k in range(1, 11)]
    assert all(a <= b + 1e-12 for a, b in zip(recalls, recalls[1:]))      # recall grows with k
    perfect = np.array([[1, 2, 0]]); rel = [{1, 2}]
    assert recall_at_k(perfect, rel, 2) == precision_at_k(perfect, rel, 2) == 1.0
    assert mean_average_precision(perfect, rel) == mean_reciprocal_rank(perfect, rel) == 1.0
    assert recall_at_k([[5, 5, 1]], [{5, 1}], 2) == 0.5                   # a duplicate counts once
    assert ranking_report(perfect, rel, ks=(1, 3)) == {"recall@1": 0.5, "recall@3": 1.0, "mrr": 1.0}


def test_metric_errors():
    with pytest.raises(ValueError, match="one collection per query"):
        recall_at_k([[1, 2]], [{1}, {2}])
    with pytest.raises(ValueError, match="query 1 has none"):
        recall_at_k([[1, 2], [1, 2]], [{1}, set()])
    with pytest.raises(ValueError, match=r"k must be <= the columns of retrieved \(2\), got 3"):
        recall_at_k([[1, 2]], [{1}], k=3)
    with pytest.raises(TypeError, match="k must be an int"):
        recall_at_k([[1, 2]], [{1}], k=1.0)
    with pytest.raises(ValueError, match="2-d"):
        recall_at_k([1, 2], [{1}])
