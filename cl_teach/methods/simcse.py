"""SimCSE (Gao, Yao & Chen, EMNLP 2021): sentence embeddings by contrast, dropout as the augmentation."""
from __future__ import annotations

import torch
from torch import nn

from .._validate import check_positive
from ..distributed import gather
from ..losses.simcse import simcse_loss
from .base import Method


def _ids(name: str, t) -> torch.Tensor:
    if not isinstance(t, torch.Tensor) or t.dim() != 2 or t.is_floating_point():
        raise TypeError(f"{name} must be an integer (N, L) tensor of token ids, got "
                        f"{getattr(t, 'dtype', type(t).__name__)} {tuple(getattr(t, 'shape', ()))}")
    return t


class SimCSE(Method):
    """h = f(ids); unsupervised: the same batch through f twice; supervised: labelled pairs.

    * ``batch = (ids,)`` -- unsupervised SimCSE: ``z1 = f(ids)``, ``z2 = f(ids)`` differ only by
      dropout (f must contain dropout and be in train mode, which :func:`cl_teach.train.fit`
      sets); the other sentences of the batch are the negatives.
    * ``batch = (anchor_ids, positive_ids)`` or ``(anchor_ids, positive_ids, hard_negative_ids)``
      -- supervised SimCSE with labelled positives (and hard negatives).
    * a trailing boolean ``labels`` tensor (N, P, T), P = the number of id parts (2 or 3), marks the
      T labels (hashtags) of every sentence: a key sharing a label with anchor i is a false
      negative and leaves row i's softmax (``simcse_loss(..., same=...)``).

    Args:
        encoder: the text tower f, e.g. ``TinyTransformer(len(vocab))`` (dropout 0.1, as BERT).
        temperature: tau (paper: 0.05).
    """

    def __init__(self, encoder: nn.Module, temperature: float = 0.05):
        super().__init__(encoder)
        check_positive("temperature", temperature)
        self.temperature = temperature

    def training_step(self, batch) -> dict:
        """One step: SimCSE loss of anchor and positive (N, D) embeddings, hard negatives if given."""
        if isinstance(batch, torch.Tensor):
            batch = (batch,)
        if not isinstance(batch, (list, tuple)) or not 1 <= len(batch) <= 4:
            raise ValueError(f"batch must be (ids,), (anchor, positive) or (anchor, positive, "
                             f"hard_negative) token-id tensors, optionally + a bool labels tensor, got "
                             f"{type(batch).__name__}"
                             f"{f' of length {len(batch)}' if isinstance(batch, (list, tuple)) else ''}")
        labels = None
        if isinstance(batch[-1], torch.Tensor) and batch[-1].dtype == torch.bool:
            batch, labels = batch[:-1], batch[-1]
        if not 1 <= len(batch) <= 3:
            raise ValueError(f"batch must hold 1 to 3 token-id tensors before the labels, got {len(batch)}")
        ids = [_ids(n, t) for n, t in zip(("anchor_ids", "positive_ids", "hard_negative_ids"), batch,
                                          strict=False)]
        if len({t.shape[0] for t in ids}) > 1:
            raise ValueError(f"all parts of the batch must hold the same number of sentences, got "
                             f"{[t.shape[0] for t in ids]}")
        if labels is not None and (len(ids) < 2 or labels.dim() != 3
                                   or tuple(labels.shape[:2]) != (ids[0].shape[0], len(ids))):
            raise ValueError(f"labels must be a bool (N, P, T) tensor with N = {ids[0].shape[0]} and P = "
                             f"{len(ids)} (one row of T label flags per sentence of each part; needs "
                             f"labelled pairs), got shape {tuple(labels.shape)}")
        z1 = self.encoder(ids[0])                                   # (N, D), one dropout mask
        z2 = self.encoder(ids[1] if len(ids) > 1 else ids[0])       # (N, D), another
        hard = self.encoder(ids[2]) if len(ids) > 2 else None       # (N, D) or None
        z1, z2 = gather(z1), gather(z2)                             # every process's: (W N, D)
        hard = None if hard is None else gather(hard)
        same = None
        if labels is not None:
            lab = gather(labels.float())                            # (W N, P, T)
            keys = lab[:, 1:].transpose(0, 1).reshape(-1, lab.shape[2])   # (W N or 2 W N, T), key order
            same = (lab[:, 0] @ keys.T) > 0                         # (W N, W N or 2 W N): shares a label
        loss = simcse_loss(z1, z2, self.temperature, hard, same)
        out = {"loss": loss, "z1": z1.detach(), "z2": z2.detach()}
        if same is not None:
            eye = torch.eye(same.shape[0], same.shape[1], dtype=torch.bool, device=same.device)
            out["false_negatives"] = (same & ~eye).sum(dim=1).float().mean().detach()   # per anchor
        return out
