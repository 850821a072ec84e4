"""Contrastive learning as metric learning: pairs, triplets, N-pairs and supervised contrast.

Before InfoNCE, contrastive losses were written on distances: Hadsell, Chopra & LeCun (2006) pull
a similar pair together and push a dissimilar one past a margin; the triplet loss (FaceNet,
Schroff et al., 2015) only asks an anchor to be nearer its positive than its negative by a margin,
with the triplets mined in the batch (batch-hard, Hermans et al., 2017). Sohn's N-pair loss (2016)
replaces the one negative by all the others of the batch: a softmax, InfoNCE at temperature 1 on
unnormalised embeddings. SupCon (Khosla et al., 2020) lets every sample with the same label be a
positive. Distances are Euclidean (not squared); every softmax goes through log-sum-exp.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .._validate import check_labels, check_pair, check_positive, check_temperature, check_tensor

MINING = ("hard", "semi-hard", "all")


def _norm(sq: torch.Tensor) -> torch.Tensor:
    """The square root of squared distances, with a zero gradient (not NaN) where two points coincide."""
    return sq.clamp_min(torch.finfo(sq.dtype).tiny).sqrt()


def _distances(x: torch.Tensor) -> torch.Tensor:
    """(N, N) Euclidean distances from the Gram matrix (centred first: fewer digits lost)."""
    x = x - x.mean(dim=0)
    sq = x.pow(2).sum(dim=1)                                        # (N,)
    return _norm((sq[:, None] + sq[None] - 2 * x @ x.T).clamp_min(0))


def contrastive_pair_loss(x1: torch.Tensor, x2: torch.Tensor, same: torch.Tensor, margin: float = 1.0,
                          *, normalize: bool = False) -> torch.Tensor:
    """Hadsell, Chopra & LeCun's contrastive loss on labelled pairs (CVPR 2006).

    ``mean_i [same_i d_i^2 + (1 - same_i) max(0, margin - d_i)^2]``, ``d_i = ||x1_i - x2_i||``: a
    similar pair is pulled together, a dissimilar one pushed apart until it is ``margin`` away. The
    paper writes 1/2 before each term (and Y = 1 for *dissimilar*); this is twice its value.

    Args:
        x1: (N, D) first items of the pairs.
        x2: (N, D) second items.
        same: (N,) bool or 0/1: 1 when pair i is similar.
        margin: m > 0; a dissimilar pair farther apart than m costs nothing.
        normalize: L2-normalise x1 and x2 first (distances in [0, 2]).

    Returns:
        A 0-d tensor >= 0.

    Example:
        >>> x2 = torch.tensor([[0.6, 0.8], [0.3, 0.4]])        # d = 1 and 0.5 from the origin
        >>> contrastive_pair_loss(torch.zeros(2, 2), x2, torch.tensor([True, False])).item()
        0.625
    """
    check_pair("x1", x1, "x2", x2)
    check_labels("same", same, x1.shape[0], of="x1", binary=True)
    check_positive("margin", margin)
    if normalize:
        x1, x2 = F.normalize(x1, dim=1), F.normalize(x2, dim=1)
    sq = (x1 - x2).pow(2).sum(dim=1)                                # (N,) d^2, exact at d = 0
    y = same.to(device=x1.device, dtype=x1.dtype)
    return (y * sq + (1 - y) * F.relu(margin - _norm(sq)).pow(2)).mean()


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                 margin: float = 0.2) -> torch.Tensor:
    """The triplet loss of given triplets (Schroff, Kalenichenko & Philbin, FaceNet, CVPR 2015).

    ``mean_i max(0, ||a_i - p_i|| - ||a_i - n_i|| + margin)``: torch's ``TripletMarginLoss(p=2)``,
    whose distance adds ``eps = 1e-6`` to each difference; here the distance is exact. FaceNet
    squares the distances and L2-normalises the embeddings (then margin 0.2).

    Args:
        anchor: (N, D) anchors.
        positive: (N, D) a positive (same identity) of each anchor.
        negative: (N, D) a negative of each anchor.
        margin: m > 0.

    Returns:
        A 0-d tensor >= 0; 0 when every negative is m farther than its positive.

    Example:
        >>> a, p, n = torch.zeros(1, 2), torch.tensor([[0.3, 0.4]]), torch.tensor([[0.6, 0.8]])
        >>> triplet_loss(a, p, n).item(), round(triplet_loss(a, p, n, margin=1.0).item(), 6)
        (0.0, 0.5)
    """
    check_pair("anchor", anchor, "positive", positive)
    check_pair("anchor", anchor, "negative", negative)
    check_positive("margin", margin)
    d_ap = _norm((anchor - positive).pow(2).sum(dim=1))             # (N,)
    d_an = _norm((anchor - negative).pow(2).sum(dim=1))             # (N,)
    return F.relu(d_ap - d_an + margin).mean()


def _check_mining(mining) -> str:
    if not isinstance(mining, str):
        raise TypeError(f"mining must be one of {MINING}, got {type(mining).__name__} {mining!r}")
    if mining not in MINING:
        raise ValueError(f"mining must be one of {MINING}, got {mining!r}")
    return mining


def batch_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.2,
                       mining: str = "hard") -> torch.Tensor:
    """The triplet loss over the triplets of a labelled batch, mined three ways.

    ``"hard"``: batch-hard (Hermans, Beyer & Leibe, 2017, "In Defense of the Triplet Loss"): each
    anchor with its farthest positive and nearest negative, averaged over anchors.
    ``"semi-hard"``: FaceNet's (Schroff et al., 2015) online mining, as TensorFlow's
    ``triplet_semihard_loss``: every anchor-positive pair with its nearest negative that is farther
    than the positive (none farther: its farthest negative), averaged over the pairs (TensorFlow and
    FaceNet square the distances; here, as everywhere in this file, they are Euclidean).
    ``"all"``: every valid triplet, averaged over all of them (zeros included: Hermans's BA).

    Args:
        embeddings: (N, D) embeddings, not normalised here (FaceNet normalises them).
        labels: (N,) integer classes; a positive is another item of the same class.
        margin: m > 0.
        mining: ``"hard"``, ``"semi-hard"`` or ``"all"``.

    Returns:
        A 0-d tensor >= 0.

    Raises:
        ValueError: also when the batch holds no triplet (no repeated label, or a single class).

    Example:
        >>> x, y = torch.tensor([[0.0], [1.0], [0.5], [3.0]]), torch.tensor([0, 0, 1, 1])
        >>> [round(batch_triplet_loss(x, y, mining=m).item(), 4) for m in ("hard", "semi-hard", "all")]
        [1.075, 0.55, 0.8125]
    """
    check_tensor("embeddings", embeddings, ndim=2)
    check_labels("labels", labels, embeddings.shape[0])
    check_positive("margin", margin)
    _check_mining(mining)
    y = labels.to(embeddings.device)
    same = y[:, None] == y[None]                                    # (N, N)
    pos = same & ~torch.eye(len(y), dtype=torch.bool, device=y.device)
    neg = ~same
    if not bool((pos.any(1) & neg.any(1)).any()):
        raise ValueError(f"labels must give some anchor a positive (a repeated label) and a negative "
                         f"(another label), got {y.unique().numel()} distinct label(s) in {len(y)}")
    d = _distances(embeddings)                                      # (N, N)
    if mining == "hard":
        keep = pos.any(1) & neg.any(1)                              # anchors with both
        d_ap = d.masked_fill(~pos, float("-inf")).amax(dim=1)       # (N,) farthest positive
        d_an = d.masked_fill(~neg, float("inf")).amin(dim=1)        # (N,) nearest negative
        return F.relu(d_ap - d_an + margin)[keep].mean()
    a, p = pos.nonzero(as_tuple=True)                               # (P,) every anchor-positive pair
    d_ap, d_an, neg_a = d[a, p][:, None], d[a], neg[a]              # (P, 1), (P, N), (P, N)
    if mining == "all":
        return (F.relu(d_ap - d_an + margin) * neg_a).sum() / neg_a.sum()
    farther = neg_a & (d_an > d_ap)                                 # semi-hard candidates
    outside = d_an.masked_fill(~farther, float("inf")).amin(dim=1)  # nearest of them
    inside = d_an.masked_fill(~neg_a, float("-inf")).amax(dim=1)    # else the farthest negative
    d_sel = torch.where(farther.any(dim=1), outside, inside)        # (P,)
    return F.relu(d_ap[:, 0] - d_sel + margin).mean()


def n_pair_loss(anchor: torch.Tensor, positive: torch.Tensor, l2_reg: float = 0.0) -> torch.Tensor:
    """Sohn's multi-class N-pair loss, N-pair-mc (NeurIPS 2016).

    ``mean_i log(1 + sum_{j != i} exp(a_i.p_j - a_i.p_i))``: the cross-entropy of the logits
    ``anchor @ positive.T`` with target i, on unnormalised embeddings; InfoNCE is this on
    L2-normalised embeddings divided by sqrt(tau). Sohn keeps the norms small with a penalty:
    ``l2_reg * mean of ||e||^2 over the 2N embeddings`` (TensorFlow's ``npairs_loss``
    ``reg_lambda`` is 2 * l2_reg).

    Args:
        anchor: (N, D) anchors.
        positive: (N, D) ``positive[i]`` is the positive of ``anchor[i]`` (each a distinct class);
            the other rows are its negatives.
        l2_reg: weight >= 0 of the norm penalty.

    Returns:
        A 0-d tensor.

    Example:
        >>> round(n_pair_loss(torch.eye(2), torch.eye(2)).item(), 4)      # log(1 + e^-1)
        0.3133
    """
    check_pair("anchor", anchor, "positive", positive)
    check_positive("l2_reg", l2_reg, allow_zero=True)
    logits = anchor @ positive.T                                    # (N, N), positives on the diagonal
    loss = F.cross_entropy(logits, torch.arange(anchor.shape[0], device=anchor.device))
    if l2_reg:
        loss = loss + l2_reg * torch.cat([anchor, positive]).pow(2).sum(dim=1).mean()
    return loss


def supcon_loss(features: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Supervised contrastive loss, L_out (Khosla et al., NeurIPS 2020).

    Every view of every sample is an anchor; its positives are the other views with the same
    label, the average of their log-probabilities (outside the log) over the softmax of
    ``cos / tau`` against all other views is its loss. Anchors without a positive (a label seen once,
    with one view) are left out of the mean. With 2 views and distinct labels this is
    :func:`~cl_teach.losses.nt_xent`. The authors' code scales the loss by ``tau / 0.07``; not here.

    Args:
        features: (N, V, D) V views per sample, or (N, D) one view. L2-normalised inside.
        labels: (N,) integer classes.
        temperature: tau > 0 (the paper: 0.1).

    Returns:
        A 0-d tensor.

    Raises:
        ValueError: also when no anchor has a positive.

    Example:
        >>> z = torch.eye(4)[:2]                    # nt_xent's example: the same 0.5514
        >>> round(supcon_loss(torch.stack([z, z], 1), torch.tensor([0, 1]), temperature=1.0).item(), 4)
        0.5514
    """
    check_tensor("features", features, ndim=(2, 3))
    check_labels("labels", labels, features.shape[0], of="features")
    check_temperature(temperature)
    z = F.normalize(features if features.dim() == 3 else features[:, None], dim=-1)   # (N, V, D)
    n, v = z.shape[:2]
    z = z.transpose(0, 1).reshape(v * n, -1)                        # (VN, D), view-major
    y = labels.to(z.device).repeat(v)                               # (VN,)
    self_ = torch.eye(v * n, dtype=torch.bool, device=z.device)
    pos = (y[:, None] == y[None]) & ~self_                          # (VN, VN)
    n_pos = pos.sum(dim=1)                                          # (VN,)
    if not bool((n_pos > 0).any()):
        raise ValueError(f"labels must give some anchor a positive: with {v} view(s), a label must "
                         f"repeat, got {labels.unique().numel()} distinct labels in {n}")
    logits = (z @ z.T / temperature).masked_fill(self_, float("-inf"))
    log_prob = logits - logits.logsumexp(dim=1, keepdim=True)       # (VN, VN), log-softmax
    keep = n_pos > 0
    return -(log_prob.masked_fill(~pos, 0).sum(dim=1)[keep] / n_pos[keep]).mean()
