"""SimCSE's contrastive objective (Gao, Yao & Chen, EMNLP 2021).

"SimCSE: Simple Contrastive Learning of Sentence Embeddings".

Unsupervised: the same sentence encoded twice with different dropout masks gives ``z1``, ``z2``;
the other sentences of the batch are the negatives (InfoNCE with in-batch negatives).
Supervised: ``z2`` is a labelled positive (an entailed sentence; here a post with the same
hashtag) and ``hard_negatives`` adds N more candidates to every row (a contradiction; here a
post with another hashtag), so each row is a 2N-way classification.
False negatives: with labelled data, other sentences of the batch can share the anchor's label (a
post with the same hashtag); ``same`` marks them and they leave the softmax instead of being
pushed away (as :func:`~cl_teach.losses.masked_info_nce` does for two towers; with every key of
one label masked but the positive this is close to SupCon, Khosla et al. 2020: supervised SimCSE
is metric learning).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .._validate import check_pair, check_temperature


def _check_same(same, n: int, n_keys: int, device) -> torch.Tensor:
    if not isinstance(same, torch.Tensor) or same.dtype != torch.bool:
        raise TypeError(f"same must be a boolean torch.Tensor of shape ({n}, {n_keys}), got "
                        f"{getattr(same, 'dtype', type(same).__name__)}")
    if tuple(same.shape) != (n, n_keys):
        raise ValueError(f"same must have shape (N, N) or (N, 2N) with hard negatives = ({n}, {n_keys}), "
                         f"got {tuple(same.shape)}")
    return same.to(device)


def simcse_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.05,
                hard_negatives: torch.Tensor | None = None,
                same: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of ``cos(z1_i, [z2; hard_negatives]_j) / tau`` with the target ``j = i``.

    Args:
        z1: (N, D) anchors.
        z2: (N, D) their positives (the dropout twin, or a labelled pair).
        temperature: tau > 0 (SimCSE: 0.05).
        hard_negatives: optional (N, D); row i is a hard negative for anchor i, and every anchor
            also sees the other rows as negatives.
        same: optional (N, N), or (N, 2N) with hard negatives, bool; ``same[i, j]`` marks key j
            (``[z2; hard_negatives][j]``) as sharing anchor i's label: a false negative, left out of
            row i's softmax. ``same[i, i]`` (the positive) is ignored.

    Returns:
        A 0-d tensor.

    Example:
        >>> z = torch.eye(3)
        >>> round(simcse_loss(z, z, temperature=0.05).item(), 4)
        0.0
    """
    check_pair("z1", z1, "z2", z2)
    check_temperature(temperature)
    keys = z2
    if hard_negatives is not None:
        check_pair("z1", z1, "hard_negatives", hard_negatives)
        keys = torch.cat([z2, hard_negatives], dim=0)               # (2N, D)
    logits = F.normalize(z1, dim=1) @ F.normalize(keys, dim=1).T / temperature   # (N, N or 2N)
    labels = torch.arange(z1.shape[0], device=z1.device)
    if same is not None:
        drop = _check_same(same, z1.shape[0], keys.shape[0], z1.device).clone()
        drop[labels, labels] = False                                # the positive always stays
        logits = logits.masked_fill(drop, float("-inf"))
    return F.cross_entropy(logits, labels)
