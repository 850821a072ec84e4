"""Evaluation: alignment, uniformity, collapse monitors, kNN accuracy, linear probe, intervals.

All functions take (N, D) feature tensors; :func:`cl_teach.models.embed` turns images into them. The intervals
(:func:`paired_difference`, :func:`seed_interval`) live in :mod:`cl_teach.intervals`; the standard
evaluation of a frozen model against the fair baselines in :mod:`cl_teach.evaluation`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import check_embeddings, check_k, check_positive, check_same_dim, check_tensor
from .intervals import Interval, paired_difference, seed_interval  # noqa: F401 (re-exported)
from .losses.align_uniform import alignment, uniformity
from .models import device_of

__all__ = ["alignment", "uniformity", "feature_std", "effective_rank", "singular_values",
           "recalibrate_batchnorm", "knn_predict", "knn_accuracy", "LinearProbe",
           "Interval", "paired_difference", "seed_interval"]


def feature_std(z: torch.Tensor) -> torch.Tensor:
    """Mean over dimensions of the per-dimension std of L2-normalised embeddings.

    SimSiam's collapse monitor (Chen & He, 2021): about ``1/sqrt(D)`` for a healthy, spread-out
    embedding; 0 when every embedding is the same point.

    Example:
        >>> feature_std(torch.ones(10, 4)).item()
        0.0
    """
    check_embeddings("z", z)
    if z.shape[0] < 2:
        raise ValueError(f"z must hold at least 2 embeddings to take a std, got {tuple(z.shape)}")
    return F.normalize(z.float(), dim=1).std(dim=0).mean()


def singular_values(z: torch.Tensor, center: bool = True) -> torch.Tensor:
    """Singular values of the (N, D) embedding matrix, descending (the spectrum of notebook 03)."""
    check_embeddings("z", z)
    z = z.float()
    if center:
        z = z - z.mean(0, keepdim=True)
    return torch.linalg.svdvals(z)


def effective_rank(z: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """exp(entropy) of the normalised singular values (Roy & Vetterli, 2007; RankMe, 2023).

    The matrix is L2-normalised row-wise and not centred, so a complete collapse (all rows
    equal) gives 1 and D equally used directions give D.

    Example:
        >>> round(effective_rank(torch.eye(4)).item(), 3)
        4.0
    """
    check_embeddings("z", z)
    s = torch.linalg.svdvals(F.normalize(z.float(), dim=1))
    p = s / (s.sum() + eps) + eps
    return torch.exp(-(p * p.log()).sum())


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> nn.Module:
    """Reset every BatchNorm's running statistics and re-estimate them on ``x`` (no training).

    An untrained network in eval mode uses the initial running statistics (mean 0, var 1),
    which do not match its real activations: its embeddings then look nearly collapsed. To
    evaluate a *random* network fairly, re-estimate the statistics first. Returns ``model``.
    """
    check_tensor("x", x, floating=False, finite=False)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    was_training = model.training
    device = device_of(model)
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None                                          # cumulative average
    model.train()
    for i in range(0, x.shape[0], batch_size):
        model(x[i:i + batch_size].to(device))
    for bn, m in zip(bns, momenta, strict=True):
        bn.momentum = m
    model.train(was_training)
    return model


@torch.no_grad()
def knn_predict(train_features: torch.Tensor, train_labels: torch.Tensor,
                test_features: torch.Tensor, k: int = 20, temperature: float = 0.07,
                batch_size: int = 1024) -> torch.Tensor:
    """Weighted kNN predictions on cosine similarity (Wu et al., InstDisc, 2018).

    Each of the k nearest training features votes for its label with weight ``exp(s / T)``.

    Args:
        train_features: (N, D) the memory bank.
        train_labels: (N,) ints in [0, C).
        test_features: (M, D) queries.
        k: neighbours (<= N).
        temperature: T of the vote weights (InstDisc: 0.07).
        batch_size: queries per similarity matrix.

    Returns:
        (M,) predicted labels (int64): per item, so two models can be compared on the same items
        (:func:`cl_teach.intervals.paired_difference`).

    Example:
        >>> f = torch.eye(3); knn_predict(f, torch.tensor([0, 1, 2]), f, k=1).tolist()
        [0, 1, 2]
    """
    check_embeddings("train_features", train_features)
    check_embeddings("test_features", test_features)
    check_same_dim("train_features", train_features, "test_features", test_features)
    _check_labels("train_labels", train_labels, train_features.shape[0])
    check_k("k", k, train_features.shape[0], "the number of training features")
    check_positive("temperature", temperature)
    bank = F.normalize(train_features.float(), dim=1)               # (N, D)
    train_labels = train_labels.long()                              # int32 -> index dtype
    n_classes = int(train_labels.max()) + 1
    preds = []
    for i in range(0, test_features.shape[0], batch_size):
        q = F.normalize(test_features[i:i + batch_size].float(), dim=1)   # (B, D)
        sim, idx = (q @ bank.T).topk(k, dim=1)                      # (B, k)
        votes = torch.zeros(q.shape[0], n_classes)
        votes.scatter_add_(1, train_labels[idx], (sim / temperature).exp())
        preds.append(votes.argmax(1))
    return torch.cat(preds)


def _check_labels(name: str, y, n: int) -> None:
    if (not isinstance(y, torch.Tensor) or y.dim() != 1 or y.shape[0] != n
            or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool):
        raise ValueError(f"{name} must be a 1-d integer tensor of length {n}, got "
                         f"{getattr(y, 'shape', type(y).__name__)}")


def knn_accuracy(train_features: torch.Tensor, train_labels: torch.Tensor,
                 test_features: torch.Tensor, test_labels: torch.Tensor, k: int = 20,
                 temperature: float = 0.07, batch_size: int = 1024) -> float:
    """Accuracy in [0, 1] of :func:`knn_predict` on ``test_labels`` (M,).

    Example:
        >>> f = torch.eye(3); y = torch.tensor([0, 1, 2])
        >>> knn_accuracy(f, y, f, y, k=1)
        1.0
    """
    pred = knn_predict(train_features, train_labels, test_features, k, temperature, batch_size)  # checks
    _check_labels("test_labels", test_labels, test_features.shape[0])
    return (pred == test_labels.long()).sum().item() / test_features.shape[0]


class LinearProbe:
    """A linear classifier on frozen features (the standard SSL evaluation), scikit-learn style.

    Features are standardised with the training mean/std, then a multinomial logistic regression
    is fit full-batch with L-BFGS.

    Args:
        weight_decay: L2 penalty.
        max_iter: L-BFGS iterations.

    Example:
        >>> x = torch.randn(100, 5); y = (x[:, 0] > 0).long()
        >>> LinearProbe().fit(x, y).score(x, y) > 0.9
        True
    """

    def __init__(self, weight_decay: float = 1e-4, max_iter: int = 100):
        self.weight_decay, self.max_iter = weight_decay, max_iter

    def fit(self, features: torch.Tensor, labels: torch.Tensor) -> LinearProbe:
        """Standardise (N, D) features, fit the classifier on (N,) labels by L-BFGS; returns self."""
        check_embeddings("features", features)
        if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.is_complex():
            raise TypeError(f"labels must be an integer torch.Tensor of class indices, got "
                            f"{getattr(labels, 'dtype', type(labels).__name__)}")
        if labels.dim() != 1 or labels.shape[0] != features.shape[0]:
            raise ValueError(f"labels must be 1-d of length {features.shape[0]}, got {tuple(labels.shape)}")
        x = features.float()
        self.mean_, self.std_ = x.mean(0), x.std(0) + 1e-6
        x = (x - self.mean_) / self.std_
        self.n_classes_ = int(labels.max()) + 1
        with torch.enable_grad():
            self.linear_ = nn.Linear(x.shape[1], self.n_classes_)
            opt = torch.optim.LBFGS(self.linear_.parameters(), lr=1, max_iter=self.max_iter,
                                    history_size=10, line_search_fn="strong_wolfe")

            def closure():
                opt.zero_grad()
                loss = (F.cross_entropy(self.linear_(x), labels)
                        + self.weight_decay * self.linear_.weight.pow(2).sum())
                loss.backward()
                return loss

            opt.step(closure)
        return self

    @torch.no_grad()
    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted class indices (M,) of (M, D) features."""
        if not hasattr(self, "linear_"):
            raise RuntimeError("LinearProbe is not fitted: call fit(features, labels) first")
        check_embeddings("features", features)
        return self.linear_((features.float() - self.mean_) / self.std_).argmax(1)

    def score(self, features: torch.Tensor, labels: torch.Tensor) -> float:
        """Accuracy in [0, 1]."""
        return (self.predict(features) == labels).float().mean().item()
