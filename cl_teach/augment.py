"""Batched tensor augmentations with independent random parameters per image.

torchvision's v2 transforms applied to a batch draw one set of parameters for the whole batch
(every image flipped or none), which is wrong for contrastive views; per-image transforms are
~20x slower. Here every op is a batched tensor op: crop+flip as one ``affine_grid`` +
``grid_sample``, jitter as per-sample scalars, blur as a grouped convolution.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._validate import check_positive, check_tensor


def _check_images(x) -> None:
    check_tensor("x", x, ndim=4, finite=False)                      # (N, C, H, W), floating


def _check_range(name: str, pair, low: float, high: float) -> None:
    """``pair = (a, b)`` with ``low < a <= b <= high`` (e.g. a crop-area range within (0, 1])."""
    ok = (isinstance(pair, (tuple, list)) and len(pair) == 2
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair))
    if not ok or not (low < pair[0] <= pair[1] <= high):
        raise ValueError(f"{name} must be a pair (low, high) with {low} < low <= high <= {high}, "
                         f"got {pair!r}")


def _check_probability(name: str, p) -> None:
    check_positive(name, p, allow_zero=True)
    if p > 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")


def _uniform(n: int, lo: float, hi: float, g: torch.Generator | None, device) -> torch.Tensor:
    return torch.rand(n, generator=g).to(device) * (hi - lo) + lo


def random_resized_crop(x: torch.Tensor, scale: tuple[float, float] = (0.25, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3), flip: bool = True,
                        size: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Crop a random area share in ``scale`` with aspect ratio in ``ratio``, resize, maybe flip.

    Args:
        x: (N, C, H, W) images.
        scale: (low, high) range of the crop's share of the image area, within (0, 1].
        ratio: (low, high) range of the crop's aspect ratio (width / height).
        flip: mirror each image left-right with probability 0.5.
        size: output side (default: H).
        generator: source of the random parameters (None: torch's global one).

    Returns:
        (N, C, size, size).
    """
    _check_images(x)
    _check_range("scale", scale, 0, 1)
    _check_range("ratio", ratio, 0, math.inf)
    n, c, h, w = x.shape
    size = size or h
    area = _uniform(n, *scale, generator, x.device)
    log_r = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), generator, x.device)
    r = torch.exp(log_r)
    sx = torch.sqrt(area * r).clamp(max=1.0)                        # crop width / W
    sy = torch.sqrt(area / r).clamp(max=1.0)                        # crop height / H
    tx = (torch.rand(n, generator=generator).to(x.device) * 2 - 1) * (1 - sx)
    ty = (torch.rand(n, generator=generator).to(x.device) * 2 - 1) * (1 - sy)
    if flip:
        sign = torch.where(torch.rand(n, generator=generator).to(x.device) < 0.5, -1.0, 1.0)
    else:
        sign = torch.ones(n, device=x.device)
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = sx * sign, tx
    theta[:, 1, 1], theta[:, 1, 2] = sy, ty
    grid = F.affine_grid(theta, (n, c, size, size), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def color_jitter(x: torch.Tensor, brightness: float = 0.4, contrast: float = 0.4,
                 saturation: float = 0.4, p: float = 0.8,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-image brightness, contrast (and saturation for RGB) factors in [1 - s, 1 + s].

    Applied to a random share ``p`` of the images. (N, C, H, W) -> (N, C, H, W) in [0, 1].
    """
    _check_images(x)
    for name, v in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
        check_positive(name, v, allow_zero=True)
    _check_probability("p", p)
    n = x.shape[0]
    apply = (torch.rand(n, generator=generator) < p).to(x.device).view(n, 1, 1, 1)

    def factor(s):
        return _uniform(n, 1 - s, 1 + s, generator, x.device).view(n, 1, 1, 1).to(x.dtype)

    y = x * factor(brightness)
    mean = y.mean(dim=(1, 2, 3), keepdim=True)
    y = (y - mean) * factor(contrast) + mean
    if x.shape[1] == 3 and saturation > 0:
        gray = y.mul(torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype)
                     .view(1, 3, 1, 1)).sum(1, keepdim=True)
        y = (y - gray) * factor(saturation) + gray
    return torch.where(apply, y, x).clamp(0, 1)


def random_grayscale(x: torch.Tensor, p: float = 0.2,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Turn a random share ``p`` of RGB images grey (a no-op on 1-channel images)."""
    _check_images(x)
    _check_probability("p", p)
    if x.shape[1] != 3:
        return x
    n = x.shape[0]
    gray = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype)
            .view(1, 3, 1, 1)).sum(1, keepdim=True)
    apply = (torch.rand(n, generator=generator) < p).to(x.device).view(n, 1, 1, 1)
    return torch.where(apply, gray.expand_as(x), x)


def gaussian_blur(x: torch.Tensor, sigma: tuple[float, float] = (0.1, 1.0), p: float = 0.5,
                  kernel_size: int = 5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Blur a random share ``p`` of images, each with its own sigma, as one grouped convolution."""
    _check_images(x)
    _check_range("sigma", sigma, 0, math.inf)
    _check_probability("p", p)
    if (isinstance(kernel_size, bool) or not isinstance(kernel_size, int)
            or kernel_size < 1 or kernel_size % 2 == 0):
        raise ValueError(f"kernel_size must be an odd int >= 1, got {kernel_size!r}")
    n, c, h, w = x.shape
    s = _uniform(n, *sigma, generator, x.device)                    # (N,)
    r = torch.arange(kernel_size, device=x.device, dtype=x.dtype) - kernel_size // 2
    k = torch.exp(-(r[None] ** 2) / (2 * s[:, None] ** 2))          # (N, k)
    k = k / k.sum(1, keepdim=True)
    k = k.repeat_interleave(c, 0)                                   # (N*C, k)
    pad = kernel_size // 2
    y = x.reshape(1, n * c, h, w)
    y = F.conv2d(F.pad(y, (pad, pad, 0, 0), mode="reflect"), k[:, None, None, :], groups=n * c)
    y = F.conv2d(F.pad(y, (0, 0, pad, pad), mode="reflect"), k[:, None, :, None], groups=n * c)
    apply = (torch.rand(n, generator=generator) < p).to(x.device).view(n, 1, 1, 1)
    return torch.where(apply, y.view(n, c, h, w), x)


class Augment:
    """One random view of a batch: crop-resize + flip, colour jitter, grayscale, blur.

    Defaults follow SimCLR (Chen et al., 2020) with two CPU-friendly changes said where they are:
    crop area from 0.25 (SimCLR: 0.08, too aggressive at 28x28) and blur off for 28x28 images.

    Args:
        strength: scales every jitter amount (0 = crop and flip only; the widget of notebook 05).
        size: output side; smaller sizes give SwAV's multi-crop "local" views.

    Example:
        >>> aug = Augment()
        >>> aug(torch.rand(8, 1, 28, 28), generator=torch.Generator().manual_seed(0)).shape
        torch.Size([8, 1, 28, 28])
    """

    def __init__(self, crop_scale: tuple[float, float] = (0.25, 1.0), flip: bool = True,
                 strength: float = 1.0, brightness: float = 0.4, contrast: float = 0.4,
                 saturation: float = 0.4, jitter_p: float = 0.8, grayscale_p: float = 0.2,
                 blur_p: float = 0.0, size: int | None = None):
        check_positive("strength", strength, allow_zero=True)
        if not (0 < crop_scale[0] <= crop_scale[1] <= 1):
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {crop_scale}")
        self.crop_scale, self.flip, self.strength, self.size = tuple(crop_scale), flip, strength, size
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation
        self.jitter_p, self.grayscale_p, self.blur_p = jitter_p, grayscale_p, blur_p

    def __repr__(self) -> str:
        return (f"Augment(crop_scale={self.crop_scale}, flip={self.flip}, strength={self.strength}, "
                f"blur_p={self.blur_p}, size={self.size})")

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One random view of ``x``: (N, C, H, W) -> (N, C, size, size)."""
        check_tensor("x", x, ndim=4, finite=False)
        s = self.strength
        y = random_resized_crop(x, self.crop_scale, flip=self.flip, size=self.size, generator=generator)
        if s > 0:
            y = color_jitter(y, self.brightness * s, self.contrast * s, self.saturation * s,
                             p=self.jitter_p, generator=generator)
            y = random_grayscale(y, self.grayscale_p, generator=generator)
        if self.blur_p > 0:
            y = gaussian_blur(y, p=self.blur_p, generator=generator)
        return y


def two_views(x: torch.Tensor, augment: Augment | None = None,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent random views of every image: ``(x1, x2)``, each (N, C, H, W)."""
    augment = augment or Augment()
    return augment(x, generator), augment(x, generator)


def multi_crop(x: torch.Tensor, global_views: Augment, n_global: int = 2,
               local_views: Augment | None = None, n_local: int = 0,
               generator: torch.Generator | None = None) -> list:
    """SwAV's multi-crop (Caron et al., 2020): ``n_global`` full-size views, then ``n_local`` small views.

    Returns a list of (N, C, h, w) tensors.
    """
    views = [global_views(x, generator) for _ in range(n_global)]
    if n_local:
        if local_views is None:
            raise ValueError("local_views must be an Augment when n_local > 0, got None")
        views += [local_views(x, generator) for _ in range(n_local)]
    return views
