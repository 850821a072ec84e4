"""The checks that notebook 16 (WenLan) asserts or prints as verdicts can fail.

Each test rebuilds one kind of check on small random data and shows a broken variant fails it:
the measured share of queries whose own stale key sits in the queue (long queue high, short queue
low, and a queue that forgets its ids reads 0), the expected share 1/2 (K/N)^2 with reshuffled
epochs, the own-key mask (the masked loss is the loss without those keys; a mask that is never
applied is caught), the trained-beats-untrained interval (fails for the untrained heads
themselves), and the two-interval verdict of the three-seed comparison (a gain that only one
interval supports, or seeds that disagree, give "no reliable difference"). The functions are
copied from the notebook's cells (tests never import notebooks/src).
"""
import numpy as np
import pytest
import torch

from cl_teach.data import TensorLoader
from cl_teach.losses import queue_nce
from cl_teach.methods import CLIP, WenLan
from cl_teach.metrics import paired_difference, seed_interval
from cl_teach.models import FeatureTower
from cl_teach.ranking import cross_modal_recall, encode_pairs
from cl_teach.train import fit

N, B, D = 200, 8, 12           # pairs, batch, feature dim: an epoch of 25 batches


def _pairs(seed=0, noise=0.3):
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(N, D, generator=g)
    return img, img @ torch.randn(D, D, generator=g) + noise * torch.randn(N, D, generator=g)


def _wenlan(k, mask=False, seed=0):
    torch.manual_seed(seed)
    return WenLan(FeatureTower(D, 16, 8), FeatureTower(D, 16, 8), embed_dim=8, queue_size=k,
                  mask_own_keys=mask)


def own_share_after_epoch_1(k, steps=100, forget_ids=False, seed=0):
    """The notebook's measurement: mean logged own_key_share after the first epoch."""
    img, txt = _pairs(seed)
    m = _wenlan(k)
    loader = TensorLoader(img, txt, torch.arange(N), batch_size=B, seed=seed)
    if forget_ids:                                   # broken variant: the queue never learns the ids
        original = m.after_step

        def after_step(step, total):
            original(step, total)
            m.id_queue.fill_(-1)
        m.after_step = after_step
    h = fit(m, loader, steps=steps, lr=1e-3, progress=False)
    return float(h["own_key_share"][N // B:].mean())


def test_own_key_share_high_for_a_long_queue_low_for_a_short_one_and_the_formula():
    long_k, short_k = 176, 40                        # 88% and 20% of an epoch
    long_share, short_share = own_share_after_epoch_1(long_k), own_share_after_epoch_1(short_k)
    assert long_share > 0.3 and short_share < 0.05               # the notebook's two checks
    per_epoch = B * (N // B)
    assert long_share == pytest.approx(0.5 * (long_k / per_epoch) ** 2, abs=0.08)
    assert short_share == pytest.approx(0.5 * (short_k / per_epoch) ** 2, abs=0.03)
    # broken variant: a queue that forgets its ids reads 0 and fails the notebook's "> 30%" check
    assert not own_share_after_epoch_1(long_k, forget_ids=True) > 0.3


def test_the_own_key_mask_removes_exactly_the_stale_keys():
    img, txt = _pairs(1)
    m = _wenlan(32, mask=True)
    for b in range(3):
        ids = torch.arange(8 * b, 8 * b + 8)
        m.training_step((img[ids], txt[ids], ids))
        m.after_step(0, 1)
    ids = torch.arange(4, 12)
    out = m.training_step((img[ids], txt[ids], ids))
    q_img, q_txt = m.encode_image(img[ids]), m.encode_text(txt[ids])
    k_img, k_txt = m.momentum_keys(img[ids], txt[ids])
    n = int(m.queue_len)
    keep = ~torch.isin(m.id_queue[:n], ids)          # a queue without any of this batch's pairs
    assert int(keep.sum()) == n - len(ids)           # each of the batch's pairs is queued once
    masked = (queue_nce(q_img, k_txt, m.text_queue[:n], m.temperature, ids, m.id_queue[:n])
              + queue_nce(q_txt, k_img, m.image_queue[:n], m.temperature, ids, m.id_queue[:n])) / 2
    assert torch.allclose(out["loss"], masked, atol=1e-6)
    # broken variant: the mask never applied (the ids ignored) gives a different, larger loss
    plain = (queue_nce(q_img, k_txt, m.text_queue[:n], m.temperature)
             + queue_nce(q_txt, k_img, m.image_queue[:n], m.temperature)) / 2
    assert plain > out["loss"] + 1e-3
    # and dropping every batch pair's keys from everyone's queue is a different (too strong) mask
    too_strong = (queue_nce(q_img, k_txt, m.text_queue[:n][keep], m.temperature)
                  + queue_nce(q_txt, k_img, m.image_queue[:n][keep], m.temperature)) / 2
    assert not torch.allclose(out["loss"], too_strong, atol=1e-4)


def query_scores(model, held_out, ks=(1, 5, 10)):
    hits = cross_modal_recall(*encode_pairs(model, *held_out), ks=ks, per_query=True)
    return np.concatenate([np.mean([hits[f"{way}@{k}"] for k in ks], axis=0) for way in ("i2t", "t2i")])


def test_trained_beats_untrained_and_fails_for_the_untrained_heads():
    img, txt = _pairs(2, noise=0.1)
    train, test = slice(0, 150), slice(150, None)
    torch.manual_seed(0)
    clip = CLIP(FeatureTower(D, 32, 16), FeatureTower(D, 32, 16), embed_dim=8, learn_temperature=False)
    untrained = query_scores(clip, (img[test], txt[test]))
    fit(clip, TensorLoader(img[train], txt[train], batch_size=B, seed=0), steps=300, lr=3e-3, progress=False)
    trained = query_scores(clip, (img[test], txt[test]))
    d = paired_difference(trained, untrained, seed=0)
    assert d.low > 0.1, d                            # the notebook's claim holds for a trained model
    assert not paired_difference(untrained, untrained, seed=0).low > 0.1   # broken: no training


def both_intervals_verdict(name, runs_a, runs_b, seed=0):
    """The notebook's three-seed verdict: a claim only when the seed and query intervals agree."""
    per_seed = [float((a - b).mean()) for a, b in zip(runs_a, runs_b, strict=True)]
    over_seeds = seed_interval(per_seed)
    over_queries = paired_difference(np.mean(runs_a, axis=0), np.mean(runs_b, axis=0), seed=seed)
    if over_seeds.verdict() == over_queries.verdict():
        return over_seeds.verdict(name, "CLIP")
    return f"no reliable difference between {name} and CLIP"


def test_the_two_interval_verdict():
    rng = np.random.default_rng(0)
    base = [rng.random(400) for _ in range(3)]
    better = [b + 0.05 + rng.normal(0, 0.01, 400) for b in base]
    assert both_intervals_verdict("W", better, base) == "W beats CLIP"
    # identical runs: no claim
    assert both_intervals_verdict("W", base, base).startswith("no reliable difference")
    # seeds that disagree (+0.05, -0.05, +0.05): the query interval of the mean may exclude 0, the
    # seed interval does not, so there is no claim
    mixed = [base[0] + 0.05, base[1] - 0.05, base[2] + 0.05]
    assert paired_difference(np.mean(mixed, axis=0), np.mean(base, axis=0)).low > 0
    assert both_intervals_verdict("W", mixed, base).startswith("no reliable difference")
    # a consistent but tiny gain on noisy queries: the seeds agree, the queries do not decide
    noisy = [b + 0.002 + rng.normal(0, 0.3, 400) for b in base]
    assert both_intervals_verdict("W", noisy, base).startswith("no reliable difference")
