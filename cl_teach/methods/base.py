"""The one protocol every method follows (and ``fit`` relies on).

* ``forward(x)`` -> h = f(x), the representation used for evaluation;
* ``training_step(batch)`` -> ``{"loss": ..., other scalars, detached tensors for monitors}``;
* ``after_step(step, total_steps)`` under ``no_grad``: the only place state changes
  (EMA targets, queues, centers). Never inside a loss or ``forward``. It returns nothing, or the
  parameters it re-initialised (DeepCluster's classifier): ``fit`` then drops their optimiser
  state, so Adam's moments restart for them as they would in a fresh optimiser.

Under ``torchrun`` (``cl_teach.distributed``) each process holds its slice of the global batch;
a method gathers what its loss compares (``gather(z)``, with gradients) and computes the loss of
the whole global batch, so loss, gradients and state updates are those of one process on the
whole batch. With one process ``gather(z)`` is ``z``: the code path is the single-process one.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class Method(nn.Module):
    """Base class: holds the encoder f; subclasses add heads and ``training_step``."""

    #: Under ``torchrun``, ``fit`` makes every BatchNorm layer normalise over the global batch
    #: (``cl_teach.distributed.sync_batchnorm``) unless this is False (MoCo's shuffling BN).
    sync_bn = True

    def __init__(self, encoder: nn.Module):
        super().__init__()
        if not isinstance(encoder, nn.Module):
            raise TypeError(f"encoder must be a torch.nn.Module (e.g. cl_teach.models.SmallCNN()), got "
                            f"{type(encoder).__name__}")
        self.encoder = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """H = f(x), shape (N, encoder.out_dim)."""
        return self.encoder(x)

    def training_step(self, batch) -> dict:  # pragma: no cover - abstract
        """``{"loss": ..., scalars..., "z1"/"z2" detached}`` of one batch; each method defines it."""
        raise NotImplementedError

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        """State updates after the optimiser step; nothing by default.

        Returns:
            None, or the parameters re-initialised here (``fit`` clears their optimiser state).
        """


def check_views(batch, n: int = 2, name: str = "batch"):
    """Return the first ``n`` views of a batch tuple, with a clear error when there are fewer."""
    if not isinstance(batch, (list, tuple)) or len(batch) < n:
        got = (f"{type(batch).__name__} of length {len(batch)}" if isinstance(batch, (list, tuple))
               else type(batch).__name__)
        raise ValueError(f"{name} must be a tuple of at least {n} views (x1, x2, ...), got {got}")
    return batch[:n]


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """Target <- m * target + (1 - m) * online, parameter by parameter (BYOL/MoCo's EMA)."""
    m = float(momentum)
    if not 0.0 <= m <= 1.0:                                        # also refuses NaN
        raise ValueError(f"momentum must be in [0, 1] (the EMA keeps m of the target), got {momentum!r}")
    for pt, po in zip(target.parameters(), online.parameters(), strict=True):
        pt.mul_(momentum).add_(po.detach(), alpha=1 - momentum)
    for bt, bo in zip(target.buffers(), online.buffers(), strict=True):
        bt.copy_(bo)


def cosine_momentum(base: float, step: int, total_steps: int) -> float:
    """BYOL's schedule: tau = 1 - (1 - base) (cos(pi k / K) + 1) / 2, from base up to 1."""
    return 1 - (1 - base) * (math.cos(math.pi * step / max(1, total_steps)) + 1) / 2
