"""The claim checks of notebook 20 (beyond one machine) fail on broken variants (issue 15).

The notebook's checks, rewritten here on small models in one process: W processes are emulated
as W chunks of a batch (the real two-process run is tests/test_distributed.py's), the
gradient-free gather as the other chunks detached, DDP's average as the mean over the chunks.
"""
import copy

import torch
import torch.nn.functional as F

from cl_teach.losses import nt_xent
from cl_teach.methods import SimCLR
from cl_teach.metrics import paired_difference
from cl_teach.models import SmallCNN

TAU, TOL = 0.1, dict(rtol=0, atol=1e-5)


def _my_nt_xent(z1, z2, tau):
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = (z @ z.T / tau).fill_diagonal_(float("-inf"))
    return F.cross_entropy(sim, torch.arange(2 * b).roll(b))


def _local(z1, z2, w, tau=TAU):
    return torch.stack([_my_nt_xent(a, b, tau) for a, b in zip(z1.chunk(w), z2.chunk(w))]).mean()


def _global(z1, z2, w, tau=TAU, gather=torch.cat):
    return _my_nt_xent(gather(z1.chunk(w)), gather(z2.chunk(w)), tau)


def _own_anchor(z1, z2, tau, rank, n):
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    mine = torch.arange(rank * n, (rank + 1) * n)
    own = torch.cat([mine, b + mine])
    sim = z[own] @ z.T / tau
    sim[torch.arange(2 * n), own] = float("-inf")
    return F.cross_entropy(sim, (own + b) % (2 * b))


def _pair(n=64, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(n, d, generator=g, dtype=torch.float64)
    return z1, z1 + 0.8 * torch.randn(n, d, generator=g, dtype=torch.float64)


# --- "the gathered loss equals nt_xent of the whole batch" ---------------------------------------

def test_equality_check_fails_when_a_process_is_dropped_or_negatives_stay_local():
    z1, z2 = _pair()
    assert torch.allclose(_global(z1, z2, 4), nt_xent(z1, z2, TAU), atol=1e-6)
    drop_last = lambda chunks: torch.cat(chunks[:-1])                       # noqa: E731  one rank lost
    assert not torch.allclose(_global(z1, z2, 4, gather=drop_last), nt_xent(z1, z2, TAU), atol=1e-6)
    assert not torch.allclose(_local(z1, z2, 4), nt_xent(z1, z2, TAU), atol=1e-3)
    mean_own = torch.stack([_own_anchor(z1, z2, TAU, r, 16) for r in range(4)]).mean()
    assert torch.allclose(mean_own, nt_xent(z1, z2, TAU), atol=1e-6)
    wrong_twin = torch.stack([_own_anchor(z1, z2.roll(1, 0), TAU, r, 16) for r in range(4)]).mean()
    assert not torch.allclose(wrong_twin, nt_xent(z1, z2, TAU), atol=1e-6)


# --- "the final loss rises with W with global negatives; with local ones it does not" ------------

def _rises(losses):
    return all(a < b for a, b in zip(losses, losses[1:]))


def test_loss_curve_check_tells_global_from_local_negatives():
    g = torch.Generator().manual_seed(0)
    pair = torch.randn(2, 2, 16, generator=g, dtype=torch.float64)          # N = 2 images, 2 views
    losses = {"global": [], "local": []}
    for w in (1, 4, 32):                                                     # every process: the same
        z1, z2 = pair[0].repeat(w, 1), pair[1].repeat(w, 1)                 # rows, so a local loss
        losses["global"].append(_global(z1, z2, w).item())                   # cannot change with W
        losses["local"].append(_local(z1, z2, w).item())
    assert _rises(losses["global"]) and losses["global"][-1] > losses["global"][0] + 1
    assert not _rises(losses["local"])                       # a "global" run that never gathered
    assert losses["local"][-1] <= losses["local"][0] + 1e-12


# --- kNN verdicts: asserted only when the paired interval excludes 0 ------------------------------

def test_knn_claim_is_not_asserted_when_the_interval_includes_zero():
    g = torch.Generator().manual_seed(0)
    local = (torch.rand(5000, generator=g) < 0.81).float()                  # kNN right / wrong
    right, wrong = local.nonzero().squeeze(1), (1 - local).nonzero().squeeze(1)
    swapped = local.clone()
    swapped[right[:25]], swapped[wrong[:25]] = 0.0, 1.0                      # other items, same accuracy
    d = paired_difference(swapped, local)
    assert not d.low > 0 and d.verdict("global negatives", "local negatives").startswith("no reliable")
    better = local.clone()
    better[wrong[:40]] = 1.0                                                 # +0.8 points, 40 items
    d = paired_difference(better, local)
    assert d.low > 0 and d.verdict("global negatives", "local negatives") == (
        "global negatives beats local negatives")
    assert not paired_difference(local, better).low > 0                      # and not the other way


# --- two processes: exact with gather, 1/W or the wrong direction without -------------------------

W = 2


def _model():
    torch.manual_seed(0)
    return SimCLR(SmallCNN(widths=(4, 8)), projection_dim=8, hidden_dim=16, temperature=TAU).double()


def _views():
    g = torch.Generator().manual_seed(1)
    return tuple(torch.rand(8, 1, 8, 8, generator=g, dtype=torch.float64) for _ in range(2))


def _grads(model, loss_of_z):
    model = copy.deepcopy(model).train()
    x1, x2 = _views()
    loss_of_z(model.projector(model.encoder(x1)), model.projector(model.encoder(x2))).backward()
    return {k: p.grad for k, p in model.named_parameters()}


def _ddp_emulated(z1, z2, with_grad, local):
    """A loss whose gradient is DDP's average over W emulated processes: the mean of the W
    processes' losses, each differentiable through its own rows only without a gradient gather."""
    n, losses = z1.shape[0] // W, []
    for r in range(W):
        g1, g2 = z1, z2
        if not with_grad:
            mine = torch.zeros(z1.shape[0], 1, dtype=torch.bool)
            mine[r * n:(r + 1) * n] = True
            g1, g2 = torch.where(mine, z1, z1.detach()), torch.where(mine, z2, z2.detach())
        losses.append(_own_anchor(g1, g2, TAU, r, n) if local else nt_xent(g1, g2, TAU))
    return torch.stack(losses).mean()


def _equal(got, right):
    return all(torch.allclose(got[k], right[k], **TOL) for k in right)


def _flat(g):
    return torch.cat([v.flatten() for v in g.values()])


def test_gradient_checks_fail_on_the_gradient_free_gather_and_on_a_dropped_process():
    model = _model()
    right = _grads(model, lambda z1, z2: nt_xent(z1, z2, TAU))
    for local in (False, True):                                              # gather: exact
        assert _equal(_grads(model, lambda z1, z2, lo=local: _ddp_emulated(z1, z2, True, lo)), right)
    no_grad = _grads(model, lambda z1, z2: _ddp_emulated(z1, z2, False, local=False))
    assert not _equal(no_grad, right)
    assert _equal({k: W * v for k, v in no_grad.items()}, right)             # exactly 1/W ...
    assert F.cosine_similarity(_flat(no_grad), _flat(right), dim=0) > 1 - 1e-9   # ... a scale only
    bug = _grads(model, lambda z1, z2: _ddp_emulated(z1, z2, False, local=True))
    assert not _equal(bug, right) and not _equal({k: W * v for k, v in bug.items()}, right)
    assert F.cosine_similarity(_flat(bug), _flat(right), dim=0) < 1 - 1e-6  # another direction
    half = _grads(model, lambda z1, z2: nt_xent(z1[:4], z2[:4], TAU))        # one process's rows lost
    assert not _equal(half, right)


# --- "AdamW hides the 1/W factor, SGD does not" ---------------------------------------------------

def _step(model, grads, opt, **kwargs):
    m = copy.deepcopy(model)
    for k, p in m.named_parameters():
        p.grad = grads[k].clone()
    before = torch.cat([p.detach().flatten().clone() for p in m.parameters()])
    opt(m.parameters(), **kwargs).step()
    return torch.cat([p.detach().flatten() for p in m.parameters()]) - before


def test_optimiser_check_tells_a_scale_invariant_step_from_one_that_is_not():
    model = _model()
    right = _grads(model, lambda z1, z2: nt_xent(z1, z2, TAU))
    small = {k: v / W for k, v in right.items()}

    def rel(opt, **kw):
        a, b = _step(model, small, opt, **kw), _step(model, right, opt, **kw)
        return (a.norm() / b.norm()).item(), ((a - b).norm() / b.norm()).item()

    assert abs(rel(torch.optim.SGD, lr=0.1)[0] - 1 / W) < 1e-6 and not rel(torch.optim.SGD, lr=0.1)[1] < 1e-3
    assert rel(torch.optim.AdamW, lr=5e-3, weight_decay=1e-4)[1] < 1e-3
    assert not rel(torch.optim.AdamW, lr=5e-3, eps=1.0)[1] < 1e-3           # an eps as big as g: seen
