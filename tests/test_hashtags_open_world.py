"""CD-TOM on an open world: the candidate set never holds a test-only hashtag (a broken variant
that adds the test labels fails the check), recall over every post, the dev-split weight search,
the index-negatives loss (vs a float64 loop), hashtag ids in the tower, and the tower recipe."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cl_teach.apps import open_world as OW
from cl_teach.apps.hashtag_tower import TowerConfig, fit_open_world_tower, post_texts
from cl_teach.data import HashtagPairLoader, generated_weibo
from cl_teach.losses import index_nce
from cl_teach.methods import DualTower
from cl_teach.models import TextTower, embed_bags

TRAIN = [["a"], ["b", "a"], ["c"]]
VALID = [["b"], ["d"]]
TEST = [["a"], ["x"], ["d", "y"], ["z"]]               # x, y, z: known only from the test labels


def test_open_world_candidates_never_hold_test_only_hashtags():
    cands = OW.open_world_candidates(TRAIN, VALID)
    assert cands == ["a", "b", "c", "d"]
    OW.check_open_world(cands, TRAIN, VALID)
    closed = OW.open_world_candidates(TRAIN, VALID, TEST)              # broken: the test labels
    with pytest.raises(ValueError, match=r"3 candidate hashtag\(s\).*\['x', 'y', 'z'\]"):
        OW.check_open_world(closed, TRAIN, VALID)
    with pytest.raises(ValueError, match="at least one split"):
        OW.open_world_candidates()
    with pytest.raises(TypeError, match=r"known\[0\] must be a sequence of hashtag lists"):
        OW.open_world_candidates(["a", "b"])


def test_real_corpus_open_world():
    from cl_teach.data import load_train_tags, load_weibo
    try:
        train, valid, test = load_train_tags(), load_weibo("valid"), load_weibo("test")
    except FileNotFoundError:
        pytest.skip("the Weibo corpus is not here")
    cands = OW.open_world_candidates(train, valid.tags)
    OW.check_open_world(cands, train, valid.tags)
    test_only = {t for ts in test.tags for t in ts} - {t for ts in train + valid.tags for t in ts}
    assert len(cands) == 4869 and test_only and not test_only & set(cands)
    assert round(OW.coverage(OW.answer_sets(test.tags, cands)), 4) == 0.9714


def test_answer_sets_count_every_post_and_every_hashtag():
    cands = OW.open_world_candidates(TRAIN, VALID)
    answers = OW.answer_sets(TEST, cands)
    assert answers == [{0}, {-1}, {3, -1}, {-1}]
    assert OW.coverage(answers) == 0.5
    scores = np.array([[1.0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]])
    m = OW.per_post_metrics(scores, answers, ks=(1, 3))
    assert m["recall@1"].tolist() == [1, 0, 0.5, 0]                   # y counts in the denominator
    assert m["mrr"].tolist() == [1, 0, 1, 0]
    iv = OW.metrics_with_intervals(m)
    low, high = iv["recall@1"]["ci95"]
    assert iv["recall@1"]["value"] == 0.375 and low <= 0.375 <= high
    with pytest.raises(ValueError, match="at least one hashtag"):
        OW.answer_sets([[]], cands)
    with pytest.raises(TypeError, match="tags must be a sequence of hashtag lists"):
        OW.answer_sets("ab", cands)


def test_popularity_scores():
    assert np.allclose(OW.popularity_scores(TRAIN, ["a", "c", "q"]), np.log1p([2, 1, 0]))


def test_select_weights_finds_the_informative_signal():
    rng = np.random.default_rng(0)
    answers = [{int(i)} for i in rng.integers(0, 50, 300)]
    good = rng.normal(size=(300, 50)); good[np.arange(300), [next(iter(a)) for a in answers]] += 3
    noise = rng.normal(size=(300, 50))
    w, value = OW.select_weights({"good": good, "noise": noise}, answers, ["noise", "good"])
    assert w == {"noise": 0.0, "good": 0.25} and value > 0.9        # the first all-good point
    w, _ = OW.select_weights({"good": good, "noise": noise}, answers, ["noise"])
    assert w == {"noise": 0.25}
    with pytest.raises(ValueError, match=r"names must name given score matrices.*'tower'"):
        OW.select_weights({"good": good}, answers, ["tower"])
    with pytest.raises(ValueError, match="metric must be"):
        OW.select_weights({"good": good}, answers, ["good"], metric="recall@5")
    with pytest.raises(ValueError, match="grid must be non-empty and non-negative"):
        OW.select_weights({"good": good}, answers, ["good"], grid=(-1, 1))


def ref_index_nce(q, c, target, fn, t):
    """Direct float64 loop: each query's softmax over the candidates it may be compared with."""
    q, c = F.normalize(q.double(), dim=1), F.normalize(c.double(), dim=1)
    total = 0.0
    for i in range(len(q)):
        allowed = [j for j in range(len(c)) if j == target[i] or fn is None or not bool(fn[i, j])]
        den = sum(math.exp(float(q[i] @ c[j]) / t) for j in allowed)
        total += -(float(q[i] @ c[target[i]]) / t - math.log(den))
    return total / len(q)


@pytest.mark.parametrize("t", [0.05, 0.1, 1.0])
@pytest.mark.parametrize("masked", [False, True])
def test_index_nce_matches_loop(t, masked):
    g = torch.Generator().manual_seed(2)
    q, c = torch.randn(6, 5, generator=g), torch.randn(9, 5, generator=g)
    target = torch.tensor([0, 3, 3, 8, 1, 2])
    fn = torch.rand(6, 9, generator=g) < 0.3 if masked else None
    if masked:
        fn[0, 0] = True                                             # the positive is never masked
    assert abs(index_nce(q, c, target, fn, t).item() - ref_index_nce(q, c, target, fn, t)) < 1e-5


def test_index_nce_properties_and_errors():
    q = torch.randn(4, 3, dtype=torch.double, requires_grad=True)
    c, target = torch.randn(7, 3, dtype=torch.double), torch.tensor([0, 1, 2, 3])
    fn = torch.zeros(4, 7, dtype=torch.bool); fn[:, 5] = True
    assert index_nce(q, c, target, fn) <= index_nce(q, c, target)     # masking only lowers it
    assert torch.autograd.gradcheck(lambda a: index_nce(a, c, target, fn, 0.5), (q,))
    with pytest.raises(ValueError, match=r"candidates must have shape \(C, 3\)"):
        index_nce(q, torch.randn(7, 4, dtype=torch.double), target)
    with pytest.raises(ValueError, match="target must be a long"):
        index_nce(q, c, target[:3])
    with pytest.raises(ValueError, match="target must index the 7 candidates"):
        index_nce(q, c, torch.tensor([0, 1, 2, 7]))
    with pytest.raises(TypeError, match="false_negatives must be a boolean"):
        index_nce(q, c, target, fn.float())
    with pytest.raises(ValueError, match=r"false_negatives must have shape \(N, C\) = \(4, 7\)"):
        index_nce(q, c, target, fn[:, :6])
    with pytest.raises(ValueError, match="temperature"):
        index_nce(q, c, target, temperature=0.0)


def test_tower_items_and_embed_bags_with_ids():
    f = TextTower(6, dim=4, out_dim=4, head=False, n_items=3)
    ids, offsets, w = torch.tensor([1, 2, 3]), torch.tensor([0, 2]), torch.ones(3)
    assert torch.equal(f(ids, offsets, w), f(ids, offsets, w, items=torch.tensor([0, 2])))  # zero start
    with torch.no_grad():
        f.items.weight[2] = 1.0
    assert torch.allclose(f(ids, offsets, w, items=torch.tensor([0, 2]))[1], f(ids, offsets, w)[1] + 1)
    z = embed_bags(f, [np.array([1]), np.array([2, 3])], np.ones(6, np.float32), items=np.array([2, 0]))
    assert z.shape == (2, 4) and np.allclose(np.linalg.norm(z, axis=1), 1, atol=1e-5)
    with pytest.raises(ValueError, match="items must hold one id per bag"):
        embed_bags(f, [np.array([1])], np.ones(6, np.float32), items=np.array([0, 1]))
    with pytest.raises(ValueError, match="no item embeddings"):
        TextTower(6, 4, 4, head=False)(ids, offsets, w, items=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="n_items must be an int >= 0"):
        TextTower(6, 4, 4, head=False, n_items=-1)


def test_pair_loader_index_batches():
    bags = [np.array([1])] * 5
    pairs = np.array([[0, 0], [0, 1], [1, 1], [2, 3]])
    loader = HashtagPairLoader(bags, bags, pairs, np.ones(2, np.float32), batch_size=4, drop=0.0, index=True)
    posts, tags, same, tag_ids, fn, every = next(iter(loader))
    order = pairs[torch.randperm(4, generator=torch.Generator().manual_seed(0)).numpy()]
    assert tag_ids.tolist() == order[:, 1].tolist() and fn.shape == (4, 5) and len(every[1]) == 5
    for row, (p, t) in enumerate(order):                            # the post's OTHER hashtags
        assert set(np.flatnonzero(fn[row].numpy())) == {tt for pp, tt in pairs if pp == p and tt != t}
    with pytest.raises(ValueError, match="pairs must index the 5 posts and 5 hashtags"):
        HashtagPairLoader(bags, bags, pairs + 4, np.ones(2, np.float32), batch_size=4)
    with pytest.raises(ValueError, match="negatives must be 'batch' or 'index'"):
        DualTower(5, 4, 4, head=False, negatives="queue")
    model = DualTower(5, 4, 4, head=False, negatives="index")
    with pytest.raises(ValueError, match="index=True"):
        model.training_step((posts, tags, same))


@pytest.mark.parametrize("config", [TowerConfig(epochs=4), TowerConfig(epochs=4, ids=True, negatives="index"),
                                    TowerConfig(epochs=4, replies=False, head=True, mask=False)])
def test_open_world_tower_learns_the_generated_corpus(config):
    train, test = generated_weibo("valid", 500), generated_weibo("test", 200)
    cands = OW.open_world_candidates(train.tags)
    tower = fit_open_world_tower(train.posts, train.convs, train.tags, cands, config, seed=0)
    answers = OW.answer_sets(test.tags, cands)
    scores, ids = tower.search(test.posts, test.convs, k=10)
    full = tower.scores(test.posts, test.convs)
    assert np.allclose(np.sort(full, 1)[:, ::-1][:, :10], scores, atol=1e-5)   # Faiss = brute force
    r10 = OW.per_post_metrics(full, answers)["recall@10"].mean()
    assert r10 > 0.8, (config, r10)


def test_fit_open_world_tower_errors():
    train = generated_weibo("valid", 300)
    cands = OW.open_world_candidates(train.tags)
    with pytest.raises(ValueError, match="tags must hold one hashtag list per post"):
        fit_open_world_tower(train.posts, train.convs, train.tags[:-1], cands)
    with pytest.raises(ValueError, match="candidates must be non-empty and unique"):
        fit_open_world_tower(train.posts, train.convs, train.tags, cands + cands[:1])
    with pytest.raises(TypeError, match="config must be a TowerConfig"):
        fit_open_world_tower(train.posts, train.convs, train.tags, cands, {"epochs": 1})
    with pytest.raises(ValueError, match="replies must hold one thread per post"):
        post_texts(["a", "b"], ["x"])


def test_dev_recall_is_logged_every_epoch_and_leaves_the_training_unchanged():
    from cl_teach.train import Callback

    class Keep(Callback):
        def on_fit_end(self, method, history):
            self.history = history

    train, dev = generated_weibo("valid", 1200), generated_weibo("test", 100)
    cands = OW.open_world_candidates(train.tags)
    answers = OW.answer_sets(dev.tags, cands)
    cfg = TowerConfig(epochs=3, negatives="index")
    keep = Keep()
    with_dev = fit_open_world_tower(train.posts, train.convs, train.tags, cands, cfg, seed=0,
                                    callbacks=[keep], dev=(dev.posts, dev.convs, answers))
    plain = fit_open_world_tower(train.posts, train.convs, train.tags, cands, cfg, seed=0)
    h = keep.history
    per_epoch = len(h["loss"]) // cfg.epochs
    expected = [per_epoch * e for e in range(1, cfg.epochs)] + [len(h["loss"]) - 1]
    assert list(h.steps("dev_recall@10")) == expected
    final = OW.per_post_metrics(with_dev.scores(dev.posts, dev.convs), answers)["recall@10"].mean()
    assert h["dev_recall@10"][-1] == pytest.approx(final)         # the logged value is the real one
    assert h["dev_recall@10"][-1] > h["dev_recall@10"][0] - 0.05 and final > 0.5
    for a, b in zip(with_dev.model.parameters(), plain.model.parameters(), strict=True):
        assert torch.equal(a, b)                                  # the callback changed nothing
    with pytest.raises(ValueError, match="one answer set per post"):
        fit_open_world_tower(train.posts, train.convs, train.tags, cands, cfg,
                             dev=(dev.posts, dev.convs, answers[:-1]))
