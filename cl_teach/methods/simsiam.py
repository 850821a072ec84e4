"""SimSiam (Chen & He, CVPR 2021): a predictor and a stop-gradient, no negatives."""
from __future__ import annotations

from torch import nn

from ..distributed import gather
from ..losses import negative_cosine
from ..models import mlp
from .base import Method, check_views


class SimSiam(Method):
    """p = q(g(f(x))); loss = D(p1, sg(z2))/2 + D(p2, sg(z1))/2 with D the negative cosine.

    Args:
        stop_gradient: set False to watch it collapse (notebook 03).
        predictor: set False to drop q (also collapses).
        output_bn: BatchNorm on z (the paper's). It keeps every dimension's batch variance at 1, which
            hides complete collapse from the std monitor; notebook 03 turns it off to show it.
        projection_dim: output of the projector g (paper 2048; 64 here for CPU speed).
        predictor_dim: bottleneck of the predictor q (paper 512 = projection_dim / 4).
    """

    def __init__(self, encoder: nn.Module, projection_dim: int = 64, predictor_dim: int = 32,
                 hidden_dim: int = 256, stop_gradient: bool = True, predictor: bool = True,
                 output_bn: bool = True):
        super().__init__(encoder)
        self.projector = mlp(encoder.out_dim, hidden_dim, projection_dim, n_layers=3, last_bn=output_bn)
        self.predictor = mlp(projection_dim, predictor_dim, projection_dim) if predictor else nn.Identity()
        self.stop_gradient = stop_gradient

    def training_step(self, batch) -> dict:
        """One step: each view's p vs the other's z (stop-gradient), negative cosine symmetrised."""
        x1, x2 = check_views(batch)
        z1, z2 = self.projector(self.encoder(x1)), self.projector(self.encoder(x2))   # (N, dim)
        p1, p2 = self.predictor(z1), self.predictor(z2)                              # (N, dim)
        z1, z2, p1, p2 = map(gather, (z1, z2, p1, p2))                               # (W N, dim)
        if self.stop_gradient:
            z1, z2 = z1.detach(), z2.detach()        # the whole idea, in one line
        loss = 0.5 * (negative_cosine(p1, z2) + negative_cosine(p2, z1))
        return {"loss": loss, "z1": z1.detach(), "z2": z2.detach()}
