"""Beyond one machine: the few collectives the methods need under ``torchrun``, PyTorch's own.

With one process (``torch.distributed`` not initialised) every helper is a no-op:
``gather(z)`` returns ``z`` itself and the reductions return their input, so single-process runs
are bit for bit what they were. Under ``torchrun`` with W processes, each holding N rows of the
global batch, :func:`gather` concatenates the (N, D) embeddings of every process, in rank order,
*with* gradients (``torch.distributed.nn``'s autograd-aware ``all_gather``), and each process
computes the loss of the whole global batch. Why that gives exactly the single-process gradient:
the backward of the gather sums, into each process's own rows, the gradients of all W (identical)
losses, W * dL/dz; DDP then averages the parameter gradients over the W processes, / W. This is
open_clip's ``gather_with_grad=True, local_loss=False``: simple and exact, at the price of every
process computing the full (W N x W N) similarities; open_clip's ``local_loss=True`` keeps only
each process's own rows (W times less work), which the kit's losses do not offer.
"""
from __future__ import annotations

import atexit
import os
import warnings

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ._validate import check_tensor


def is_distributed() -> bool:
    """True under ``torchrun`` (or any initialised process group) with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank, 0 with one process."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of processes W, 1 with one process."""
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Rank 0: the one process that prints, draws and saves."""
    return rank() == 0


def _check(name: str, z) -> torch.Tensor:
    check_tensor(name, z, floating=False, finite=False)
    if z.dim() == 0:
        raise ValueError(f"{name} must have a batch dimension (N, ...), got a 0-d tensor")
    return z


def gather(z: torch.Tensor) -> torch.Tensor:
    """The (W * N, ...) concatenation of every process's (N, ...) ``z``, in rank order, with gradients.

    Every process must pass the same shape (``fit``'s sharding gives each an equal slice).

    Example:
        >>> z = torch.rand(4, 3)
        >>> gather(z) is z                  # one process: z itself
        True
    """
    _check("z", z)
    if not is_distributed():
        return z
    from torch.distributed.nn.functional import all_gather
    with warnings.catch_warnings():         # torch >= 2.10 deprecates it for a private module
        warnings.simplefilter("ignore", FutureWarning)
        return torch.cat(all_gather(z))


def gather_no_grad(z: torch.Tensor) -> torch.Tensor:
    """The common bug, kept to learn from: ``torch.distributed.all_gather`` drops gradients.

    The usual patch puts this process's own ``z`` back in its rows, so the loss still
    differentiates, but only through N of the W * N rows: the other processes' rows are constants.
    With the global loss on every process the embeddings' gradients come out W times too small
    (tests/test_distributed.py shows the gradients differ from one process on the whole batch).

    Example:
        >>> z = torch.rand(4, 3)
        >>> gather_no_grad(z) is z
        True
    """
    _check("z", z)
    if not is_distributed():
        return z
    parts = [torch.empty_like(z) for _ in range(world_size())]
    dist.all_gather(parts, z.contiguous())
    parts[rank()] = z
    return torch.cat(parts)


@torch.no_grad()
def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """The sum of ``t`` over the processes (no gradient); ``t`` itself with one process.

    Example:
        >>> t = torch.ones(2)
        >>> all_reduce_sum(t) is t
        True
    """
    check_tensor("t", t, floating=False, finite=False)
    if not is_distributed():
        return t
    out = t.detach().clone()
    dist.all_reduce(out)
    return out


@torch.no_grad()
def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """The mean of a floating ``t`` over the processes (no gradient); ``t`` itself with one process.

    Example:
        >>> t = torch.ones(2)
        >>> all_reduce_mean(t) is t
        True
    """
    check_tensor("t", t, finite=False)
    return t if not is_distributed() else all_reduce_sum(t) / world_size()


@torch.no_grad()
def broadcast(t: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Overwrite ``t`` on every process with process ``src``'s (in place); returns ``t``.

    Example:
        >>> t = torch.arange(3)
        >>> broadcast(t) is t
        True
    """
    check_tensor("t", t, floating=False, finite=False, nonempty=False)
    if is_distributed():
        dist.broadcast(t, src)
    return t


class _GatherBatchNorm(_BatchNorm):
    """Batch norm over the global batch on the CPU, where PyTorch 2.14 has no SyncBatchNorm.

    ``nn.SyncBatchNorm`` refuses CPU tensors ("expected input tensor to be on GPU") and DDP
    refuses CPU modules holding one. Training under several processes, this layer normalises the
    :func:`gather`-ed global batch with the plain batch norm and keeps this process's rows: the
    single-process statistics, running averages and (through the gather's backward) gradients,
    for W times the normalising work. With one process, or in eval mode: the plain batch norm.
    """

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        n = x.shape[0]
        return super().forward(gather(x))[rank() * n:(rank() + 1) * n]


def sync_batchnorm(model: nn.Module) -> nn.Module:
    """Every BatchNorm layer of ``model`` normalising over the global batch (in place; returns it).

    On a GPU ``nn.SyncBatchNorm.convert_sync_batchnorm``; on the CPU (gloo), where PyTorch has
    none, the same conversion to a batch norm of the gathered batch. Call it after moving the
    model to its device. With one process, or in eval mode, the layers are plain batch norms.

    Example:
        >>> m = sync_batchnorm(nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)))
        >>> type(m[1]).__name__, m(torch.rand(4, 3)).shape
        ('_GatherBatchNorm', torch.Size([4, 2]))
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    on_cpu = all(t.device.type == "cpu" for t in [*model.parameters(), *model.buffers()])
    model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for m in model.modules():
        if on_cpu and type(m) is nn.SyncBatchNorm:
            m.__class__ = _GatherBatchNorm            # the same parameters and buffers
    return model


def launched() -> bool:
    """Started by ``torchrun`` with several processes (``WORLD_SIZE`` > 1), or a process group is up."""
    if not dist.is_available():
        return False
    if dist.is_initialized():
        return dist.get_world_size() > 1
    raw = os.environ.get("WORLD_SIZE", "1")
    if not raw.strip().isdigit():
        raise ValueError(f"WORLD_SIZE must be a positive integer (torchrun sets it), got {raw!r}")
    return int(raw) > 1


def init(device: torch.device) -> torch.device:
    """Under ``torchrun``: start the process group unless one is up; return this process's device.

    CUDA: the GPU of ``LOCAL_RANK`` and NCCL; the CPU: gloo. The group is destroyed at exit.
    """
    if not isinstance(device, torch.device):
        raise TypeError(f"device must be a torch.device, got {type(device).__name__} {device!r}")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(lambda: dist.destroy_process_group() if dist.is_initialized() else None)
    return device


class _TrainingStep(nn.Module):
    """``forward(batch) = method.training_step(batch)``, so that DDP sees (and syncs) the step."""

    def __init__(self, method: nn.Module):
        super().__init__()
        self.method = method

    def forward(self, batch) -> dict:
        return self.method.training_step(batch)


def wrap(method: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around ``method.training_step``: call the result with a batch.

    The backward's gradients are averaged over the processes; parameters and buffers start as
    rank 0's. ``static_graph``: the first step finds the parameters a method leaves out of its
    loss (without ``find_unused_parameters``' traversal of the graph at every step).
    """
    if not isinstance(method, nn.Module) or not callable(getattr(method, "training_step", None)):
        raise TypeError(f"method must be an nn.Module with training_step(batch) -> dict, got "
                        f"{type(method).__name__}")
    from torch.nn.parallel import DistributedDataParallel
    return DistributedDataParallel(_TrainingStep(method),
                                   device_ids=[device.index] if device.type == "cuda" else None,
                                   static_graph=True)
