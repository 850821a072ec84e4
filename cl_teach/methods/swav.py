"""SwAV (Caron et al., NeurIPS 2020): swap the cluster assignments of two views."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..distributed import gather
from ..losses import swav_loss
from ..models import projector
from .base import Method, check_views


class SwAV(Method):
    """z = normalize(g(f(x))); scores z C^T against K prototypes C; Sinkhorn codes; swapped CE.

    The batch is a tuple of views: the first ``n_global`` are full-size, the rest are the small
    multi-crop views (see ``cl_teach.augment.multi_crop``; the encoder pools adaptively, so any
    size works). Codes are computed for the global views only and predicted from every other view.

    Args:
        encoder: f, with an ``out_dim`` attribute.
        n_prototypes: K (paper: 3000 on ImageNet; 30 here, a few per Fashion-MNIST class).
        projection_dim: output width of g (paper 128).
        hidden_dim: hidden width of g (paper 2048).
        temperature: of the predictions (paper 0.1).
        epsilon: entropic regularisation of Sinkhorn (paper 0.05).
        n_iters: Sinkhorn iterations (paper 3).
        n_global: how many leading views are global (paper 2).
    """

    def __init__(self, encoder: nn.Module, n_prototypes: int = 30, projection_dim: int = 64,
                 hidden_dim: int = 256, temperature: float = 0.1, epsilon: float = 0.05,
                 n_iters: int = 3, n_global: int = 2):
        super().__init__(encoder)
        self.projector = projector(encoder.out_dim, hidden_dim, projection_dim)
        self.prototypes = nn.Linear(projection_dim, n_prototypes, bias=False)   # C: (K, P)
        with torch.no_grad():
            self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
        self.temperature, self.epsilon, self.n_iters, self.n_global = temperature, epsilon, n_iters, n_global

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Z = normalize(g(f(x))), shape (N, projection_dim): the point scored against the prototypes."""
        return F.normalize(self.projector(self.encoder(x)), dim=1)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Z C^T, shape (N, K): each image's cosine similarity to each prototype."""
        return self.prototypes(self.project(x))

    def training_step(self, batch) -> dict:
        """One step: swapped prediction of the global views' Sinkhorn codes; prototypes used."""
        check_views(batch, self.n_global)
        views = [v for v in batch if v.dim() == 4]                 # (drops labels a loader may add)
        z = [self.project(x) for x in views]                        # V x (N, P)
        scores = [gather(self.prototypes(zi)) for zi in z]          # V x (W N, K): every process's
        z = [gather(zi.detach()) for zi in z[:2]]                   # (for the monitors)
        loss = swav_loss(scores[:self.n_global], scores[self.n_global:], self.temperature,
                         self.n_iters, self.epsilon)
        used = torch.cat([s.argmax(1) for s in scores[:self.n_global]]).unique().numel()
        return {"loss": loss, "prototypes_used": used, "z1": z[0].detach(), "z2": z[1].detach(),
                "scores": scores[0].detach()}

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        """Renormalise the prototypes C (K, P) onto the unit sphere."""
        # the prototypes live on the unit sphere: renormalise after each optimiser step
        self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
