"""The course's standard evaluation of a frozen model, and the fair baselines it must beat.

:func:`knn_and_probe` gives kNN and linear-probe accuracy *with the per-item outcomes*, so two
models compare on the same test items (:meth:`Evaluation.compare`, a paired bootstrap interval).
:func:`baselines` evaluates, under the same protocol, the two things a learned encoder must beat
to earn its name: the raw pixels and the untrained encoder with its BatchNorm statistics
re-estimated (an untrained net in eval mode with its initial statistics looks collapsed, 03).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .intervals import Interval, paired_difference
from .metrics import LinearProbe, knn_predict, recalibrate_batchnorm
from .models import embed

__all__ = ["Evaluation", "evaluate_features", "knn_and_probe", "baselines", "best_baseline", "RAW",
           "UNTRAINED"]

RAW, UNTRAINED = "raw pixels", "untrained f (BN re-estimated)"


@dataclass(frozen=True)
class Evaluation:
    """kNN and linear-probe accuracy on a test split, with the per-item outcomes (1 = right).

    Unpacks as the pair ``knn, probe = evaluation``.
    """

    knn_correct: torch.Tensor       # (M,) float, 1.0 where kNN is right
    probe_correct: torch.Tensor     # (M,) float, 1.0 where the linear probe is right

    @property
    def knn(self) -> float:
        """Accuracy of kNN on the test split: the mean of ``knn_correct``."""
        return self.knn_correct.mean().item()

    @property
    def probe(self) -> float:
        """Accuracy of the linear probe on the test split: the mean of ``probe_correct``."""
        return self.probe_correct.mean().item()

    def __iter__(self):
        return iter((self.knn, self.probe))

    def compare(self, other: Evaluation, on: str = "knn", **kwargs) -> Interval:
        """Self - other on the same test items (``on`` = "knn" or "probe"), paired bootstrap."""
        _check_on(on)
        mine, theirs = getattr(self, f"{on}_correct"), getattr(other, f"{on}_correct")
        return paired_difference(mine, theirs, **kwargs)

    def __repr__(self) -> str:
        return f"Evaluation(kNN {self.knn:.4f}, linear probe {self.probe:.4f}, n={self.knn_correct.numel()})"


def _check_on(on) -> None:
    if on not in ("knn", "probe"):
        raise ValueError(f"on must be 'knn' or 'probe', got {on!r}")


def _check_split(name: str, split) -> None:
    if not (hasattr(split, "x") and hasattr(split, "y")):
        raise TypeError(f"{name} must have .x (N, ...) inputs and .y (N,) labels, e.g. an "
                        f"ImageDataset, got {type(split).__name__}")


def evaluate_features(h_train: torch.Tensor, y_train: torch.Tensor, h_test: torch.Tensor,
                      y_test: torch.Tensor, k: int = 20) -> Evaluation:
    """:class:`Evaluation` of given features: kNN (k, cosine, weighted votes) and a linear probe."""
    knn = knn_predict(h_train, y_train, h_test, k=k)
    probe = LinearProbe().fit(h_train, y_train).predict(h_test)
    y = y_test.long()
    return Evaluation((knn == y).float(), (probe == y).float())


def knn_and_probe(model: nn.Module, train_set, test_set, k: int = 20) -> Evaluation:
    """The standard evaluation of a frozen model: kNN and linear-probe accuracy of ``model(x)``.

    Features of ``train_set.x`` are the kNN memory bank and the probe's training data;
    ``test_set.x`` are the queries. Both sets need ``.x`` and ``.y`` (e.g. ``ImageDataset``).
    Returns an :class:`Evaluation` (unpacks as ``knn, probe``).
    """
    _check_split("train_set", train_set)
    _check_split("test_set", test_set)
    return evaluate_features(embed(model, train_set.x), train_set.y, embed(model, test_set.x),
                             test_set.y, k=k)


def baselines(make_encoder: Callable[[], nn.Module] | nn.Module, train_set, test_set,
              k: int = 20) -> dict[str, Evaluation]:
    """The fair baselines of an image notebook, under the same kNN and linear-probe protocol.

    Args:
        make_encoder: the encoder class or a factory (``SmallCNN``, ``lambda: SmallCNN(pool=4)``)
            or an untrained instance: it is evaluated with its BN statistics re-estimated on
            ``train_set.x`` (no training).
        train_set: with ``.x`` and ``.y`` (the kNN memory bank and the probe's training data).
        test_set: with ``.x`` and ``.y`` (the queries).
        k: neighbours of the kNN vote.

    Returns:
        ``{RAW: Evaluation, UNTRAINED: Evaluation}``; :func:`best_baseline` picks the stronger.
    """
    _check_split("train_set", train_set)
    _check_split("test_set", test_set)
    encoder = make_encoder if isinstance(make_encoder, nn.Module) else make_encoder()
    if not isinstance(encoder, nn.Module):
        raise TypeError(f"make_encoder must be an nn.Module or return one, got {type(encoder).__name__}")
    raw = evaluate_features(train_set.x.flatten(1).float(), train_set.y,
                            test_set.x.flatten(1).float(), test_set.y, k=k)
    untrained = knn_and_probe(recalibrate_batchnorm(encoder, train_set.x), train_set, test_set, k=k)
    return {RAW: raw, UNTRAINED: untrained}


def best_baseline(results: dict[str, Evaluation], on: str = "knn") -> tuple:
    """``(name, Evaluation)`` of the stronger baseline by ``on`` ("knn" or "probe")."""
    _check_on(on)
    if not results:
        raise ValueError("results must hold at least one Evaluation, got an empty dict")
    return max(results.items(), key=lambda kv: getattr(kv[1], on))
