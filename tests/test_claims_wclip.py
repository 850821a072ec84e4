"""The checks that notebook 19 (W-CLIP) asserts can fail.

Each test rebuilds one kind of check of the notebook on small synthetic data and shows that a
broken variant fails it: the proxy relevance (names of >= 2 characters, spaces removed) against a
plain loop; the chance level against random rankings; "trained beats untrained on held-out
pairs" and "the chosen variant beats the popularity ranking on the proxy P@10" with shuffled
training pairs; "the chosen variant beats the runner-up" for two identical variants; the inline
CSLS against the package; and "CSLS lowers the N_10 skewness and the share of lists holding a
hub" for a scoring that rewards hubs instead and for no re-scoring at all. The functions are
copied from the notebook's cells (tests never import notebooks/src).
"""
import numpy as np
import pytest
import torch
from scipy.stats import skew

from cl_teach.data import TensorLoader
from cl_teach.methods import CLIP
from cl_teach.metrics import paired_difference
from cl_teach.models import FeatureTower
from cl_teach.ranking import cross_modal_recall, encode_pairs, precision_at_k, recall_at_k
from cl_teach.retrieval import brute_force_search, csls_search
from cl_teach.train import fit

KS = (1, 5, 10)
SEED = 0


# ---------- notebook 19's functions, copied ----------

def emoji_named_in(posts, names, strip=True, min_len=2):
    text = "\n".join(p.replace(" ", "") if strip else p for p in posts)
    starts = np.cumsum([0] + [len(p.replace(" ", "") if strip else p) + 1 for p in posts])
    named = [set() for _ in posts]
    for j, name in enumerate(names):
        at = text.find(name) if len(name) >= min_len else -1       # broken variants: min_len=1, strip=False
        while at >= 0:
            named[np.searchsorted(starts, at, side="right") - 1].add(j)
            at = text.find(name, at + 1)
    return named


def per_query(retrieved, relevant_sets):
    out = {f"P@{k}": precision_at_k(retrieved, relevant_sets, k, per_query=True) for k in KS}
    out.update({f"R@{k}": recall_at_k(retrieved, relevant_sets, k, per_query=True) for k in KS})
    return out


def chance(relevant_sets, n):
    sizes = np.array([len(r) for r in relevant_sets], dtype=float)
    out = {f"P@{k}": sizes / n for k in KS}
    out.update({f"R@{k}": np.full(len(sizes), min(k, n) / n) for k in KS})
    return out


def both_ways_hits(model, images, texts):
    hits = cross_modal_recall(*encode_pairs(model, images, texts), ks=(10,), per_query=True)
    return np.stack([hits["i2t@10"], hits["t2i@10"]])


def k_occurrence(retrieved, n):
    return np.bincount(np.asarray(retrieved).ravel(), minlength=n)


def my_csls(z_query, z_cand, z_pool, K=10, sign=1.0, axis=0):
    cos = z_query @ z_cand.T
    r_T = cos.topk(K, dim=1).values.mean(1)
    r_S = (z_pool @ z_cand.T).topk(K, dim=axis).values.mean(axis)   # broken variant: axis=1
    return 2 * cos - r_T[:, None] - sign * r_S[None, :]             # broken variant: sign=-1 (rewards hubs)


def skew_difference(a, b, n, resamples=300):
    rng = np.random.default_rng(SEED)
    draws = [skew(k_occurrence(b[i], n)) - skew(k_occurrence(a[i], n))
             for i in (rng.integers(0, len(a), len(a)) for _ in range(resamples))]
    return skew(k_occurrence(b, n)) - skew(k_occurrence(a, n)), *np.percentile(draws, [2.5, 97.5])


# ---------- the proxy relevance and its chance level ----------

def test_relevance_equals_a_loop_and_the_broken_variants_differ():
    names = ["狗脸", "猫", "飞机", "男人", "礼物"]
    posts = ["我 的 狗 脸 好 可爱", "坐 飞机 去 北京", "猫 很 可爱", "一个 男人 的 礼物", "飞机 飞机"]
    loop = [{j for j, n in enumerate(names) if len(n) >= 2 and n in p.replace(" ", "")} for p in posts]
    assert emoji_named_in(posts, names) == loop == [{0}, {2}, set(), {3, 4}, {2}]
    assert emoji_named_in(posts, names, strip=False) != loop      # "狗 脸" is missed
    assert emoji_named_in(posts, names, min_len=1) != loop        # 猫 counts as a name


def test_chance_is_the_mean_of_random_rankings_and_k_over_n_is_not():
    g = np.random.default_rng(0)
    n, relevant_sets = 50, [set(g.choice(50, size=s, replace=False).tolist()) for s in (1, 3, 7, 2)]
    rankings = [per_query(np.stack([g.permutation(n)[:10] for _ in relevant_sets]), relevant_sets)
                for _ in range(3000)]
    exact = chance(relevant_sets, n)
    for m in ("P@1", "P@10", "R@10"):
        sampled = np.mean([r[m] for r in rankings], axis=0)
        assert np.allclose(sampled, exact[m], atol=0.02), m
    assert not np.allclose(np.mean([r["P@10"] for r in rankings], axis=0), 10 / n, atol=0.02)


# ---------- trained vs untrained, the proxy claim: shuffled pairs fail ----------

def _pairs(n=320, seed=0):
    """Synthetic 'image features' and 'caption features' of n emoji: a noisy linear relation."""
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(n, 24, generator=g)
    txt = img @ torch.randn(24, 16, generator=g) + 0.3 * torch.randn(n, 16, generator=g)
    return img, txt


def _train(img, txt, idx, shuffled):
    torch.manual_seed(SEED)
    model = CLIP(FeatureTower(img.shape[1], hidden_dim=None), FeatureTower(txt.shape[1], hidden_dim=None),
                 embed_dim=16)
    untrained = CLIP(FeatureTower(img.shape[1], hidden_dim=None), FeatureTower(txt.shape[1], hidden_dim=None),
                     embed_dim=16)
    untrained.load_state_dict(model.state_dict())
    perm = torch.randperm(len(idx), generator=torch.Generator().manual_seed(1))
    t = txt[idx[perm]] if shuffled else txt[idx]                    # broken variant: shuffled pairs
    fit(model, TensorLoader(img[idx], t, batch_size=32, seed=SEED), steps=150, lr=1e-2, progress=False)
    return model, untrained


@pytest.fixture(scope="module")
def trained():
    img, txt = _pairs()
    train, test = torch.arange(256), torch.arange(256, 320)
    return img, txt, test, {s: _train(img, txt, train, s) for s in (False, True)}


def test_held_out_claim_fails_for_shuffled_training_pairs(trained):
    img, txt, test, runs = trained
    for shuffled, holds in ((False, True), (True, False)):
        model, untrained = runs[shuffled]
        a, b = both_ways_hits(model, img[test], txt[test]), both_ways_hits(untrained, img[test], txt[test])
        d = [paired_difference(a[r], b[r], seed=SEED) for r in range(2)]
        assert all(x.low > 0 for x in d) == holds, (shuffled, d)


def test_proxy_claim_fails_for_shuffled_training_pairs(trained):
    """Posts 'read' as their named emoji's caption plus noise; candidates are pictures only."""
    img, txt, _, runs = trained
    g = torch.Generator().manual_seed(2)
    named = torch.multinomial(torch.linspace(2, 0.2, len(img)), 600, replacement=True,
                              generator=g)                                # popular emoji exist
    posts = txt[named] + 0.5 * txt.std() * torch.randn(600, txt.shape[1], generator=g)
    relevant = [{int(j)} for j in named]
    counts = np.bincount(named[:300].numpy(), minlength=len(img))       # the "valid" half
    popular = np.argsort(-counts, kind="stable")[:10]
    pop = per_query(np.tile(popular, (300, 1)), relevant[300:])
    for shuffled, holds in ((False, True), (True, False)):
        model, _ = runs[shuffled]
        with torch.no_grad():
            z_img, z_post = model.encode_image(img), model.encode_text(posts[300:])
        mine = per_query(brute_force_search(z_img, z_post, k=10)[1], relevant[300:])
        d = paired_difference(mine["P@10"], pop["P@10"], seed=SEED)
        assert (d.low > 0) == holds, (shuffled, d)


def test_choice_claim_fails_for_two_identical_variants():
    g = np.random.default_rng(0)
    a = (g.random(275) < 0.4).astype(float)
    b = (g.random(275) < 0.15).astype(float)
    assert paired_difference(a, b, seed=SEED).low > 0
    assert not paired_difference(a, a.copy(), seed=SEED).low > 0


# ---------- CSLS: the derive check and the hubness-reduction claim ----------

def _cone(seed=0, q=1500, v=300, d=32):
    """Posts and pictures in one cone (a shared offset in high dimension): cosine makes hubs."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.full((d,), d ** -0.25)
    norm = torch.nn.functional.normalize
    return (norm(torch.randn(q, d, generator=g) + mu, dim=1).double(),
            norm(torch.randn(v, d, generator=g) * torch.rand(v, 1, generator=g).add(0.3) + mu,
                 dim=1).double(),
            norm(torch.randn(q, d, generator=g) + mu, dim=1).double())


def test_inline_csls_check_fails_for_the_wrong_axis():
    z_test, z_emoji, z_valid = _cone(q=200, v=80)
    scores, pos = csls_search(z_emoji, z_test, k=10, query_pool=z_valid)
    for kwargs, holds in (({}, True), ({"axis": 1}, False), ({"sign": -1.0}, False)):
        if kwargs.get("axis") == 1:                         # r_S over the pool's rows: the wrong shape
            with pytest.raises(RuntimeError):
                my_csls(z_test, z_emoji, z_valid, **kwargs)
            continue
        mine = my_csls(z_test, z_emoji, z_valid, **kwargs).numpy()
        ok = np.allclose(np.take_along_axis(mine, pos, 1), scores, atol=1e-5)
        assert ok == holds, kwargs


@pytest.mark.parametrize("variant,holds", [("CSLS", True), ("rewards hubs", False), ("cosine again", False)])
def test_hubness_reduction_claim_fails_for_broken_rescoring(variant, holds):
    z_test, z_emoji, z_valid = _cone()
    n = z_emoji.shape[0]
    top_cos = (z_test @ z_emoji.T).topk(10, dim=1).indices.numpy()
    scores = {"CSLS": my_csls(z_test, z_emoji, z_valid),
              "rewards hubs": my_csls(z_test, z_emoji, z_valid, sign=-1.0),
              "cosine again": z_test @ z_emoji.T}[variant]
    top_new = scores.topk(10, dim=1).indices.numpy()
    n_valid = k_occurrence((z_valid @ z_emoji.T).topk(10, dim=1).indices.numpy(), n)
    hubs = np.argsort(-n_valid, kind="stable")[:5]
    holds_hub = {k: np.isin(t, hubs).any(1).astype(float) for k, t in (("cos", top_cos), ("new", top_new))}
    d_skew = skew_difference(top_cos, top_new, n)
    d_hub = paired_difference(holds_hub["new"], holds_hub["cos"], seed=SEED)
    claim = d_skew[2] < 0 and d_hub.high < 0
    assert claim == holds, (variant, d_skew, d_hub)
