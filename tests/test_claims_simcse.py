"""The checks that notebook 14 (SimCSE and Self-Guided) asserts can fail.

Each test rebuilds one kind of check of the notebook on small data and shows that a broken variant
fails it: the paired-interval claim on retrieval hits (a real gain vs two identical systems or the
order swapped), the supervised loss against log 2N with and without the false-negative mask (the
mask left off, or put on the wrong run), and "the guide never moves" (a guide updated by a moving
average, the talk's "momentum updates", fails it; so does a tuned copy that never moves). The
functions are copied from the notebook's cells (tests never import notebooks/src).
"""
import copy
import math

import torch
import torch.nn.functional as F

from cl_teach.data import TensorLoader
from cl_teach.intervals import paired_difference, seed_interval
from cl_teach.losses import simcse_loss
from cl_teach.methods import SelfGuided, ema_update
from cl_teach.models import TinyTransformer
from cl_teach.ranking import hit_rate_at_k, shared_label_relevance
from cl_teach.train import fit

SEED = 0
BATCH = 16


# ---------- notebook 14's functions, copied ----------

def hits(scores, relevant_sets, queries, ks=(1, 10), drop_self=True):
    s = torch.as_tensor(scores, dtype=torch.float32).clone()
    if drop_self:
        s[torch.arange(len(queries)), torch.tensor(queries)] = float("-inf")
    ranked = s.topk(max(ks), dim=1).indices.tolist()
    return {f"R@{k}": hit_rate_at_k(ranked, relevant_sets, k, per_query=True) for k in ks}


def hashtag_hits(z, queries, relevant):
    z = F.normalize(torch.as_tensor(z, dtype=torch.float32), dim=1)
    return hits(z[queries] @ z.T, [relevant[i] for i in queries], queries)


def claim_beats(a, b, k="R@10"):
    """The notebook's asserted paired claim: a's hits minus b's, interval above 0."""
    return paired_difference(a[k], b[k], seed=SEED).low > 0


def loss_claims(unmasked_losses, masked_losses, n_keys):
    """The notebook's checked cell: unmasked tail above log 2N and masked tail below it."""
    over = seed_interval(unmasked_losses[-20:]).low > math.log(n_keys)
    under = seed_interval(masked_losses[-20:]).high < math.log(n_keys)
    return over, under


def guide_moved(guide, before):
    return sum(not torch.equal(p, before[n]) for n, p in guide.state_dict().items())


# ---------- the paired claim on retrieval ----------

def _posts(n=300, topics=30, d=16, spread=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, topics, (n,), generator=g)
    centers = torch.randn(topics, d, generator=g)
    good = centers[y] + spread * torch.randn(n, d, generator=g)           # a system that learned topics
    noise = torch.randn(n, d, generator=g)                                # one that did not
    tags = [[f"#{int(t)}"] for t in y]
    relevant = shared_label_relevance(tags)
    return good, noise, [i for i, r in enumerate(relevant) if r], relevant


def test_paired_claim_holds_for_a_real_gain_and_fails_for_broken_variants():
    good, noise, queries, relevant = _posts()
    a, b = hashtag_hits(good, queries, relevant), hashtag_hits(noise, queries, relevant)
    assert claim_beats(a, b)
    assert not claim_beats(b, b)                                          # two identical systems
    assert not claim_beats(b, a)                                          # the order swapped
    near = hashtag_hits(noise + 1e-3 * good, queries, relevant)           # a gain too small to see
    assert not claim_beats(near, b)


# ---------- the supervised loss against log 2N ----------

def _batches(steps=24, n=BATCH, d=8, seed=0, mask=True):
    """Batches where every key shares the anchor's label and is as close as its positive: the
    positive is exchangeable with the false negatives, so unmasked E[loss] >= log 2N (Jensen)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        center = torch.randn(1, d, generator=g)
        z1, z2, zn = (center + 0.3 * torch.randn(n, d, generator=g) for _ in range(3))
        same = torch.ones(n, 2 * n, dtype=torch.bool)                     # one hashtag for all
        out.append(float(simcse_loss(z1, z2, 0.05, zn, same=same if mask else None)))
    return out


def test_loss_claims_hold_with_the_mask_and_fail_without():
    unmasked, masked = _batches(mask=False), _batches(mask=True)
    assert loss_claims(unmasked, masked, 2 * BATCH) == (True, True)
    assert loss_claims(unmasked, unmasked, 2 * BATCH)[1] is False         # the mask left off
    assert loss_claims(masked, masked, 2 * BATCH)[0] is False             # the mask on the "unmasked" run


def test_masked_loss_is_zero_when_only_the_positive_is_left():
    z = torch.randn(4, 3)
    same = torch.ones(4, 8, dtype=torch.bool)                             # every other key masked
    assert simcse_loss(z, z, 0.05, torch.randn(4, 3), same=same).item() == 0.0


# ---------- the guide never moves ----------

class MomentumGuided(SelfGuided):
    """The talk's reading, "momentum updates": a guide that follows the tuned copy by EMA."""

    @torch.no_grad()
    def after_step(self, step, total_steps):
        ema_update(self.guide, self.encoder, 0.9)


class NothingTuned(SelfGuided):
    """A broken run: the tuned copy is frozen too, so only the head learns."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.encoder.requires_grad_(False)


def _run(cls, lr=1e-2, steps=4):
    torch.manual_seed(SEED)
    f = TinyTransformer(30, dim=16, out_dim=8, n_heads=2, n_layers=1, max_len=6)
    ids = torch.randint(2, 30, (32, 6), generator=torch.Generator().manual_seed(SEED))
    m = cls(f, temperature=0.05, head_dim=16)
    before = copy.deepcopy(m.guide.state_dict())
    hist = fit(m, TensorLoader(ids, batch_size=8, seed=SEED), steps=steps, lr=lr)
    return guide_moved(m.guide, before), hist["distance"][-1]


def test_guide_claim_holds_for_self_guided_and_fails_with_momentum():
    moved, distance = _run(SelfGuided)
    assert moved == 0 and distance > 0
    assert _run(MomentumGuided)[0] > 0                                    # an EMA guide moves
    assert _run(NothingTuned)[1] == 0                                     # a tuned copy that never moves
