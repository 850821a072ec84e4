"""Heads on top of an encoder: projectors g, predictors q, DINO's head, a tower over frozen features."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_positive, check_tensor

__all__ = ["mlp", "projector", "DINOHead", "FeatureTower"]


def mlp(in_dim: int, hidden_dim: int, out_dim: int, n_layers: int = 2,
        last_bn: bool = False) -> nn.Sequential:
    """Linear-BN-ReLU blocks then a Linear: SimCLR's projector g and BYOL's predictor q."""
    layers, d = [], in_dim
    for _ in range(n_layers - 1):
        layers += [nn.Linear(d, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True)]
        d = hidden_dim
    layers.append(nn.Linear(d, out_dim, bias=not last_bn))
    if last_bn:
        layers.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*layers)


def projector(in_dim: int, hidden_dim: int = 256, out_dim: int = 64, **kw) -> nn.Sequential:
    """g: the MLP projection head (SimCLR: 2 layers, out 128; out 64 here for CPU speed)."""
    return mlp(in_dim, hidden_dim, out_dim, **kw)


class DINOHead(nn.Module):
    """MLP to a bottleneck, L2-normalise, then a weight-normalised linear layer to K outputs.

    DINO's head, with the weight norm's scale fixed to 1 as in the authors' code.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 256, bottleneck_dim: int = 64):
        super().__init__()
        self.mlp = mlp(in_dim, hidden_dim, bottleneck_dim, n_layers=3)
        self.last = nn.Parameter(torch.randn(out_dim, bottleneck_dim) * 0.1)   # (K, B)

    def forward(self, h: torch.Tensor) -> torch.Tensor:             # (N, in_dim) -> (N, K)
        """Cosine of each normalised bottleneck to each of the K unit rows of ``last``: (N, K)."""
        return F.normalize(self.mlp(h), dim=1) @ F.normalize(self.last, dim=1).T


class FeatureTower(nn.Module):
    """A trainable tower over precomputed frozen features: (N, in_dim) -> (N, out_dim).

    ``hidden_dim=None`` gives the identity (only CLIP's projection then trains); otherwise a
    Linear-GELU-Linear MLP with a residual-free design, LayerNorm first (batch-size independent,
    unlike BatchNorm, which matters at the small batches of notebook 16).

    Example:
        >>> FeatureTower(8, hidden_dim=16, out_dim=4)(torch.rand(2, 8)).shape
        torch.Size([2, 4])
    """

    def __init__(self, in_dim: int, hidden_dim: int | None = 256, out_dim: int = 128):
        super().__init__()
        check_positive("in_dim", in_dim, integer=True)
        if hidden_dim is None:
            self.net, self.out_dim = nn.Identity(), in_dim
        else:
            self.net = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, hidden_dim), nn.GELU(),
                                     nn.Linear(hidden_dim, out_dim))
            self.out_dim = out_dim
        self.in_dim = in_dim

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """The tower's output (N, out_dim) for frozen features h (N, in_dim)."""
        check_tensor("h", h, ndim=2)
        if h.shape[1] != self.in_dim:
            raise ValueError(f"h must have shape (N, {self.in_dim}), got {tuple(h.shape)}")
        return self.net(h)
