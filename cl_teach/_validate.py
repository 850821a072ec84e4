"""Input checks shared by every public function.

Each check raises ``ValueError`` (or ``TypeError`` for a wrong type) whose message names the
argument, says what was expected and what came in, e.g.
``temperature must be a finite number > 0, got 0.0``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch


def _describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)}, dtype {x.dtype}, device {x.device}"
    return f"{type(x).__name__} {x!r}"[:200]


def check_tensor(name: str, x, *, ndim: int | Sequence[int] | None = None,
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


def check_embeddings(name: str, x: torch.Tensor, finite: bool = True) -> torch.Tensor:
    """A (N, D) floating, non-empty batch of embeddings, finite unless ``finite=False``."""
    return check_tensor(name, x, ndim=2, finite=finite)


def check_pair(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor, finite: bool = True) -> None:
    """Two (N, D) embedding batches that belong together (same shape, device, dtype).

    ``finite=False`` leaves the pass over the values to :func:`finite_result`.
    """
    check_embeddings(name_a, a, finite)
    check_embeddings(name_b, b, finite)
    check_same_shape(name_a, a, name_b, b)
    check_same_device_dtype(name_a, a, name_b, b)


def finite_result(out: torch.Tensor, **inputs) -> torch.Tensor:
    """``out`` when it is finite; else the exact finiteness check of each input, in order.

    A loss whose result is non-finite for any NaN/inf input (tests/test_fuzz.py breaks each
    argument with a NaN or an inf and checks the error names it) can test its one result instead
    of every input: the same error, without a pass over the inputs on every call.

    Args:
        out: the loss (any tensor).
        **inputs: the tensors (or lists of tensors) it was computed from, by argument name.

    Returns:
        ``out``, also when it is non-finite with finite inputs (an overflow is not an input error).

    Example:
        >>> finite_result(torch.tensor(1.0), x=torch.ones(2))
        tensor(1.)
    """
    if bool(torch.isfinite(out.detach()).all()):
        return out
    for name, x in inputs.items():
        for i, v in enumerate(x) if isinstance(x, (list, tuple)) else ((None, x),):
            check_tensor(name if i is None else f"{name}[{i}]", v)
    return out


def check_labels(name: str, labels, n: int, of: str = "embeddings", binary: bool = False) -> torch.Tensor:
    """Check (N,) integer class labels, one per row of ``of``; ``binary``: 0/1 (or bool) flags.

    Args:
        name: the argument's name, for the message.
        labels: the value to check.
        n: the number of rows they label.
        of: the name of the argument whose rows they label, for the message.
        binary: accept bool, and the integers 0 and 1 only (a pair's "same" flag).

    Returns:
        ``labels``.

    Raises:
        TypeError: when ``labels`` is not a tensor or has a floating, complex or (unless
            ``binary``) bool dtype.
        ValueError: when it is not 1-d of length ``n``, or (``binary``) holds a value other than 0, 1.

    Example:
        >>> check_labels("same", torch.tensor([0, 2]), 2, of="x1", binary=True)
        Traceback (most recent call last):
        ...
        ValueError: same must hold only 0 and 1 (or be bool), got values in [0, 2]
    """
    kind = "0/1 (or bool) flags" if binary else "integer class labels"
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"{name} must be a 1-d tensor of {kind}, got {_describe(labels)}")
    if labels.is_floating_point() or labels.is_complex() or (labels.dtype == torch.bool and not binary):
        raise TypeError(f"{name} must hold {kind}, got {_describe(labels)}")
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(f"{name} must be a 1-d tensor of length {n} (one per row of {of}), got "
                         f"{_describe(labels)}")
    if binary and labels.dtype != torch.bool and not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError(f"{name} must hold only 0 and 1 (or be bool), got values in "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    return labels


def check_k(name: str, k, n: int | None = None, what: str = "the number of items") -> int:
    """Check a cut-off such as the k of top-k: an int (or NumPy integer, not a bool), 1 <= k <= n.

    Args:
        name: the argument's name, for the message.
        k: the value to check.
        n: the largest allowed k; ``None`` for no upper bound.
        what: what ``n`` counts, for the message (``"the number of indexed vectors"``).

    Returns:
        ``k`` as a Python int.

    Raises:
        TypeError: when ``k`` is not an integer (``2.0`` and ``True`` included).
        ValueError: when ``k < 1`` or ``k > n``.

    Example:
        >>> check_k("k", np.int64(3), 10)
        3
        >>> check_k("k", 11, 10, "the number of training features")
        Traceback (most recent call last):
        ...
        ValueError: k must be <= the number of training features (10), got 11
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {_describe(k)}")
    if k < 1:
        raise ValueError(f"{name} must be >= 1, got {k}")
    if n is not None and k > n:
        raise ValueError(f"{name} must be <= {what} ({n}), got {k}")
    return int(k)


def check_ks(name: str, ks, n: int | None = None, what: str = "the number of items") -> tuple[int, ...]:
    """Check a non-empty tuple or list of cut-offs, each as :func:`check_k` (named ``name[i]``).

    Args:
        name: the argument's name, for the message.
        ks: the values to check.
        n: the largest allowed k; ``None`` for no upper bound.
        what: what ``n`` counts, for the message.

    Returns:
        ``ks`` as a tuple of Python ints.

    Raises:
        TypeError: when ``ks`` is not a tuple or list, or one of its items is not an integer.
        ValueError: when ``ks`` is empty, or one of its items is < 1 or > n.

    Example:
        >>> check_ks("ks", [1, 5], 10)
        (1, 5)
        >>> check_ks("ks", (1, 0), 10)
        Traceback (most recent call last):
        ...
        ValueError: ks[1] must be >= 1, got 0
    """
    if not isinstance(ks, (list, tuple)):
        raise TypeError(f"{name} must be a non-empty tuple of ints, got {_describe(ks)}")
    if len(ks) == 0:
        raise ValueError(f"{name} must be a non-empty tuple of ints, got {ks!r}")
    return tuple(check_k(f"{name}[{i}]", k, n, what) for i, k in enumerate(ks))


def check_view_list(name: str, views, min_len: int = 1,
                    like: tuple[str, torch.Tensor] | None = None, finite: bool = True) -> list:
    """Check a list of (N, K) tensors, one per view, that all have the same shape.

    Args:
        name: the argument's name, for the message (items are named ``name[i]``).
        views: the list (or tuple) to check.
        min_len: the fewest views allowed (0 allows an empty list).
        like: ``(its_name, tensor)`` whose shape every view must have; ``None``: the shape of
            ``views[0]``.
        finite: check the values too (``False``: leave them to :func:`finite_result`).

    Returns:
        ``views`` as a list.

    Raises:
        TypeError: when ``views`` is not a list or tuple (a tensor included), or a view is not a
            floating tensor.
        ValueError: on too few views, or a view that is not 2-d, is empty, holds a NaN/inf or
            has another shape.

    Example:
        >>> len(check_view_list("views", [torch.zeros(4, 3), torch.ones(4, 3)]))
        2
        >>> check_view_list("views", [torch.zeros(4, 3), torch.ones(4, 2)])
        Traceback (most recent call last):
        ...
        ValueError: views[1] must have shape (4, 3) like views[0], got (4, 2)
    """
    if isinstance(views, torch.Tensor) or not isinstance(views, (list, tuple)):
        raise TypeError(f"{name} must be a list of (N, K) tensors, one per view, got "
                        f"{type(views).__name__}")
    if len(views) < min_len:
        want = "one view" if min_len == 1 else f"{min_len} views"
        raise ValueError(f"{name} must hold at least {want}, got "
                         f"{len(views) if views else 'an empty list'}")
    for i, v in enumerate(views):
        check_embeddings(f"{name}[{i}]", v, finite)
    like_name, ref = like if like is not None else (f"{name}[0]", views[0] if views else None)
    for i, v in enumerate(views):
        if v.shape != ref.shape:
            raise ValueError(f"{name}[{i}] must have shape {tuple(ref.shape)} like {like_name}, got "
                             f"{tuple(v.shape)}")
    return list(views)


def check_token_ids(ids, vocab_size: int, name: str = "ids") -> torch.Tensor:
    """(N, L) integer ids in [0, vocab_size); ValueError/TypeError naming what came in."""
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"{name} must be a LongTensor of token ids (N, L), got {type(ids).__name__}")
    if ids.dim() != 2 or ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (N, L) tensor of token ids, "
                         f"got shape {tuple(ids.shape)}")
    if ids.is_floating_point() or ids.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids (torch.long), got dtype {ids.dtype}")
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= vocab_size:
        raise ValueError(f"{name} must hold ids in [0, {vocab_size}) (the vocabulary size), "
                         f"got values in [{lo}, {hi}]")
    return ids
