"""Self-Guided contrastive learning (Kim, Yoo & Lee, ACL 2021): an encoder guided by its own frozen copy."""
from __future__ import annotations

import copy

import torch
from torch import nn

from .._validate import check_positive
from ..distributed import gather
from ..losses.self_guided import self_guided_loss, weight_distance
from ..models.text import _masked_mean
from .base import Method
from .simcse import _ids

_LAYERED = ("embed", "pos", "drop", "encoder", "norm", "out")


def layer_views(encoder: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """(N, l + 1, out_dim): every layer's hidden states of a TinyTransformer, pooled and read out.

    Layer 0 is the embedding layer (token + position), layer k the output of the k-th transformer
    block. Each is masked-mean pooled over the tokens (the authors' code pools with the mean) and
    passed through the encoder's own final LayerNorm and Linear, so that every view lives where
    the sentence vector lives; the last view is ``encoder(ids)`` itself.
    """
    if not all(hasattr(encoder, a) for a in _LAYERED) or not hasattr(encoder.encoder, "layers"):
        raise TypeError(f"encoder must expose its layers like cl_teach.models.TinyTransformer "
                        f"({', '.join(_LAYERED)}, encoder.layers), got {type(encoder).__name__}")
    mask = ids != 0                                                 # (N, L)
    pad = ~mask
    pad[:, 0] = False                                               # as TinyTransformer.forward
    x = encoder.drop(encoder.embed(ids) + encoder.pos[:ids.shape[1]])   # (N, L, D)
    hidden = [x]
    for layer in encoder.encoder.layers:
        x = layer(x, src_key_padding_mask=pad)
        hidden.append(x)
    return torch.stack([encoder.out(_masked_mean(encoder.norm(x), mask)) for x in hidden], dim=1)


class SelfGuided(Method):
    """SG-OPT: the tuned copy's sentence vector c_i against the fixed copy's layer views h_ik.

    ``encoder`` (T, trained) is cloned once into ``guide`` (F): F gets no gradient and is **never
    updated** -- no momentum or EMA (``after_step`` does nothing) -- and stays in eval mode. A
    projection head f (Linear-GELU-Linear-GELU, shared by c and h) feeds
    :func:`~cl_teach.losses.self_guided_loss`; ``lam * ||theta_T - theta_F||^2`` keeps T near F.
    The paper fine-tunes a *pretrained* BERT: start from a trained encoder (F guides with what it
    knows). Evaluation uses T's sentence vector ``encoder(ids)``, not the head.

    Args:
        encoder: a :class:`~cl_teach.models.TinyTransformer` (the view readout needs its layers).
        temperature: tau (the authors' code: 0.01).
        lam: weight of the regulariser (the authors' code: 0.1).
        head_dim: width of f (the paper: 4096; pass less on a CPU).
        freeze_embeddings: keep T's embedding layer fixed, as the authors' code does (``--freeze``).
    """

    def __init__(self, encoder: nn.Module, temperature: float = 0.01, lam: float = 0.1,
                 head_dim: int = 4096, freeze_embeddings: bool = True):
        super().__init__(encoder)
        check_positive("temperature", temperature)
        check_positive("lam", lam, allow_zero=True)
        check_positive("head_dim", head_dim, integer=True)
        if not all(hasattr(encoder, a) for a in _LAYERED):
            raise TypeError(f"encoder must expose its layers like cl_teach.models.TinyTransformer "
                            f"({', '.join(_LAYERED)}), got {type(encoder).__name__}")
        self.temperature, self.lam = temperature, lam
        self.guide = copy.deepcopy(encoder).requires_grad_(False).eval()   # F: fixed for good
        d = encoder.out_dim
        self.head = nn.Sequential(nn.Linear(d, head_dim), nn.GELU(), nn.Linear(head_dim, head_dim), nn.GELU())
        for lin in (self.head[0], self.head[2]):                    # BERT's initialiser, as the authors
            nn.init.normal_(lin.weight, std=0.02)
            nn.init.zeros_(lin.bias)
        if freeze_embeddings:
            encoder.embed.requires_grad_(False)
            encoder.pos.requires_grad_(False)

    def train(self, mode: bool = True):
        """Train mode for T and the head; the guide F stays in eval mode (deterministic views)."""
        super().train(mode)
        self.guide.eval()
        return self

    def training_step(self, batch) -> dict:
        """One step: ``self_guided_loss(f(c), f(h)) + lam * ||theta_T - theta_F||^2`` on (N, L) ids."""
        if isinstance(batch, (list, tuple)) and len(batch) == 1:
            batch = batch[0]
        ids = _ids("ids", batch)
        c = self.encoder(ids)                                       # (N, D), T with dropout
        with torch.no_grad():
            h = layer_views(self.guide, ids)                        # (N, K, D), F: no gradient
        zc, zh = gather(self.head(c)), gather(self.head(h))         # (W N, E), (W N, K, E)
        contrast = self_guided_loss(zc, zh, self.temperature)
        distance = weight_distance(self.encoder, self.guide)
        return {"loss": contrast + self.lam * distance, "contrast": contrast.detach(),
                "distance": distance.detach(), "z1": c.detach(), "z2": h[:, -1].detach()}
