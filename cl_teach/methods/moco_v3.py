"""MoCo v3 (Chen, Xie & He, ICCV 2021): in-batch keys of a momentum encoder, no queue, scaled by 2T."""
from __future__ import annotations

import copy

import torch
from torch import nn

from .._validate import check_positive, check_temperature
from ..distributed import gather
from ..losses import info_nce
from ..models import TinyViT, mlp
from .base import Method, check_views, cosine_momentum, ema_update


class MoCoV3(Method):
    """Queries q = p(g(f(x))); keys k = g'(f'(x)) from an EMA copy (f', g') with no gradient.

    ``loss = ctr(q1, k2) + ctr(q2, k1)`` with ``ctr(q, k) = CrossEntropy(q k^T / T, arange) * 2T``
    over the normalised vectors: the other keys of the batch are the negatives (no queue). The
    authors' ``moco/builder.py``: each ``ctr`` is ``info_nce(q, k, T)`` times ``2 * T`` (the
    1/T that the logits put into the gradient is taken out again). Under ``torchrun`` queries
    (with their gradients) and keys (without) are gathered, so each process computes the loss of
    the whole global batch (the authors gather only the keys and keep each GPU's queries: the
    same gradient, W times fewer logits). BatchNorm is global (the authors' SyncBN).

    Heads as the authors' code (every Linear bias-free, BN + ReLU after each hidden layer): for a
    ViT a 3-layer projector and a 2-layer predictor, both ending in a BN without affine; for a
    CNN (their ResNet) a 2-layer projector ending in that BN and a 2-layer predictor without it.

    Training instability (the paper's Sec. 4): dips of accuracy (bumps of the loss), each after a
    spike of the first layer's gradient norm; read :meth:`first_layer_grad_norm` after ``backward`` (e.g. in a
    ``Callback.on_step_end``: ``fit`` clears gradients only before the next backward). The
    paper's fix, a frozen random patch projection, is ``TinyViT(frozen_patch_embed=True)``.

    Args:
        encoder: f, with an ``out_dim`` attribute (``SmallCNN``, ``TinyViT``).
        projection_dim: output width of projector and predictor (paper 256; 64 for a CPU).
        hidden_dim: hidden width of the projector (paper 4096; 256 for a CPU).
        predictor_dim: hidden width of the predictor (paper 4096; 256 for a CPU).
        temperature: T (paper 0.2 for ViT; the code's ResNet default 1.0).
        momentum: base m of the EMA, raised to 1 by :func:`cosine_momentum` (paper 0.99).
        vit: the ViT heads (True) or the ResNet heads (False); default: whether f is a TinyViT.

    Example:
        >>> from cl_teach.models import SmallCNN
        >>> m = MoCoV3(SmallCNN(widths=(4, 8)), projection_dim=8, hidden_dim=16, predictor_dim=16)
        >>> out = m.training_step((torch.rand(6, 1, 28, 28), torch.rand(6, 1, 28, 28)))
        >>> out["loss"].dim(), out["z2"].requires_grad
        (0, False)
    """

    def __init__(self, encoder: nn.Module, projection_dim: int = 64, hidden_dim: int = 256,
                 predictor_dim: int = 256, temperature: float = 0.2, momentum: float = 0.99,
                 vit: bool | None = None):
        super().__init__(encoder)
        for name, v in (("projection_dim", projection_dim), ("hidden_dim", hidden_dim),
                        ("predictor_dim", predictor_dim)):
            check_positive(name, v, integer=True)
        check_temperature(temperature)
        if not 0 <= check_positive("momentum", momentum, allow_zero=True) <= 1:
            raise ValueError(f"momentum must be in [0, 1] (the EMA keeps m of the target), got {momentum!r}")
        vit = isinstance(encoder, TinyViT) if vit is None else bool(vit)
        self.projector = mlp(encoder.out_dim, hidden_dim, projection_dim, n_layers=3 if vit else 2,
                             last_bn=True)                                      # g
        self.predictor = mlp(projection_dim, predictor_dim, projection_dim, last_bn=vit)   # p
        if not vit:                                                 # the authors' last Linear: no bias
            self.predictor[-1] = nn.Linear(predictor_dim, projection_dim, bias=False)
        self.momentum_encoder = copy.deepcopy(self.encoder).requires_grad_(False)        # f'
        self.momentum_projector = copy.deepcopy(self.projector).requires_grad_(False)    # g'
        self.temperature, self.momentum, self.vit = temperature, momentum, vit

    def training_step(self, batch) -> dict:
        """One step: ctr(q1, k2) + ctr(q2, k1) over the global batch; detached q1, k2 for monitors."""
        x1, x2 = check_views(batch)
        q1 = self.predictor(self.projector(self.encoder(x1)))           # (N, P), with gradient
        q2 = self.predictor(self.projector(self.encoder(x2)))
        with torch.no_grad():                                           # keys: no gradient
            k1 = self.momentum_projector(self.momentum_encoder(x1))     # (N, P)
            k2 = self.momentum_projector(self.momentum_encoder(x2))
        q1, q2, k1, k2 = map(gather, (q1, q2, k1, k2))                  # (W N, P) each
        t = self.temperature                                            # ctr(q1, k2) + ctr(q2, k1):
        loss = info_nce(q1, k2, t) * (2 * t) + info_nce(q2, k1, t) * (2 * t)
        return {"loss": loss, "z1": q1.detach(), "z2": k2}

    def first_layer_grad_norm(self) -> float:
        """L2 norm of the gradient of f's first trainable weight, 0.0 before a backward.

        SmallCNN: the first convolution; TinyViT: the patch projection, or with
        ``frozen_patch_embed=True`` block 0's q, k, v projection (the first layer that trains).
        """
        for name, p in self.encoder.named_parameters():
            if p.requires_grad and p.dim() >= 2 and name.endswith("weight"):
                return 0.0 if p.grad is None else float(p.grad.norm())
        raise ValueError("the encoder has no trainable weight matrix or kernel")

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        """(f', g') <- EMA of (f, g), m = cosine_momentum(momentum, step, total_steps)."""
        m = cosine_momentum(self.momentum, step, total_steps)
        ema_update(self.momentum_encoder, self.encoder, m)
        ema_update(self.momentum_projector, self.projector, m)
