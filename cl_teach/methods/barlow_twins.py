"""Barlow Twins (Zbontar et al., ICML 2021): make the cross-correlation matrix the identity."""
from __future__ import annotations

from torch import nn

from .._validate import check_positive
from ..distributed import gather
from ..losses import barlow_twins_loss
from ..models import mlp
from .base import Method, check_views


class BarlowTwins(Method):
    """z = g(f(x)); loss = sum_i (1 - C_ii)^2 + lambda sum_{i!=j} C_ij^2 (see ``barlow_twins_loss``).

    Args:
        encoder: f, with an ``out_dim`` attribute.
        projection_dim: output width of the 3-layer projector g (paper: 8192; 128 here for a
            CPU; the loss wants a wide z, so keep it larger than in SimCLR).
        hidden_dim: hidden width of g (paper: 8192; 256 here).
        lambd: weight of the redundancy term (paper: 5e-3, tuned by grid search at D = 8192, so
            not 1 / D = 1.2e-4; the rule of thumb lambda = 1 / D is from Tsai et al., "A Note on
            Connecting Barlow Twins with Negative-Sample-Free Contrastive Learning", 2021).
    """

    def __init__(self, encoder: nn.Module, projection_dim: int = 128, hidden_dim: int = 256,
                 lambd: float = 5e-3):
        super().__init__(encoder)
        self.projector = mlp(encoder.out_dim, hidden_dim, projection_dim, n_layers=3)
        self.lambd = check_positive("lambd", lambd, allow_zero=True)

    def training_step(self, batch) -> dict:
        """One step: Barlow Twins loss of the two views' (N, D) projections, its two terms, C (D, D)."""
        x1, x2 = check_views(batch)
        z1, z2 = self.projector(self.encoder(x1)), self.projector(self.encoder(x2))  # (N, D)
        z1, z2 = gather(z1), gather(z2)             # C over the global batch: (W N, D) each
        loss, on_diag, off_diag, c = barlow_twins_loss(z1, z2, self.lambd, terms=True)  # c: (D, D)
        return {"loss": loss, "on_diag": on_diag.detach(), "off_diag": off_diag.detach(),
                "c": c.detach(), "z1": z1.detach(), "z2": z2.detach()}
