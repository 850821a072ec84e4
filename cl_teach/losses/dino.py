"""DINO's self-distillation loss (Caron et al., ICCV 2021)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .._validate import check_embeddings, check_temperature, check_tensor


def _views(name: str, views) -> list:
    if isinstance(views, torch.Tensor) or not isinstance(views, (list, tuple)):
        raise TypeError(f"{name} must be a list of (N, K) tensors, one per view, got "
                        f"{type(views).__name__}")
    if len(views) == 0:
        raise ValueError(f"{name} must hold at least one view, got an empty list")
    for i, v in enumerate(views):
        check_embeddings(f"{name}[{i}]", v)
    return list(views)


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
        student_temperature: tau_s (paper: 0.1). teacher_temperature: tau_t (paper: 0.04-0.07).

    Returns:
        A 0-d tensor; ``log K`` when both outputs are uniform.

    Example:
        >>> z = torch.zeros(3, 8)                                  # uniform outputs
        >>> round(dino_loss([z, z], [z, z], torch.zeros(8)).item(), 4)   # = log 8
        2.0794
    """
    student_out, teacher_out = _views("student_out", student_out), _views("teacher_out", teacher_out)
    check_temperature(student_temperature, "student_temperature")
    check_temperature(teacher_temperature, "teacher_temperature")
    shape = teacher_out[0].shape
    for name, outs in (("student_out", student_out), ("teacher_out", teacher_out)):
        for i, v in enumerate(outs):
            if v.shape != shape:
                raise ValueError(f"{name}[{i}] must have shape {tuple(shape)} like teacher_out[0], "
                                 f"got {tuple(v.shape)}")
    check_tensor("center", center, ndim=(1, 2))
    if center.shape[-1] != shape[1] or center.numel() != shape[1]:
        raise ValueError(f"center must have shape ({shape[1]},) or (1, {shape[1]}), got "
                         f"{tuple(center.shape)}")
    center = center.reshape(1, -1).detach()
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
        teacher_out: (N, K) teacher head outputs. center: (K,) or (1, K). teacher_temperature: tau_t.

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
    check_tensor("center", center, ndim=(1, 2))
    if center.numel() != teacher_out.shape[1]:
        raise ValueError(f"center must have shape ({teacher_out.shape[1]},) or (1, "
                         f"{teacher_out.shape[1]}), got {tuple(center.shape)}")
    p_t = F.softmax((teacher_out.float() - center.reshape(1, -1).float()) / teacher_temperature, dim=1)
    entropy = -(p_t * p_t.clamp_min(1e-12).log()).sum(1).mean()
    p_mean = p_t.mean(0)                                              # (K,) the batch's usage
    return entropy, -(p_mean * p_mean.clamp_min(1e-12).log()).sum()
