# %% [markdown]
# # 17 · Hashtags for a post: CD-TOM on real Weibo microblogs, in the open world
#
# **Learning goals**
# 1. Train the talk's system: a (post, hashtag) **dual tower** whose hashtag embeddings sit in a
#    **Faiss index**, trained contrastively against *every* hashtag of the index, with the post's
#    other hashtags masked out of the softmax (they are not negatives).
# 2. Judge it as production would: the candidates are every hashtag known **before** the test
#    posts (an *open world*, never the test labels), recall is averaged over **all** test posts,
#    and every number carries a 95% interval; the baselines that learn nothing run beside it.
# 3. Combine the tower with those baselines into an **honestly named ensemble** whose weights a
#    development split chooses, and measure what each part adds by setting its weight to 0.
#
# **Prerequisites:** notebooks 01 (InfoNCE) and 14 (text views). **Time budget:** about 2 minutes
# on a 2-core laptop CPU.
#
# **Data:** real Weibo posts with their hashtags and reply threads (Wang et al., NAACL 2019;
# see `../shared/data/weibo_hashtags/README.md`): the `valid` split (4,013 posts) is split into
# training posts (four fifths) and a development split (one fifth); the `test` split (4,014 posts)
# is touched once. `train_tag.txt` holds the hashtags (no texts) of the upstream training split.
# If the corpus is absent, a clearly labelled *generated* stand-in keeps the notebook runnable;
# its numbers mean nothing about Weibo.

# %%
import json

import numpy as np
import torch

import cl_teach
from cl_teach import plotting
from cl_teach.apps import hashtags as H
from cl_teach.apps import open_world as OW
from cl_teach.apps.hashtag_tower import OpenWorldTower, TowerConfig, fit_open_world_tower, post_texts
from cl_teach.data import load_train_tags, load_weibo
from cl_teach.losses import index_nce
from cl_teach.methods import DualTower
from cl_teach.metrics import paired_difference
from cl_teach.ranking import recall_at_k
from cl_teach.retrieval import EmbeddingIndex, brute_force_search

SEED = cl_teach.notebook_seed()                 # CL_TEACH_SEED, default 0
device = cl_teach.setup(SEED)
# without the real corpus: a loud warning and a GENERATED stand-in (is_fallback=True)
valid, test = load_weibo("valid", fallback=True), load_weibo("test", fallback=True)
REAL = not valid.is_fallback
upstream_tags = load_train_tags() if REAL else []      # hashtags of the upstream training split
print(valid, test, sep="\n")

# %% [markdown]
# ## Intuition
# A hashtag is a tiny text, a post a longer one. Embed both with one tower $f$ into a space where
# a post lies near its own hashtags, put every known hashtag's embedding into a Faiss index, and
# recommend by nearest-neighbour search: that is CD-TOM as the Weibo talk describes it.
#
# Training is InfoNCE, but the negatives are not the batch's other hashtags: they are **all $C$
# hashtags of the index** (the limit of mixing index negatives into in-batch ones, Yang et al.,
# WWW 2020), so training ranks exactly what the index will rank. A post tagged both `#我是歌手#`
# and `#周笔畅#` has two positives; when the pair (post, `#我是歌手#`) is trained, `#周笔畅#` is
# a **false negative** and is left out of the softmax ($m_{ij} = 1$):
# $$\mathcal L_i = -s_{i,t_i} + \log \sum_{j:\ j = t_i \text{ or } m_{ij} = 0} e^{s_{ij}},
# \qquad s_{ij} = \frac{\cos(f(\text{post}_i), f(\text{hashtag}_j))}{\tau}.$$
#
# The tower reads **hashed character n-grams** (1–3 characters, TF-IDF weighted) of the post
# *and its replies* (the corpus paper's point: conversations carry the topic) and of the hashtag:
# Chinese words are short and segmented imperfectly, and a hashtag never used in training still
# has characters, so the tower can place it.
#
# Two honest limits. The tower here is one **linear** map of the n-gram bag (an `EmbeddingBag`:
# a learned, low-rank re-weighting of TF-IDF, as in DSSM or StarSpace), far smaller than the
# BERT-class towers of the talk; a nonlinear head was tried by the benchmark and scored worse on
# the development split (its record lists it). And hashtags are **matched, not generated**
# (the talk's Q&A): the system can only return a hashtag already in its index, so a test post
# whose hashtags are all new cannot be answered — the coverage below is the price, where the
# corpus paper (Wang et al., 2019) generates hashtags word by word and is scored by F1 / ROUGE.

# %% [markdown]
# ## Derive the index loss

# %%
def my_index_nce(query, candidates, target, false_negatives, temperature):
    # BEGIN SOLUTION
    q = query / query.norm(dim=1, keepdim=True)                    # (N, D) on the sphere
    c = candidates / candidates.norm(dim=1, keepdim=True)          # (C, D): the whole index
    logits = q @ c.T / temperature                                 # (N, C)
    positive = torch.zeros_like(false_negatives)
    positive[torch.arange(len(q)), target] = True
    logits = logits.masked_fill(false_negatives & ~positive, float("-inf"))   # out, not pushed
    log_softmax = logits - torch.logsumexp(logits, dim=1, keepdim=True)       # stable at low tau
    return -log_softmax[torch.arange(len(q)), target].mean()
    # END SOLUTION


# %%
g = torch.Generator().manual_seed(SEED)
zq, zc = torch.randn(6, 16, generator=g), torch.randn(40, 16, generator=g)
target = torch.tensor([0, 3, 3, 7, 1, 0])
other_tags = torch.zeros(6, 40, dtype=torch.bool)
other_tags[0, 5] = other_tags[1, 7] = other_tags[5, 2] = True      # posts with a second hashtag
mine = my_index_nce(zq, zc, target, other_tags, 0.05)
theirs = index_nce(zq, zc, target, other_tags, temperature=0.05)
assert torch.allclose(mine, theirs, atol=1e-6), (mine, theirs)
unmasked = index_nce(zq, zc, target, None, temperature=0.05)
warm = index_nce(zq, zc, target, other_tags, temperature=1.0)
print(f"index loss {theirs.item():.4f} with the mask, {unmasked.item():.4f} without (tau = 0.05)")
print(f"at tau = 1 random vectors give {warm.item():.2f}, close to log C = {np.log(len(zc)):.2f}: "
      "the softmax over the index is nearly uniform; at tau = 0.05 random cosines are "
      "sharpened 20 times, so a random start sits far above log C")

# %% [markdown]
# ## The open world
# The candidates are every hashtag known before the test posts: the upstream training split's
# hashtags and those of our training posts — one index for the development and the test posts.
# `check_open_world` refuses a candidate known only from the test labels. A test post whose
# hashtags are all unknown cannot be answered; it still counts (recall 0), so the **coverage**
# (the share of posts with at least one known answer) is the ceiling of every recall.

# %%
rng = np.random.default_rng(SEED)                                 # the development split
perm = rng.permutation(len(valid))
dev_rows, train_rows = np.sort(perm[:len(valid) // 5]), np.sort(perm[len(valid) // 5:])
pick = lambda split, rows: {k: [getattr(split, k)[i] for i in rows] for k in ("posts", "convs", "tags")}
train, dev = pick(valid, train_rows), pick(valid, dev_rows)
test_ = {"posts": test.posts, "convs": test.convs, "tags": test.tags}
candidates = OW.open_world_candidates(upstream_tags, train["tags"])
OW.check_open_world(candidates, upstream_tags, train["tags"])      # never a test-only hashtag
answers = {"dev": OW.answer_sets(dev["tags"], candidates), "test": OW.answer_sets(test.tags, candidates)}
print(f"{len(candidates):,} candidate hashtags; {len(train['posts']):,} training posts, "
      f"{len(dev['posts'])} development posts, {len(test.posts):,} test posts")
print(f"coverage (ceiling of recall): dev {OW.coverage(answers['dev']):.3f}, "
      f"test {OW.coverage(answers['test']):.3f}")

# %% [markdown]
# ## The signals that learn nothing
# Three baselines, each a (posts × candidates) score matrix:
# * **TF-IDF**: cosine between character 1–2-gram TF-IDF vectors of the post + replies and of
#   each hashtag;
# * **kNN votes**: the hashtags of the 30 most similar training posts (TF-IDF of post + replies),
#   weighted by similarity — "posts like this one were tagged ...";
# * **popularity**: $\log(1 + \text{uses})$ of each hashtag in the known splits, the same for
#   every post.

# %%
def no_learning(query):
    """(Q, C) score matrices of the signals that learn nothing, for the posts of ``query``."""
    x_query = vec.transform(post_texts(query["posts"], query["convs"]))
    return {"TF-IDF": H.tfidf_scores(vec, x_query, candidates),
            "kNN votes": H.hashtag_votes(H.tfidf_scores(vec, x_query, x_train), train_tags),
            "popularity": np.broadcast_to(prior, (x_query.shape[0], len(candidates))).copy()}


train_texts = post_texts(train["posts"], train["convs"])
vec = H.tfidf_vectorizer(train_texts + H.tag_vocabulary(train["tags"]))
x_train = vec.transform(train_texts)                              # long texts: transform once
train_tags = H.tag_matrix(train["tags"], candidates)              # (N_train, C) who carries what
prior = OW.popularity_scores(upstream_tags + train["tags"], candidates)
S = {"dev": no_learning(dev), "test": no_learning(test_)}

# %% [markdown]
# ## Experiment: train the tower against the whole index
# The options are the ones a greedy search on the development split chose in
# `benchmarks/bench_hashtags.py` (post + replies, index negatives, τ = 0.05, 512 dimensions,
# n-grams seen in ≥ 5 texts; 50 % of each bag's n-grams dropped at random in every batch, a text
# augmentation). Its record lists every option tried and what it scored.

# %%
# NBVAL_IGNORE_OUTPUT
CONFIG = TowerConfig(replies=True, negatives="index", mask=True, temperature=0.05, dim=512, min_count=5)
live = plotting.LivePlot(keys=("loss", "dev_recall@10"), every=5,
                         title="dual tower: InfoNCE against the whole index")
tower = fit_open_world_tower(train["posts"], train["convs"], train["tags"], candidates, CONFIG,
                             seed=SEED, callbacks=[live], dev=(dev["posts"], dev["convs"], answers["dev"]))
steps, dev_r10 = live.history.steps("dev_recall@10"), live.history["dev_recall@10"]
print(f"{steps[0]} steps per epoch; development recall@10 once per epoch:",
      " ".join(f"{v:.3f}" for v in dev_r10))

# %% [markdown]
# Read the two panels together. The training loss drops off a cliff at the end of the first
# epoch: from then on every pair has been seen before, and a 512-dimensional linear tower over
# thousands of n-grams memorises them, so the training loss soon says little. The development
# recall (posts the tower never trains on, printed once per epoch) is what tells learning from
# memorising: where it stops rising, more epochs only memorise (the benchmark measured 20 epochs
# below 10 on its development split).

# %%
torch.manual_seed(SEED)                     # the trained tower's starting point, never trained
untrained = OpenWorldTower(DualTower(tower.featurizer.n_features_, dim=CONFIG.dim, out_dim=CONFIG.dim,
                                     shared=True, head=False, init_std=0.01),
                           tower.featurizer, candidates, CONFIG)
for split, q in (("dev", dev), ("test", test_)):
    S[split]["tower"] = tower.scores(q["posts"], q["convs"])
    S[split]["untrained tower"] = untrained.scores(q["posts"], q["convs"])

# %% [markdown]
# ## The talk's system: tower + Faiss
# The tag tower embeds the candidates once; a flat inner-product index (exact; the vectors are
# L2-normalised, so scores are cosines) returns each test post's top 10. It agrees with NumPy
# brute force:

# %%
index = EmbeddingIndex(kind="flat").fit(tower.embed_candidates(), ids=np.arange(len(candidates)))
z_test = tower.embed_posts(test.posts, test.convs)
faiss_scores, faiss_ids = index.search(z_test, k=10)              # (Q, 10), best first
ref_scores, _ = brute_force_search(tower.embed_candidates(), z_test[:200], k=10)
assert np.allclose(faiss_scores[:200], ref_scores, atol=1e-5)     # ids may differ only on exact ties
assert np.allclose(np.sort(S["test"]["tower"], 1)[:, ::-1][:, :10], faiss_scores, atol=1e-4)
print(f"Faiss index: {index.ntotal_:,} hashtags x {z_test.shape[1]} dimensions")

# %% [markdown]
# ## The ensemble, its weights chosen on the development split
# Each signal is standardised per post and added with a weight from {0, 1, 2}; `select_weights`
# tries every combination on the **development** posts (the tower's and the baselines' scores
# for them come from the same training posts) and keeps the best recall@10. We search twice:
# with the tower, and over the baselines alone (the best system that learns nothing). The test
# split then gets each set of weights once.

# %%
BASELINES = ["TF-IDF", "kNN votes", "popularity"]
w_ensemble, dev_ensemble = OW.select_weights(S["dev"], answers["dev"], ["tower", *BASELINES], grid=(0, 1, 2))
w_no_learning, dev_no_learning = OW.select_weights(S["dev"], answers["dev"], BASELINES, grid=(0, 1, 2))
print("weights with the tower:   ", w_ensemble, f"(dev recall@10 {dev_ensemble:.3f})")
print("weights without learning: ", w_no_learning, f"(dev recall@10 {dev_no_learning:.3f})")

systems = {name: S["test"][name] for name in BASELINES}
systems["untrained tower"] = S["test"]["untrained tower"]
systems["tower + Faiss (CD-TOM)"] = S["test"]["tower"]
systems["ensemble without learning"] = H.fuse(S["test"], w_no_learning)
systems["ensemble: tower + baselines"] = H.fuse(S["test"], w_ensemble)
per = {name: OW.per_post_metrics(s, answers["test"]) for name, s in systems.items()}
# the talk's system is judged on what Faiss returns (its top 10), not on the score matrix
per["tower + Faiss (CD-TOM)"]["recall@10"] = recall_at_k(faiss_ids, answers["test"], 10, per_query=True)


def row(name, m):
    cells = [f"{v['value']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]" for v in m.values()]
    return f"{name:30s} " + " ".join(f"{c:>21s}" for c in cells)


print(f"\n{'test split, open world':30s} {'R@1':>21s} {'R@10':>21s} {'MRR':>21s}")
for name, p in per.items():
    print(row(name, OW.metrics_with_intervals(p, seed=SEED)))
print(f"(every recall over all {len(test.posts):,} test posts; ceiling {OW.coverage(answers['test']):.3f})")

# %% [markdown]
# ## The exact ablation: each weight set to 0
# What a part adds is the ensemble minus the same ensemble with that part's weight 0 (the other
# weights unchanged), paired over the same test posts.

# %%
ablation = {}
full_r10 = per["ensemble: tower + baselines"]["recall@10"]
for name, w in w_ensemble.items():
    if w:
        without = OW.per_post_metrics(H.fuse(S["test"], dict(w_ensemble, **{name: 0.0})), answers["test"])
        ablation[name] = paired_difference(full_r10, without["recall@10"], seed=SEED)
        print(f"ensemble - ensemble with {name!r} weight 0: {ablation[name].points()} recall@10 points")

# %% [markdown]
# Two more questions the table alone cannot answer: does the tower beat **each** baseline on its
# own, and can it rank a hashtag that **no training post carries**? Many candidates come only
# from `train_tag.txt` (hashtags without texts; counted below): kNN votes can never vote for
# them, the tower and TF-IDF can place them by their characters.

# %%
seen = train_tags.sum(0) > 0                                      # has a training post
unseen = {j for j in range(len(candidates)) if not seen[j]}
has_unseen = [i for i, a in enumerate(answers["test"]) if a & unseen]
unseen_answers = [answers["test"][i] & unseen for i in has_unseen]
recall_unseen = {name: OW.per_post_metrics(systems[name][has_unseen], unseen_answers)["recall@10"]
                 for name in ("tower + Faiss (CD-TOM)", "TF-IDF", "kNN votes")}
print(f"{(~seen).sum():,} candidates carried by no training post; {len(has_unseen)} test posts "
      f"have such an answer")
for name, r in recall_unseen.items():
    print(f"  recall@10 of those answers, {name}: {r.mean():.3f}")

d = {("trained tower", "untrained tower"): paired_difference(
         per["tower + Faiss (CD-TOM)"]["recall@10"], per["untrained tower"]["recall@10"], seed=SEED)}
for name in BASELINES:
    d["tower + Faiss", name] = paired_difference(per["tower + Faiss (CD-TOM)"]["recall@10"],
                                                 per[name]["recall@10"], seed=SEED)
d["ensemble", "ensemble without learning"] = paired_difference(
    full_r10, per["ensemble without learning"]["recall@10"], seed=SEED)
d["tower on unseen hashtags", "kNN votes"] = paired_difference(
    recall_unseen["tower + Faiss (CD-TOM)"], recall_unseen["kNN votes"], seed=SEED)
d["TF-IDF on unseen hashtags", "the tower"] = paired_difference(
    recall_unseen["TF-IDF"], recall_unseen["tower + Faiss (CD-TOM)"], seed=SEED)
for (a, b), iv in d.items():
    print(f"recall@10, {a} - {b}: {iv.points()} points")

# %%
# NBVAL_CHECK_OUTPUT
claims = [(("trained tower", "untrained tower"), d["trained tower", "untrained tower"])]
if REAL:                                  # claims about the real corpus (the stand-in saturates)
    claims += [(("the tower + Faiss", name), d["tower + Faiss", name]) for name in BASELINES]
    claims += [(("the ensemble", "the same ensemble with the tower's weight 0"), ablation["tower"]),
               (("the tower on never-trained hashtags", "kNN votes"),
                d["tower on unseen hashtags", "kNN votes"]),
               (("TF-IDF on never-trained hashtags", "the tower"),
                d["TF-IDF on unseen hashtags", "the tower"])]
for (a, b), iv in claims:
    print(f"recall@10: {iv.verdict(a, b)}")
    assert iv.low > 0, (a, b, iv)

# %% [markdown]
# Read the intervals, not the third decimal. The trained tower with its Faiss index — the talk's
# system — beats each signal that learns nothing on its own, and the untrained tower (a random
# projection of the same n-grams) is far behind: what the tower knows comes from training. It
# also ranks hashtags that no training post carries, from their characters alone, where the
# votes cannot — but TF-IDF ranks those better still: trained only on the hashtags the training
# posts use, the tower has learned to prefer them (a bias towards the training labels that an
# open world exposes and a closed one hides). That is one reason the ensemble keeps TF-IDF. In
# the ensemble, the tower's share is what its weight-0 ablation says — an
# interval above 0, and small next to the votes', which read the training labels directly. The
# recommender that learns nothing is strong here because similar posts really are tagged alike.
#
# The benchmark (`benchmarks/bench_hashtags.py`) runs the same protocol with all of `valid` for
# training, a frozen multilingual sentence encoder (USE) as a fourth baseline, and 3 seeds.
# Its recorded result (another run, on the machine it names; not this notebook's):

# %%
record = cl_teach.config.REPO_ROOT / "benchmarks" / "results" / "hashtags.json"
if record.exists():
    rec = json.loads(record.read_text())
    for key in ("tower_alone", "best_without_tower", "best"):
        print(f"{key:20s} recall@10 {rec[key]['recall@10']['value']:.3f} {rec[key]['recall@10']['ci95']}")
    print("tower contribution  ", rec["tower_contribution"]["recall@10"], rec["tower_contribution"]["ci95"],
          "| recorded", rec["machine"]["date_utc"][:10], "on", rec["machine"]["cpu"])

# %% [markdown]
# ## Label noise: the tower, a classifier and the votes
# Weibo's hashtags are chosen by the authors, not by annotators: many are off-topic, promotional
# or copied (the talk calls the labels weak). What does noise in the labels do to each system
# that reads them? We give a share of the training posts **another post's hashtags**
# (`corrupt_tags`; share 1: no post keeps its own) and, on the same noisy labels, retrain
# * the **tower** (contrastive: a hashtag is the n-grams of its text);
# * a **softmax classifier** on the same features and width (supervised: a hashtag is a free
#   class vector, so it can never rank a hashtag it did not see in training);
# * the **kNN votes** (no training, but they count the noisy labels of similar posts).
#
# TF-IDF between the post and the hashtag's text reads no label at all: it is what *not
# training* scores. Live here at the two ends (clean labels; every label wrong) at a small
# budget (64 dimensions instead of 512, one seed, intervals over the test posts; the classifier
# gets the 20 epochs the benchmark chose for it on the development split); the benchmark's
# record below fills in the curve between them: six levels, 3 seeds, the full width.

# %%
# NBVAL_IGNORE_OUTPUT
from dataclasses import replace

from cl_teach.apps import hashtag_noise as N

SHARES = (0.0, 1.0)
small = replace(CONFIG, dim=64)
vote_sims = H.tfidf_scores(vec, vec.transform(post_texts(test.posts, test.convs)), x_train)
sweep = N.noise_sweep(train["posts"], train["convs"], train["tags"], test.posts, test.convs,
                      answers["test"], candidates, SHARES, seeds=[SEED], config=small,
                      vote_sims=vote_sims, classifier_config=replace(small, epochs=20), progress=True)
tfidf_r10 = per["TF-IDF"]["recall@10"]
summary = N.summarize_sweep(sweep)
tfidf_iv = OW.metrics_with_intervals({"recall@10": tfidf_r10}, seed=SEED)["recall@10"]
bars = {"TF-IDF (reads no label)": tfidf_iv}
for share, when in ((0.0, "clean labels"), (1.0, "every label wrong")):
    for name in N.SYSTEMS:
        m = summary[name][share]
        bars[f"{name}, {when}"] = {"value": m["mean"], "ci95": m["posts_ci95"]}
plotting.plot_scores({k: v["value"] for k, v in bars.items()}, xlabel="test recall@10 (open world)",
                     title="label noise at both ends (one seed, 64-d; 95% over test posts)",
                     highlight=[k for k in bars if not k.startswith("TF-IDF")],
                     errors={k: tuple(v["ci95"]) for k, v in bars.items()})

# %%
uses = np.asarray(train_tags.sum(0)).ravel()                         # training posts per candidate
print(f"training posts per candidate hashtag: none for {(uses == 0).sum():,} of {len(candidates):,}; "
      f"of the others, {np.mean(uses[uses > 0] <= 2):.0%} have one or two")
for share in SHARES:
    for name in N.SYSTEMS:
        d = N.sweep_difference(sweep, name, tfidf_r10, share)
        print(f"share {share:.1f}: {name:10s} - TF-IDF {d['estimate']:+.3f} {d['posts_ci95']}")

# %%
# NBVAL_CHECK_OUTPUT
noise_claims = [(("the tower", "the classifier", 0.0), N.sweep_difference(sweep, "tower", "classifier", 0.0))]
if REAL:                                  # claims about the real corpus (the stand-in saturates)
    noise_claims += [(("the tower", f"the {name}", 1.0), N.sweep_difference(sweep, "tower", name, 1.0))
                     for name in ("classifier", "votes")]
    noise_claims += [(("TF-IDF", f"the {name}", 1.0), N.sweep_difference(sweep, tfidf_r10, name, 1.0))
                     for name in N.SYSTEMS]
for (a, b, share), d in noise_claims:
    print(f"recall@10 at label-noise share {share}: {a} beats {b}" if d["claim"] and d["estimate"] > 0
          else f"recall@10 at label-noise share {share}: no reliable difference between {a} and {b}")
    assert d["claim"] and d["estimate"] > 0, (a, b, share, d)

# %% [markdown]
# What the bars show. With clean labels the tower beats the classifier built on the same
# features: a hashtag's text is worth more than a free class vector when thousands of classes
# share a few thousand training posts, most hashtags with one or two examples and many with none
# (counted above; the classifier cannot rank those at all). With every label wrong, all three
# fall below TF-IDF: there, **training on the noisy labels is worse than not training at all**.
# The votes and the classifier keep little, the tower more: it still reads the hashtags'
# characters. (At 64 dimensions the tower is weaker than the 512-dimensional one above; its
# margins here are the small budget's.) Where between the two ends each system crosses the
# no-training line, and how the full-width tower's larger margin delays its crossing, is the
# benchmark's record (3 seeds, intervals over seeds and over posts; a share is listed when both
# intervals exclude 0):

# %%
noise_record = cl_teach.config.REPO_ROOT / "benchmarks" / "results" / "hashtag_noise.json"
if noise_record.exists():
    nrec = json.loads(noise_record.read_text())
    print("share  " + "  ".join(f"{n:>10s}" for n in N.SYSTEMS) + "   (test recall@10, mean of "
          f"{len(nrec['seeds'])} seeds; TF-IDF {nrec['tfidf_no_labels']['recall@10']['value']:.3f})")
    for s in nrec["recall@10"]["tower"]:
        print(f"{float(s):5.2f}  " + "  ".join(f"{nrec['recall@10'][n][s]['mean']:10.3f}" for n in N.SYSTEMS))
    for s, dd in nrec["differences_recall@10"].items():
        below = [n for n in N.SYSTEMS if dd[f"{n}-tfidf"]["claim"] and dd[f"{n}-tfidf"]["estimate"] < 0]
        print(f"share {float(s):.2f}: reliably below TF-IDF: {', '.join(below) or 'none'}")
    print("| recorded", nrec["machine"]["date_utc"][:10], "on", nrec["machine"]["cpu"])

# %%
# NBVAL_IGNORE_OUTPUT
from IPython.display import Image

Image(filename=noise_record.with_suffix(".png")) if noise_record.exists() else None

# %% [markdown]
# ## Diagnose: the top-3 hashtags for a few test posts

# %%
best = H.top_k(systems["ensemble: tower + baselines"], 3)
tower_top = faiss_ids[:, :3]
for i in [0, 1, 2, 7, 11]:
    print(f"post: {test.posts[i][:60].replace(' ', '')}")
    print(f"   true: {test.tags[i]}")
    print(f"   tower + Faiss: {[candidates[j] for j in tower_top[i]]}")
    print(f"   ensemble:      {[candidates[j] for j in best[i]]}")

# %% [markdown]
# ## Explore: type a post
# A new post has no replies, so the tower and TF-IDF read the post where the replies would be;
# the ensemble's weights are the development split's.

# %%
def recommend(text, k=3):
    query = {"posts": [text], "convs": [text], "tags": [[]]}
    s = dict(no_learning(query), tower=tower.scores([text], [text]))
    fused = H.fuse(s, w_ensemble)
    return [(candidates[j], float(fused[0, j])) for j in H.top_k(fused, k)[0]]


print(recommend("今天 的 我是歌手 太 好听 了 周笔畅 加油"))

# %%
# NBVAL_IGNORE_OUTPUT
from cl_teach.widgets import hashtag_box

hashtag_box(recommend)

# %% [markdown]
# ## Exercises
# 1. **The mask's false negatives.** Write `false_negative_mask(carries, target)`: for a batch of
#    (post, hashtag) training pairs, which candidates of the index the loss must not push away,
#    the other hashtags of the pair's post. Count them in a batch of 256 training pairs, and count
#    the ones an in-batch loss would meet (only the batch's own target hashtags are candidates
#    there). Why are there more with index negatives?
# 2. Turn the kNN votes' `k` from 30 to 5 and 100. Why does a kNN recommender need more
#    neighbours when hashtags are rare?
# 3. Retrain with `TowerConfig(..., mask=False)` and compare the development recall@10 with the
#    mask. The benchmark measured it: read its record (`dev.tower_search`) and say whether the
#    difference is larger than the benchmark's margin for keeping an option.

# %%
def false_negative_mask(carries, target):
    """(B, C) bool: True where candidate c is another hashtag of pair b's post.

    carries: (B, C) 0/1, the hashtags of each pair's post (rows of `train_tags`);
    target: (B,) int, the candidate each pair trains towards."""
    # BEGIN SOLUTION
    mask = np.asarray(carries).astype(bool)                  # a copy: every hashtag of the post...
    mask[np.arange(len(target)), target] = False             # ...but the target, the positive
    return mask
    # END SOLUTION


# %%
index_pairs = np.argwhere(train_tags > 0)                              # (P, 2): (post, candidate)
batch = index_pairs[np.random.default_rng(SEED).choice(len(index_pairs), 256, replace=False)]
mask = false_negative_mask(train_tags[batch[:, 0]], batch[:, 1])
assert mask.shape == (256, len(candidates)), f"one row per pair, one column per candidate: got {mask.shape}"
assert not mask[np.arange(256), batch[:, 1]].any(), "a pair's target is its positive, never masked"
by_hand = int(sum(train_tags[i].sum() - 1 for i in batch[:, 0]))      # each post's other hashtags
assert int(mask.sum()) == by_hand, f"false_negative_mask marks {int(mask.sum())}, counting by hand {by_hand}"
in_batch = int(mask[:, np.unique(batch[:, 1])].sum())                  # candidates: the batch's targets
print(f"false negatives masked in a batch of 256 pairs: {int(mask.sum())} against the whole index "
      f"({len(candidates)} candidates), {in_batch} among the batch's own "
      f"{len(np.unique(batch[:, 1]))} distinct targets")

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Answer.** With index negatives every other hashtag of the post is a candidate, so every one
# is a false negative to mask. An in-batch loss meets a post's other hashtag only when it is also
# the target of another pair in the same batch: often for a popular hashtag (a batch samples
# pairs, so the popular hashtags fill it), almost never for a rare one, which is most of the
# index. Training against the whole index (this notebook's Experiment) is what makes the mask
# necessary; an in-batch loss hides part of the problem by sampling it away.
# <!-- END SOLUTION -->

# %%
tfidf_test = H.tfidf_scores(vec, vec.transform(post_texts(test.posts[:500], test.convs[:500])), x_train)
# BEGIN SOLUTION
votes_recall = {}
for k in (5, 30, 100):
    v = H.hashtag_votes(tfidf_test, train_tags, k=k)
    votes_recall[k] = OW.per_post_metrics(v, answers["test"][:500])["recall@10"]
    print(f"votes k={k:3d}: recall@10 on 500 test posts = {votes_recall[k].mean():.3f}")
more = paired_difference(votes_recall[30], votes_recall[5], seed=SEED)
print(f"k = 30 - k = 5, paired over the 500 posts: {more} ({more.verdict('k = 30', 'k = 5')})")
assert more.low > 0, f"30 neighbours should beat 5 on rare hashtags: {more}"
# END SOLUTION

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Answer.** Thirty neighbours beat five (asserted in the teacher's run, paired over the same
# 500 test posts): a hashtag can only be voted for if one of the $k$ neighbours carries it, and a
# rare hashtag is carried by few training posts, so a small $k$ leaves most of the right answers
# without a single vote. Too many neighbours bring the opposite failure, votes from posts that are
# not similar, dominated by the frequent hashtags: read the $k = 100$ row.
# <!-- END SOLUTION -->

# %%
# BEGIN SOLUTION
if record.exists():
    kept_so_far = None
    for step in rec["dev"]["tower_search"]:
        if step.get("change") == {"mask": False}:
            print(f"benchmark, dev recall@10: {kept_so_far:.4f} with the mask, "
                  f"{step['dev']['recall@10']:.4f} without (an option is kept when it adds more "
                  f"than {rec['dev']['margin']}; without the mask kept: {step['kept']})")
        elif step["kept"]:
            kept_so_far = step["dev"]["recall@10"]
# END SOLUTION

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Answer.** The record says whether removing the mask was kept: an option stays only when it
# adds more than the margin on the development split, so "kept: False" would mean the mask stays. The
# margin is the benchmark's guard against choosing by noise: a difference below it is treated as
# no difference. Retraining with `mask=False` here costs the tower's whole training; compare
# both with a paired interval over the same development posts before trusting a small gap.
# <!-- END SOLUTION -->

# %% [markdown]
# ## Summary
# * CD-TOM as the talk describes it: one tower for posts (with their replies) and hashtags,
#   trained with InfoNCE against the whole index, the post's other hashtags masked; a Faiss
#   index turns recommendation into nearest-neighbour search.
# * Judged in an open world (candidates known before the test posts, recall over every post,
#   the coverage ceiling printed), the tower beats each signal that learns nothing; an ensemble
#   with weights chosen on a development split beats the best ensemble without learning by what
#   the tower's weight-0 ablation measures.
# * The tower can rank hashtags no training post carries, but TF-IDF ranks them better: what a
#   model learns from labels it also learns to prefer.
#
# **References:** Wang, Li, King, Lyu, Shi, *Microblog Hashtag Generation via Encoding
# Conversation Contexts*, NAACL 2019 (the corpus). Yang et al., *Mixed Negative Sampling for
# Learning Two-tower Neural Networks in Recommendations*, WWW 2020 (index negatives). Chen et al.,
# *SimCLR*, 2020 (in-batch negatives). Joulin et al., *Bag of Tricks for Efficient Text
# Classification* (fastText), 2017 (n-gram bags). Johnson, Douze, Jégou, *Billion-scale
# similarity search with GPUs* (Faiss), 2019.
