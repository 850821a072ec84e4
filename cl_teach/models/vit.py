"""TinyViT, a Vision Transformer for 28x28 images, with MoCo v3's two stabilising choices.

Dosovitskiy et al. (2021, "An Image is Worth 16x16 Words", ICLR): cut the image into patches,
project each to a token, prepend a [CLS] token, add position embeddings, run a Transformer.
Chen, Xie & He (2021, "An Empirical Study of Training Self-Supervised Vision Transformers",
ICCV; MoCo v3) add fixed 2-d sin-cos position embeddings and, against the training instability
they measure (loss spikes that start in the first layer's gradients), the *random patch
projection*: the patch embedding frozen at its random initialisation.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .._validate import check_positive, check_tensor

__all__ = ["TinyViT", "sincos_2d"]


def sincos_2d(grid: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """MoCo v3's fixed 2-d sin-cos position table for a grid x grid of patches and a [CLS] slot.

    Transcribed from ``build_2d_sincos_position_embedding`` in facebookresearch/moco-v3
    ``vits.py``: a quarter of the dimensions each holds sin / cos of one grid coordinate at
    frequencies ``temperature ** (-k / (dim / 4))``; the [CLS] row is 0.

    Args:
        grid: patches per side.
        dim: embedding width, divisible by 4.
        temperature: the longest wavelength (Transformer's 10000).

    Returns:
        (1, 1 + grid**2, dim) float32 table, rows in the patch order of ``flatten(2)``.

    Example:
        >>> sincos_2d(4, 8).shape
        torch.Size([1, 17, 8])
    """
    check_positive("grid", grid, integer=True)
    check_positive("dim", dim, integer=True)
    if dim % 4:
        raise ValueError(f"dim must be divisible by 4 (sin and cos of 2 coordinates), got {dim}")
    g = torch.arange(grid, dtype=torch.float32)
    grid_w, grid_h = torch.meshgrid(g, g, indexing="ij")            # the authors' (default) "ij"
    omega = 1.0 / temperature ** (torch.arange(dim // 4, dtype=torch.float32) / (dim // 4))
    out_w = grid_w.flatten()[:, None] * omega                       # (grid**2, dim / 4)
    out_h = grid_h.flatten()[:, None] * omega
    pos = torch.cat([out_w.sin(), out_w.cos(), out_h.sin(), out_h.cos()], dim=1)
    return torch.cat([torch.zeros(1, dim), pos])[None]              # (1, 1 + grid**2, dim)


class TinyViT(nn.Module):
    """f: patch embedding -> [CLS] + fixed sin-cos positions -> pre-norm Transformer -> LayerNorm.

    28x28 with 7x7 patches gives 16 tokens (+ [CLS]). Initialised as MoCo v3's ``vits.py``:
    Xavier-uniform Linear layers (q, k, v each on its own), zero biases, [CLS] ~ N(0, 1e-6^2),
    Xavier-uniform patch projection with a zero bias. The defaults (depth 2, dim 48: 40k
    parameters) keep a SimCLR step at batch 256 within ~2x SmallCNN's time on one CPU thread
    (measured 1.8-1.9x; depth 4, dim 64: 4.4-4.9x); ``heads=4`` divides every width the table allows.

    Args:
        in_channels: image channels C.
        image_size: side H = W of the input; divisible by ``patch_size``.
        patch_size: side of a square patch (kernel and stride of the patch projection).
        dim: token width; divisible by ``heads`` and by 4 (the sin-cos table).
        depth: Transformer blocks.
        heads: attention heads.
        mlp_ratio: MLP hidden width / ``dim``.
        out_dim: ``None``: h is the pooled token (``out_dim = dim``); else a Linear to it.
        frozen_patch_embed: MoCo v3's random patch projection (weight and bias keep their init).
        pool: ``"cls"`` (the [CLS] token, as MoCo v3) or ``"mean"`` (mean of the patch tokens).
        dropout: in attention and MLP (0: a training forward is deterministic too).

    Example:
        >>> f = TinyViT(); f(torch.rand(2, 1, 28, 28)).shape, f.out_dim, f.num_patches
        (torch.Size([2, 48]), 48, 16)
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, patch_size: int = 7, dim: int = 48,
                 depth: int = 2, heads: int = 4, mlp_ratio: float = 2.0, out_dim: int | None = None,
                 frozen_patch_embed: bool = False, pool: str = "cls", dropout: float = 0.0):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("image_size", image_size),
                        ("patch_size", patch_size), ("dim", dim), ("depth", depth), ("heads", heads)):
            check_positive(name, v, integer=True)
        check_positive("mlp_ratio", mlp_ratio)
        if out_dim is not None:
            check_positive("out_dim", out_dim, integer=True)
        if not 0 <= check_positive("dropout", dropout, allow_zero=True) < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if image_size % patch_size:
            raise ValueError(f"image_size must be divisible by patch_size ({patch_size}), got {image_size}")
        if dim % heads or dim % 4:
            raise ValueError(f"dim must be divisible by heads ({heads}) and by 4 (the sin-cos "
                             f"position table), got {dim}")
        if pool not in ("cls", "mean"):
            raise ValueError(f"pool must be 'cls' or 'mean', got {pool!r}")
        hidden = round(dim * mlp_ratio)
        if hidden < 1:
            raise ValueError(f"mlp_ratio must give an MLP width >= 1 (dim * mlp_ratio), got {mlp_ratio!r}")
        self.in_channels, self.image_size, self.pool = in_channels, image_size, pool
        self.num_patches = (image_size // patch_size) ** 2
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("pos_embed", sincos_2d(image_size // patch_size, dim), persistent=False)
        # Separate layers (nn.TransformerEncoder would deep-copy one: every block the same init).
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, heads, hidden, dropout, activation="gelu", layer_norm_eps=1e-6,
                                       batch_first=True, norm_first=True) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Identity() if out_dim is None else nn.Linear(dim, out_dim)
        self.out_dim = dim if out_dim is None else out_dim
        self._init_weights(in_channels * patch_size ** 2, dim)
        self.frozen_patch_embed = bool(frozen_patch_embed)
        self.patch_embed.requires_grad_(not frozen_patch_embed)

    @torch.no_grad()
    def _init_weights(self, fan_in: int, dim: int) -> None:
        """MoCo v3's initialisation (``VisionTransformerMoCo.__init__``)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):                            # out_proj, MLP, head
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.MultiheadAttention):              # q, k, v: (dim, dim) each
                nn.init.uniform_(m.in_proj_weight, -math.sqrt(3 / dim), math.sqrt(3 / dim))
                nn.init.zeros_(m.in_proj_bias)
        nn.init.normal_(self.cls_token, std=1e-6)
        bound = math.sqrt(6 / (fan_in + dim))
        nn.init.uniform_(self.patch_embed.weight, -bound, bound)
        nn.init.zeros_(self.patch_embed.bias)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:              # (N, C, H, W) -> (N, 1 + P, D)
        """The normalised output tokens, [CLS] first: (N, 1 + num_patches, dim)."""
        check_tensor("x", x, ndim=4, finite=False)
        want = (self.in_channels, self.image_size, self.image_size)
        if tuple(x.shape[1:]) != want:
            raise ValueError(f"x must have shape (N, {', '.join(map(str, want))}) (in_channels, "
                             f"image_size, image_size), got {tuple(x.shape)}")
        t = self.patch_embed(x).flatten(2).transpose(1, 2)          # (N, P, D), row-major patches
        t = torch.cat([self.cls_token.expand(len(t), -1, -1), t], dim=1) + self.pos_embed
        for block in self.blocks:
            t = block(t)                                            # (N, 1 + P, D)
        return self.norm(t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:             # (N, C, H, W) -> (N, out_dim)
        """H = f(x) (N, out_dim): the [CLS] token (or the patch tokens' mean), through ``head``."""
        t = self.tokens(x)
        return self.head(t[:, 0] if self.pool == "cls" else t[:, 1:].mean(1))
