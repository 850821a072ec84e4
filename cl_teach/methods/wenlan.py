"""WenLan / BriVL (Huo et al., 2021): CLIP's two towers trained the MoCo way.

The paper: "WenLan: Bridging Vision and Language by Large-Scale Multi-Modal Pre-Training".
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_labels, check_positive
from ..distributed import gather, gather_no_grad, world_size
from ..losses import queue_nce
from .base import ema_update
from .clip import CLIP, check_image_text_batch


class WenLan(CLIP):
    """Two towers, their momentum copies, and one negative queue per modality.

    An image query ``q_img`` is matched against the momentum text key of its caption ``k_txt``,
    the other N - 1 text keys of the batch and the K text keys in ``text_queue``; a text query
    against ``k_img``, the batch's image keys and ``image_queue``. Only filled queue slots are
    used: a queue started with random vectors offers an easy shortcut (move every embedding
    away from the noise) that collapses two towers trained from scratch.
    After each step the momentum towers move towards the online ones (EMA with ``momentum``) and
    the batch's keys replace the oldest in each queue, so the number of negatives is K whatever
    the batch size -- the point of the method when large batches do not fit.

    A queue that spans most of an epoch holds, for many queries, a stale key of the query's own
    pair (enqueued one epoch ago) as a "negative". Pass each pair's id as a third batch element,
    ``(x, ids, pair_ids)`` (``TensorLoader(images, texts, torch.arange(N))``), and the queues keep
    the ids of their keys: ``own_key_share`` (the share of queries whose own pair has a key in the
    queue) is logged, and with ``mask_own_keys=True`` those keys leave the query's softmax.

    Args:
        image_encoder, text_encoder, embed_dim, temperature, learn_temperature: as :class:`CLIP`
            (the temperature is fixed by default, as in MoCo; BriVL: 0.07).
        queue_size: K per modality (BriVL: 16,384; 1,024 here for a small data set).
        momentum: m of the momentum towers (BriVL: 0.99).
        mask_own_keys: leave queue keys of the query's own pair out of its softmax (needs pair ids).
    """

    def __init__(self, image_encoder: nn.Module, text_encoder: nn.Module, embed_dim: int = 64,
                 queue_size: int = 1024, momentum: float = 0.99, temperature: float = 0.07,
                 learn_temperature: bool = False, mask_own_keys: bool = False):
        super().__init__(image_encoder, text_encoder, embed_dim, temperature, learn_temperature)
        check_positive("queue_size", queue_size, integer=True)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.queue_size, self.momentum, self.mask_own_keys = queue_size, momentum, bool(mask_own_keys)
        self.online = nn.ModuleList([self.encoder, self.image_proj, self.text_encoder, self.text_proj])
        self.momentum_towers = copy.deepcopy(self.online).requires_grad_(False)
        self.register_buffer("image_queue", F.normalize(torch.randn(queue_size, embed_dim), dim=1))  # (K, E)
        self.register_buffer("text_queue", F.normalize(torch.randn(queue_size, embed_dim), dim=1))   # (K, E)
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue_len", torch.zeros((), dtype=torch.long))   # slots filled
        self.register_buffer("id_queue", torch.full((queue_size,), -1, dtype=torch.long))  # (K,), -1: none
        self._keys = None

    @torch.no_grad()
    def momentum_keys(self, x: torch.Tensor, ids: torch.Tensor):
        """``(k_img, k_txt)``: L2-normalised (N, E) keys from the momentum towers, no gradient."""
        f_img, g_img, f_txt, g_txt = self.momentum_towers
        return F.normalize(g_img(f_img(x)), dim=1), F.normalize(g_txt(f_txt(ids)), dim=1)

    def training_step(self, batch) -> dict:
        """One step: i2t and t2i InfoNCE vs the momentum keys and filled queue slots; keeps the keys."""
        x, ids = check_image_text_batch(batch)
        pair_ids = batch[2] if len(batch) > 2 else None
        if pair_ids is not None:
            check_labels("pair_ids (batch[2])", pair_ids, x.shape[0], of="images")
            pair_ids = gather_no_grad(pair_ids)                         # ids carry no gradient
        elif self.mask_own_keys:
            raise ValueError("mask_own_keys=True needs each pair's id as a third batch element, "
                             "(images, texts, pair_ids); got a batch of 2")
        if x.shape[0] * world_size() > self.queue_size:
            raise ValueError(f"the batch size ({x.shape[0] * world_size()}) must be <= queue_size "
                             f"({self.queue_size})")
        q_img, q_txt = self.encode_image(x), self.encode_text(ids)      # queries: (N, E)
        k_img, k_txt = self.momentum_keys(x, ids)                       # keys: (N, E)
        q_img, q_txt, k_img, k_txt = map(gather, (q_img, q_txt, k_img, k_txt))  # every process's
        n_filled = int(self.queue_len)                                  # only keys seen so far
        tau = self.temperature
        ids = {}
        if self.mask_own_keys:                                          # stale keys of the own pair
            ids = {"query_ids": pair_ids, "queue_ids": self.id_queue[:n_filled].clone()}
        loss_i2t = queue_nce(q_img, k_txt, self.text_queue[:n_filled].clone(), tau, **ids)  # (N, N + K)
        loss_t2i = queue_nce(q_txt, k_img, self.image_queue[:n_filled].clone(), tau, **ids)
        self._keys = (k_img, k_txt, pair_ids)                           # enqueued in after_step
        out = {"loss": (loss_i2t + loss_t2i) / 2, "loss_i2t": loss_i2t.detach(),
               "loss_t2i": loss_t2i.detach(), "z1": q_img.detach(), "z2": q_txt.detach()}
        if pair_ids is not None:                                        # (N, K) -> share of queries
            own = (pair_ids[:, None] == self.id_queue[None, :n_filled]).any(dim=1)
            out["own_key_share"] = own.float().mean()
        return out

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        """Clamp logit_scale, move the momentum towers by EMA, enqueue the batch's keys."""
        super().after_step(step, total_steps)                           # the logit-scale clamp
        ema_update(self.momentum_towers, self.online, self.momentum)
        if self._keys is not None:                                      # dequeue oldest, enqueue newest
            k_img, k_txt, pair_ids = self._keys
            n = k_img.shape[0]
            idx = (self.queue_ptr + torch.arange(n, device=self.image_queue.device)) % self.queue_size
            self.image_queue[idx] = k_img.to(self.image_queue.dtype)
            self.text_queue[idx] = k_txt.to(self.text_queue.dtype)
            self.id_queue[idx] = -1 if pair_ids is None else pair_ids.to(self.id_queue.device)
            self.queue_ptr.fill_((int(self.queue_ptr) + n) % self.queue_size)
            self.queue_len.fill_(min(int(self.queue_len) + n, self.queue_size))
        self._keys = None
