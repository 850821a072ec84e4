"""DINO's self-distillation loss (Caron et al., ICCV 2021)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .._validate import check_embeddings, check_temperature, check_tensor, check_view_list


def _check_center(center, k: int) -> torch.Tensor:
    """The center of K teacher outputs, (K,) or (1, K), as a detached (1, K) row."""
    check_tensor("center", center, ndim=(1, 2))
    if center.shape[-1] != k or center.numel() != k:
        raise ValueError(f"center must have shape ({k},) or (1, {k}), got {tuple(center.shape)}")
    return center.reshape(1, -1).detach()


def dino_loss(student_out: Sequence[torch.Tensor], teacher_out: Sequence[torch.Tensor],
              center: torch.Tensor, student_temperature: float = 0.1,
              teacher_temperature: float = 0.04) -> torch.Tensor:
    """Cross-entropy from the centred, sharpened teacher to the student, over view pairs.

    ``P_t = softmax((g_t(x) - center) / tau_t)`` (no gradient) and
    ``P_s = softmax(g_s(x') / tau_s)``; the loss is ``-sum_k P_t log P_s`` averaged over the
    batch and over every (teacher view, student view) pair of *different* views (teacher view i
    skips student view i). Centering (subtracting ``center``) stops one dimension from
    dominating; sharpening (``tau_t < tau_s``) stops the output from going uniform. The center is
    passed in: updating it (an EMA of the teacher's batch mean) is the method's job.

    Args:
        student_out: list of (N, K) student outputs, one per view (global views first).
        teacher_out: list of (N, K) teacher outputs for the first global views.
        center: (K,) or (1, K) center of the teacher outputs.
        student_temperature: tau_s (paper: 0.1).
        teacher_temperature: tau_t (paper: 0.04-0.07).

    Returns:
        A 0-d tensor; ``log K`` when both outputs are uniform.

    Example:
        >>> z = torch.zeros(3, 8)                                  # uniform outputs
        >>> round(dino_loss([z, z], [z, z], torch.zeros(8)).item(), 4)   # = log 8
        2.0794
    """
    teacher_out = check_view_list("teacher_out", teacher_out)
    student_out = check_view_list("student_out", student_out, like=("teacher_out[0]", teacher_out[0]))
    center = _check_center(center, teacher_out[0].shape[1])         # (1, K)
    check_temperature(student_temperature, "student_temperature")
    check_temperature(teacher_temperature, "teacher_temperature")
    targets = [F.softmax((t.detach() - center) / teacher_temperature, dim=1) for t in teacher_out]  # (N, K)
    log_p = [F.log_softmax(s / student_temperature, dim=1) for s in student_out]                    # (N, K)
    total, terms = 0.0, 0
    for i, p_t in enumerate(targets):
        for v, lp_s in enumerate(log_p):
            if v == i:
                continue
            total = total + -(p_t * lp_s).sum(dim=1).mean()
            terms += 1
    if terms == 0:
        raise ValueError("dino_loss needs at least one (teacher view, student view) pair of "
                         f"different views, got {len(teacher_out)} teacher and "
                         f"{len(student_out)} student view(s)")
    return total / terms


def teacher_entropies(teacher_out: torch.Tensor, center: torch.Tensor,
                      teacher_temperature: float = 0.04) -> tuple:
    """The two numbers that tell DINO's collapse modes apart, in nats.

    With ``P_t = softmax((teacher_out - center) / tau_t)`` on a batch:

    - ``entropy``: the mean over images of H(P_t(x)). log K = every image's output is uniform
      (the collapse of centering without sharpening); near 0 = one-hot per image.
    - ``batch_entropy``: H of the batch-mean P_t. log K = the batch uses every output equally;
      low = the same few outputs win for every image (the collapse of sharpening without
      centering).

    A healthy teacher is peaked per image (entropy well below log K) and spread over the batch
    (batch_entropy near log K).

    Args:
        teacher_out: (N, K) teacher head outputs.
        center: (K,) or (1, K) center of the teacher outputs.
        teacher_temperature: tau_t.

    Returns:
        ``(entropy, batch_entropy)``, two 0-d tensors.

    Example:
        >>> same = torch.zeros(4, 8); same[:, 0] = 10.0       # the same one-hot for everyone
        >>> e, b = teacher_entropies(same, torch.zeros(8), 0.1); round(e.item(), 3), round(b.item(), 3)
        (0.0, 0.0)
        >>> e, b = teacher_entropies(torch.zeros(4, 8), torch.zeros(8)); round(e.item(), 4)   # log 8
        2.0794
    """
    check_embeddings("teacher_out", teacher_out)
    check_temperature(teacher_temperature, "teacher_temperature")
    center = _check_center(center, teacher_out.shape[1])            # (1, K)
    p_t = F.softmax((teacher_out.float() - center.float()) / teacher_temperature, dim=1)     # (N, K)
    entropy = -(p_t * p_t.clamp_min(1e-12).log()).sum(1).mean()
    p_mean = p_t.mean(0)                                              # (K,) the batch's usage
    return entropy, -(p_mean * p_mean.clamp_min(1e-12).log()).sum()
