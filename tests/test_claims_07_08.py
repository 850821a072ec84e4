"""The claim checks of notebooks 07 (MoCo) and 08 (SwAV) fail on broken variants (issue 18)."""
import copy

import torch
import torch.nn.functional as F

from cl_teach.losses import sinkhorn
from cl_teach.methods import MoCo
from cl_teach.metrics import paired_difference
from cl_teach.models import SmallCNN


def usage_perplexity(assign, k):
    """exp(entropy) of the share of items per prototype (06's usage check)."""
    p = torch.bincount(assign, minlength=k).float() / len(assign)
    p = p[p > 0]
    return torch.exp(-(p * p.log()).sum()).item()


def test_usage_perplexity_rejects_a_run_that_touches_every_prototype_once():
    k, n = 30, 5000
    g = torch.Generator().manual_seed(0)
    healthy = torch.randint(0, k, (n,), generator=g)
    assert usage_perplexity(healthy, k) >= 0.7 * k
    # the old check (every prototype chosen by >= 1 image) passes a near-collapsed run ...
    lopsided = torch.cat([torch.arange(k), torch.zeros(n - k, dtype=torch.long)])
    assert (torch.bincount(lopsided, minlength=k) > 0).all()
    # ... the perplexity check does not
    assert usage_perplexity(lopsided, k) < 0.7 * k
    half = torch.randint(0, k // 2, (n,), generator=g)           # half the prototypes dead
    assert usage_perplexity(half, k) < 0.7 * k


def test_argmax_vs_sinkhorn_check_fails_when_scores_are_already_balanced():
    k, n = 30, 512
    balanced = torch.eye(k).repeat(n // k + 1, 1)[:n] * 0.5           # each prototype wins ~n/k
    argmax_mass = torch.bincount(balanced.argmax(1), minlength=k).float()
    assert not argmax_mass.max() > 2 * sinkhorn(balanced).sum(0).max()
    skewed = balanced.clone(); skewed[:, 0] += 1.0                      # prototype 0 wins everything
    assert torch.bincount(skewed.argmax(1), minlength=k).max() > 2 * sinkhorn(skewed).sum(0).max()


def _similarity_young_minus_old(method, x1, x2, batch):
    m = copy.deepcopy(method)
    out = m.training_step((x1, x2))
    q = F.normalize(out["z1"], dim=1)
    K = m.queue_size
    age = ((int(m.queue_ptr) - 1 - torch.arange(K)) % K) // batch
    s = q @ m.queue.T
    return paired_difference(s[:, age == 0].mean(1), s[:, age == age.max()].mean(1))


def test_staleness_check_finds_no_age_effect_in_a_queue_without_one():
    # 05's "young keys are closer to today's queries than old ones": a queue whose keys all come
    # from the current key encoder, in a random order, has no age effect and must not pass.
    torch.manual_seed(0)
    m = MoCo(SmallCNN(), queue_size=64, bn_splits=1)
    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    m.fill_queue(x)
    m.queue_ptr.fill_(0)
    d = _similarity_young_minus_old(m, x[:16], x[16:32], batch=16)
    assert not d.low > 0
    # a queue whose oldest keys are pushed away from the queries does pass
    far = m.queue.clone()
    age = ((int(m.queue_ptr) - 1 - torch.arange(64)) % 64) // 16
    far[age == age.max()] = -far[age == age.max()]
    m.queue.copy_(far)
    out = _similarity_young_minus_old(m, x[:16], x[16:32], batch=16)
    q = F.normalize(m.training_step((x[:16], x[16:32]))["z1"], dim=1)
    assert (q @ m.queue[age == 0].T).mean() > 0          # so the flipped (oldest) keys moved away
    assert out.low > 0
