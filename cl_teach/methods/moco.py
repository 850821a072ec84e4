"""MoCo (He et al., CVPR 2020; v2: Chen et al., 2020; v3: Chen, Xie & He, ICCV 2021)."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_positive
from ..distributed import broadcast, gather, rank, world_size
from ..losses import info_nce
from ..models import mlp, projector
from .base import Method, check_views, ema_update


class MoCo(Method):
    """Query encoder f_q + projector; key encoder f_k = EMA of f_q; a queue of K past keys.

    v1/v2 (``queue_size > 0``): ``loss = InfoNCE(q, k+, negatives=queue)`` with q from view 1 and
    the key k+ from view 2 through f_k (no gradient); after the step, f_k <- m f_k + (1 - m) f_q
    and the batch's keys replace the oldest ones in the queue, so the number of negatives no
    longer depends on the batch size. v3 (``queue_size=0``): the other keys of the batch are the
    negatives, a predictor follows the projector and the loss is symmetrised.

    Args:
        encoder: f, with an ``out_dim`` attribute.
        queue_size: K (paper: 65536; 4096 here for a small data set); 0 selects v3.
        momentum: m of the key encoder (paper: 0.999 over 200 epochs; 0.99 for a few hundred steps).
        temperature: tau (v1: 0.07, v2: 0.2, v3: 0.2).
        symmetric: both views as queries; defaults to the v3 choice (True when ``queue_size == 0``).
        predictor: an MLP q on the queries; defaults like ``symmetric``.
        projection_dim: output width of the MLP head (v2's head; 64 for CPU speed).
        hidden_dim: hidden width of the MLP head.
        bn_splits: Shuffling BN on one device (as the authors' CIFAR demo): queries and keys go
            through batch norm in this many sub-batches, the keys' batch shuffled first, so a
            query and its key never share batch statistics (else the model can tell the current
            batch's keys from the queue's by their statistics and "cheat"). 1 turns it off.
            Under ``torchrun`` with W processes, bn_splits is 1 (BatchNorm over the global batch)
            or a multiple of W: each process normalises bn_splits / W sub-batches of its slice,
            and the keys' global batch is shuffled across the processes first (the authors'
            shuffling BN across GPUs), so loss and gradients are those of one process.
    """

    def __init__(self, encoder: nn.Module, queue_size: int = 4096, momentum: float = 0.99,
                 temperature: float = 0.2, projection_dim: int = 64, hidden_dim: int = 256,
                 symmetric: bool | None = None, predictor: bool | None = None,
                 bn_splits: int = 2):
        super().__init__(encoder)
        check_positive("queue_size", queue_size, integer=True, allow_zero=True)
        check_positive("bn_splits", bn_splits, integer=True)
        v3 = queue_size == 0
        self.bn_splits = bn_splits
        self.queue_size, self.momentum, self.temperature = queue_size, momentum, temperature
        self.symmetric = v3 if symmetric is None else symmetric
        self.projector = projector(encoder.out_dim, hidden_dim, projection_dim)
        use_pred = v3 if predictor is None else predictor
        self.predictor = mlp(projection_dim, hidden_dim, projection_dim) if use_pred else nn.Identity()
        self.encoder_k = copy.deepcopy(self.encoder).requires_grad_(False)     # f_k
        self.projector_k = copy.deepcopy(self.projector).requires_grad_(False)
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, projection_dim), dim=1))  # (K, P)
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self._keys = None

    @property
    def sync_bn(self) -> bool:
        """Under ``torchrun``, BatchNorm over the global batch only when ``bn_splits == 1``."""
        return self.bn_splits == 1

    def _splits(self, w: int) -> int:
        """Sub-batches per process: bn_splits / W (each process normalises whole sub-batches)."""
        if w == 1 or self.bn_splits == 1:
            return self.bn_splits
        if self.bn_splits % w:
            raise ValueError(f"bn_splits must be 1 or a multiple of the number of processes ({w}) "
                             f"under torchrun, got {self.bn_splits}")
        return self.bn_splits // w

    def _split(self, f, x, perm=None, splits=None):
        """F applied to ``splits`` (``bn_splits``) sub-batches of x (in the order ``perm``, then undone)."""
        splits = self.bn_splits if splits is None else splits
        if splits == 1:
            return f(x)
        if x.shape[0] % splits:
            raise ValueError(f"the batch size ({x.shape[0] * self.bn_splits // splits}) must be "
                             f"divisible by bn_splits ({self.bn_splits})")
        xs = x if perm is None else x[perm]
        out = torch.cat([f(c) for c in xs.chunk(splits)])
        return out if perm is None else out[torch.argsort(perm)]

    def _query(self, x):                                                # (W N, P): every process's
        q = self._split(lambda c: self.predictor(self.projector(self.encoder(c))), x,
                        splits=self._splits(world_size()))
        return gather(q)

    def _key_net(self, x):
        return self.projector_k(self.encoder_k(x))

    def _key(self, x, across: bool = True):
        """(W N, P) keys of every process's x (``across=False``: of this x alone), shuffle BN."""
        w = world_size() if across else 1
        with torch.no_grad():                                           # keys: no gradient
            perm = torch.randperm(x.shape[0] * w, device=x.device)      # shuffle BN
            f = self._key_net
            if w == 1 or self.bn_splits == 1:
                k = self._split(f, x, perm) if w == 1 else gather(f(x))
            else:                                 # this process's slice of the shuffled global batch
                n, perm = x.shape[0], broadcast(perm)                   # rank 0's permutation
                xs = gather(x)[perm][rank() * n:(rank() + 1) * n]
                k = gather(self._split(f, xs, splits=self._splits(w)))[torch.argsort(perm)]
            return F.normalize(k, dim=1)                                # (W N, P)

    def training_step(self, batch) -> dict:
        """One step: InfoNCE of q1 vs k2 and the queue (v3: in-batch keys, symmetric); keeps k2."""
        x1, x2 = check_views(batch)
        if self.queue_size and x1.shape[0] * world_size() > self.queue_size:
            raise ValueError(f"the batch size ({x1.shape[0] * world_size()}) must be <= queue_size "
                             f"({self.queue_size})")
        q1 = self._query(x1)                                            # queries: (W N, P)
        k2 = self._key(x2)                                              # keys: (W N, P)
        negatives = self.queue.clone() if self.queue_size else None    # (K, P) or in-batch keys
        loss = info_nce(q1, k2, self.temperature, negatives)
        if self.symmetric:
            q2 = self._query(x2)
            k1 = self._key(x1)
            loss = 0.5 * (loss + info_nce(q2, k1, self.temperature, negatives))
        self._keys = k2                                                 # enqueued in after_step
        return {"loss": loss, "z1": q1.detach(), "z2": k2}

    @torch.no_grad()
    def fill_queue(self, x: torch.Tensor, batch_size: int = 256) -> MoCo:
        """Replace the queue's initial random vectors by keys of real images ``x`` (K or more).

        The authors start from random unit vectors; for a short run these are easy negatives
        for the first K / N steps (nothing like a real key), so the loss starts low and rises as
        real keys arrive. Filling the queue from the untrained key encoder avoids that. The
        images are taken in order (the first K), the pointer is reset to 0, BN is left in train
        mode as during training (Shuffling BN, running statistics updated as by K / N steps).

        Args:
            x: (M, C, H, W) images, M >= queue_size (augment them as the training views); with
                fewer, a warning, and their keys are repeated to fill the queue.
            batch_size: keys computed per call of the key encoder.

        Returns:
            self.
        """
        if not self.queue_size:
            raise ValueError("fill_queue needs a queue (queue_size > 0); MoCo v3 has none")
        if x.shape[0] < self.queue_size:             # a set smaller than the queue (the digits fallback)
            import warnings
            warnings.warn(f"fill_queue got {x.shape[0]} images for a queue of {self.queue_size}: "
                          f"their keys are repeated to fill it", stacklevel=2)
            x = x[torch.arange(self.queue_size) % x.shape[0]]
        device = self.queue.device
        keys = [self._key(c.to(device), across=False) for c in x[: self.queue_size].split(batch_size)]
        self.queue.copy_(torch.cat(keys).to(self.queue.dtype))
        self.queue_ptr.zero_()
        return self

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        """f_k and its projector <- EMA of the query side; the batch's keys replace the oldest."""
        ema_update(self.encoder_k, self.encoder, self.momentum)
        ema_update(self.projector_k, self.projector, self.momentum)
        if self.queue_size and self._keys is not None:                 # dequeue oldest, enqueue newest
            n = self._keys.shape[0]
            idx = (self.queue_ptr + torch.arange(n, device=self.queue.device)) % self.queue_size
            self.queue[idx] = self._keys.to(self.queue.dtype)
            self.queue_ptr.fill_((int(self.queue_ptr) + n) % self.queue_size)
        self._keys = None
