"""The KoLeo regulariser (Sablayrolles, Douze, Schmid & Jegou, ICLR 2019).

"Spreading vectors for similarity search": the Kozachenko-Leonenko estimator of differential
entropy is, up to constants, ``-mean_i log`` of the distance of each point to its nearest
neighbour; minimising it spreads the batch over the sphere. DINOv2 (Oquab et al., 2023) adds it
to its student's [CLS] outputs (weight 0.1).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .._validate import check_embeddings, check_positive


def koleo_loss(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``-mean_i log(min_{j != i} ||x_i - x_j|| + eps)`` on L2-normalised ``x``, as DINOv2's.

    The nearest neighbour is the largest inner product (on the sphere the same), found without
    gradient; the gradient flows through the distance to it. As in dinov2's ``KoLeoLoss``, ``eps``
    also guards the normalisation and is added to each difference (torch's ``pairwise_distance``),
    so coincident points cost ``-log(eps * (sqrt(D) + 1))``, finite, with a finite gradient.
    dinov2 fills the diagonal with -1 before the arg-max, which lets an antipodal pair pick itself;
    here the diagonal is -inf.

    Args:
        x: (N, D) embeddings, N >= 2. L2-normalised inside.
        eps: > 0.

    Returns:
        A 0-d tensor, about -log 2 at best (each point antipodal to its neighbour); lower is
        more spread.

    Example:
        >>> round(koleo_loss(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])).item(), 4)  # -log sqrt(2)
        -0.3466
    """
    check_embeddings("x", x)
    if x.shape[0] < 2:
        raise ValueError(f"x must hold N >= 2 vectors (each needs a nearest neighbour), got "
                         f"shape {tuple(x.shape)}")
    check_positive("eps", eps)
    x = F.normalize(x, dim=1, eps=eps)                              # (N, D)
    with torch.no_grad():
        dots = x @ x.T                                              # (N, N)
        dots.fill_diagonal_(float("-inf"))                          # a point is not its own neighbour
        nearest = dots.argmax(dim=1)                                # (N,)
    d = F.pairwise_distance(x, x[nearest], eps=eps)                 # (N,) ||x_i - x_nn(i) + eps||
    return -torch.log(d + eps).mean()
