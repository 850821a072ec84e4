"""CD-TOM pieces: n-gram featuriser, masked InfoNCE (vs a float64 loop and vs plain InfoNCE),
the pair loader's false-negative mask, a short training run, TF-IDF / votes / fusion, the
generated fallback corpus and the hashtag widget's recommend contract."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cl_teach.apps import hashtags as H
from cl_teach.data import CharNgrams, HashtagPairLoader, generated_weibo, pack
from cl_teach.losses import info_nce, masked_info_nce
from cl_teach.methods import DualTower
from cl_teach.models import embed_bags
from cl_teach.ranking import ranking_report
from cl_teach.train import fit


def ref_masked(q, k, same, t):
    """Direct float64 loop: for each row/column, the softmax over the allowed candidates."""
    q = F.normalize(q.double(), dim=1); k = F.normalize(k.double(), dim=1); n = len(q)
    total = 0.0
    for a, b in ((q, k), (k, q)):
        for i in range(n):
            allowed = [j for j in range(n) if j == i or not bool(same[i, j])]
            den = sum(math.exp(float(a[i] @ b[j]) / t) for j in allowed)
            total += -(float(a[i] @ b[i]) / t - math.log(den))
    return total / (2 * n)


@pytest.mark.parametrize("t", [0.05, 0.1, 1.0])
def test_masked_info_nce_matches_loop(t):
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(10, 6, generator=g), torch.randn(10, 6, generator=g)
    y = torch.tensor([0, 1, 0, 2, 3, 1, 4, 5, 0, 6])
    same = y[:, None] == y[None]
    assert abs(masked_info_nce(q, k, same, t).item() - ref_masked(q, k, same, t)) < 1e-5


def test_without_mask_it_is_symmetric_info_nce():
    q, k = torch.randn(12, 8), torch.randn(12, 8)
    none = torch.zeros(12, 12, dtype=torch.bool)
    both = 0.5 * (info_nce(q, k, 0.1) + info_nce(k, q, 0.1))
    assert torch.allclose(masked_info_nce(q, k, none, 0.1), both, atol=1e-6)


def test_masking_only_lowers_the_loss_and_gradients_are_finite():
    q = torch.randn(8, 4, requires_grad=True); k = torch.randn(8, 4)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]); same = y[:, None] == y[None]
    masked = masked_info_nce(q, k, same, 0.01)
    masked.backward()
    assert masked <= masked_info_nce(q, k, torch.zeros_like(same), 0.01)
    assert torch.isfinite(q.grad).all()
    assert torch.autograd.gradcheck(lambda a: masked_info_nce(a, k.double(), same, 0.5),
                                    (torch.randn(8, 4, dtype=torch.double, requires_grad=True),))


def test_masked_info_nce_errors():
    q = torch.randn(4, 3)
    with pytest.raises(ValueError, match="same \\(N, N\\)"):
        masked_info_nce(q, q, torch.zeros(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="temperature"):
        masked_info_nce(q, q, torch.zeros(4, 4, dtype=torch.bool), 0.0)


def test_char_ngrams():
    f = CharNgrams(ngram_range=(1, 2), min_count=2).fit(["我是 歌手", "歌手 好", "好 歌"])
    bags = f.transform(["歌手", "完全陌生"])
    assert len(bags[0]) == 3                        # 歌, 手, 歌手 (each in >= 2 texts)
    assert bags[1].tolist() == [0]                  # nothing known -> the empty column
    assert f.idf_.shape == (f.n_features_,)
    with pytest.raises(RuntimeError, match="not fitted"):
        CharNgrams().transform(["x"])
    with pytest.raises(TypeError, match="one str"):
        f.transform("歌手")


def test_pack_weights_are_unit_norm_and_dropout_keeps_one():
    bags = [np.array([1, 2, 3]), np.array([4])]
    idf = np.arange(6, dtype=np.float32) + 1
    ids, offsets, w = pack(bags, idf)
    assert ids.tolist() == [1, 2, 3, 4] and offsets.tolist() == [0, 3]
    assert torch.allclose(w[:3].norm(), torch.tensor(1.0)) and w[3] == 1
    ids, offsets, _ = pack(bags, idf, drop=0.999, generator=torch.Generator().manual_seed(0))
    assert len(ids) == 2                            # one n-gram survives per bag



def test_embed_bags_shapes_and_bad_input():
    f = CharNgrams(ngram_range=(1, 2), min_count=1).fit(["我是 歌手", "歌手 好", "好 歌"])
    model = DualTower(f.n_features_, 8, 8, shared=True, temperature=0.1, head=False)
    z = embed_bags(model.post_tower, f.transform(["歌手", "完全陌生", "好"]), f.idf_, batch_size=2)
    assert z.shape == (3, 8) and z.dtype == np.float32
    assert np.allclose(np.linalg.norm(z, axis=1), 1, atol=1e-5)
    assert model.post_tower.training                # eval mode only inside, then restored
    bags = f.transform(["歌手"])
    with pytest.raises(ValueError, match=r"bags must hold at least one.*got an empty"):
        embed_bags(model.post_tower, [], f.idf_)
    with pytest.raises(TypeError, match=r"bags must be a sequence.*got str"):
        embed_bags(model.post_tower, "歌手", f.idf_)
    with pytest.raises(ValueError, match=r"idf must be .*1-d.*got \(1, "):
        embed_bags(model.post_tower, bags, f.idf_[None])
    with pytest.raises(ValueError, match="batch_size"):
        embed_bags(model.post_tower, bags, f.idf_, batch_size=0)
    with pytest.raises(TypeError, match=r"tower must be a TextTower.*got DualTower"
                                        r"|tower must be a TextTower"):
        embed_bags("post_tower", bags, f.idf_)

def test_pair_loader_marks_shared_posts_and_tags():
    bags = [np.array([1])] * 6
    pairs = np.array([[0, 0], [1, 0], [2, 1], [2, 2], [3, 3], [4, 4]])
    loader = HashtagPairLoader(bags, bags, pairs, np.ones(2, np.float32), batch_size=6, drop=0.0)
    *_, same = next(iter(loader))
    order = loader.pairs[torch.randperm(6, generator=torch.Generator().manual_seed(0))]
    expect = (order[:, 0, None] == order[None, :, 0]) | (order[:, 1, None] == order[None, :, 1])
    assert torch.equal(same, expect) and int(same.sum()) == 6 + 4
    with pytest.raises(ValueError, match="batch_size"):
        HashtagPairLoader(bags, bags, pairs, np.ones(2, np.float32), batch_size=7)


def test_dual_tower_learns_the_generated_corpus():
    torch.manual_seed(0)
    train, test = generated_weibo("valid", 600), generated_weibo("test", 300)
    vocab = H.tag_vocabulary(train.tags)
    f = CharNgrams((1, 2), min_count=2).fit(train.posts + vocab)
    pairs = np.array([(i, vocab.index(t)) for i, ts in enumerate(train.tags) for t in ts])
    model = DualTower(f.n_features_, 32, 32, shared=True, temperature=0.1, head=False, init_std=0.01)
    loader = HashtagPairLoader(f.transform(train.posts), f.transform(vocab), pairs, f.idf_, 128, 0.3)
    untrained = embed_bags(model.post_tower, f.transform(test.posts), f.idf_) @ \
        embed_bags(model.tag_tower, f.transform(vocab), f.idf_).T
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    fit(model, loader, epochs=5, optimizer=opt, progress=False)
    z_post = embed_bags(model.post_tower, f.transform(test.posts), f.idf_)
    z_tag = embed_bags(model.tag_tower, f.transform(vocab), f.idf_)
    assert np.allclose(np.linalg.norm(z_post, axis=1), 1, atol=1e-5)
    rel = H.relevant_sets(test.tags, vocab)
    before = ranking_report(H.top_k(untrained, 10), rel)["recall@1"]
    after = ranking_report(H.top_k(z_post @ z_tag.T, 10), rel)["recall@1"]
    assert after > 0.6 and after > before + 0.2, (before, after)


def test_tfidf_votes_fuse_topk():
    texts = ["我是歌手 现场", "世界杯 足球", "我是歌手 淘汰"]
    vec = H.tfidf_vectorizer(texts)
    s = H.tfidf_scores(vec, ["歌手"], texts)
    assert s.shape == (1, 3) and s[0, 1] == 0 and s[0, 0] > 0
    assert np.allclose(H.tfidf_scores(vec, vec.transform(["歌手"]), texts), s)
    tags = H.tag_matrix([["a"], ["b"], ["a", "c"]], ["a", "b"])
    assert tags.tolist() == [[1, 0], [0, 1], [1, 0]]
    votes = H.hashtag_votes(np.array([[0.5, -0.2, 0.4]]), tags, k=2)
    assert np.allclose(votes, [[0.9, 0.0]])
    with pytest.raises(ValueError, match=r"k must be <= the number of training posts \(3\), got 4"):
        H.hashtag_votes(np.ones((1, 3)), tags, k=4)
    with pytest.raises(TypeError, match="k must be an int"):           # not silently 2
        H.top_k(np.ones((1, 3)), k=2.0)
    a, b = np.array([[1.0, 2, 3]]), np.array([[30.0, 10, 20]])
    fused = H.fuse({"a": a, "b": b}, {"a": 1.0, "b": 1.0})
    assert np.allclose(fused, H.standardize(a) + H.standardize(b))
    with pytest.raises(ValueError, match="not given"):
        H.fuse({"a": a}, {"c": 1.0})
    assert H.top_k(np.array([[0.1, 0.9, 0.5, 0.9]]), 3).tolist() == [[1, 3, 2]]


def test_corrupt_tags():
    tags = [[str(i)] for i in range(100)]
    noisy = H.corrupt_tags(tags, 0.3, seed=0)
    assert sum(a != b for a, b in zip(tags, noisy)) == 30
    assert H.corrupt_tags(tags, 0.0) == tags
    with pytest.raises(ValueError, match="share"):
        H.corrupt_tags(tags, 1.5)


def test_generated_corpus_is_labelled():
    d = generated_weibo("valid", 50)
    assert "GENERATED" in d.source and len(d) == 50 and all(d.tags)
    assert generated_weibo("valid", 50).posts == d.posts          # deterministic


def test_hashtag_box_calls_recommend():
    pytest.importorskip("ipywidgets")
    from cl_teach.widgets import hashtag_box
    seen = []
    box = hashtag_box(lambda text, k: seen.append((text, k)) or [("我是歌手", 1.0)] * k, value="歌")
    assert seen == [("歌", 3)] and "#我是歌手#" in box.children[1].value
    box.children[0].value = "足球"
    assert seen[-1] == ("足球", 3)
