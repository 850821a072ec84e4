"""CLIP (Radford et al., ICML 2021): an image tower and a text tower trained with symmetric InfoNCE."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_positive, check_tensor
from ..distributed import gather
from ..losses.clip import clip_loss
from .base import Method


def check_image_text_batch(batch, name: str = "batch"):
    """``(images, texts)`` from a batch tuple, with clear errors.

    ``images``: (N, C, H, W) pixels or (N, F) precomputed image features (float);
    ``texts``: (N, L) integer token ids or (N, F) precomputed text features (float).
    """
    if not isinstance(batch, (list, tuple)) or len(batch) < 2:
        raise ValueError(f"{name} must be a tuple (images, token_ids), got "
                         f"{type(batch).__name__}"
                         f"{f' of length {len(batch)}' if isinstance(batch, (list, tuple)) else ''}")
    x, ids = batch[0], batch[1]
    check_tensor("images", x, ndim=(2, 4))
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.dtype == torch.bool:
        raise TypeError(f"token_ids must be an (N, L) tensor of token ids (or (N, F) text features), "
                        f"got {getattr(ids, 'dtype', type(ids).__name__)} {tuple(getattr(ids, 'shape', ()))}")
    if x.shape[0] != ids.shape[0]:
        raise ValueError(f"images and token_ids must hold the same number of pairs, got "
                         f"{x.shape[0]} and {ids.shape[0]}")
    return x, ids


class CLIP(Method):
    """Image tower f_img (``self.encoder``), text tower f_txt, linear projections to a shared space.

    ``loss = clip_loss(z_img, z_txt, temperature)`` with ``temperature = 1 / exp(logit_scale)``;
    ``logit_scale`` is learned (starting at log(1/0.07)) and, after every step, clamped to
    [0, log(100)] as open_clip does, so the temperature never drops below 0.01.

    Args:
        image_encoder: f_img with ``out_dim``, e.g. ``SmallCNN(in_channels=3)``.
        text_encoder: f_txt with ``out_dim``, e.g. ``TextCNN(len(vocab))``.
        embed_dim: the shared space (CLIP: 512; 64 here).
        temperature: the initial tau (CLIP: 0.07).
        learn_temperature: learn ``logit_scale`` (CLIP) or keep tau fixed.
        max_logit_scale: the clamp (CLIP: 100).
    """

    def __init__(self, image_encoder: nn.Module, text_encoder: nn.Module, embed_dim: int = 64,
                 temperature: float = 0.07, learn_temperature: bool = True, max_logit_scale: float = 100.0):
        super().__init__(image_encoder)
        check_positive("embed_dim", embed_dim, integer=True)
        check_positive("temperature", temperature)
        check_positive("max_logit_scale", max_logit_scale)
        self.text_encoder = text_encoder
        self.image_proj = nn.Linear(image_encoder.out_dim, embed_dim, bias=False)
        self.text_proj = nn.Linear(text_encoder.out_dim, embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / temperature)),
                                        requires_grad=learn_temperature)
        self.max_logit_scale = max_logit_scale

    @property
    def temperature(self) -> torch.Tensor:
        """Tau = 1 / exp(logit_scale), a 0-d tensor (gradients flow into logit_scale)."""
        return self.logit_scale.exp().reciprocal()

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> L2-normalised (N, embed_dim)."""
        return F.normalize(self.image_proj(self.encoder(x)), dim=1)

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        """(N, L) token ids (or whatever the text tower reads) -> L2-normalised (N, embed_dim)."""
        return F.normalize(self.text_proj(self.text_encoder(ids)), dim=1)

    def training_step(self, batch) -> dict:
        """One step: symmetric InfoNCE of the (N, E) image and text embeddings, tau, detached z's."""
        x, ids = check_image_text_batch(batch)
        z_img = self.encode_image(x)                                # (N, E)
        z_txt = self.encode_text(ids)                               # (N, E)
        z_img, z_txt = gather(z_img), gather(z_txt)                 # every process's: (W N, E)
        loss = clip_loss(z_img, z_txt, self.temperature)
        return {"loss": loss, "temperature": self.temperature.detach(),
                "z1": z_img.detach(), "z2": z_txt.detach()}

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        """Clamp ``logit_scale`` to [0, log(max_logit_scale)], so tau >= 1 / max_logit_scale."""
        self.logit_scale.clamp_(0, math.log(self.max_logit_scale))
