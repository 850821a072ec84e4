"""CLIP's symmetric InfoNCE over an image-text batch (Radford et al., 2021).

"Learning Transferable Visual Models From Natural Language Supervision".

For N pairs, the N x N cosine-similarity matrix divided by the temperature is read twice: each
row is an N-way classification "which caption belongs to this image?", each column "which image
belongs to this caption?"; the loss is the mean of the two cross-entropies. Kept apart as in
open_clip's ``ClipLoss``: :func:`clip_logits` (the matrix) and :func:`clip_loss` (the two
cross-entropies). The learnable ``logit_scale = log(1 / temperature)`` belongs to the model
(:class:`cl_teach.methods.CLIP`), which also clamps it as open_clip does.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .._validate import check_pair, check_temperature
from ._fused import fused_clip


def clip_logits(image_emb: torch.Tensor, text_emb: torch.Tensor,
                temperature) -> tuple[torch.Tensor, torch.Tensor]:
    """The image->text and text->image logits of a batch of N pairs.

    Args:
        image_emb: (N, D) image embeddings; ``image_emb[i]`` pairs with ``text_emb[i]``.
            L2-normalised inside.
        text_emb: (N, D) text embeddings. L2-normalised inside.
        temperature: tau > 0 (a float or a 1-element tensor, e.g. ``1 / logit_scale.exp()``,
            through which gradients flow).

    Returns:
        ``(logits_per_image, logits_per_text)``, both (N, N); the second is the transpose of
        the first. The matching pairs are on the diagonal.

    Example:
        >>> li, lt = clip_logits(torch.eye(2), torch.eye(2), temperature=0.5)
        >>> li.tolist(), torch.equal(lt, li.T)
        ([[2.0, 0.0], [0.0, 2.0]], True)
    """
    check_pair("image_emb", image_emb, "text_emb", text_emb)
    check_temperature(temperature)
    i = F.normalize(image_emb, dim=1)                               # (N, D)
    t = F.normalize(text_emb, dim=1)                                # (N, D)
    logits_per_image = i @ t.T / temperature                        # (N, N): row = an image
    return logits_per_image, logits_per_image.T


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, temperature=0.07, *,
              fused: bool = True) -> torch.Tensor:
    """Symmetric InfoNCE of CLIP: (CE(image -> text) + CE(text -> image)) / 2.

    Args:
        image_emb: (N, D) image embeddings, pairs aligned with ``text_emb``.
        text_emb: (N, D) text embeddings.
        temperature: tau > 0; CLIP learns it, starting at 0.07 (logit scale 1/0.07), and clamps
            the scale at 100 (tau >= 0.01).
        fused: ``True``: the same value and gradients from a hand-written backward that keeps
            one (N, N) matrix instead of four (``_fused.py``), for float32/float64 and
            tau >= 0.025 (float32); otherwise, and with ``False``, the plain body below.

    Returns:
        A 0-d tensor; ``log(N)`` when all embeddings are equal, -> 0 when each image is far
        closer to its own caption than to the others.

    Raises:
        ValueError: on a temperature <= 0, mismatched shapes, empty batches or NaN/inf inputs.
        TypeError: on non-float tensors or mismatched dtypes.

    Example:
        >>> round(clip_loss(torch.ones(4, 3), torch.ones(4, 3), 0.07).item(), 4)   # log(4)
        1.3863
    """
    if fused:
        check_pair("image_emb", image_emb, "text_emb", text_emb)
        check_temperature(temperature)
        loss = fused_clip(F.normalize(image_emb, dim=1), F.normalize(text_emb, dim=1), temperature)
        if loss is not None:
            return loss
    logits_per_image, logits_per_text = clip_logits(image_emb, text_emb, temperature)
    labels = torch.arange(image_emb.shape[0], device=image_emb.device)
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2
