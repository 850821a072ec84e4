# %% [markdown]
# # 06 SwAV: clustering views with balanced codes
#
# **Learning goals**
# 1. Assign embeddings to K learnable prototypes with the Sinkhorn-Knopp algorithm, and see why
#    the equipartition constraint stops everyone from landing in one cluster.
# 2. Write SwAV's *swapped prediction*: the code of one view is predicted from the other view.
# 3. Train with multi-crop (two full views plus small local crops) and check that the
#    prototypes end up used and meaningful.
#
# **Prerequisites:** 01 (InfoNCE), 02 (collapse), 04 (SimCLR).
#
# **Time budget:** about 1.5 minutes on a 2-core laptop CPU (one thread), measured in the closing note.

# %%
import time

import torch
import torch.nn.functional as F
from IPython.display import display
from matplotlib.figure import Figure

import cl_teach
from cl_teach.augment import Augment, multi_crop
from cl_teach.data import ViewLoader, load_fashion_mnist
from cl_teach.losses import sinkhorn, swav_loss
from cl_teach.methods import SwAV
from cl_teach.evaluation import knn_and_probe
from cl_teach.metrics import recalibrate_batchnorm
from cl_teach.models import SmallCNN
from cl_teach.plotting import LivePlot, show_images
from cl_teach.train import CollapseMonitor, fit

device = cl_teach.setup(seed=0)
t_start = time.perf_counter()

# %% [markdown]
# ## Data
# Real Fashion-MNIST, read offline (the loader announces loudly if it falls back to scikit-learn's
# digits). We train on 12,000 training images and evaluate on 5,000 held-out test images.

# %%
train = load_fashion_mnist("train")
test = load_fashion_mnist("test")
print(train, "\n", test)
train, test = train.subset(12_000, seed=0), test.subset(5_000, seed=0)


def evaluate(encoder):
    """kNN (k=20, cosine, weighted votes) and linear-probe accuracy of h = f(x) on the test split."""
    return knn_and_probe(encoder, train, test, k=20)


# %% [markdown]
# ## Intuition and math
# DeepCluster alternates k-means over the whole data set with training to predict the cluster
# ids. SwAV (Caron et al., 2020) does the clustering *online*, batch by batch. Each image's
# normalised projection z is scored against K normalised prototypes C (rows of a linear layer):
# $s = z C^\top$, shape (N, K). Its **code** q is a soft assignment to the prototypes, found by
# solving an entropy-regularised transport problem over the batch:
#
# $$\max_{Q} \operatorname{Tr}(Q^\top S) + \varepsilon H(Q)\quad \text{s.t. every image has mass } \tfrac1N,
# \text{ every prototype receives mass } \tfrac1K.$$
#
# The constraint (*equipartition*) is what prevents collapse: the trivial solution "everyone in
# one cluster" is not allowed. The solution is $Q = \operatorname{diag}(u)\exp(S/\varepsilon)\operatorname{diag}(v)$,
# found by alternately rescaling columns and rows (**Sinkhorn-Knopp**, 3 rounds suffice).
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


g = torch.Generator().manual_seed(0)
z1, z2 = F.normalize(torch.randn(64, 16, generator=g), dim=1), F.normalize(torch.randn(64, 16, generator=g), dim=1)
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
# Take the *untrained* SwAV model on 512 real images. Assigning each image to its best prototype
# (argmax, what a naive online clustering would do) piles the images onto a few prototypes;
# the Sinkhorn codes spread them evenly: every prototype receives about N / K.

# %%
cl_teach.setup(seed=0, verbose=False)
K = 30
swav = SwAV(SmallCNN(), n_prototypes=K)
with torch.no_grad():
    swav.eval()
    z = F.normalize(swav.projector(swav.encoder(train.x[:512])), dim=1)
    scores = swav.prototypes(z)                                        # (512, K)
argmax_mass = torch.bincount(scores.argmax(1), minlength=K).float()
code_mass = sinkhorn(scores).sum(0)
fig = Figure(figsize=(9, 2.8), layout="constrained")
ax = fig.subplots()
ax.bar(torch.arange(K).numpy() - 0.2, argmax_mass.numpy(), width=0.4, label="argmax of the scores")
ax.bar(torch.arange(K).numpy() + 0.2, code_mass.numpy(), width=0.4, label="Sinkhorn codes (3 iterations)")
ax.axhline(512 / K, color="k", ls="--", lw=1, label="N / K")
ax.set_xlabel("prototype"); ax.set_ylabel("images assigned (mass)"); ax.legend(fontsize=8)
ax.set_title("untrained model, 512 images: equipartition spreads the assignments")
display(fig)

# %%
# NBVAL_CHECK_OUTPUT
print(f"largest prototype share: argmax {argmax_mass.max().item() / 512:.2f}, "
      f"Sinkhorn {code_mass.max().item() / 512:.2f} (uniform: {1 / K:.3f})")
assert code_mass.max() < 1.5 * 512 / K and code_mass.min() > 0.5 * 512 / K
assert argmax_mass.max() > 2 * code_mass.max()

# %% [markdown]
# ## Explore: epsilon and the number of Sinkhorn iterations
# Move the sliders: a smaller epsilon gives harder (more one-hot) codes, and each rescaling round
# brings the prototype masses closer to N / K. With 0 rounds the codes are just
# softmax(S / epsilon) over the whole batch, as lopsided as the argmax.

# %%
# NBVAL_IGNORE_OUTPUT
from cl_teach.widgets import sinkhorn_explorer

sinkhorn_explorer(scores)         # the untrained model's 512 x 30 scores from above

# %% [markdown]
# ## Multi-crop
# Besides two full-size views, SwAV adds several small, low-resolution crops of each image.
# They are cheap (14x14 pixels cost a quarter of 28x28) and must predict the codes of the
# full views: a local-to-global correspondence. Codes are computed on the full views only.

# %%
global_views, local_views = Augment(), Augment(crop_scale=(0.2, 0.5), size=14)
crops = multi_crop(train.x[:6], global_views, 2, local_views, 2, generator=torch.Generator().manual_seed(0))
grid = torch.cat([crops[0], crops[1], F.interpolate(crops[2], size=28), F.interpolate(crops[3], size=28)])
display(show_images(grid, nrow=6, title="rows: global view 1, global view 2, local crop 1, local crop 2 (14x14, upscaled)"))

# %% [markdown]
# ## Experiment: train SwAV
# 30 prototypes (a few per class), batch 256, two 28x28 views plus two 14x14 crops, 300 steps.
# We log how many prototypes are the best match of at least one image in each batch.

# %%
cl_teach.setup(seed=0, verbose=False)
swav = SwAV(SmallCNN(), n_prototypes=K)
loader = ViewLoader(train.x, [global_views] * 2 + [local_views] * 2, batch_size=256, seed=0)
history = fit(swav, loader, steps=300, lr=5e-3,
              callbacks=[CollapseMonitor(every=25),
                         LivePlot(["loss", "prototypes_used", "feature_std"], every=50, title="SwAV")])

# %% [markdown]
# ## Diagnose: accuracy, and are the prototypes used?

# %%
cl_teach.setup(seed=0, verbose=False)
results = {"untrained": evaluate(recalibrate_batchnorm(SmallCNN(), train.x)),   # fair baseline (02)
           "SwAV": evaluate(swav.encoder)}
for name, (knn, probe) in results.items():
    print(f"{name:10s} kNN {knn:.3f}   linear probe {probe:.3f}")
with torch.no_grad():
    swav.eval()
    z_test = F.normalize(swav.projector(swav.encoder(test.x)), dim=1)
    assign = swav.prototypes(z_test).argmax(1)                        # (5000,) hard assignments
usage = torch.bincount(assign, minlength=K)                            # test images per prototype
n_any = int((usage > 0).sum())

# %%
# NBVAL_CHECK_OUTPUT
print(f"prototypes chosen by at least one test image: {n_any} / {K}; "
      f"by at least 0.5% of them: {int((usage >= 0.005 * len(test.x)).sum())} / {K}")
assert results["SwAV"][0] > results["untrained"][0]
assert n_any >= 0.9 * K, "the prototypes should end up used"

# %% [markdown]
# Are the prototypes meaningful? Each row shows the test images closest to one prototype, and
# the purity of its cluster (share of its images from its most common class).

# %%
sims = swav.prototypes(z_test).detach()                                # (5000, K)
top = usage.argsort(descending=True)[:6]
rows, purities = [], []
for k in top:
    members = (assign == k).nonzero().squeeze(1)
    purities.append(torch.bincount(test.y[members], minlength=10).max().item() / len(members))
    rows.append(test.x[sims[:, k].topk(8).indices])
display(show_images(torch.cat(rows), nrow=8,
                    title="6 most used prototypes (rows): their 8 nearest test images"))
purity = sum(torch.bincount(test.y[assign == k], minlength=10).max().item() for k in range(K)) / len(test.x)
print("purity of the 6 most used prototypes:", [round(p, 2) for p in purities])
print(f"overall cluster purity: {purity:.2f} (chance: {torch.bincount(test.y).max().item() / len(test.y):.2f})")
assert purity > 0.5

# %% [markdown]
# ## Exercises
# 1. **Without equipartition.** Replace the Sinkhorn codes by the softmax of the scores divided
#    by epsilon (`SwAV(..., n_iters=0)`: no rescaling rounds): train 100 steps and watch
#    `prototypes_used`. What happens, and why?
# 2. **No multi-crop.** Train with only the two global views for the same number of steps and
#    compare kNN and wall time.
#
# A solution for exercise 1 (set `RUN_SOLUTIONS = True` to run it, ~10 s):

# %%
RUN_SOLUTIONS = False
# BEGIN SOLUTION
if RUN_SOLUTIONS:
    cl_teach.setup(seed=0, verbose=False)
    naive = SwAV(SmallCNN(), n_prototypes=K, n_iters=0)   # codes = softmax(S / eps): no balancing
    h = fit(naive, ViewLoader(train.x, [global_views] * 2, batch_size=256, seed=0), steps=100, lr=5e-3)
    print("prototypes used per batch, last steps:", h["prototypes_used"][-5:])
    # Typically far fewer prototypes than K end up used: the codes follow the scores, so the
    # model can make every image pick the same few prototypes and predict them trivially.
# END SOLUTION

# %% [markdown]
# ## Summary
# - SwAV clusters online: scores against K prototypes, codes from Sinkhorn-Knopp with an
#   equipartition constraint, and each view predicts the other view's code (swapped prediction).
# - Equipartition is the anti-collapse mechanism: measured above, argmax piles images on a few
#   prototypes while the codes are balanced, and after training the prototypes are all used.
# - Multi-crop adds cheap local views that must predict the global views' codes.
#
# **References:** Caron et al., *Unsupervised Learning of Visual Features by Contrasting Cluster
# Assignments* (SwAV), NeurIPS 2020; Caron et al., *Deep Clustering for Unsupervised Learning of
# Visual Features* (DeepCluster), ECCV 2018; Cuturi, *Sinkhorn Distances*, NeurIPS 2013;
# facebookresearch/swav `main_swav.py`.

# %%
# NBVAL_IGNORE_OUTPUT
print(f"notebook wall time: {time.perf_counter() - t_start:.0f} s")
