"""Numerical stability: every loss is finite, with finite gradients, at temperature 0.01 and in
bfloat16, on random, identical-view, collapsed and large-magnitude embeddings.

A naive ``exp(s / tau)`` overflows float32 at tau = 0.01 once similarities pass ~0.9 and
bfloat16 much earlier; log-sum-exp (``cross_entropy``, ``log_softmax``, ``logsumexp``) does not.
``test_every_public_loss_is_checked`` keeps the table complete.
"""
from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from cl_teach import losses

N, D = 16, 8
TAU = 0.01


def _inputs(kind: str, dtype: torch.dtype, n: int = N, d: int = D) -> list[torch.Tensor]:
    """Two (N, D) embedding batches of a given difficulty."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, d, generator=g)
    if kind == "random":
        b = torch.randn(n, d, generator=g)
    elif kind == "identical":                 # every positive similarity is exactly 1
        b = a.clone()
    elif kind == "collapsed":                 # every embedding the same point: all similarities 1
        a = torch.ones(n, d) + 1e-3 * a
        b = a.clone()
    elif kind == "large":                     # big norms: normalisation must not overflow
        a, b = 1e3 * a, 1e3 * torch.randn(n, d, generator=g)
    else:  # pragma: no cover
        raise AssertionError(kind)
    return [a.to(dtype), b.to(dtype)]


def _weight_distance(a, b):
    """Two modules holding a and b as their weights (the regulariser reads parameters, not inputs)."""
    tuned, fixed = torch.nn.Linear(D, N, bias=False), torch.nn.Linear(D, N, bias=False)
    with torch.no_grad():
        tuned.weight.copy_(a)
        fixed.weight.copy_(b)
    return losses.weight_distance(tuned, fixed)


# Each entry: inputs (two (N, D) tensors, requires_grad) -> the loss at the coldest temperature.
LOSSES: dict[str, Callable] = {
    "info_nce": lambda a, b: losses.info_nce(a, b, temperature=TAU),
    "info_nce_logits": lambda a, b: torch.nn.functional.cross_entropy(
        *[t.float() if t.is_floating_point() else t for t in losses.info_nce_logits(a, b, temperature=TAU)]),
    "info_nce (queue)": lambda a, b: losses.info_nce(a, b, temperature=TAU,
                                                     negatives=torch.cat([a, b]).detach()),
    "nt_xent": lambda a, b: losses.nt_xent(a, b, temperature=TAU),
    "clip_loss": lambda a, b: losses.clip_loss(a, b, temperature=TAU),
    "clip_logits": lambda a, b: losses.clip_logits(a, b, temperature=TAU)[0].logsumexp(1).mean(),
    "simcse_loss": lambda a, b: losses.simcse_loss(a, b, temperature=TAU),
    "simcse_loss (hard negatives)": lambda a, b: losses.simcse_loss(a, b, temperature=TAU,
                                                                    hard_negatives=b.flip(0)),
    "alignment": lambda a, b: losses.alignment(a, b),
    "uniformity": lambda a, b: losses.uniformity(a),
    "negative_cosine": lambda a, b: losses.negative_cosine(a, b),
    "barlow_twins_loss": lambda a, b: losses.barlow_twins_loss(a, b),
    "cross_correlation": lambda a, b: losses.cross_correlation(a, b).sum(),
    "swav_loss": lambda a, b: losses.swav_loss([a, b], [a[:, :]], temperature=TAU, epsilon=TAU),
    "sinkhorn": lambda a, b: losses.sinkhorn(a, epsilon=TAU).sum() + 0 * a.sum(),
    "dino_loss": lambda a, b: losses.dino_loss([a, b], [b, a], torch.zeros(D, dtype=a.dtype),
                                               student_temperature=TAU, teacher_temperature=TAU),
    "masked_info_nce": lambda a, b: losses.masked_info_nce(a, b, torch.eye(a.shape[0], dtype=torch.bool) | (
        torch.arange(a.shape[0])[:, None] == torch.arange(a.shape[0]).flip(0)[None]), temperature=TAU),
    "queue_nce": lambda a, b: losses.queue_nce(a, b, torch.cat([b, a]).flip(0).detach(), temperature=TAU),
    "queue_nce (empty queue)": lambda a, b: losses.queue_nce(a, b, b[:0].detach(), temperature=TAU),
    "contrastive_pair_loss": lambda a, b: losses.contrastive_pair_loss(a, b, torch.arange(N) % 2 == 0),
    "contrastive_pair_loss (normalized)": lambda a, b: losses.contrastive_pair_loss(
        a, b, torch.arange(N) % 2, normalize=True),
    "triplet_loss": lambda a, b: losses.triplet_loss(a, b, b.flip(0)),
    # cat([a, b]) with labels % 4: a[i] and b[i] share a class (identical views: distance 0)
    "batch_triplet_loss": lambda a, b: losses.batch_triplet_loss(torch.cat([a, b]), torch.arange(2 * N) % 4),
    "batch_triplet_loss (semi-hard)": lambda a, b: losses.batch_triplet_loss(
        torch.cat([a, b]), torch.arange(2 * N) % 4, mining="semi-hard"),
    "batch_triplet_loss (all)": lambda a, b: losses.batch_triplet_loss(
        torch.cat([a, b]), torch.arange(2 * N) % 4, mining="all"),
    "n_pair_loss": lambda a, b: losses.n_pair_loss(a, b, l2_reg=0.002),
    "supcon_loss": lambda a, b: losses.supcon_loss(torch.stack([a, b], 1), torch.arange(N) % 4,
                                                   temperature=TAU),
    "supcon_loss (one view)": lambda a, b: losses.supcon_loss(a, torch.arange(N) % 4, temperature=TAU),
    "debiased_info_nce": lambda a, b: losses.debiased_info_nce(a, b, temperature=TAU, tau_plus=0.1),
    "koleo_loss": lambda a, b: losses.koleo_loss(torch.cat([a, b])),
    "self_guided_loss": lambda a, b: losses.self_guided_loss(a, torch.stack([b, a, b.flip(0)], 1),
                                                             temperature=TAU),
    "weight_distance": _weight_distance,
    "index_nce": lambda a, b: losses.index_nce(a, torch.cat([b, a.flip(0)]), torch.arange(a.shape[0]),
                                               temperature=TAU),
    "index_nce (false negatives)": lambda a, b: losses.index_nce(
        a, torch.cat([b, a.flip(0)]), torch.arange(a.shape[0]),
        false_negatives=torch.eye(a.shape[0], 2 * a.shape[0], dtype=torch.bool).roll(1, 1),
        temperature=TAU),
}
KINDS = ["random", "identical", "collapsed", "large"]
DTYPES = [torch.float32, torch.bfloat16]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "bfloat16"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_and_gradient_finite(name, kind, dtype):
    a, b = (t.requires_grad_(True) for t in _inputs(kind, dtype))
    loss = LOSSES[name](a, b)
    assert loss.dim() == 0, f"{name} must return a 0-d tensor, got shape {tuple(loss.shape)}"
    assert torch.isfinite(loss), f"{name} at tau={TAU}, {kind}, {dtype}: loss {loss.item()}"
    loss.backward()
    for arg, t in (("a", a), ("b", b)):
        if t.grad is not None:
            assert torch.isfinite(t.grad).all(), (f"{name} at tau={TAU}, {kind}, {dtype}: "
                                                  f"non-finite grad of {arg}")


@pytest.mark.parametrize("name", ["info_nce", "nt_xent", "clip_loss", "simcse_loss", "dino_loss",
                                  "swav_loss", "supcon_loss", "debiased_info_nce"])
def test_bfloat16_close_to_float32(name):
    """bfloat16 is not only finite but near the float32 value (8 bits of mantissa: ~1-2 %)."""
    a32, b32 = _inputs("random", torch.float32)
    ref = LOSSES[name](a32, b32).item()
    got = LOSSES[name](a32.bfloat16(), b32.bfloat16()).float().item()
    assert abs(got - ref) <= 0.05 * abs(ref) + 0.05, (name, ref, got)


def test_every_public_loss_is_checked():
    covered = {k.split(" ")[0] for k in LOSSES}
    missing = sorted(set(losses.__all__) - covered)
    assert not missing, f"add these public losses to LOSSES in tests/test_stability.py: {missing}"
