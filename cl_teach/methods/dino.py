"""DINO (Caron et al., ICCV 2021): self-distillation with no labels, centering and sharpening."""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .._validate import check_positive, check_temperature
from ..distributed import gather
from ..losses import dino_loss
from ..losses.dino import teacher_entropies
from ..models import DINOHead, evaluating
from .base import Method, check_views, cosine_momentum, ema_update


def teacher_temperature_at(step: int, teacher_temperature: float,
                           warmup_teacher_temperature: float | None = None, warmup_steps: int = 0) -> float:
    """DINO's teacher temperature at ``step``: linear from the warm-up value to tau_t, then tau_t.

    The paper warms tau_t up from 0.04 to 0.07 over the first 30 epochs (``main_dino.py``:
    ``warmup_teacher_temp``, ``warmup_teacher_temp_epochs``, one value per epoch); here per step.

    Args:
        step: the step (0 = the first).
        teacher_temperature: tau_t after the warm-up.
        warmup_teacher_temperature: tau_t at step 0; None: no warm-up.
        warmup_steps: steps until tau_t is reached.

    Returns:
        tau_t at ``step``.

    Example:
        >>> [round(teacher_temperature_at(s, 0.07, 0.04, 3), 3) for s in range(5)]
        [0.04, 0.05, 0.06, 0.07, 0.07]
    """
    if warmup_teacher_temperature is None or step >= warmup_steps:
        return teacher_temperature
    start, end = warmup_teacher_temperature, teacher_temperature
    return start + (end - start) * step / warmup_steps


class DINO(Method):
    """Student g_s(f_s(x)); teacher = EMA of the student; the student predicts the teacher.

    ``P_t = softmax((g_t(x) - center) / tau_t)`` is the target of ``softmax(g_s(x') / tau_s)``
    for x' != x (see :func:`cl_teach.losses.dino_loss`). Centering alone would make the teacher
    uniform and sharpening alone one-hot; together they balance. After each step, the teacher
    follows the student by EMA and ``center <- m_c center + (1 - m_c) mean(teacher outputs)``.

    Args:
        encoder: f, with an ``out_dim`` attribute.
        n_outputs: K, outputs of the head (paper 65536; 256 here).
        student_temperature: tau_s (paper 0.1).
        teacher_temperature: tau_t (paper 0.04-0.07).
        momentum: base EMA rate of the teacher, raised to 1 by a cosine (paper 0.996; 0.99 here).
        center_momentum: m_c (paper 0.9).
        centering: False never moves the center from 0 (collapses to one dimension).
        sharpening: False sets tau_t = tau_s (collapses to the uniform output).
        n_global: how many leading views the teacher sees (paper 2); the student sees every
            view (multi-crop: 2 global views first, then any number of local crops).
        warmup_teacher_temperature: where tau_t starts (paper 0.04), rising linearly to
            ``teacher_temperature`` over ``warmup_teacher_temperature_steps`` steps (paper: 30
            epochs, to 0.07); None (default) keeps tau_t constant.
        warmup_teacher_temperature_steps: length of that warm-up, in steps (``after_step`` sets
            the value of the next step; see :func:`teacher_temperature_at`).
    """

    def __init__(self, encoder: nn.Module, n_outputs: int = 256, hidden_dim: int = 256,
                 bottleneck_dim: int = 64, student_temperature: float = 0.1,
                 teacher_temperature: float = 0.04, momentum: float = 0.99,
                 center_momentum: float = 0.9, centering: bool = True, sharpening: bool = True,
                 n_global: int = 2, warmup_teacher_temperature: float | None = None,
                 warmup_teacher_temperature_steps: int = 0):
        super().__init__(encoder)
        self.head = DINOHead(encoder.out_dim, n_outputs, hidden_dim, bottleneck_dim)
        self.teacher_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.teacher_head = copy.deepcopy(self.head).requires_grad_(False)
        self.register_buffer("center", torch.zeros(n_outputs))               # (K,)
        self.student_temperature = student_temperature
        self.final_teacher_temperature = teacher_temperature if sharpening else student_temperature
        if warmup_teacher_temperature is not None:
            if not sharpening:
                raise ValueError("sharpening=False sets tau_t = tau_s: give no warmup_teacher_temperature")
            check_temperature(warmup_teacher_temperature, "warmup_teacher_temperature")
            check_positive("warmup_teacher_temperature_steps", warmup_teacher_temperature_steps, integer=True)
        self.warmup = (warmup_teacher_temperature, warmup_teacher_temperature_steps)
        self.teacher_temperature = teacher_temperature_at(0, self.final_teacher_temperature, *self.warmup)
        self.momentum, self.center_momentum = momentum, center_momentum
        self.centering, self.sharpening, self.n_global = centering, sharpening, n_global
        self._teacher_mean = None

    def training_step(self, batch) -> dict:
        """One step: each student view predicts the centred, sharpened teacher P_t; teacher entropies."""
        check_views(batch, self.n_global)
        views = [v for v in batch if v.dim() == 4]
        s = [gather(self.head(self.encoder(x))) for x in views]               # V x (W N, K)
        with torch.no_grad():                                # every process's rows, in rank order
            t = [gather(self.teacher_head(self.teacher_encoder(x))) for x in views[:self.n_global]]
        loss = dino_loss(s, t, self.center, self.student_temperature, self.teacher_temperature)
        with torch.no_grad():                                # monitors: the two collapse modes
            entropy, batch_entropy = teacher_entropies(t[0], self.center, self.teacher_temperature)
        self._teacher_mean = torch.cat(t).mean(0)            # (K,) for the center: the global batch's
        return {"loss": loss, "teacher_entropy": entropy, "teacher_batch_entropy": batch_entropy,
                "z1": s[0].detach(), "z2": s[1].detach()}

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        """Teacher <- EMA of the student (cosine m); center <- m_c center + (1 - m_c) teacher mean.

        Then tau_t <- its value at the next step (the warm-up, when one is set).
        """
        m = cosine_momentum(self.momentum, step, total_steps)
        ema_update(self.teacher_encoder, self.encoder, m)
        ema_update(self.teacher_head, self.head, m)
        if self.centering and self._teacher_mean is not None:
            self.center.mul_(self.center_momentum).add_(self._teacher_mean, alpha=1 - self.center_momentum)
        self._teacher_mean = None
        if self.warmup[0] is not None:                       # without a warm-up tau_t is left alone
            self.teacher_temperature = teacher_temperature_at(step + 1, self.final_teacher_temperature,
                                                              *self.warmup)

    @torch.no_grad()
    def collapse_mode(self, x: torch.Tensor, uniform_above: float = 0.9, few_below: float = 0.6):
        """Which collapse the teacher is in on images x, by its two entropies (eval mode).

        Returns ``"uniform"`` when the mean per-image entropy exceeds ``uniform_above * log K``
        (every image gets a near-uniform P_t), ``"few outputs"`` when the entropy of the batch-mean
        P_t is below ``few_below * log K`` (fewer than K**few_below outputs in use across the
        images: the same few win for everyone), else ``None`` (peaked per image, spread over the
        batch: healthy). Use a few hundred images or more.
        """
        with evaluating(self):
            t = self.teacher_head(self.teacher_encoder(x))          # (N, K)
        entropy, batch_entropy = teacher_entropies(t, self.center, self.teacher_temperature)
        if entropy > uniform_above * self.log_k:
            return "uniform"
        if batch_entropy < few_below * self.log_k:
            return "few outputs"
        return None

    @property
    def log_k(self) -> float:
        """Log K: the loss (and teacher entropy) of a uniform output."""
        return math.log(self.center.numel())
