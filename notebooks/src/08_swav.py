# %% [markdown]
# # 08 SwAV: clustering views with balanced codes
#
# **Learning goals**
# 1. Assign embeddings to K learnable prototypes with the Sinkhorn-Knopp algorithm, and see why
#    the equipartition constraint stops everyone from landing in one cluster.
# 2. Write SwAV's *swapped prediction*: the code of one view is predicted from the other view.
# 3. Train with multi-crop (two full views plus small local crops) and check that the
#    prototypes end up used and meaningful.
#
# **Prerequisites:** 01 (InfoNCE), 03 (collapse), 05 (SimCLR).
#
# **Time budget:** about 1.5 minutes on a 2-core laptop CPU (one thread), measured in the closing note.

# %%
import time

import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from matplotlib.figure import Figure
from sklearn.cluster import KMeans
from torch import nn

import cl_teach
from cl_teach.augment import Augment, multi_crop
from cl_teach.data import ViewLoader, fashion_mnist_subsets
from cl_teach.evaluation import baselines, best_baseline, knn_and_probe
from cl_teach.losses import sinkhorn, swav_loss
from cl_teach.methods import SwAV
from cl_teach.metrics import recalibrate_batchnorm, seed_interval
from cl_teach.models import SmallCNN, evaluating
from cl_teach.plotting import LivePlot, show_images
from cl_teach.train import CollapseMonitor, fit

SEED = cl_teach.notebook_seed()
device = cl_teach.setup(SEED)
t_start = time.perf_counter()

# %% [markdown]
# ## Data
# Real Fashion-MNIST, read offline (the loader announces loudly if it falls back to scikit-learn's
# digits). We train on 12,000 training images and evaluate on 5,000 held-out test images.

# %%
train, test = fashion_mnist_subsets(12_000, 5_000, seed=SEED)
print(train, "\n", test)


# %% [markdown]
# ## Intuition and math
# DeepCluster alternates k-means over the whole data set with training to predict the cluster
# ids. SwAV (Caron et al., 2020) assigns images to clusters *online*, batch by batch, but it is
# not online k-means: the assignment step is a **balanced optimal-transport** problem (every
# cluster must receive the same mass), solved approximately by Sinkhorn-Knopp, and the cluster
# centres (prototypes) are not means of their members but parameters learned by SGD through the
# loss, like any other weight. Each image's
# normalised projection z is scored against K normalised prototypes C (rows of a linear layer):
# $s = z C^\top$, shape (N, K). Its **code** q is a soft assignment to the prototypes, found by
# solving an entropy-regularised transport problem over the batch:
#
# $$\max_{Q} \operatorname{Tr}(Q^\top S) + \varepsilon H(Q)\quad \text{s.t. every image has mass } \tfrac1N,
# \text{ every prototype receives mass } \tfrac1K.$$
#
# The constraint (*equipartition*) is what prevents collapse: the trivial solution "everyone in
# one cluster" is not allowed. The solution is
# $Q = \operatorname{diag}(u)\exp(S/\varepsilon)\operatorname{diag}(v)$, found by alternately
# rescaling columns and rows (**Sinkhorn-Knopp**, 3 rounds suffice).
#
# **Swapped prediction:** with $p_t = \operatorname{softmax}(s_t/\tau)$, the loss for two views
# s and t is $\ell(t, q_s) + \ell(s, q_t)$ with $\ell(t, q_s) = -\sum_k q_{s,k} \log p_{t,k}$:
# each view predicts the *other* view's code.
#
# ## Derive: Sinkhorn-Knopp and the swapped loss, inline

# %%
@torch.no_grad()
def sinkhorn_inline(S, n_iters=3, eps=0.05):
    Q = torch.exp(S / eps).T                       # (K, N), the authors' layout
    K, N = Q.shape
    Q /= Q.sum()                                   # total mass 1
    for _ in range(n_iters):
        Q /= Q.sum(dim=1, keepdim=True); Q /= K    # each prototype gets 1/K
        Q /= Q.sum(dim=0, keepdim=True); Q /= N    # each image has 1/N
    return (Q * N).T                               # (N, K), rows sum to 1


def swapped_loss_inline(s1, s2, tau=0.1):
    q1, q2 = sinkhorn_inline(s1), sinkhorn_inline(s2)                 # codes: no gradient
    l12 = -(q1 * F.log_softmax(s2 / tau, dim=1)).sum(dim=1).mean()   # view 2 predicts q1
    l21 = -(q2 * F.log_softmax(s1 / tau, dim=1)).sum(dim=1).mean()   # view 1 predicts q2
    return (l12 + l21) / 2


g = torch.Generator().manual_seed(SEED)
z1, z2 = (F.normalize(torch.randn(64, 16, generator=g), dim=1),
          F.normalize(torch.randn(64, 16, generator=g), dim=1))
C = F.normalize(torch.randn(10, 16, generator=g), dim=1)              # 10 prototypes
s1, s2 = z1 @ C.T, z2 @ C.T                                            # scores: (N, K)
assert torch.allclose(sinkhorn_inline(s1), sinkhorn(s1), atol=1e-5)
assert torch.allclose(swapped_loss_inline(s1, s2), swav_loss([s1, s2]), atol=1e-5)
print(f"inline swapped loss {swapped_loss_inline(s1, s2).item():.4f} = swav_loss([s1, s2])")

# %% [markdown]
# The package's `sinkhorn` does the same in the log domain (log-sum-exp), so it stays finite
# when the scores are large compared with epsilon, where `exp(S / eps)` overflows:

# %%
big = s1 * 100
print("codes all finite? inline with exp(S/eps):", torch.isfinite(sinkhorn_inline(big)).all().item(),
      "| package, log domain:", torch.isfinite(sinkhorn(big)).all().item())
assert torch.isfinite(sinkhorn(big)).all()

# %% [markdown]
# ## Sinkhorn codes are balanced
# Take the *untrained* SwAV model on 512 real images. One trap first (notebook 04): in eval mode
# an untrained net normalises with its *initial* BN statistics (mean 0, variance 1), which do not
# match its activations, and its embeddings look nearly collapsed; every image would then pick
# the same prototype for a reason that has nothing to do with clustering. So we re-estimate the
# BN statistics of f and g on training images first. Assigning each image to its best prototype
# (argmax, what a naive online clustering would do) still spreads the images unevenly; the
# Sinkhorn codes spread them evenly: every prototype receives about N / K.

# %%
cl_teach.setup(SEED, verbose=False)
K = 30
swav = SwAV(SmallCNN(), n_prototypes=K)
recalibrate_batchnorm(nn.Sequential(swav.encoder, swav.projector), train.x[:2048])   # f and g
with torch.no_grad(), evaluating(swav):
    scores = swav.scores(train.x[:512])                                # (512, K)
argmax_mass = torch.bincount(scores.argmax(1), minlength=K).float()
code_mass = sinkhorn(scores).sum(0)
fig = Figure(figsize=(9, 2.8), layout="constrained")
ax = fig.subplots()
ax.bar(torch.arange(K).numpy() - 0.2, argmax_mass.clamp(min=0.5).numpy(), width=0.4,
       label="argmax of the scores (0 shown as 0.5)")
ax.bar(torch.arange(K).numpy() + 0.2, code_mass.numpy(), width=0.4, label="Sinkhorn codes (3 iterations)")
ax.axhline(512 / K, color="k", ls="--", lw=1, label="N / K")
ax.set_yscale("log")
ax.set_xlabel("prototype"); ax.set_ylabel("images assigned (mass, log scale)"); ax.legend(fontsize=8)
ax.set_title("untrained model (BN re-estimated), 512 images: equipartition spreads the assignments")
display(fig)
print(f"largest prototype share: argmax {argmax_mass.max().item() / 512:.3f}, "
      f"Sinkhorn {code_mass.max().item() / 512:.3f} (uniform: {1 / K:.3f}); "
      f"prototypes never the argmax: {int((argmax_mass == 0).sum())} of {K}")

# %%
# NBVAL_CHECK_OUTPUT
balanced = bool(code_mass.max() < 1.5 * 512 / K and code_mass.min() > 0.5 * 512 / K)
print("Sinkhorn masses within [0.5, 1.5] x N / K:", balanced,
      "| argmax's largest share over twice Sinkhorn's:", bool(argmax_mass.max() > 2 * code_mass.max()))
assert balanced
assert argmax_mass.max() > 2 * code_mass.max()

# %% [markdown]
# ## Explore: epsilon and the number of Sinkhorn iterations
# Move the sliders: a smaller epsilon gives harder (more one-hot) codes, and each rescaling round
# brings the prototype masses closer to N / K. With 0 rounds the codes are exp(S / epsilon)
# normalised over the *whole* batch (one softmax over all N x K entries, rescaled so that the
# total mass is N): the rows no longer sum to 1, and the prototype masses are as lopsided as the
# scores make them.

# %%
# NBVAL_IGNORE_OUTPUT
from cl_teach.widgets import sinkhorn_explorer

sinkhorn_explorer(scores)         # the untrained model's 512 x 30 scores from above (BN re-estimated)

# %% [markdown]
# ## Multi-crop
# Besides two full-size views, SwAV adds several small, low-resolution crops of each image.
# They are cheap (14x14 pixels cost a quarter of 28x28) and must predict the codes of the
# full views: a local-to-global correspondence. Codes are computed on the full views only.

# %%
global_views, local_views = Augment(), Augment(crop_scale=(0.2, 0.5), size=14)
crops = multi_crop(train.x[:6], global_views, 2, local_views, 2,
                   generator=torch.Generator().manual_seed(SEED))
grid = torch.cat([crops[0], crops[1], F.interpolate(crops[2], size=28), F.interpolate(crops[3], size=28)])
display(show_images(grid, nrow=6,
                    title="rows: global view 1, global view 2, local crop 1, local crop 2 (14x14, upscaled)"))

# %% [markdown]
# ## Experiment: train SwAV
# 30 prototypes (a few per class), batch 256, two 28x28 views plus two 14x14 crops, 300 steps.
# We log how many prototypes are the best match of at least one image in each batch (a loose
# monitor: with 512 global views per batch it saturates quickly; the test below is stricter).

# %%
cl_teach.setup(SEED, verbose=False)
swav = SwAV(SmallCNN(), n_prototypes=K)
loader = ViewLoader(train.x, [global_views] * 2 + [local_views] * 2, batch_size=256, seed=SEED)
history = fit(swav, loader, steps=300, lr=5e-3,
              callbacks=[CollapseMonitor(every=25),
                         LivePlot(["loss", "prototypes_used", "feature_std"], every=50, title="SwAV")])

# %% [markdown]
# ## Diagnose: accuracy, and are the prototypes used?
# Accuracy first, against the fair baselines (raw pixels; the untrained encoder with BN
# re-estimated), by kNN and the linear probe on the same test images.

# %%
cl_teach.setup(SEED, verbose=False)
base = baselines(SmallCNN, train, test)
results = {**base, "SwAV": knn_and_probe(swav.encoder, train, test)}
for name, (knn, probe) in results.items():
    print(f"{name:30s} kNN {knn:.3f}   linear probe {probe:.3f}")
d_base = {}
for on in ("knn", "probe"):
    best_name, best = best_baseline(base, on=on)
    d_base[on] = (best_name, results["SwAV"].compare(best, on=on))
    print(f"SwAV - best baseline ({best_name}), {on}: {d_base[on][1].points()} points")

# %% [markdown]
# How evenly are the prototypes used on the test images? Counting the prototypes chosen by at
# least one of 5,000 images is too loose (one image each would pass). The **perplexity** of the
# usage distribution, exp(entropy), is the number of equally used prototypes it is worth: K when
# every prototype gets the same share, 1 when one takes all.

# %%
with torch.no_grad(), evaluating(swav):
    z_test = swav.project(test.x)                                      # (5000, P)
    sims = swav.prototypes(z_test)                                     # (5000, K)
    assign = sims.argmax(1)                                            # (5000,) hard assignments
usage = torch.bincount(assign, minlength=K).float() / len(test.x)      # share of each prototype
perplexity = torch.exp(-(usage[usage > 0] * usage[usage > 0].log()).sum()).item()
print(f"usage perplexity {perplexity:.1f} of K = {K}; largest share {usage.max():.3f} (uniform {1 / K:.3f})")

# %%
# NBVAL_CHECK_OUTPUT
print(d_base["knn"][1].verdict("SwAV", d_base["knn"][0]), "(kNN)")
print(d_base["probe"][1].verdict("SwAV", d_base["probe"][0]), "(linear probe)")
print("usage perplexity >= 0.7 K:", perplexity >= 0.7 * K)
assert d_base["probe"][1].low > 0, "SwAV's features should beat the best baseline under the linear probe"
assert perplexity >= 0.7 * K, "the prototypes should end up used evenly"

# %% [markdown]
# Are the prototypes meaningful? The **purity** of a clustering is the share of images whose
# cluster's most common class is their own class. Chance (one cluster) would give the largest
# class share, but that is the wrong yardstick: **k-means with the same K** on raw pixels, or on
# the untrained model's z, also finds clusters without any training. We compare with both, over
# three k-means seeds.

# %%
def purity(labels, clusters):
    """Share of items whose cluster's majority class is their class."""
    return sum(torch.bincount(labels[clusters == c], minlength=10).max().item()
               for c in clusters.unique()) / len(labels)


cl_teach.setup(SEED, verbose=False)
untrained = SwAV(SmallCNN(), n_prototypes=K)
recalibrate_batchnorm(nn.Sequential(untrained.encoder, untrained.projector), train.x)
with torch.no_grad(), evaluating(untrained):
    z_untrained = untrained.project(test.x)
features = {"raw pixels": test.x.flatten(1), "untrained z (BN re-estimated)": z_untrained,
            "SwAV z": z_test}
kmeans = {name: [purity(test.y, torch.from_numpy(KMeans(K, n_init=1, random_state=SEED + r)
                                                    .fit_predict(f.numpy().astype(np.float64))))
                 for r in range(3)]
          for name, f in features.items()}
swav_purity = purity(test.y, assign)
print(f"SwAV prototypes (argmax):        purity {swav_purity:.3f}")
for name, p in kmeans.items():
    print(f"k-means K={K} on {name:29s} purity {np.mean(p):.3f} +- {np.std(p, ddof=1):.3f} (3 seeds)")
gap = {name: seed_interval([swav_purity - v for v in p]) for name, p in kmeans.items()}
for name, d in gap.items():
    print(f"SwAV prototypes - k-means on {name}: {d.points()} points (t-interval over k-means seeds)")

# %%
best_km = max(("raw pixels", "untrained z (BN re-estimated)"), key=lambda n: np.mean(kmeans[n]))
verdict = gap[best_km].verdict("SwAV's clustering", f"k-means on {best_km}")
display(Markdown(f"Measured in this run: **{verdict}** ({gap[best_km].points()} purity points; the "
                 "interval covers only the k-means seeds, not SwAV's own training seed, so read it "
                 "as a rough guide). k-means on *SwAV's* z gives "
                 f"{np.mean(kmeans['SwAV z']):.2f}: the trained representation clusters at least as "
                 "well as its own prototypes do. Ten clothing classes are easy to cluster in pixel "
                 "space at K = 30, so purity is a weak test of a representation; kNN and the probe "
                 "above are the stronger evidence."))

# %%
# NBVAL_CHECK_OUTPUT
print(gap["untrained z (BN re-estimated)"].verdict("SwAV's clustering", "k-means on the untrained z"),
      "(purity)")
assert gap["untrained z (BN re-estimated)"].low > 0

# %% [markdown]
# Each row below is one of the 6 most used prototypes: its 8 nearest test images, and on the
# right the class histogram of all the images assigned to it, with the cluster's purity. The
# nearest images always look pure, even for a mixed cluster: read the histogram.

# %%
top = (usage * len(test.x)).argsort(descending=True)[:6]
fig = Figure(figsize=(11, 8), layout="constrained")
grid = fig.add_gridspec(len(top), 10)
for r, k in enumerate(top.tolist()):
    members = (assign == k).nonzero().squeeze(1)
    hist = torch.bincount(test.y[members], minlength=10)
    for c, i in enumerate(sims[:, k].topk(8).indices.tolist()):
        ax = fig.add_subplot(grid[r, c]); ax.imshow(test.x[i, 0], cmap="gray"); ax.axis("off")
    ax = fig.add_subplot(grid[r, 8:])
    ax.barh(range(10), hist.numpy()); ax.invert_yaxis()
    ax.set_yticks(range(10), test.classes if r == 0 else [""] * 10, fontsize=6)
    ax.tick_params(axis="x", labelsize=6)
    ax.set_title(f"prototype {k}: {len(members)} images, purity {hist.max().item() / len(members):.2f}",
                 fontsize=8)
fig.suptitle("6 most used prototypes (rows): 8 nearest test images, class histogram of the cluster")
display(fig)

# %% [markdown]
# What do the rows show? Some prototypes hold one class (often a kind of shoe). Others mix
# classes that share a *look*: a cluster of patterned or textured tops (shirts, T-shirts,
# pullovers together), a cluster of dark garments. Those are the invariances the augmentations
# did not remove: crops, flips and colour jitter leave texture and overall darkness intact, so
# the prototypes are free to cluster by them. Which rows mix classes depends on the run; read
# the histograms above.

# %% [markdown]
# ## Exercises
# 1. **Without equipartition.** Train with `SwAV(..., n_iters=0)`: no rescaling rounds, so the
#    codes are exp(S / epsilon) normalised once over the whole batch (a single softmax over all
#    N x K entries, times N; the rows do not sum to 1). Train 100 steps and watch
#    `prototypes_used` and the usage perplexity. What happens, and why?
# 2. **No multi-crop.** Train with only the two global views for the same number of steps and
#    compare kNN and wall time.
#
# A solution for exercise 1 (set `RUN_SOLUTIONS = True` to run it, ~10 s):

# %%
RUN_SOLUTIONS = False
# BEGIN SOLUTION
if RUN_SOLUTIONS:
    cl_teach.setup(SEED, verbose=False)
    naive = SwAV(SmallCNN(), n_prototypes=K, n_iters=0)   # one global softmax: no balancing
    h = fit(naive, ViewLoader(train.x, [global_views] * 2, batch_size=256, seed=SEED), steps=100, lr=5e-3)
    print("prototypes used per batch, last steps:", h["prototypes_used"][-5:])
    # Compare with the balanced run above: without the rescaling rounds nothing stops the
    # codes from following the scores onto a few prototypes.
# END SOLUTION

# %% [markdown]
# ## Summary
# - SwAV clusters online: scores against K prototypes, codes from Sinkhorn-Knopp with an
#   equipartition constraint, and each view predicts the other view's code (swapped prediction).
# - Equipartition is the anti-collapse mechanism: the argmax of the scores spreads images
#   unevenly while the codes are balanced, and after training the usage perplexity is close
#   to K. Sinkhorn solves a balanced optimal-transport problem; the prototypes are learned by
#   SGD, so SwAV is not online k-means.
# - Compare clusters with k-means at the same K, not with chance: the printed purities above
#   say how much SwAV's prototypes add over clustering the pixels.
# - Multi-crop adds cheap local views that must predict the global views' codes.
#
# **References:** Caron et al., *Unsupervised Learning of Visual Features by Contrasting Cluster
# Assignments* (SwAV), NeurIPS 2020; Caron et al., *Deep Clustering for Unsupervised Learning of
# Visual Features* (DeepCluster), ECCV 2018; Cuturi, *Sinkhorn Distances*, NeurIPS 2013;
# facebookresearch/swav `main_swav.py`.

# %%
# NBVAL_IGNORE_OUTPUT
print(f"notebook wall time: {time.perf_counter() - t_start:.0f} s")
