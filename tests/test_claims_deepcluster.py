"""The claim checks that notebook 08 adds for DeepCluster and SwAV's trade-off fail on broken variants.

Each test rebuilds one kind of check of notebooks/src/08_swav.py on small data: the inline
reassignment equals the package's (and a reassignment without whitening does not); the split
leaves no empty cluster where plain Lloyd leaves many (and a feature map that has not collapsed
gives Lloyd no empty clusters to show); consecutive clusterings keep few cluster ids (a k-means
that kept its numbering would fail); DeepCluster-style "features beat the baseline" intervals
(features that ignore the image do not); Sinkhorn's masses get closer to N / K with more rounds
(a Sinkhorn that ignores ``n_iters`` does not).
"""
import faiss
import numpy as np
import torch
from sklearn.metrics import normalized_mutual_info_score

from cl_teach.evaluation import evaluate_features
from cl_teach.losses import sinkhorn
from cl_teach.methods.deepcluster import cluster, split_empty


def _blobs(n=2000, d=16, k=10, seed=0):
    rng = np.random.default_rng(seed)
    return ((rng.normal(size=(k, d)) * 3)[rng.integers(0, k, n)] + rng.normal(size=(n, d))).astype(np.float32)


def _whiten(h, dim, eigen_power=-0.5, l2=True):
    x = np.ascontiguousarray(h, dtype=np.float32)
    pca = faiss.PCAMatrix(x.shape[1], dim, eigen_power)
    pca.train(x)
    x = pca.apply(x)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12) if l2 else x


def _pseudo_labels(h, k, dim, seed, **whiten):
    """The notebook's inline reassignment (PCA-whiten, L2, Faiss k-means, split empties)."""
    x = _whiten(h, dim, **whiten)
    km = faiss.Kmeans(dim, k, niter=20, seed=seed, max_points_per_centroid=10**7, min_points_per_centroid=1)
    km.train(x)
    return split_empty(x, km.centroids.copy(), km.index.search(x, 1)[1][:, 0], np.random.default_rng(seed))


def _lloyd_no_split(x, k, seed, niter=20):
    c = x[np.random.default_rng(seed).choice(len(x), k, replace=False)].copy()
    for _ in range(niter):
        y = (x @ c.T - 0.5 * (c * c).sum(1)).argmax(1)
        for j in np.unique(y):
            c[j] = x[y == j].mean(0)
    return y


def _empty(y, k):
    return int((np.bincount(y, minlength=k) == 0).sum())


def test_the_inline_reassignment_check_fails_without_whitening_or_normalisation():
    h = _blobs()
    labels = cluster(h, 30, dim=8, seed=0)
    assert np.array_equal(_pseudo_labels(h, 30, 8, 0), labels)
    assert not np.array_equal(_pseudo_labels(h, 30, 8, 0, eigen_power=0.0), labels)   # PCA, no whitening
    assert not np.array_equal(_pseudo_labels(h, 30, 8, 0, l2=False), labels)          # no L2
    assert not np.array_equal(_pseudo_labels(h, 30, 8, 1), labels)                    # another seed


def test_empty_cluster_check_needs_a_collapse_and_the_split():
    k, h = 100, _blobs()
    collapsed = h.copy()
    collapsed[np.random.default_rng(0).permutation(len(h))[:int(0.6 * len(h))]] = h.mean(0)
    x_c = _whiten(collapsed, 8)
    assert _empty(_lloyd_no_split(x_c, k, 0), k) > 10                 # the notebook's check holds ...
    assert _empty(cluster(collapsed, k, dim=8, seed=0), k) == 0
    # ... and fails where it should: features that have not collapsed leave Lloyd no empty cluster
    assert not _empty(_lloyd_no_split(_whiten(h, 8), k, 0), k) > 10
    # the final split is what empties the last clusters: Faiss's assignment alone keeps some
    km = faiss.Kmeans(8, k, niter=20, seed=0, max_points_per_centroid=10**7, min_points_per_centroid=1)
    km.train(x_c)
    assert sum(s["nsplit"] for s in km.iteration_stats) > 0           # Faiss splits inside k-means
    assert _empty(km.index.search(x_c, 1)[1][:, 0], k) > 0


def test_same_id_check_fails_for_a_clustering_that_kept_its_numbering():
    h = _blobs(k=30)
    a = cluster(h, 30, dim=8, seed=0)
    b = cluster(h + np.random.default_rng(1).normal(scale=0.05, size=h.shape).astype(np.float32), 30, dim=8,
                seed=1)                                               # next epoch: new seed, moved features
    assert normalized_mutual_info_score(a, b) > 0.8                    # the grouping survives ...
    assert (a == b).mean() < 0.1                                       # ... the ids do not: the check holds
    kept = cluster(h, 30, dim=8, seed=0)                               # broken: same seed, same features
    assert not (a == kept).mean() < 0.1


def test_features_that_ignore_the_image_do_not_beat_the_baseline():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 5, (1200,), generator=g)
    centers = torch.randn(5, 16, generator=g) * 2
    raw = centers[y] + torch.randn(1200, 16, generator=g) * 2           # a weak baseline
    good = centers[y] * 3 + torch.randn(1200, 16, generator=g)          # informative features
    const = torch.randn(1200, 16, generator=g)                         # h that ignores the image
    evals = {n: evaluate_features(f[:800], y[:800], f[800:], y[800:]) for n, f in
             (("raw", raw), ("good", good), ("const", const))}
    assert evals["good"].compare(evals["raw"], on="probe").low > 0
    assert not evals["const"].compare(evals["raw"], on="probe").low > 0
    assert not evals["raw"].compare(evals["raw"], on="knn").low > 0   # a model against itself


def test_mass_gap_check_fails_for_a_sinkhorn_that_ignores_n_iters():
    s = torch.randn(256, 30, generator=torch.Generator().manual_seed(0)) * 0.3

    def gap(fn):
        return {n: (fn(s, n).sum(0) - 256 / 30).abs().max().item() for n in (1, 3, 10)}

    g = gap(sinkhorn)
    assert g[1] > g[3] > g[10]
    g = gap(lambda s, n: sinkhorn(s, 1))                                # broken: always one round
    assert not g[1] > g[3] > g[10]
