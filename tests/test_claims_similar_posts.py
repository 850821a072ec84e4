"""The checks that notebook 18 (similar posts) asserts can fail.

Each test rebuilds one kind of check of the notebook on small data and shows that a broken variant
fails it: the inline inverted file against Faiss's IndexIVFFlat (a broken one that probes the
worst cells), and the paired P@10 claim "the trained tower beats the untrained one / TF-IDF" (a
"tower" with shuffled rows does not). ``ivf_search`` is copied from the notebook (tests never
import notebooks/src).
"""
import numpy as np

from cl_teach.intervals import paired_difference
from cl_teach.ranking import precision_at_k
from cl_teach.retrieval import EmbeddingIndex

# ---------- notebook 18's function, copied (padded if the probed cells hold < k); worst=True breaks it

def ivf_search(X, centroids, queries_x, nprobe, k, worst=False):
    cell = np.argmax(X @ centroids.T, axis=1)
    lists = [np.flatnonzero(cell == c) for c in range(len(centroids))]
    order = np.argsort(queries_x @ centroids.T if worst else -(queries_x @ centroids.T), axis=1)
    probe = order[:, :nprobe]
    scores, ids = [], []
    for q, cells in zip(queries_x, probe):
        cand = np.concatenate([lists[c] for c in cells])
        s = X[cand] @ q
        best = np.argsort(-s, kind="stable")[:k]
        scores.append(np.pad(s[best], (0, k - len(best)), constant_values=-np.inf))
        ids.append(np.pad(cand[best], (0, k - len(best)), constant_values=-1))
    return np.array(scores), np.array(ids)


def clustered(n=1200, d=16, clusters=12, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, d))
    y = rng.integers(clusters, size=n)
    x = centers[y] + 0.6 * rng.normal(size=(n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), y


def same_as_faiss(worst):
    X, _ = clustered()
    ivf = EmbeddingIndex(kind="ivf", nlist=16, nprobe=3).fit(X)
    centroids = ivf.index_.quantizer.reconstruct_n(0, ivf.index_.nlist)
    mine, _ = ivf_search(X, centroids, X[:200], nprobe=3, k=5, worst=worst)
    theirs, _ = ivf.search(X[:200], k=5)
    return np.isclose(mine, theirs, atol=1e-5).all(axis=1).mean()


def test_inline_ivf_equals_faiss():
    assert same_as_faiss(worst=False) >= 0.99


def test_an_ivf_that_probes_the_wrong_cells_fails_the_check():
    assert same_as_faiss(worst=True) < 0.99


def p10_claim(embedding_of, X, y, seed=0):
    """The notebook's claim: P@10 of `embedding_of(X)` minus that of a random projection."""
    relevant = [set(np.flatnonzero(y == y[i])) - {i} for i in range(len(y))]

    def p10(Z):
        _, ids = EmbeddingIndex(normalize=True).fit(Z).search(Z, 11)
        ids = np.array([[j for j in row if j != i][:10] for i, row in enumerate(ids.tolist())])
        return precision_at_k(ids, relevant, 10, per_query=True)

    rng = np.random.default_rng(seed)
    random_projection = X @ rng.normal(size=(X.shape[1], 8))
    return paired_difference(p10(embedding_of(X)), p10(random_projection), seed=seed)


def test_a_structure_keeping_tower_beats_a_random_projection():
    X, y = clustered(d=64)
    d = p10_claim(lambda x: x[:, :16], X, y)          # keeps most of the cluster signal
    assert d.low > 0, d


def test_a_tower_that_scrambles_the_posts_fails_the_claim():
    X, y = clustered(d=64)
    perm = np.random.default_rng(1).permutation(len(X))
    d = p10_claim(lambda x: x[perm], X, y)             # row i no longer belongs to post i
    assert not d.low > 0, d
