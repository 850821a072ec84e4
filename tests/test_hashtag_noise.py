"""Label noise with a comparator (issue 12 item 4): the softmax classifier learns (a broken variant
trained on shuffled labels fails the same bar), it cannot rank a hashtag no training post carries
while the tower can (by its characters), the sweep is deterministic, share 0 is the clean fit,
and sweep_difference claims only a difference both intervals put away from 0."""
import numpy as np
import pytest

from cl_teach.apps import hashtag_noise as N
from cl_teach.apps import hashtags as H
from cl_teach.apps import open_world as OW
from cl_teach.apps.hashtag_classifier import fit_hashtag_classifier
from cl_teach.apps.hashtag_tower import TowerConfig, fit_open_world_tower, post_texts
from cl_teach.data import generated_weibo
from cl_teach.methods import SoftmaxClassifier

CFG = TowerConfig(epochs=6, min_count=2)


@pytest.fixture(scope="module")
def corpus():
    train, test = generated_weibo("valid", 500), generated_weibo("test", 200)
    cands = OW.open_world_candidates(train.tags)
    return train, test, cands, OW.answer_sets(test.tags, cands)


def recall10(model, test, answers):
    return OW.per_post_metrics(model.scores(test.posts, test.convs), answers)["recall@10"].mean()


def test_classifier_learns_and_shuffled_labels_fail_the_same_bar(corpus):
    train, test, cands, answers = corpus
    clf = fit_hashtag_classifier(train.posts, train.convs, train.tags, cands, CFG)
    assert recall10(clf, test, answers) > 0.8
    shuffled = H.corrupt_tags(train.tags, 1.0, seed=0)                 # broken: no post keeps its labels
    broken = fit_hashtag_classifier(train.posts, train.convs, shuffled, cands, CFG)
    assert recall10(broken, test, answers) < 0.8


def test_a_hashtag_without_training_posts_the_tower_ranks_the_classifier_cannot(corpus):
    train, test, cands, answers = corpus
    held = "我是歌手"                                  # its characters are in its posts' words
    keep = [i for i, ts in enumerate(train.tags) if held not in ts]
    posts, convs = [train.posts[i] for i in keep], [train.convs[i] for i in keep]
    tags = [train.tags[i] for i in keep]
    rows = [i for i, ts in enumerate(test.tags) if held in ts]
    target = [{cands.index(held)} for _ in rows]
    r = {}
    for name, recipe in (("tower", fit_open_world_tower), ("classifier", fit_hashtag_classifier)):
        model = recipe(posts, convs, tags, cands, CFG)
        s = model.scores([test.posts[i] for i in rows], [test.convs[i] for i in rows])
        r[name] = OW.per_post_metrics(s, target)["recall@10"].mean()
    assert len(rows) > 5 and r["classifier"] < 0.2 < r["tower"], r


def test_classifier_errors(corpus):
    train, _, cands, _ = corpus
    with pytest.raises(ValueError, match="n_classes must be an int >= 2"):
        SoftmaxClassifier(5, n_classes=1)
    with pytest.raises(ValueError, match=r"HashtagPairLoader\(..., index=True\)"):
        SoftmaxClassifier(5, n_classes=3, dim=4, head=False).training_step((None, None, None))
    with pytest.raises(ValueError, match="tags must hold one hashtag list per post"):
        fit_hashtag_classifier(train.posts, train.convs, train.tags[:-1], cands)
    with pytest.raises(ValueError, match="candidates must be non-empty and unique"):
        fit_hashtag_classifier(train.posts, train.convs, train.tags, cands + cands[:1])
    with pytest.raises(ValueError, match="at least one hashtag among the candidates"):
        fit_hashtag_classifier(train.posts, train.convs, train.tags, ["not a tag", "nor this"])
    with pytest.raises(TypeError, match="config must be a TowerConfig"):
        fit_hashtag_classifier(train.posts, train.convs, train.tags, cands, {"epochs": 1})


@pytest.fixture(scope="module")
def small_sweep(corpus):
    train, test, cands, answers = corpus
    vec = H.tfidf_vectorizer(post_texts(train.posts, train.convs))
    sims = H.tfidf_scores(vec, vec.transform(post_texts(test.posts, test.convs)),
                          vec.transform(post_texts(train.posts, train.convs)))
    cfg = TowerConfig(epochs=3, min_count=2, dim=16)
    run = lambda: N.noise_sweep(train.posts, train.convs, train.tags, test.posts, test.convs,  # noqa: E731
                                answers, cands, [0.0, 1.0], [0, 1], cfg, vote_sims=sims)
    return run(), run, cfg, sims


def test_sweep_is_deterministic_and_share_0_is_the_clean_fit(corpus, small_sweep):
    train, test, cands, answers = corpus
    sweep, run, cfg, sims = small_sweep
    again = run()
    for name in N.SYSTEMS:
        for share in (0.0, 1.0):
            for a, b in zip(sweep[name][share]["recall@10"], again[name][share]["recall@10"], strict=True):
                assert np.array_equal(a, b), (name, share)
    clean = fit_open_world_tower(train.posts, train.convs, train.tags, cands, cfg, seed=1)
    r = OW.per_post_metrics(clean.scores(test.posts, test.convs), answers)["recall@10"]
    assert np.array_equal(r, sweep["tower"][0.0]["recall@10"][1])
    votes = OW.per_post_metrics(H.hashtag_votes(sims, H.tag_matrix(train.tags, cands)), answers)
    assert np.array_equal(votes["recall@10"], sweep["votes"][0.0]["recall@10"][0])
    s = N.summarize_sweep(sweep)
    for name in N.SYSTEMS:                                              # noise hurts every system here
        assert s[name][0.0]["mean"] > s[name][1.0]["mean"] + 0.2, name
        lo, hi = s[name][0.0]["posts_ci95"]
        assert lo <= s[name][0.0]["mean"] <= hi


def test_sweep_difference_claims_only_what_both_intervals_support(small_sweep):
    sweep = small_sweep[0]
    assert N.sweep_difference(sweep, "votes", "votes", 0.0) == {
        "estimate": 0.0, "posts_ci95": [0.0, 0.0], "seeds_ci95": [0.0, 0.0], "claim": False}
    zeros = np.zeros(len(sweep["tower"][0.0]["recall@10"][0]))
    d = N.sweep_difference(sweep, "votes", zeros, 0.0)
    assert d["claim"] and d["posts_ci95"][0] > 0
    first = {n: {sh: {"recall@10": v["recall@10"][:1]} for sh, v in sweep[n].items()} for n in N.SYSTEMS}
    one_seed = {**sweep, "seeds": [0], **first}
    assert N.sweep_difference(one_seed, "votes", zeros, 0.0)["seeds_ci95"] is None
    with pytest.raises(ValueError, match="system must be one of"):
        N.sweep_difference(sweep, "svm", "votes", 0.0)
    with pytest.raises(ValueError, match="share one of"):
        N.sweep_difference(sweep, "tower", "votes", 0.5)


def test_noise_sweep_errors(corpus):
    train, test, cands, answers = corpus
    sims = np.zeros((len(test.posts), len(train.posts)))
    args = (train.posts, train.convs, train.tags, test.posts, test.convs, answers, cands)
    with pytest.raises(ValueError, match=r"shares must be distinct noise levels in \[0, 1\], got \[1.5\]"):
        N.noise_sweep(*args, [1.5], [0], vote_sims=sims)
    with pytest.raises(ValueError, match="shares must be distinct"):
        N.noise_sweep(*args, [0.2, 0.2], [0], vote_sims=sims)
    with pytest.raises(ValueError, match="seeds must be distinct ints, at least one"):
        N.noise_sweep(*args, [0.0], [], vote_sims=sims)
    with pytest.raises(ValueError, match="answers must hold one answer set per query post"):
        N.noise_sweep(*args[:5], answers[:-1], cands, [0.0], [0], vote_sims=sims)
    with pytest.raises(ValueError, match=r"vote_sims must be a \(200, 500\) array"):
        N.noise_sweep(*args, [0.0], [0], vote_sims=sims.T)
    with pytest.raises(ValueError, match="vote_sims must be"):
        N.noise_sweep(*args, [0.0], [0])
