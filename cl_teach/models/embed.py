"""Embeddings of a data set under a frozen model: one helper family, one eval-mode switch.

* :func:`evaluating` -- a context manager: the model in eval mode inside, its mode restored after
  (BatchNorm uses its running statistics, dropout is off);
* :func:`device_of` -- the device of a model's parameters (the CPU for a parameter-free one);
* :func:`embed` -- (N, D) features of N inputs, batch by batch, under ``no_grad`` and
  :func:`evaluating`, returned on the CPU: images through an encoder, token ids through
  ``model.encode_text`` (``encode=``), strings through a frozen sentence encoder;
* :func:`embed_bags` -- the same for bags of character n-grams through a
  :class:`cl_teach.models.TextTower`.

:func:`cl_teach.ranking.encode_pairs` and :func:`cl_teach.models.embed_texts` /
:func:`~cl_teach.models.embed_images` are :func:`embed` applied to two towers and to the
frozen pretrained towers.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_positive, check_tensor
from ..data.ngrams import pack

__all__ = ["evaluating", "device_of", "embed", "embed_bags"]


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode for the body of a ``with`` block.

    ``with evaluating(model):`` runs the block in eval mode, then restores the previous mode.

    Example:
        >>> m = nn.Dropout(); m.training
        True
        >>> with evaluating(m):
        ...     m.training
        False
        >>> m.training
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def device_of(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter, the CPU when it has none.

    Example:
        >>> device_of(nn.Linear(2, 2)), device_of(nn.ReLU())
        (device(type='cpu'), device(type='cpu'))
    """
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def embed(model: nn.Module, inputs, batch_size: int = 1024, device: torch.device | None = None, *,
          encode: Callable | None = None, normalize: bool = False) -> torch.Tensor:
    """Features of ``inputs`` under ``model`` in eval mode, batched, returned on the CPU as float32.

    Args:
        model: e.g. an encoder f or a method (whose forward gives h); put in eval mode.
        inputs: (N, ...) tensor (each batch is moved to ``device``), or a sequence of N items
            (strings, n-gram bags) that ``encode`` takes a slice of.
        batch_size: inputs per forward pass.
        device: where tensor batches go; default :func:`device_of` ``(model)``.
        encode: the function applied to each batch (default ``model`` itself), e.g.
            ``model.encode_image`` of a CLIP.
        normalize: L2-normalise each row.

    Returns:
        (N, D) float32 tensor on the CPU.

    Example:
        >>> embed(nn.Linear(3, 2), torch.rand(5, 3), batch_size=2).shape
        torch.Size([5, 2])
    """
    if isinstance(inputs, torch.Tensor):
        check_tensor("inputs", inputs, floating=False, finite=False)
    elif isinstance(inputs, str) or not hasattr(inputs, "__len__") or len(inputs) == 0:
        raise TypeError(f"inputs must be a non-empty tensor or sequence, got {type(inputs).__name__}")
    check_positive("batch_size", batch_size, integer=True)
    device = device_of(model) if device is None else device
    fn = model if encode is None else encode
    with evaluating(model):
        out = []
        for i in range(0, len(inputs), batch_size):
            batch = inputs[i:i + batch_size]
            if isinstance(batch, torch.Tensor):
                batch = batch.to(device)
            out.append(fn(batch).float().cpu())
    z = torch.cat(out)                                              # (N, D)
    return F.normalize(z, dim=1) if normalize else z


@torch.no_grad()
def embed_bags(tower: nn.Module, bags: Sequence[np.ndarray], idf: np.ndarray,
               batch_size: int = 1024, items: np.ndarray | None = None) -> np.ndarray:
    """L2-normalised (N, D) float32 embeddings of N featurised texts, in eval mode.

    Args:
        tower: a :class:`cl_teach.models.TextTower` (e.g. ``model.post_tower`` of a
            :class:`cl_teach.methods.DualTower`).
        bags: N int arrays of n-gram columns, from ``CharNgrams.transform(texts)``.
        idf: (n_features,) the featurizer's ``idf_``.
        batch_size: texts per forward pass.
        items: optional (N,) ids of the texts (hashtag ids, for a tower made with ``n_items``).

    (Not :func:`cl_teach.models.embed_texts`, which embeds raw strings with a frozen
    pretrained sentence encoder.)
    """
    if not isinstance(tower, nn.Module):
        raise TypeError(f"tower must be a TextTower (an nn.Module), got {type(tower).__name__}")
    if isinstance(bags, str) or not hasattr(bags, "__len__"):
        raise TypeError(f"bags must be a sequence of int arrays from CharNgrams.transform(texts), "
                        f"got {type(bags).__name__}")
    if len(bags) == 0:
        raise ValueError("bags must hold at least one featurised text, got an empty sequence")
    if not isinstance(idf, np.ndarray) or idf.ndim != 1:
        raise ValueError(f"idf must be the featurizer's 1-d idf_ array, got "
                         f"{getattr(idf, 'shape', type(idf).__name__)}")
    check_positive("batch_size", batch_size, integer=True)
    device = device_of(tower)
    if items is None:
        z = embed(tower, bags, batch_size, encode=lambda b: tower(*(t.to(device) for t in pack(b, idf))),
                  normalize=True)
        return z.numpy().astype(np.float32)
    items = torch.as_tensor(np.asarray(items), dtype=torch.long)
    if items.shape != (len(bags),):
        raise ValueError(f"items must hold one id per bag, shape ({len(bags)},), got {tuple(items.shape)}")
    rows = list(zip(bags, items, strict=True))
    z = embed(tower, rows, batch_size, normalize=True,
              encode=lambda b: tower(*(t.to(device) for t in pack([r[0] for r in b], idf)),
                                     items=torch.stack([r[1] for r in b]).to(device)))
    return z.numpy().astype(np.float32)
