# %% [markdown]
# # 02 Contrastive learning as metric learning
#
# **Learning goals**
# 1. Write the metric-learning losses as one line of development: the contrastive pair loss
#    (Hadsell et al., 2006), the triplet loss and its mining (FaceNet, 2015), the N-pair loss
#    (Sohn, 2016), which is InfoNCE before the normalisation and the temperature, and supervised
#    contrastive learning (SupCon, 2020), where the labels decide the positives.
# 2. Measure the similarity measures behind them (dot product, cosine, Euclidean distance), and
#    why the course normalises: $\lVert a-b\rVert^2 = 2 - 2\cos(a, b)$ on the unit sphere.
# 3. Train the same encoder with labels through the same training loop, and measure what the
#    labels and the choice of triplets buy: SupCon and mined triplets against SimCLR and the
#    baselines, random against semi-hard against hardest triplets.
#
# **Prerequisites:** notebooks 00 (the vocabulary) and 01 (InfoNCE and the temperature).
#
# **Time budget:** about 1.5 minutes on a 2-core laptop CPU (one thread), measured in the closing note.

# %%
import time

import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

import cl_teach
from cl_teach.augment import Augment
from cl_teach.data import ViewLoader, fashion_mnist_subsets
from cl_teach.evaluation import UNTRAINED, baselines, best_baseline
from cl_teach.losses import (
    batch_triplet_loss,
    contrastive_pair_loss,
    info_nce,
    n_pair_loss,
    supcon_loss,
    triplet_loss,
)
from cl_teach.methods import Method, SimCLR
from cl_teach.metrics import effective_rank, knn_predict, paired_difference
from cl_teach.models import SmallCNN, embed, projector
from cl_teach.plotting import LivePlot, plot_scores
from cl_teach.train import CollapseMonitor, fit

SEED = cl_teach.notebook_seed()
device = cl_teach.setup(SEED)
t_start = time.perf_counter()

# %% [markdown]
# ## Contrastive learning is self-supervised metric learning
# The talk this course follows opens with it (source 000: contrastive learning is "effectively a
# self-supervised version of metric learning"; its slide 003 asks "对比学习：自监督版本的度量学习？",
# *contrastive learning: a self-supervised version of metric learning?*), and its Q&A adds that
# with labels "it resembles metric learning". **Metric learning** trains an embedding $z = g(f(x))$
# in which a distance means something: items that belong together are near, the others far. It
# needs to know which pairs belong together. Metric learning takes that from labels (same person,
# same class); contrastive learning makes it up: two augmented views of one image are a positive
# pair, every other image a negative (notebook 01). The losses are the same family.
#
# ## Data
# Real Fashion-MNIST, read offline (the loader announces loudly if it falls back to scikit-learn's
# digits): 8,000 training images with their labels (used for training here, and as the kNN memory
# bank) and 5,000 held-out test images.

# %%
train, test = fashion_mnist_subsets(8_000, 5_000, seed=SEED)
print(train, "\n", test)

# %% [markdown]
# ## Similarity: dot product, cosine, Euclidean
# Source 002 lists the three measures a contrastive loss can use. For $a, b \in \mathbb{R}^D$:
# the dot product $a^\top b$, the cosine $\cos(a, b) = a^\top b / (\lVert a\rVert\lVert b\rVert)$
# and the Euclidean distance $\lVert a - b\rVert$. Only the cosine ignores the lengths. On the unit
# sphere ($\lVert a\rVert = \lVert b\rVert = 1$) the three are one:
#
# $$\lVert a - b\rVert^2 = \lVert a\rVert^2 + \lVert b\rVert^2 - 2a^\top b = 2 - 2\cos(a, b),$$
#
# so on normalised embeddings a margin $m$ on the *squared* distance is a margin $m/2$ on the
# cosine, and "nearest in Euclidean distance" is "most similar in cosine". Checked on random
# vectors, and what a length change does to each measure:

# %%
g = torch.Generator().manual_seed(SEED + 4)
a, b = torch.randn(2, 1000, 64, generator=g)                         # (1000, 64) each
cos = F.cosine_similarity(a, b, dim=1)                               # (1000,)
ua, ub = F.normalize(a, dim=1), F.normalize(b, dim=1)                # on the unit sphere
assert torch.allclose((ua - ub).pow(2).sum(1), 2 - 2 * cos, atol=1e-5)
assert torch.allclose((ua * ub).sum(1), cos, atol=1e-6)
measures = {"dot product": lambda a, b: (a * b).sum(1), "cosine": lambda a, b: F.cosine_similarity(a, b),
            "Euclidean distance": lambda a, b: (a - b).norm(dim=1)}
for name, s in measures.items():
    print(f"{name:18s} of (a, b) {s(a[:1], b[:1]).item():+8.3f}   "
          f"of (3a, b) {s(3 * a[:1], b[:1]).item():+8.3f}")
print("unit vectors: ||a - b||^2 = 2 - 2 cos(a, b) and a.b = cos(a, b), on 1,000 random pairs")

# %% [markdown]
# Does the choice matter? Measure it where no training can hide it: kNN classification on the raw
# pixels, each of 2,000 test images taking a majority vote of its 20 most similar training images,
# with each measure.

# %%
def knn_vote(bank, bank_y, queries, similarity, k=20):
    """Majority vote of the k bank items most similar to each query; similarity(q, bank) -> (B, N)."""
    preds, nearest = [], []
    for q in queries.split(1000):
        idx = similarity(q, bank).topk(k, dim=1).indices             # (B, k)
        preds.append(torch.mode(bank_y[idx], dim=1).values)
        nearest.append(idx)
    return torch.cat(preds), torch.cat(nearest)


SIMILARITIES = {
    "dot product": lambda q, b: q @ b.T,
    "cosine": lambda q, b: F.normalize(q, dim=1) @ F.normalize(b, dim=1).T,
    "-Euclidean": lambda q, b: -torch.cdist(q, b),
    "-Euclidean, unit vectors": lambda q, b: -torch.cdist(F.normalize(q, dim=1), F.normalize(b, dim=1)),
}
x_bank, x_query, y_query = train.x.flatten(1), test.x[:2000].flatten(1), test.y[:2000]
votes = {name: knn_vote(x_bank, train.y, x_query, s) for name, s in SIMILARITIES.items()}
pixel_hits = {name: (pred == y_query).float() for name, (pred, _) in votes.items()}
norm = x_bank.norm(dim=1)
for name, hits in pixel_hits.items():
    print(f"{name:26s} kNN accuracy {hits.mean():.4f}   mean ||x|| of the neighbours "
          f"{norm[votes[name][1]].mean():.1f} (bank average {norm.mean():.1f})")
cos_vs_dot = paired_difference(pixel_hits["cosine"], pixel_hits["dot product"])
cos_vs_euclid = paired_difference(pixel_hits["cosine"], pixel_hits["-Euclidean"])
same_votes = (votes["cosine"][0] == votes["-Euclidean, unit vectors"][0]).float().mean().item()
print(f"cosine - dot product: {cos_vs_dot.points()} points; cosine - Euclidean: {cos_vs_euclid.points()}; "
      f"cosine and unit-vector Euclidean agree on {same_votes:.2%} of the votes")
ink = {name: norm[votes[name][1]].mean().item() for name in ("dot product", "cosine")}
display(Markdown(
    f"The dot product's neighbours have a mean norm of {ink['dot product']:.1f}, the cosine's "
    f"{ink['cosine']:.1f}, the bank's average is {norm.mean():.1f}: "
    + ("the dot product prefers the images with the most ink."
       if ink["dot product"] > max(ink["cosine"], norm.mean().item()) else
       "here the dot product does not prefer long vectors.")))

# %%
# NBVAL_CHECK_OUTPUT
print("kNN on pixels:", cos_vs_dot.verdict("cosine", "the dot product"))
print("cosine and Euclidean distance on unit vectors give the same votes:", same_votes > 0.99)
assert cos_vs_dot.low > 0, "the dot product should lose: its neighbours are the images with the most ink"
assert same_votes > 0.99, "on the unit sphere, nearest in Euclidean distance = most similar in cosine"

# %% [markdown]
# Why: $a^\top b = \lVert a\rVert \lVert b\rVert \cos(a, b)$, and for a fixed query the
# $\lVert b\rVert$ factor ranks the bank by its amount of ink. The cosine removes it. A loss on
# unnormalised dot products can likewise lower itself by growing lengths rather than by moving
# directions. SimCLR's Table 5 (Chen et al., 2020) measures it in training: NT-Xent on the cosine
# with a tuned temperature gives a better linear evaluation than on unnormalised dot products,
# whose pretext-task accuracy is higher but whose representation is worse. That is why every loss
# in this course normalises.
#
# ## The family, one line of development
# Notation: an anchor $a$, a positive $p$ (belongs with $a$), negatives $n$; $d(\cdot,\cdot)$ the
# Euclidean distance, $s(\cdot,\cdot)$ the cosine; $m$ a margin, $\tau$ a temperature.
#
# 1. **Contrastive pair loss** (Hadsell, Chopra & LeCun, CVPR 2006). A pair $(x_1, x_2)$ with a
#    flag $y$ (1 = similar): $\;y\, d^2 + (1-y) \max(0, m - d)^2$. Similar pairs are pulled together,
#    dissimilar ones pushed apart until they are $m$ away, and then left alone.
# 2. **Triplet loss** (Schroff, Kalenichenko & Philbin, FaceNet, CVPR 2015):
#    $\max\big(0,\; d(a,p) - d(a,n) + m\big)$. It asks only for an *order*: the negative farther than
#    the positive by $m$. Most triplets soon satisfy it and give no gradient, so *which* triplets
#    are used, the **mining**, decides what is learned. FaceNet picks for each anchor-positive pair
#    a **semi-hard** negative: the nearest one that is still farther than the positive (inside the
#    margin, where there is one). The **hardest**
#    negative (batch-hard, Hermans et al., 2017: the farthest positive and the nearest negative of
#    each anchor) is the most informative, and FaceNet reports that it "can in practice lead to bad
#    local minima early on in training, specifically it can result in a collapsed model".
# 3. **N-pair loss** (Sohn, NeurIPS 2016): one positive against all $N-1$ other items of the
#    batch at once, a softmax:
#    $\;\log\big(1 + \sum_{j \ne i} \exp(a_i^\top p_j - a_i^\top p_i)\big)$, the cross-entropy of
#    the logits $a_i^\top p_j$ with label $i$. That is **InfoNCE** at $\tau = 1$ on unnormalised dot
#    products; InfoNCE (notebook 01) adds the normalisation (cosine) and the temperature:
#    $\text{InfoNCE}_\tau(q, k) = \text{N-pair}\big(\bar q/\sqrt\tau,\ \bar k/\sqrt\tau\big)$ with
#    $\bar q = q / \lVert q\rVert$ (exercise 1).
# 4. **Supervised contrastive loss, SupCon** (Khosla et al., NeurIPS 2020). Every view $i$ of the
#    batch is an anchor; its positives $P(i)$ are *all* other views with the same label:
#    $\;\ell_i = -\frac{1}{|P(i)|}\sum_{p \in P(i)} \log \frac{\exp(s_{ip}/\tau)}{\sum_{k \ne i}
#    \exp(s_{ik}/\tau)}$. With two views and a label per image (every image its own class) it is
#    SimCLR's NT-Xent. The only difference between self-supervised and supervised contrastive
#    learning is who decides the positives: the augmentations or the labels.
#
# **Temperature and margin** are two ways to say "how much closer". On unit vectors the triplet
# loss on squared distances is $\max(0,\; 2(s_{an} - s_{ap}) + m)$: a hard hinge on the cosine gap.
# InfoNCE's $\tau\,\ell = \tau \log \sum_j \exp((s_j - s_p)/\tau)$ is a *soft* maximum of the
# gaps over all candidates (the positive included): no margin, and $\tau$ sets how many negatives
# share the gradient. As $\tau \to 0$ it becomes $\max(0, \max_n s_n - s_p)$, the hinge on the
# hardest negative (exercise 2).
#
# ## Derive: three of the losses, inline
# The contrastive pair loss, the triplet loss with batch-hard mining and SupCon, each in a few
# lines, checked against `cl_teach.losses` (whose tests compare them with PyTorch's
# `TripletMarginLoss`, pytorch-metric-learning and the SupCon authors' code).

# %%
def pair_loss_inline(x1, x2, same, margin):
    """Hadsell et al. (2006), without their 1/2: y d^2 + (1 - y) max(0, m - d)^2, averaged."""
    # BEGIN SOLUTION
    d = (x1 - x2).norm(dim=1)                                        # (N,) distance of each pair
    return torch.where(same, d.pow(2), F.relu(margin - d).pow(2)).mean()
    # END SOLUTION


def batch_hard_inline(z, y, margin):
    """Batch-hard triplets: each anchor with its farthest positive and its nearest negative."""
    # BEGIN SOLUTION
    d = torch.cdist(z, z)                                            # (N, N) Euclidean distances
    same = y[:, None] == y[None]                                     # (N, N), the diagonal included
    d_ap = d.masked_fill(~same, float("-inf")).amax(dim=1)           # (N,) farthest positive
    d_an = d.masked_fill(same, float("inf")).amin(dim=1)             # (N,) nearest negative
    return F.relu(d_ap - d_an + margin).mean()
    # END SOLUTION


def supcon_inline(z, y, tau):
    """SupCon's L_out over the views z (V N, D) with labels y (V N,): all same-label views are positives."""
    # BEGIN SOLUTION
    z = F.normalize(z, dim=1)
    self_ = torch.eye(len(y), dtype=torch.bool)
    logits = (z @ z.T / tau).masked_fill(self_, float("-inf"))      # (VN, VN); a view is not a candidate
    log_prob = logits.log_softmax(dim=1)                             # log p(k | i) over k != i
    positive = (y[:, None] == y[None]) & ~self_                      # P(i)
    return -(log_prob.masked_fill(~positive, 0).sum(1) / positive.sum(1)).mean()
    # END SOLUTION


# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(SEED + 5)
z1, z2 = torch.randn(2, 24, 8, generator=g)                          # two views of 24 items, (24, 8)
y = torch.arange(24) % 5                                              # 5 classes, each repeated
same = y == y.roll(3)
assert torch.allclose(pair_loss_inline(z1, z2, same, 1.5), contrastive_pair_loss(z1, z2, same, 1.5),
                      atol=1e-5)
zz, yy = torch.cat([z1, z2]), torch.cat([y, y])                       # (48, 8), (48,): view-major
assert torch.allclose(batch_hard_inline(zz, yy, 0.2), batch_triplet_loss(zz, yy, 0.2, mining="hard"),
                      atol=1e-4)
assert torch.allclose(supcon_inline(zz, yy, 0.1), supcon_loss(torch.stack([z1, z2], 1), y, 0.1), atol=1e-5)
distinct = torch.arange(24)                                           # every item its own class
assert torch.allclose(supcon_inline(zz, torch.cat([distinct, distinct]), 0.5),
                      supcon_loss(torch.stack([z1, z2], 1), distinct, 0.5), atol=1e-5)
print("inline pair loss, batch-hard triplet loss and SupCon equal cl_teach.losses")

# %% [markdown]
# ## Experiment: the same encoder, trained six ways
# One budget for all: the small CNN $f$ of the course (23k parameters) with the same projector $g$
# (256 → 256 → 64), 300 steps of the same batches (64 images, two augmented views each, with their
# labels), AdamW at the same learning rate. Only the loss differs:
#
# - **SimCLR** (NT-Xent, $\tau = 0.1$): the self-supervised reference; it ignores the labels.
# - **contrastive pairs**: each of the 128 views in one similar pair (a random view with its label)
#   and one dissimilar pair (a random view with another label); margin 1 on unit vectors.
# - **triplet, random**: each view an anchor, with a random positive (same label) and a random
#   negative; margin 0.2 on unit vectors (FaceNet's).
# - **triplet, semi-hard**: every anchor-positive pair with FaceNet's semi-hard negative.
# - **triplet, batch-hard**: each anchor with its farthest positive and nearest negative.
# - **SupCon** ($\tau = 0.1$, the paper's): every same-label view a positive.
#
# The method is a small subclass of the kit's `Method` protocol: $f$, $g$ and a loss of the two
# views' $z$ and the labels; `fit` trains it exactly as it trains SimCLR. The live plot shows the
# loss and the collapse monitor of notebook 03 (the std of the normalised $z$, about
# $1/\sqrt{64} = 0.125$ when spread out, 0 when collapsed).

# %%
class MetricLearning(Method):
    """h = f(x), z = g(h), and a loss of the two views' z and the labels: the labels decide the positives."""

    def __init__(self, encoder, loss, projection_dim=64, hidden_dim=256):
        super().__init__(encoder)
        self.projector = projector(encoder.out_dim, hidden_dim, projection_dim)
        self.loss = loss                                             # loss(z1, z2, y) -> 0-d tensor

    def training_step(self, batch):
        x1, x2, y = batch                                            # two views of N images, (N,) labels
        z1 = self.projector(self.encoder(x1))                        # (N, P)
        z2 = self.projector(self.encoder(x2))                        # (N, P)
        return {"loss": self.loss(z1, z2, y), "z1": z1.detach(), "z2": z2.detach()}


MARGIN, TAU, STEPS, D = 0.2, 0.1, 300, 64
sampler = torch.Generator().manual_seed(SEED + 3)                    # the random triplets' draws


def views_and_labels(z1, z2, y):
    """The 2N views as one batch of unit vectors (2N, P), with their labels (2N,)."""
    return F.normalize(torch.cat([z1, z2]), dim=1), torch.cat([y, y])


def random_partners(y):
    """For each item, the index of a random positive (same label, not itself) and of a random negative."""
    same = y[:, None] == y[None]
    positive = same & ~torch.eye(len(y), dtype=torch.bool)           # the other view is always one
    p = torch.multinomial(positive.float(), 1, generator=sampler)[:, 0]
    n = torch.multinomial((~same).float(), 1, generator=sampler)[:, 0]
    return p, n


def random_triplets(z1, z2, y):
    z, yy = views_and_labels(z1, z2, y)
    p, n = random_partners(yy)
    return triplet_loss(z, z[p], z[n], MARGIN)


def random_pairs(z1, z2, y):
    """Every view in one similar pair and one dissimilar pair (Hadsell's loss, margin 1 on unit vectors)."""
    z, yy = views_and_labels(z1, z2, y)
    p, n = random_partners(yy)
    similar = torch.cat([torch.ones_like(yy), torch.zeros_like(yy)])
    return contrastive_pair_loss(torch.cat([z, z]), torch.cat([z[p], z[n]]), similar, margin=1.0)


def mined_triplets(mining):
    return lambda z1, z2, y: batch_triplet_loss(*views_and_labels(z1, z2, y), MARGIN, mining=mining)


RUNS = {"SimCLR (no labels)": lambda: SimCLR(SmallCNN(), projection_dim=D, temperature=TAU),
        "contrastive pairs": lambda: MetricLearning(SmallCNN(), random_pairs),
        "triplet, random": lambda: MetricLearning(SmallCNN(), random_triplets),
        "triplet, semi-hard": lambda: MetricLearning(SmallCNN(), mined_triplets("semi-hard")),
        "triplet, batch-hard": lambda: MetricLearning(SmallCNN(), mined_triplets("hard")),
        "SupCon": lambda: MetricLearning(SmallCNN(), lambda z1, z2, y: supcon_loss(torch.stack([z1, z2], 1),
                                                                                   y, TAU))}
runs, histories = {}, {}


def train_run(name):
    """One run per cell (a long cell can lose output under nbval): same seed, same batches."""
    cl_teach.setup(SEED, verbose=False)
    sampler.manual_seed(SEED + 3)                                    # the same draws in every run
    method = RUNS[name]()
    loader = ViewLoader(train.x, [Augment()] * 2, batch_size=64, seed=SEED + 2, y=train.y)
    histories[name] = fit(method, loader, steps=STEPS, lr=5e-3, desc=name,
                          callbacks=[CollapseMonitor(every=10),
                                     LivePlot(["loss", "feature_std"], every=100, title=name,
                                              reference={"feature_std": 1 / D ** 0.5},
                                              ylim={"feature_std": (0, 1.05 / D ** 0.5)})])
    runs[name] = method


train_run("SimCLR (no labels)")

# %%
train_run("contrastive pairs")

# %%
train_run("triplet, random")

# %%
train_run("triplet, semi-hard")

# %%
train_run("triplet, batch-hard")

# %%
train_run("SupCon")

# %% [markdown]
# ## Diagnose
# kNN on the representation $h = f(x)$ of the 5,000 test images (k = 20, cosine, the course's
# protocol; the projector is thrown away, as SimCLR and SupCon both do), against the fair baselines
# of notebooks 04-05 measured the same way: the raw pixels, and the untrained encoder with its
# BatchNorm statistics re-estimated. Every difference is paired over the same test images, with a
# 95% bootstrap interval.

# %%
def knn_hits(encoder):
    """(M,) 1.0 where the kNN vote on h = f(x) is right (k = 20, cosine: evaluation.knn_and_probe's)."""
    pred = knn_predict(embed(encoder, train.x), train.y, embed(encoder, test.x), k=20)
    return (pred == test.y).float()


cl_teach.setup(SEED, verbose=False)
base = baselines(SmallCNN, train, test)
best_name, best = best_baseline(base, on="knn")
hits = {**{name: e.knn_correct for name, e in base.items()},
        **{name: knn_hits(m.encoder) for name, m in runs.items()}}
for name, h in hits.items():
    print(f"{name:32s} kNN {h.mean():.4f}")
PAIRS = [("SupCon", best_name), ("triplet, semi-hard", best_name),           # the claims ...
         ("SupCon", "SimCLR (no labels)"), ("triplet, semi-hard", "SimCLR (no labels)"),
         ("triplet, semi-hard", "triplet, random"), ("triplet, semi-hard", "triplet, batch-hard"),
         ("SupCon", "triplet, semi-hard"), ("triplet, random", "SimCLR (no labels)"),   # ... and the rest
         ("contrastive pairs", "SimCLR (no labels)"), ("triplet, random", "contrastive pairs")]
versus = {(a_name, b_name): paired_difference(hits[a_name], hits[b_name]) for a_name, b_name in PAIRS}
for (a_name, b_name), d in versus.items():
    print(f"{a_name} - {b_name}: {d.points()} points")


# %%
def accuracy_interval(h):          # bootstrap 95% interval of one accuracy over the test images
    i = paired_difference(h, torch.zeros_like(h))
    return i.low, i.high


fig = plot_scores({name: h.mean().item() for name, h in hits.items()},
                  errors={name: accuracy_interval(h) for name, h in hits.items()},
                  xlabel="kNN accuracy on 5,000 test images (k = 20, bank 8,000), 95% intervals",
                  highlight=list(runs), xlim=(0.7, 0.9),
                  title=f"Labels as positives vs augmentations as positives, {STEPS} steps each")
display(fig)

# %% [markdown]
# The claims, each asserted only where its interval excludes 0 (and checked at seeds 0-2 and under
# the portable CPU kernels, `benchmarks/claims.py`):

# %%
# NBVAL_CHECK_OUTPUT
for a_name, b_name in list(versus)[:6]:
    print(versus[a_name, b_name].verdict(a_name, "the better baseline" if b_name == best_name else b_name))
    assert versus[a_name, b_name].low > 0, f"{a_name} should beat {b_name}"

# %% [markdown]
# Not claimed: SupCon against the semi-hard triplets, random triplets against SimCLR, and the
# contrastive pair loss against SimCLR and the random triplets. At this budget these differences
# are within the noise of 5,000 test images at some or all of seeds 0-2 (note that the per-bar
# intervals above overlap even where the *paired* difference is clear: the two models are tested on
# the same images, and most of their mistakes are shared). Printed, decided by their intervals:

# %%
for a_name, b_name in list(versus)[6:]:
    print(f"{versus[a_name, b_name].verdict(a_name, b_name)}: {versus[a_name, b_name].points()} points")

# %% [markdown]
# **Why does batch-hard mining do worst?** Look at its live plot: the std of $z$ falls to about 0
# within a few dozen steps, and the loss flattens. A triplet loss that stalls at the margin $m$ is
# the signature of a collapse: when the distances no longer depend on the images, $d(a,p) = d(a,n)$
# for every triplet and each costs $\max(0, m) = m$. That is FaceNet's "collapsed model". The
# final losses, and the effective rank of the test images' $z$ (notebook 03: 1 for a single point,
# up to 64):

# %%
@torch.no_grad()
def z_of(method, x=test.x[:2000]):
    """z = g(f(x)) of held-out images, eval mode."""
    return embed(torch.nn.Sequential(method.encoder, method.projector), x)


rank = {name: effective_rank(z_of(m)).item() for name, m in runs.items()}
for name, r in rank.items():
    print(f"{name:22s} final training loss {histories[name].last('loss'):.3f}   "
          f"effective rank of test z {r:.1f}")
others = min(r for name, r in rank.items() if name != "triplet, batch-hard")
h_hard, h_untrained = hits["triplet, batch-hard"].mean().item(), hits[UNTRAINED].mean().item()
display(Markdown(
    f"The batch-hard run ends at a training loss of {histories['triplet, batch-hard'].last('loss'):.3f} "
    f"(the margin is {MARGIN}) and an effective rank of {rank['triplet, batch-hard']:.1f}, against "
    f"{others:.1f} or more for the other five runs: its $z$ has "
    + ("collapsed onto very few directions" if rank["triplet, batch-hard"] < others / 2
       else "not collapsed as far as this measure can tell")
    + f". Its $h = f(x)$ reaches kNN {h_hard:.3f}, "
    + ("a little above" if h_hard > h_untrained else "no better than")
    + f" the untrained encoder's {h_untrained:.3f}: what the encoder learned before the head collapsed. "
    "Semi-hard negatives are FaceNet's remedy: hard enough to teach, never nearer than the positive."))


# %%
# NBVAL_CHECK_OUTPUT
RANK_RATIO = 2.0              # the batch-hard z's rank is at least this many times below every other run's
collapsed = rank["triplet, batch-hard"] * RANK_RATIO < others
print("batch-hard triplets: z collapsed (effective rank < half of every other run's):", collapsed)
assert collapsed, "batch-hard mining should collapse z at this budget (FaceNet's observation)"

# %% [markdown]
# ## Explore
# Between the dot product and the cosine there is a dial. For one query the ranking by
# $q^\top b / \lVert b\rVert^p$ is the dot product's at $p = 0$ and the cosine's at $p = 1$ (the
# query's own length is a constant); in between, long bank vectors (much ink) are favoured less,
# beyond 1 they are penalised. `cl_teach.widgets.LengthPowerKNN` computes the 2,000 x 8,000 dot
# products of the pixel experiment above once, and each power is then a division and a top-k.
# First, its two ends are the notebook's `knn_vote` with the dot product and with the cosine:

# %%
# NBVAL_CHECK_OUTPUT
from cl_teach.widgets import LengthPowerKNN

knn_p = LengthPowerKNN(x_bank, train.y, x_query, y_query)
for power, name in ((0.0, "dot product"), (1.0, "cosine")):
    st = knn_p.stats(power, k=20)
    agree = (st["hits"] == pixel_hits[name]).float().mean().item()
    assert agree > 0.99, (name, agree)                         # ties may be broken in another order
print("p = 0 and p = 1 give knn_vote's dot-product and cosine votes on > 99% of the queries")
curve = {p: knn_p.stats(p, k=20) for p in (0.0, 0.5, 1.0, 2.0)}
rises_then_falls = (curve[0.5]["vs_dot"].low > 0
                    and paired_difference(curve[1.0]["hits"], curve[0.5]["hits"]).low > 0
                    and paired_difference(curve[1.0]["hits"], curve[2.0]["hits"]).low > 0)
print("kNN accuracy rises from p = 0 to 0.5 to 1, then falls by p = 2 (paired intervals exclude 0):",
      rises_then_falls)
assert rises_then_falls, {p: st["vs_dot"] for p, st in curve.items()}

# %% [markdown]
# Move **p** from 0 to 1: accuracy climbs while the neighbours' mean length (right) falls towards
# the bank's; past 1 the measure starts preferring faint images, and accuracy falls again. The
# cosine is the power that neither rewards nor punishes ink. Change **k** too: does the best
# power move?

# %%
# NBVAL_IGNORE_OUTPUT
from cl_teach.widgets import similarity_explorer

similarity_explorer(knn_p)

# %% [markdown]
# ## Exercises
# 1. **N-pair is InfoNCE before the sphere.** Write `info_nce_from_n_pair(q, k, tau)`: InfoNCE as
#    `n_pair_loss` applied to rescaled inputs (hint: the logits of InfoNCE are $\bar q^\top \bar k / \tau$,
#    those of N-pair $a^\top p$). The check compares it with `info_nce`, and shows that on
#    unnormalised inputs, even at $\tau = 1$, the two losses differ.

# %%
def info_nce_from_n_pair(q, k, tau):
    # BEGIN SOLUTION
    s = tau ** 0.5
    return n_pair_loss(F.normalize(q, dim=1) / s, F.normalize(k, dim=1) / s)
    # END SOLUTION


g = torch.Generator().manual_seed(SEED + 6)
q, k = 3 * torch.randn(16, 32, generator=g), torch.randn(16, 32, generator=g)     # unnormalised
for tau in (1.0, 0.1, 0.02):
    assert torch.allclose(info_nce_from_n_pair(q, k, tau), info_nce(q, k, tau), atol=1e-4), tau
print(f"InfoNCE = N-pair on (q/|q|, k/|k|)/sqrt(tau) at tau = 1, 0.1, 0.02; on the raw vectors at tau = 1: "
      f"n_pair_loss {n_pair_loss(q, k).item():.3f} vs info_nce {info_nce(q, k, 1.0).item():.3f}")

# %% [markdown]
# 2. **A low temperature is hard-negative mining.** Write `hardest_hinge(q, k)`: for each query,
#    $\max(0, \max_{n} s(q, k_n) - s(q, k^+))$ over its negatives (the other keys), averaged; the
#    cosine $s$. Then show that $\tau \cdot \text{InfoNCE}_\tau$ approaches it as $\tau \to 0$
#    (the check prints the gap).

# %%
def hardest_hinge(q, k):
    # BEGIN SOLUTION
    s = F.normalize(q, dim=1) @ F.normalize(k, dim=1).T                  # (N, N), positives on the diagonal
    hardest = s.masked_fill(torch.eye(len(s), dtype=torch.bool), float("-inf")).amax(dim=1)
    return F.relu(hardest - s.diagonal()).mean()
    # END SOLUTION


close = torch.randn(16, 32, generator=g)
k_near = close + 2.0 * torch.randn(16, 32, generator=g)       # noisy positives: some negatives are nearer
hinge = hardest_hinge(close, k_near).item()
gaps = {tau: abs(tau * info_nce(close, k_near, tau).item() - hinge) for tau in (1.0, 0.1, 0.01, 0.001)}
print(f"hardest-negative hinge {hinge:.4f}")
for tau, gap in gaps.items():
    print(f"tau = {tau:<6}: |tau * InfoNCE - hardest-negative hinge| = {gap:.4f}")
assert gaps[0.001] < 0.01 and gaps[0.001] < gaps[1.0]

# %% [markdown]
# 3. **Which triplets still teach?** Write `active_share(z, y, margin)`: the share of *all* valid
#    triplets $(a, p, n)$ of a batch whose loss $d(a,p) - d(a,n) + m$ is positive (the others give
#    no gradient). Compute it on the unit-normalised $z$ of 160 test images for the random-triplet
#    and semi-hard runs, at margins 0.05 to 0.8. A random triplet is active with this probability,
#    and the hardest triplet of an anchor is active whenever any of its triplets is: this is why
#    mining matters, and why a larger margin keeps more triplets active. (The check asserts that
#    at the training margin, 0.2, fewer than half the triplets are active.)

# %%
def active_share(z, y, margin):
    # BEGIN SOLUTION
    d = torch.cdist(z, z)                                                 # (N, N)
    same = y[:, None] == y[None]
    positive = same & ~torch.eye(len(y), dtype=torch.bool)
    valid = positive[:, :, None] & ~same[:, None, :]                      # (a, p, n)
    active = (d[:, :, None] - d[:, None, :] + margin) > 0
    return (active & valid).sum().item() / valid.sum().item()
    # END SOLUTION


x_few, y_few = test.x[:160], test.y[:160]
margins = (0.05, 0.1, 0.2, 0.4, 0.8)
for name in ("triplet, random", "triplet, semi-hard"):
    z = F.normalize(z_of(runs[name], x_few), dim=1)
    shares = [active_share(z, y_few, m) for m in margins]
    print(f"{name:20s} active share at margins {margins}: " + ", ".join(f"{s:.3f}" for s in shares))
    assert all(s1 <= s2 for s1, s2 in zip(shares, shares[1:])), "a larger margin keeps more triplets active"
    assert shares[margins.index(MARGIN)] < 0.5, "at the training margin most random triplets teach nothing"

# %% [markdown]
# 4. **Why not always the hardest?** In two or three sentences: why can batch-hard mining collapse
#    the embedding early in training, while semi-hard mining does not?
#
# <!-- BEGIN SOLUTION -->
# Early on the embedding is nearly random, so an anchor's *nearest* negative is often nearer than
# its *farthest* positive, and mislabelled or ambiguous images make the hardest triplets the noisiest
# ones. The cheapest way for the network to stop paying for triplets it cannot order is to make all
# distances equal: then every triplet costs exactly $m$, a flat, stable point, the collapse measured
# above. A semi-hard negative is by definition farther than the positive, so the loss never asks for
# an order the network cannot yet produce; it only asks to widen an order that already exists.
# <!-- END SOLUTION -->
#
# ## Summary
# - Contrastive learning is metric learning whose positives come from augmentations instead of
#   labels. The family in one line: pairs with a margin (2006), triplets with a margin and mining
#   (2015), N-pairs (2016) = InfoNCE without normalisation and temperature, SupCon (2020) =
#   NT-Xent with the labels deciding the positives.
# - The cosine ignores lengths; the dot product does not, and on raw pixels its neighbours are
#   the images with the most ink (measured above). On unit vectors $\lVert a-b\rVert^2 = 2 - 2\cos$: a margin
#   on squared distance is a margin on the cosine. The temperature is a soft version of the
#   margin and of the mining: as $\tau \to 0$, InfoNCE becomes the hinge on the hardest negative.
# - With labels, the same encoder, loop and budget give a better kNN than SimCLR and than both
#   baselines (SupCon and semi-hard triplets; the numbers and intervals are above). Most random
#   triplets give no gradient once training is under way (exercise 3), batch-hard triplets
#   collapse $z$; semi-hard triplets beat both.
#
# **References:**
# Hadsell, Chopra & LeCun, *Dimensionality Reduction by Learning an Invariant Mapping*, CVPR 2006
# (the contrastive pair loss with a margin on dissimilar pairs) ·
# Schroff, Kalenichenko & Philbin, *FaceNet: A Unified Embedding for Face Recognition and
# Clustering*, CVPR 2015 (the triplet loss on unit-normalised embeddings, margin 0.2, online
# semi-hard mining; the hardest negatives "can result in a collapsed model") ·
# Hermans, Beyer & Leibe, *In Defense of the Triplet Loss for Person Re-Identification*,
# arXiv:1703.07737, 2017 (batch-hard mining) ·
# Sohn, *Improved Deep Metric Learning with Multi-class N-pair Loss Objective*, NeurIPS 2016 (one
# positive against all other classes of the batch in one softmax) ·
# van den Oord, Li & Vinyals, *Representation Learning with Contrastive Predictive Coding*, 2018
# (InfoNCE) ·
# Chen et al., *A Simple Framework for Contrastive Learning of Visual Representations* (SimCLR),
# ICML 2020 (NT-Xent; Table 5: the cosine with a temperature against unnormalised dot products) ·
# Khosla et al., *Supervised Contrastive Learning*, NeurIPS 2020 (SupCon's $\mathcal L_{out}$,
# $\tau = 0.1$; the encoder, not the projection, is evaluated).

# %%
# NBVAL_IGNORE_OUTPUT
print(f"notebook wall time: {time.perf_counter() - t_start:.0f} s (CPU time of this kernel: "
      f"{time.process_time():.0f} s; the two differ when other programs share the cores)")
