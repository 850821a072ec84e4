"""SimCSE's contrastive objective (Gao, Yao & Chen, EMNLP 2021).

"SimCSE: Simple Contrastive Learning of Sentence Embeddings".

Unsupervised: the same sentence encoded twice with different dropout masks gives ``z1``, ``z2``;
the other sentences of the batch are the negatives (InfoNCE with in-batch negatives).
Supervised: ``z2`` is a labelled positive (an entailed sentence; here a post with the same
hashtag) and ``hard_negatives`` adds N more candidates to every row (a contradiction; here a
post with another hashtag), so each row is a 2N-way classification.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .._validate import check_pair, check_temperature


def simcse_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.05,
                hard_negatives: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of ``cos(z1_i, [z2; hard_negatives]_j) / tau`` with the target ``j = i``.

    Args:
        z1: (N, D) anchors.
        z2: (N, D) their positives (the dropout twin, or a labelled pair).
        temperature: tau > 0 (SimCSE: 0.05).
        hard_negatives: optional (N, D); row i is a hard negative for anchor i, and every anchor
            also sees the other rows as negatives.

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
    return F.cross_entropy(logits, torch.arange(z1.shape[0], device=z1.device))
