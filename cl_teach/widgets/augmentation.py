"""Augmentation-strength explorer (notebook 05): random SimCLR views of a few images."""
from __future__ import annotations

import torch

from .._validate import check_positive
from ..augment import Augment
from ._explorer import explorer


def augmentation_views(x: torch.Tensor, strength: float = 1.0, crop_min: float = 0.25,
                       n_views: int = 6, seed: int = 0) -> torch.Tensor:
    """``n_views`` random SimCLR views of each image in ``x`` (the numbers behind the explorer).

    Args:
        x: (P, C, H, W) images in [0, 1].
        strength: scales every colour jitter (:class:`cl_teach.augment.Augment`); 0 = crop + flip.
        crop_min: the smallest crop, as a share of the image's area (SimCLR: 0.08).
        n_views: the number of views of each image.
        seed: seeds the views.

    Returns:
        (P * (1 + n_views), C, H, W): each image followed by its views, row by row.

    Raises:
        ValueError: on ``n_views`` <= 0 or ``crop_min`` outside (0, 1].

    Example:
        >>> augmentation_views(torch.rand(2, 3, 16, 16), n_views=3).shape
        torch.Size([8, 3, 16, 16])
    """
    check_positive("n_views", n_views, integer=True)
    if not 0 < crop_min <= 1:
        raise ValueError(f"crop_min must be in (0, 1], got {crop_min!r}")
    aug = Augment(crop_scale=(crop_min, 1.0), strength=strength)
    g = torch.Generator().manual_seed(seed)
    views = torch.stack([aug(x, g) for _ in range(n_views)], dim=1)   # (P, V, C, H, W)
    return torch.cat([x[:, None], views], dim=1).flatten(0, 1)


def augmentation_explorer(x: torch.Tensor, strength: float = 1.0, crop_min: float = 0.25,
                          n_views: int = 6):
    """Augmentation-strength explorer (notebook 05): the jitter strength and the smallest crop.

    Sliders for the strength, the smallest crop and the seed; each row of the figure shows an
    image and ``n_views`` random views of it.

    Args:
        x: (P, C, H, W) images in [0, 1], a few (each becomes a row).
        strength: the jitter strength at the start (0..3).
        crop_min: the smallest crop's share of the area at the start (0.05..1).
        n_views: the number of views of each image.

    Returns:
        The ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    from ..plotting import show_images

    s = W.FloatSlider(value=strength, min=0, max=3, step=0.25, description="strength",
                      continuous_update=False)
    c = W.FloatSlider(value=crop_min, min=0.05, max=1, step=0.05, description="smallest crop",
                      continuous_update=False)
    seed = W.IntSlider(value=0, min=0, max=20, description="seed", continuous_update=False)

    def views(strength, crop_min, seed):
        return augmentation_views(x, strength, crop_min, n_views, seed), strength, crop_min

    def plot(st):
        grid, strength, crop_min = st
        return show_images(grid, nrow=1 + n_views, scale=0.8,
                           title=f"first column: original; strength {strength:g}, crop area {crop_min:g}-1")

    return explorer([s, c, seed], views, plot=plot)               # no readout: the title says it
