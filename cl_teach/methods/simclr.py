"""SimCLR (Chen et al., ICML 2020): two views, encoder f, projector g, NT-Xent."""
from __future__ import annotations

from torch import nn

from ..distributed import gather
from ..losses import nt_xent
from ..models import projector
from .base import Method, check_views


class SimCLR(Method):
    """h = f(x), z = g(h); loss = NT-Xent(z1, z2) with the other 2N-2 views as negatives.

    Args:
        encoder: f, with an ``out_dim`` attribute.
        projection_dim: output of g (paper: 128; 64 here, same kNN, faster on a CPU).
        hidden_dim: width of g's hidden layer.
        temperature: tau (paper: 0.1 at batch 4096, 0.5 on CIFAR-10; 0.1 measured best here).
    """

    def __init__(self, encoder: nn.Module, projection_dim: int = 64, hidden_dim: int = 256,
                 temperature: float = 0.1):
        super().__init__(encoder)
        self.projector = projector(encoder.out_dim, hidden_dim, projection_dim)
        self.temperature = temperature

    def training_step(self, batch) -> dict:
        """One step: NT-Xent of the two views' (N, P) projections, and the detached z's."""
        x1, x2 = check_views(batch)
        z1 = self.projector(self.encoder(x1))                       # (N, P)
        z2 = self.projector(self.encoder(x2))                       # (N, P)
        z1, z2 = gather(z1), gather(z2)                             # every process's: (W N, P)
        loss = nt_xent(z1, z2, self.temperature)
        return {"loss": loss, "z1": z1.detach(), "z2": z2.detach()}
