"""THE training loop: one ``fit`` for every method, plus callbacks.

A method is an ``nn.Module`` with ``training_step(batch) -> dict`` (holding ``"loss"``, other
scalars to log, and optionally detached tensors for monitors) and ``after_step(step,
total_steps)`` where its state (EMA target, queue, center) changes. Nothing method-specific
lives here (minGPT's trainer is the model).

Under ``torchrun --nproc_per_node W`` the same call trains on W processes (README, "Beyond one
machine"): PyTorch's DistributedDataParallel, each process on its slice of every global batch.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from . import distributed, metrics
from ._validate import check_positive
from .config import get_device


class History:
    """Logged values: ``history["loss"]`` is a NumPy array, ``history.steps("loss")`` its steps."""

    def __init__(self):
        self._values: dict[str, list[float]] = defaultdict(list)
        self._steps: dict[str, list[int]] = defaultdict(list)
        self.wall_time = 0.0

    def log(self, step: int, **values: float) -> None:
        """Append each ``name=value`` of ``values`` at ``step``."""
        for k, v in values.items():
            self._values[k].append(float(v))
            self._steps[k].append(step)

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._values:
            raise KeyError(f"{key!r} was not logged; logged keys: {sorted(self._values)}")
        return np.asarray(self._values[key])

    def __contains__(self, key: str) -> bool:
        return key in self._values

    def steps(self, key: str) -> np.ndarray:
        """The steps at which ``key`` was logged, aligned with ``history[key]``."""
        return np.asarray(self._steps[key])

    def keys(self) -> list[str]:
        """The logged names, in the order first logged."""
        return list(self._values)

    def last(self, key: str) -> float:
        """The last logged value of ``key``."""
        return float(self[key][-1])

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={self.last(k):.4g}" for k in self.keys())
        return f"History({parts}; {self.wall_time:.1f} s)"


class Callback:
    """Hooks of :func:`fit`; override what you need. ``logs`` is the dict of training_step.

    Under ``torchrun`` callbacks run on rank 0 only (they draw, print, measure, save), unless
    ``all_ranks`` is True; state changes belong in the method's ``after_step``, run everywhere.
    """

    all_ranks = False

    def on_fit_start(self, method, history: History, total_steps: int) -> None:
        """Before the first step; ``total_steps`` is how many steps :func:`fit` plans to run."""

    def on_step_end(self, step: int, logs: dict, method, history: History) -> None:
        """After the optimiser step and ``after_step`` of step ``step``, once its scalars are logged."""

    def on_fit_end(self, method, history: History) -> None:
        """After the last step (also when ``max_seconds`` stopped the run early)."""


def warmup_cosine(step: int, total_steps: int, warmup_steps: int) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine decay to 0 (SimCLR's schedule)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _to(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch


def fit(method: nn.Module, loader: Iterable, epochs: int = 1, steps: int | None = None,
        lr: float = 5e-3, weight_decay: float = 1e-4, warmup: float = 0.05,
        optimizer: torch.optim.Optimizer | None = None, callbacks: Sequence[Callback] = (),
        device: torch.device | None = None, progress: bool = True,
        max_seconds: float | None = None, desc: str | None = None) -> History:
    """Train ``method`` on ``loader`` and return its :class:`History`.

    Args:
        method: has ``training_step(batch) -> {"loss": ..., ...}``; ``after_step`` optional.
        loader: an iterable of batches (e.g. :class:`cl_teach.data.ViewLoader`), re-iterated
            each epoch.
        epochs: passes over ``loader``; or give ``steps`` to stop after that many steps.
        steps: optimiser steps in all (overrides ``epochs``; needed when ``loader`` has no len()).
        lr: AdamW's learning rate (the kit's default optimiser for small CPU runs).
        weight_decay: AdamW's weight decay.
        warmup: share of the steps spent in linear warm-up before cosine decay.
        optimizer: your own optimiser instead (then ``lr``/``weight_decay`` are ignored, the
            schedule still applies).
        callbacks: :class:`Callback` objects, e.g. :class:`CollapseMonitor`, ``LivePlot``.
        device: where to train (default: :func:`cl_teach.config.get_device`).
        progress: show a tqdm progress bar.
        max_seconds: stop early after this wall time (benchmarks only; makes runs
            non-deterministic, so notebooks use ``steps``).
        desc: the progress bar's label (default: the method's class name).

    Returns:
        History with ``loss``, ``lr`` and every scalar in the step's dict, per step.

    Under ``torchrun`` (several processes), ``fit`` starts the process group (gloo on the CPU,
    NCCL on the GPU of ``LOCAL_RANK``), iterates ``loader.shard(rank, world_size)``, makes the
    method's BatchNorm layers normalise over the global batch (unless ``method.sync_bn`` is
    False), calls ``training_step`` through DistributedDataParallel and ``after_step`` on every
    process; the progress bar and the callbacks run on rank 0 only. The kit's methods gather
    their embeddings, so loss and gradients are those of one process on the global batch.
    """
    check_positive("epochs", epochs, integer=True)
    if steps is not None:
        check_positive("steps", steps, integer=True)
    check_positive("lr", lr)
    if not callable(getattr(method, "training_step", None)):
        raise TypeError(f"method must define training_step(batch) -> dict, got {type(method).__name__}")
    multi = distributed.launched()
    if multi:
        if not callable(getattr(loader, "shard", None)):
            raise TypeError(f"under torchrun, loader must have shard(rank, world_size) (TensorLoader, "
                            f"ViewLoader, HashtagPairLoader), got {type(loader).__name__}")
        device = distributed.init(device or get_device())
        loader = loader.shard(distributed.rank(), distributed.world_size())
    try:
        per_epoch = len(loader)
    except TypeError:
        per_epoch = None
    if per_epoch == 0:
        raise ValueError("loader yields no batches (is batch_size larger than the data set?)")
    total = steps if steps is not None else (per_epoch * epochs if per_epoch else None)
    if total is None:
        raise ValueError("loader has no len(); pass steps=...")
    device = device or get_device()
    method.to(device).train()
    step_fn = method.training_step
    if multi:
        if getattr(method, "sync_bn", True):
            distributed.sync_batchnorm(method)
        step_fn = distributed.wrap(method, device)
        callbacks = [cb for cb in callbacks if distributed.is_main() or getattr(cb, "all_ranks", False)]
        progress = progress and distributed.is_main()
    params = [p for p in method.parameters() if p.requires_grad]
    opt = optimizer or torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    warmup_steps = max(1, int(warmup * total))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, total, warmup_steps))
    history = History()
    for cb in callbacks:
        cb.on_fit_start(method, history, total)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        # At most ~1 refresh a second: every refresh is a message to the notebook front end, and a
        # flood of them can overflow the kernel's output queue during a long cell (nbval then
        # times out waiting for the cell's output).
        bar = tqdm(total=total, desc=desc or type(method).__name__, leave=True, mininterval=1.0)
    start, step = time.perf_counter(), 0
    after = getattr(method, "after_step", None)
    try:
        while step < total:
            for batch in loader:
                out = step_fn(_to(batch, device))
                loss = out["loss"]
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower lr "
                                             f"(now {sched.get_last_lr()[0]:.3g}) or raise temperature")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                if after is not None:
                    for p in after(step, total) or ():               # re-initialised parameters:
                        opt.state.pop(p, None)                       # their moments start afresh
                scalars = {k: v.item() if isinstance(v, torch.Tensor) else v for k, v in out.items()
                           if (isinstance(v, torch.Tensor) and v.dim() == 0) or isinstance(v, (int, float))}
                history.log(step, lr=sched.get_last_lr()[0], **scalars)
                for cb in callbacks:
                    cb.on_step_end(step, out, method, history)
                step += 1
                if bar is not None:
                    bar.update(1)
                    if step % 10 == 0 or step == total:
                        bar.set_postfix(loss=f"{scalars['loss']:.3f}", refresh=False)
                late = bool(max_seconds and time.perf_counter() - start > max_seconds)
                if multi and max_seconds:                           # stop together: any is late
                    late = bool(distributed.all_reduce_sum(torch.tensor([float(late)], device=device)) > 0)
                if step >= total or late:
                    total = step
                    break
    finally:
        if bar is not None:
            bar.close()
        history.wall_time = time.perf_counter() - start
    for cb in callbacks:
        cb.on_fit_end(method, history)
    return history


class CollapseMonitor(Callback):
    """Every ``every`` steps, log collapse monitors of the step's embeddings (notebook 03).

    Reads ``logs[key]`` (and ``logs[key2]`` for alignment): (N, D) detached tensors returned by
    the method's training_step. Logs ``feature_std``, ``effective_rank``, ``uniformity`` and,
    with two views, ``alignment``.
    """

    def __init__(self, every: int = 10, key: str = "z1", key2: str | None = "z2"):
        self.every, self.key, self.key2 = every, key, key2

    def on_step_end(self, step, logs, method, history):
        """Every ``every`` steps, log the monitors of ``logs[key]`` (alignment with ``logs[key2]``)."""
        if step % self.every or self.key not in logs:
            return
        z = logs[self.key].detach().float()
        vals = dict(feature_std=metrics.feature_std(z).item(),
                    effective_rank=metrics.effective_rank(z).item(),
                    uniformity=metrics.uniformity(z).item())
        if self.key2 and self.key2 in logs:
            vals["alignment"] = metrics.alignment(z, logs[self.key2].detach().float()).item()
        history.log(step, **vals)


class EvalCallback(Callback):
    """Every ``every`` steps (and at the end), log ``name = fn(method)``, e.g. a kNN accuracy."""

    def __init__(self, fn: Callable[[nn.Module], float], every: int = 100, name: str = "knn"):
        self.fn, self.every, self.name = fn, every, name

    def on_step_end(self, step, logs, method, history):
        """Log ``name = fn(method)`` every ``every`` steps (not at step 0)."""
        if step > 0 and step % self.every == 0:
            history.log(step, **{self.name: self.fn(method)})

    def on_fit_end(self, method, history):
        """Log ``name = fn(method)`` at the last step, unless it was logged there already."""
        last = len(history["loss"]) - 1
        if self.name not in history or history.steps(self.name)[-1] != last:
            history.log(last, **{self.name: self.fn(method)})
