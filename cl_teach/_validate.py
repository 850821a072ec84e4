"""Input checks shared by every public function.

Each check raises ``ValueError`` (or ``TypeError`` for a wrong type) whose message names the
argument, says what was expected and what came in, e.g.
``temperature must be a finite number > 0, got 0.0``.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch


def _describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)}, dtype {x.dtype}, device {x.device}"
    return f"{type(x).__name__} {x!r}"[:200]


def check_tensor(name: str, x, *, ndim: Optional[int | Sequence[int]] = None,
                 floating: bool = True, finite: bool = True, nonempty: bool = True) -> torch.Tensor:
    """Check that ``x`` is a tensor of the given rank, floating dtype, non-empty and finite."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {_describe(x)}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in allowed:
            want = " or ".join(f"{d}-d" for d in allowed)
            raise ValueError(f"{name} must be a {want} tensor, got {_describe(x)}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype (float32, float64, bfloat16, ...), "
                        f"got {_describe(x)}")
    if nonempty and (x.numel() == 0 or (x.dim() > 0 and x.shape[0] == 0)):
        raise ValueError(f"{name} must be non-empty, got {_describe(x)}")
    # A NaN or inf makes the sum non-finite: one reduction (~45x cheaper than isfinite(x).all())
    # decides the common case; only a non-finite sum (possibly an overflow) gets the exact test.
    if (finite and x.is_floating_point() and not bool(torch.isfinite(x.detach().sum()))
            and not bool(torch.isfinite(x.detach()).all())):
        bad = int((~torch.isfinite(x.detach())).sum())
        raise ValueError(f"{name} must be finite, got {bad} NaN/inf value(s) in {_describe(x)}")
    return x


def check_positive(name: str, value, *, integer: bool = False, allow_zero: bool = False):
    """Check a scalar hyper-parameter: finite, > 0 (or >= 0), and an int when ``integer``."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got {_describe(value)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            integer and not isinstance(value, int)):
        kind = "an int" if integer else "a number"
        raise TypeError(f"{name} must be {kind}, got {_describe(value)}")
    ok = value >= 0 if allow_zero else value > 0
    if not math.isfinite(value) or not ok:
        rel = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {rel}, got {value!r}")
    return value


def check_temperature(temperature, name: str = "temperature") -> float:
    """Temperature must be a finite positive number (a 1-element tensor is accepted)."""
    if isinstance(temperature, torch.Tensor):
        if temperature.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got {_describe(temperature)}")
        t = float(temperature.detach())
        if not (math.isfinite(t) and t > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {t!r}")
        return temperature
    return check_positive(name, temperature)


def check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")


def check_same_dim(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Two (N, D) and (M, D) matrices compared with each other must share D."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{name_a} and {name_b} must have the same dimension, got "
                         f"{a.shape[1]} and {b.shape[1]}")


def check_same_device_dtype(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    if a.device != b.device:
        raise ValueError(f"{name_a} and {name_b} must be on the same device, got "
                         f"{a.device} and {b.device}")
    if a.dtype != b.dtype:
        raise TypeError(f"{name_a} and {name_b} must have the same dtype, got "
                        f"{a.dtype} and {b.dtype}")


def check_embeddings(name: str, x: torch.Tensor) -> torch.Tensor:
    """A (N, D) floating, finite, non-empty batch of embeddings."""
    return check_tensor(name, x, ndim=2)


def check_pair(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Two (N, D) embedding batches that belong together (same shape, device, dtype)."""
    check_embeddings(name_a, a)
    check_embeddings(name_b, b)
    check_same_shape(name_a, a, name_b, b)
    check_same_device_dtype(name_a, a, name_b, b)


def check_k(name: str, k, n: int, what: str = "the number of items") -> int:
    check_positive(name, k, integer=True)
    if k > n:
        raise ValueError(f"{name} must be <= {what} ({n}), got {k}")
    return k
