"""DeepCluster (Caron et al., ECCV 2018): k-means pseudo-labels of the features train a classifier."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_labels, check_positive, check_tensor
from ..distributed import broadcast, rank
from ..models import embed
from .base import Method


def split_empty(x: np.ndarray, centroids: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
    """(M,) labels where every empty cluster took part of another (the paper's rule).

    As Faiss's ``split_clusters`` (run between k-means iterations): a donor drawn ~ (size - 1)
    lends its centroid times 1 + eps, keeps it times 1 - eps (eps = +-1/1024 alternating over
    dimensions; ``centroids`` (K, D) updated in place); its points go to the nearer of the two
    (half each if one got none).
    """
    labels, k = labels.copy(), len(centroids)
    counts = np.bincount(labels, minlength=k)
    for c in np.flatnonzero(counts == 0):
        donor = rng.choice(k, p=(counts - 1).clip(0) / (counts - 1).clip(0).sum())
        rows = np.flatnonzero(labels == donor)
        delta = centroids[donor] * np.where(np.arange(centroids.shape[1]) % 2, -1, 1) / 1024
        side = (x[rows] - centroids[donor]) @ delta                 # > 0: nearer the + delta copy
        new = side > 0
        if new.all() or not new.any():                              # degenerate: split in half
            new = np.zeros(len(rows), bool)
            new[np.argsort(side, kind="stable")[len(rows) // 2:]] = True
        labels[rows[new]] = c
        centroids[c], centroids[donor] = centroids[donor] + delta, centroids[donor] - delta
        counts[c], counts[donor] = new.sum(), (~new).sum()
    return labels


def cluster(features, n_clusters: int, dim: int, seed: int = 0, niter: int = 20) -> np.ndarray:
    """(M,) k-means labels of (M, D) features PCA-whitened to ``dim`` and L2-normalised, as the paper.

    Faiss's ``PCAMatrix(eigen_power=-0.5)`` and ``Kmeans`` (seeded, every point used, as the
    authors' ``clustering.py``), then :func:`split_empty` on the final assignment.

    Example:
        >>> labels = cluster(np.random.default_rng(0).normal(size=(50, 8)), 5, dim=4)
        >>> labels.shape, bool(np.bincount(labels).min() > 0)
        ((50,), True)
    """
    import faiss
    x = np.ascontiguousarray(features, dtype=np.float32)
    faiss.omp_set_num_threads(torch.get_num_threads())
    pca = faiss.PCAMatrix(x.shape[1], dim, -0.5)                     # PCA + whitening
    pca.train(x)
    x = pca.apply(x)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    km = faiss.Kmeans(dim, n_clusters, niter=niter, seed=seed, max_points_per_centroid=10**7,
                      min_points_per_centroid=1)
    km.train(x)
    return split_empty(x, km.centroids.copy(), km.index.search(x, 1)[1][:, 0], np.random.default_rng(seed))


class DeepCluster(Method):
    """K-means of f(features_from) gives pseudo-labels; a linear classifier on f(x) learns them.

    Batches are ``(x, idx)``, augmented images and their rows in ``features_from``, as
    ``ViewLoader(x, [Augment()], y=torch.arange(len(x)))`` yields them. At construction and every
    ``reassign_every`` steps :meth:`reassign` clusters f(features_from) (eval mode, no
    augmentation) and re-initialises the classifier in place (N(0, 0.01^2), zero bias, as the
    authors): ``fit``'s optimiser keeps its Parameters, and ``after_step`` returns them so that
    ``fit`` clears their AdamW moments (as the authors' fresh SGD for the top layer starts
    afresh). Under ``torchrun`` rank 0 clusters and broadcasts the labels (no float can split
    the processes); the loss is a mean over local rows, whose DDP-averaged gradient is that of
    the global batch.

    Args:
        encoder: f, with an ``out_dim`` attribute.
        features_from: (M, C, H, W) images to cluster (held as a plain attribute, not a buffer).
        n_clusters: K (paper 10000 for ImageNet's 1000 classes; 100 for 10 classes).
        projection_dim: PCA width of the clustered features (paper 256; <= ``encoder.out_dim``).
        reassign_every: steps between clusterings (paper: one epoch).
        balanced: weight row i's loss by M / (K |cluster(i)|): in expectation the paper's
            uniform sampling over pseudo-classes.
        seed: of the r-th k-means (``seed + r``) and classifier init.
    """

    def __init__(self, encoder: nn.Module, features_from: torch.Tensor, n_clusters: int = 100,
                 projection_dim: int = 64, reassign_every: int = 100, balanced: bool = True, seed: int = 0):
        super().__init__(encoder)
        m = len(check_tensor("features_from", features_from, ndim=4))
        check_positive("reassign_every", reassign_every, integer=True)
        check_positive("seed", seed, integer=True, allow_zero=True)
        if not 2 <= check_positive("n_clusters", n_clusters, integer=True) <= m:
            raise ValueError(f"n_clusters must be in [2, len(features_from) = {m}], got {n_clusters}")
        if not check_positive("projection_dim", projection_dim, integer=True) <= min(encoder.out_dim, m - 1):
            raise ValueError(f"projection_dim must be <= encoder.out_dim ({encoder.out_dim}) and < "
                             f"len(features_from) ({m}), got {projection_dim}")
        self.images, self.n_clusters, self.projection_dim = features_from, n_clusters, projection_dim
        self.reassign_every, self.balanced, self.seed = reassign_every, bool(balanced), seed
        self.classifier = nn.Linear(encoder.out_dim, n_clusters)
        self.register_buffer("labels", torch.zeros(m, dtype=torch.long))            # (M,) pseudo-labels
        self.register_buffer("class_weights", torch.ones(n_clusters))               # (K,)
        self.register_buffer("reassignments", torch.zeros((), dtype=torch.long))
        self.reassign()

    @torch.no_grad()
    def reassign(self) -> None:
        """New pseudo-labels from k-means of f(features_from); the classifier re-initialised."""
        w, k, r = self.classifier.weight, self.n_clusters, int(self.reassignments)
        if rank() == 0:
            h = embed(self.encoder, self.images.to(w.dtype))                        # (M, out_dim)
            self.labels.copy_(torch.as_tensor(cluster(h, k, self.projection_dim, self.seed + r)))
        broadcast(self.labels)
        counts = torch.bincount(self.labels, minlength=k).to(w.dtype)               # (K,), all > 0
        self.class_weights.copy_(len(self.labels) / (k * counts) if self.balanced else 1)
        g = torch.Generator().manual_seed(self.seed + r)
        w.copy_(torch.randn(w.shape, generator=g, dtype=w.dtype) / 100)             # N(0, 0.01^2)
        self.classifier.bias.zero_()
        self.reassignments.add_(1)

    def training_step(self, batch) -> dict:
        """Cross-entropy of the classifier on f(x) against the pseudo-labels of rows ``idx``."""
        if not isinstance(batch, (list, tuple)) or len(batch) != 2:
            raise ValueError(f"batch must be a tuple (x, idx), images and their rows in features_from "
                             f"(ViewLoader(x, [aug], y=arange(M)) yields it), got {type(batch).__name__}")
        x, idx = check_tensor("x", batch[0], ndim=4), check_labels("idx", batch[1], len(batch[0]), of="x")
        if idx.min() < 0 or idx.max() >= len(self.labels):
            raise ValueError(f"idx must hold rows of features_from, in [0, {len(self.labels)}), got "
                             f"values in [{int(idx.min())}, {int(idx.max())}]")
        h = self.encoder(x)                                             # (N, out_dim)
        logits, y = self.classifier(h), self.labels[idx]                # (N, K), (N,)
        loss = (F.cross_entropy(logits, y, reduction="none") * self.class_weights[y]).mean()
        return {"loss": loss, "accuracy": (logits.argmax(1) == y).float().mean(), "z1": h.detach()}

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> list | None:
        """Every ``reassign_every`` steps (not after the last): :meth:`reassign`.

        Returns:
            The classifier's parameters when it was re-initialised (``fit`` then clears their
            optimiser state: stale Adam moments of the old clusters would steer the new ones),
            else None.
        """
        if (step + 1) % self.reassign_every == 0 and step + 1 < total_steps:
            self.reassign()
            return list(self.classifier.parameters())
        return None
