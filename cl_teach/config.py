"""Seeds, devices, threads and paths. Nothing here runs at import time."""
from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ._notebook import show_figures_inline

#: The repository root when cl_teach is used from a checkout (editable install).
REPO_ROOT = Path(__file__).resolve().parent.parent


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch; return a ``torch.Generator`` seeded the same way.

    Example:
        >>> g = seed_everything(0); torch.rand(1, generator=g).item() == torch.rand(1).item()
        True
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def get_device(prefer: str | None = None) -> torch.device:
    """The device to train on: ``prefer`` if given, else CUDA when present, else the CPU.

    A GPU is used when present and never required. ``CL_TEACH_DEVICE=cpu`` forces the CPU.
    """
    prefer = prefer or os.environ.get("CL_TEACH_DEVICE")
    if prefer is not None and not isinstance(prefer, (str, torch.device)):
        raise TypeError(f"prefer must be a device name such as 'cpu' or 'cuda', got "
                        f"{type(prefer).__name__} {prefer!r}")
    if prefer:
        try:
            torch.device(prefer)
        except RuntimeError as e:
            raise ValueError(f"prefer must be a torch device name such as 'cpu', 'cuda' or "
                             f"'cuda:0', got {prefer!r}") from e
        prefer = str(prefer)
        if prefer.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"prefer={prefer!r} asks for CUDA, but torch sees no GPU; "
                             "use 'cpu' or leave it unset")
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def notebook_seed() -> int:
    """The seed of a whole notebook: ``CL_TEACH_SEED`` (default 0).

    Every seed in a notebook derives from it (``SEED``, ``SEED + 1``, ...), so
    ``CL_TEACH_SEED=1 jupyter nbconvert --execute ...`` reruns the notebook with other random
    draws (data subsets, initialisations, augmentations) and its claims must still hold.

    Example:
        >>> isinstance(notebook_seed(), int)
        True
    """
    raw = os.environ.get("CL_TEACH_SEED", "0")
    if not raw.strip().isdigit():
        raise ValueError(f"CL_TEACH_SEED must be a non-negative integer, got {raw!r}")
    return int(raw)


def setup(seed: int | None = None, threads: int | None = None, verbose: bool = True) -> torch.device:
    """The one setup call of every notebook: seed, thread count, device.

    Args:
        seed: seeds Python, NumPy and torch. Default: :func:`notebook_seed` (``CL_TEACH_SEED``
            or 0).
        threads: torch CPU threads. Default: ``CL_TEACH_THREADS`` or 1. The course's numbers are
            recorded with one thread, so a rerun reproduces them bit for bit (sums split over
            threads round differently); on 2 cores, one thread is rarely slower for these small
            models, and when the other core is busy two threads ran 2-3x slower than one here.
        verbose: print one line with the torch version, device, threads and seed.

    Returns:
        The torch device chosen by :func:`get_device`.
    """
    if threads is None:
        threads = os.environ.get("CL_TEACH_THREADS", "1")
        if not threads.strip().isdigit():
            raise ValueError(f"CL_TEACH_THREADS must be a positive integer, got {threads!r}")
        threads = int(threads)
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise TypeError(f"threads must be an int >= 1, got {type(threads).__name__} {threads!r}")
    if threads < 1:
        raise ValueError(f"threads must be an int >= 1, got {threads}")
    torch.set_num_threads(threads)
    if seed is None:
        seed = notebook_seed()
    seed_everything(seed)
    device = get_device()
    show_figures_inline()                       # figures as PNG in Jupyter/Voila
    if verbose:
        print(f"cl_teach: torch {torch.__version__}, device={device.type}, threads={threads}, seed={seed}")
    return device


def data_dir() -> Path:
    """Where prepared data and caches live: ``CL_TEACH_DATA`` or ``<repo>/data/cache``."""
    return Path(os.environ.get("CL_TEACH_DATA", REPO_ROOT / "data" / "cache"))


@contextlib.contextmanager
def threads(n: int) -> Iterator[int]:
    """Use ``n`` torch CPU threads inside a ``with`` block, then go back to the previous count.

    For work whose numbers do not depend on the thread count, such as the big similarity matrix of
    a kNN evaluation (a matrix product splits its *output* between threads, so every entry is
    summed in the same order; checked in tests/test_config.py). Training stays on the thread count
    of :func:`setup`, where sums split over threads would change the recorded numbers.

    Example:
        >>> before = torch.get_num_threads()
        >>> with threads(2):
        ...     torch.get_num_threads()
        2
        >>> torch.get_num_threads() == before
        True
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1 (torch CPU threads), got {type(n).__name__} {n!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
