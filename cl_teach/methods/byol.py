"""BYOL (Grill et al., NeurIPS 2020): an online network predicts an EMA target network."""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..distributed import gather
from ..losses import negative_cosine
from ..models import mlp
from .base import Method, check_views, cosine_momentum, ema_update


class BYOL(Method):
    """Online: p = q(g(f(x))); target: z' = g'(f'(x')), an EMA of (f, g) that gets no gradient.

    ``loss = 2 - 2 cos(p1, z'2)`` symmetrised over the two views (the mean of the paper's two
    terms). No negatives: the predictor plus the slowly moving target avoid the collapsed
    solution in practice.

    Args:
        encoder: f, with an ``out_dim`` attribute.
        projection_dim: output width of g and q (paper 256; 64 for a CPU).
        hidden_dim: hidden width of g and q (paper 4096; 256 for a CPU).
        momentum: base tau of the EMA (paper: 0.996 over 300+ epochs; 0.99 for a few hundred
            steps).
        schedule: ``"cosine"`` (the paper's): tau rises from ``momentum`` to 1 by
            :func:`cosine_momentum`, so even ``momentum=0`` ends with a frozen target;
            ``"constant"``: tau = ``momentum`` at every step (``momentum=0`` then copies the online
            network into the target after every step, SimSiam with a one-step-old target).
    """

    def __init__(self, encoder: nn.Module, projection_dim: int = 64, hidden_dim: int = 256,
                 momentum: float = 0.99, schedule: str = "cosine"):
        super().__init__(encoder)
        if schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
        self.projector = mlp(encoder.out_dim, hidden_dim, projection_dim)   # g
        self.predictor = mlp(projection_dim, hidden_dim, projection_dim)    # q
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)      # f'
        self.target_projector = copy.deepcopy(self.projector).requires_grad_(False)  # g'
        self.momentum, self.schedule = momentum, schedule

    def training_step(self, batch) -> dict:
        """One step: p1, p2 regress the target's z'2, z'1 (2 - 2 cos, symmetrised); detached z's."""
        x1, x2 = check_views(batch)
        z1, z2 = self.projector(self.encoder(x1)), self.projector(self.encoder(x2))  # (N, P)
        p1, p2 = self.predictor(z1), self.predictor(z2)                              # (N, P)
        with torch.no_grad():
            t1 = self.target_projector(self.target_encoder(x1))                      # (N, P)
            t2 = self.target_projector(self.target_encoder(x2))
        z1, z2, p1, p2, t1, t2 = map(gather, (z1, z2, p1, p2, t1, t2))           # (W N, P) each
        loss = 2 + negative_cosine(p1, t2) + negative_cosine(p2, t1)                 # 2 - 2 cos
        return {"loss": loss, "z1": z1.detach(), "z2": z2.detach()}

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        """Move the target (f', g') towards the online (f, g) by EMA, tau from the schedule."""
        tau = (cosine_momentum(self.momentum, step, total_steps) if self.schedule == "cosine"
               else self.momentum)
        ema_update(self.target_encoder, self.encoder, tau)
        ema_update(self.target_projector, self.projector, tau)
