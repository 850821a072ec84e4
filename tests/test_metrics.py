"""Metrics computed two ways: the kit's vs a direct float64 formula or scikit-learn."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cl_teach.metrics import LinearProbe, effective_rank, feature_std, knn_accuracy, singular_values
from cl_teach.models import embed


def ref_knn(train_f, train_y, test_f, test_y, k, t):
    """InstDisc's weighted kNN, one query at a time, in float64 NumPy."""
    a = train_f.double().numpy(); a /= np.linalg.norm(a, axis=1, keepdims=True)
    b = test_f.double().numpy(); b /= np.linalg.norm(b, axis=1, keepdims=True)
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    correct = 0
    for q, label in zip(b, test_y.numpy()):
        s = a @ q
        top = np.argsort(-s)[:k]
        votes = np.zeros(n_classes)
        for j in top:
            votes[train_y[j]] += math.exp(s[j] / t)
        correct += int(votes.argmax() == label)
    return correct / len(b)


def clustered(n, d=8, c=4, noise=1.0, seed=0):
    """n noisy points around c fixed centres (the same centres for every seed)."""
    centers = torch.randn(c, d, generator=torch.Generator().manual_seed(123)) * 2
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c, (n,), generator=g)
    return centers[y] + noise * torch.randn(n, d, generator=g), y


@pytest.mark.parametrize("k, t", [(1, 0.07), (5, 0.07), (20, 0.5)])
def test_knn_matches_direct_formula(k, t):
    xtr, ytr = clustered(300)
    xte, yte = clustered(120, seed=1)
    got = knn_accuracy(xtr, ytr, xte, yte, k=k, temperature=t, batch_size=50)
    assert got == pytest.approx(ref_knn(xtr, ytr, xte, yte, k, t), abs=1e-9)


def test_knn_matches_sklearn_weighted_cosine_neighbours():
    from sklearn.neighbors import KNeighborsClassifier
    xtr, ytr = clustered(400, seed=2)
    xte, yte = clustered(150, seed=3)
    t = 0.1
    # cosine distance d = 1 - s, so InstDisc's weight exp(s / t) = exp((1 - d) / t)
    clf = KNeighborsClassifier(n_neighbors=10, metric="cosine", algorithm="brute",
                               weights=lambda d: np.exp((1 - d) / t))
    sk = clf.fit(xtr.numpy(), ytr.numpy()).score(xte.numpy(), yte.numpy())
    assert knn_accuracy(xtr, ytr, xte, yte, k=10, temperature=t) == pytest.approx(sk, abs=1e-9)


def test_knn_is_scale_invariant_and_perfect_on_itself():
    x, y = clustered(50)
    assert knn_accuracy(x, y, x, y, k=1) == 1.0
    assert knn_accuracy(x, y, x * 7.0, y, k=3) == knn_accuracy(x, y, x, y, k=3)


def test_knn_bad_inputs():
    x, y = clustered(20)
    with pytest.raises(ValueError, match="k must be <="):
        knn_accuracy(x, y, x, y, k=21)
    with pytest.raises(ValueError, match="same dimension"):
        knn_accuracy(x, y, x[:, :3], y, k=1)
    with pytest.raises(ValueError, match="test_labels"):
        knn_accuracy(x, y, x, y.float(), k=1)
    with pytest.raises(ValueError, match="temperature"):
        knn_accuracy(x, y, x, y, k=1, temperature=0.0)


def test_linear_probe_learns_and_matches_sklearn():
    from sklearn.linear_model import LogisticRegression
    xtr, ytr = clustered(600, d=10, c=5, noise=1.5)
    xte, yte = clustered(300, d=10, c=5, noise=1.5, seed=1)
    probe = LinearProbe().fit(xtr, ytr)
    assert probe.n_classes_ == 5 and probe.linear_.weight.shape == (5, 10)
    ours = probe.score(xte, yte)
    mean, std = xtr.mean(0), xtr.std(0)
    sk = LogisticRegression(max_iter=1000).fit(((xtr - mean) / std).numpy(), ytr.numpy())
    theirs = sk.score(((xte - mean) / std).numpy(), yte.numpy())
    assert ours > 0.8 and abs(ours - theirs) < 0.03


def test_linear_probe_errors():
    with pytest.raises(RuntimeError, match="not fitted"):
        LinearProbe().predict(torch.randn(3, 2))
    with pytest.raises(ValueError, match="labels must be 1-d"):
        LinearProbe().fit(torch.randn(4, 2), torch.zeros(3, dtype=torch.long))


def ref_effective_rank(z):
    z = z.double().numpy(); z /= np.linalg.norm(z, axis=1, keepdims=True)
    s = np.linalg.svd(z, compute_uv=False)
    p = s / s.sum()
    p = p[p > 0]
    return math.exp(-(p * np.log(p)).sum())


def test_effective_rank_known_values_and_formula():
    assert effective_rank(torch.eye(6)).item() == pytest.approx(6.0, rel=1e-4)
    assert effective_rank(torch.ones(20, 5)).item() == pytest.approx(1.0, abs=1e-4)   # collapse
    z = torch.randn(200, 16) * torch.linspace(0.1, 3, 16)
    assert effective_rank(z).item() == pytest.approx(ref_effective_rank(z), rel=1e-4)
    # row scaling does not matter: rows are normalised first
    assert effective_rank(z * torch.rand(200, 1) * 10).item() == pytest.approx(effective_rank(z).item(),
                                                                               rel=1e-4)


def test_feature_std_known_values_and_formula():
    assert feature_std(torch.ones(10, 4)).item() == 0.0
    z = torch.randn(4000, 64, generator=torch.Generator().manual_seed(0))
    assert feature_std(z).item() == pytest.approx(1 / math.sqrt(64), rel=0.02)
    ref = F.normalize(z.double(), dim=1).numpy().std(axis=0, ddof=1).mean()
    assert feature_std(z).item() == pytest.approx(ref, rel=1e-5)
    with pytest.raises(ValueError, match="at least 2"):
        feature_std(torch.randn(1, 4))


def test_singular_values_descending_and_centred():
    z = torch.randn(50, 6)
    s = singular_values(z)
    assert torch.all(s[:-1] >= s[1:])
    assert torch.allclose(s, torch.linalg.svdvals(z - z.mean(0)), atol=1e-5)


def test_embed_batches_and_restores_mode():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).train()
    x = torch.randn(25, 3)
    out = embed(net, x, batch_size=7)
    assert out.shape == (25, 4) and net.training          # eval inside, train mode restored
    net.eval()
    assert torch.allclose(out, net(x), atol=1e-6)
