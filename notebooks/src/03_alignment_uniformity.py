# %% [markdown]
# # 03 · Alignment and uniformity
#
# **Learning goals**
# 1. Write Wang & Isola's two metrics in one line each and read what they measure.
# 2. *See* a contrastive embedding: train with output dimension 2 and 3 and draw it on the circle
#    and on the sphere.
# 3. Measure the trade-off across temperatures: better uniformity goes with better kNN accuracy.
#
# **Prerequisites:** notebooks 01–02. **Time budget:** about 1.5 minutes on a 2-core laptop CPU.

# %%
import math

import numpy as np
import torch
from IPython.display import display
from matplotlib.figure import Figure
from scipy.stats import spearmanr

import cl_teach
from cl_teach import metrics, models, plotting, train
from cl_teach.augment import Augment, two_views
from cl_teach.data import ViewLoader, load_fashion_mnist
from cl_teach.methods import SimCLR

device = cl_teach.setup(seed=0)
train_set = load_fashion_mnist("train").subset(10_000, seed=0)
test_set = load_fashion_mnist("test").subset(2_000, seed=0)
classes = train_set.classes

# %% [markdown]
# ## Intuition and math
# Wang & Isola (ICML 2020) split what InfoNCE optimises, as the number of negatives grows, into two
# properties of the normalised embedding $f(x) \in S^{d-1}$:
#
# * **Alignment** — positives land close: $\;\mathcal L_{\text{align}} = \mathbb E_{(x,y)\sim p_{\text{pos}}}\lVert f(x) - f(y)\rVert_2^{\alpha}$, with $\alpha = 2$;
# * **Uniformity** — everything spreads over the sphere: $\;\mathcal L_{\text{uniform}} = \log \mathbb E_{x,y \sim p_{\text{data}}} e^{-t\lVert f(x)-f(y)\rVert_2^2}$, with $t = 2$.
#
# Lower is better for both. One alone is trivial: a constant map is perfectly aligned, a random
# map is uniform. A good representation needs both at once.

# %% [markdown]
# ## Derive: the two one-liners (as in the paper's code)

# %%
def my_alignment(x, y, alpha=2):
    return (x - y).norm(p=2, dim=1).pow(alpha).mean()

def my_uniformity(x, t=2):
    return torch.pdist(x, p=2).pow(2).mul(-t).exp().mean().log()

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(0)
x = torch.nn.functional.normalize(torch.randn(500, 16, generator=g), dim=1)
y = torch.nn.functional.normalize(x + 0.3 * torch.randn(500, 16, generator=g), dim=1)
assert torch.allclose(my_alignment(x, y), metrics.alignment(x, y), atol=1e-5)
assert torch.allclose(my_uniformity(x), metrics.uniformity(x), atol=1e-5)
print(f"alignment {metrics.alignment(x, y).item():.4f}, uniformity {metrics.uniformity(x).item():.4f}: inline == package")
# The package version uses log-sum-exp: it stays finite where the one-liner's exp underflows.
far = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
print(f"two antipodal points, t=200: one-liner {my_uniformity(far, t=200).item()}, "
      f"package {metrics.uniformity(far, t=200).item():.1f}")

# %% [markdown]
# ## Training improves both metrics against the random initialisation
# A fair look at a *random* network needs one care: in eval mode its BatchNorm layers use their
# initial running statistics, which do not match its real activations, and its embeddings then look
# almost collapsed (alignment near 0, uniformity near 0). `metrics.recalibrate_batchnorm` re-estimates
# those statistics on data first (no training). Alignment and uniformity are measured on the
# projection $z$ of held-out test images under the training augmentation.

# %%
v1, v2 = two_views(test_set.x[:1000], Augment(), generator=torch.Generator().manual_seed(1))

def align_uniform(method):
    f = torch.nn.Sequential(method.encoder, method.projector)
    return (metrics.alignment(metrics.embed(f, v1), metrics.embed(f, v2)).item(),
            metrics.uniformity(metrics.embed(f, test_set.x)).item())

def knn(method):
    return metrics.knn_accuracy(metrics.embed(method, train_set.x), train_set.y,
                                metrics.embed(method, test_set.x), test_set.y, k=20)

def train_simclr(temperature=0.2, dim=64, steps=120, live=False):
    cl_teach.seed_everything(0)
    m = SimCLR(models.SmallCNN(), projection_dim=dim, temperature=temperature)
    cbs = [train.CollapseMonitor(every=10), plotting.LivePlot(["loss", "alignment", "uniformity"], every=10)] if live else []
    train.fit(m, ViewLoader(train_set.x, [Augment()] * 2, batch_size=256, seed=0), steps=steps,
              lr=5e-3, callbacks=cbs, progress=live, desc=f"SimCLR tau={temperature} dim={dim}")
    return m

# %%
# NBVAL_IGNORE_OUTPUT
cl_teach.seed_everything(0)
random_net = SimCLR(models.SmallCNN(), temperature=0.2)
naive_random = align_uniform(random_net)
metrics.recalibrate_batchnorm(torch.nn.Sequential(random_net.encoder, random_net.projector), train_set.x[:5000])
trained = train_simclr(0.2, live=True)

# %%
# NBVAL_CHECK_OUTPUT
rand_au, trained_au = align_uniform(random_net), align_uniform(trained)
print(f"{'':>28} {'alignment':>9} {'uniformity':>10} {'kNN':>6}")
print(f"{'random (initial BN stats)':>28} {naive_random[0]:>9.3f} {naive_random[1]:>10.3f}")
print(f"{'random (recalibrated BN)':>28} {rand_au[0]:>9.3f} {rand_au[1]:>10.3f} {knn(random_net):>6.3f}")
print(f"{'SimCLR, 120 steps':>28} {trained_au[0]:>9.3f} {trained_au[1]:>10.3f} {knn(trained):>6.3f}")
assert trained_au[0] < rand_au[0] and trained_au[1] < rand_au[1], "training should improve both"

# %% [markdown]
# ## See it: embeddings on the circle and on the sphere
# With a projection of dimension 2 the normalised embeddings live on the circle $S^1$, with 3 on
# the sphere $S^2$. Colours are the (unused) class labels. Training spreads the points around the
# sphere (uniformity) while views of similar garments stay together (alignment).

# %%
circle, sphere = train_simclr(0.2, dim=2), train_simclr(0.2, dim=3)

def on_sphere(method, n=1500):
    f = torch.nn.Sequential(method.encoder, method.projector)
    return torch.nn.functional.normalize(metrics.embed(f, test_set.x[:n]), dim=1).numpy(), test_set.y[:n].numpy()

fig = Figure(figsize=(11, 4), layout="constrained")
ax1 = fig.add_subplot(1, 2, 1)
z, yl = on_sphere(circle)
theta = np.arctan2(z[:, 1], z[:, 0])
for c in range(10):   # jitter the radius by class so the classes can be told apart
    r = 1 + 0.04 * c
    ax1.scatter(r * np.cos(theta[yl == c]), r * np.sin(theta[yl == c]), s=4, label=classes[c], color=f"C{c}")
t = np.linspace(0, 2 * np.pi, 200)
ax1.plot(np.cos(t), np.sin(t), color="lightgray", lw=0.8, zorder=0)
ax1.set_xlim(-1.45, 1.45); ax1.set_ylim(-1.45, 1.45)
ax1.set_aspect("equal"); ax1.set_title("output dim 2: the circle (radius offset by class)")
ax1.set_xlabel("z1"); ax1.set_ylabel("z2")
ax1.legend(fontsize=7, markerscale=3, bbox_to_anchor=(1.02, 1), loc="upper left", frameon=False)
ax2 = fig.add_subplot(1, 2, 2, projection="3d")
z, yl = on_sphere(sphere)
for c in range(10):
    ax2.scatter(*z[yl == c].T, s=3, color=f"C{c}")
ax2.set_title("output dim 3: the sphere"); ax2.set_xlabel("z1"); ax2.set_ylabel("z2"); ax2.set_zlabel("z3")
display(fig)

# %% [markdown]
# After only 120 steps the circle is far from uniformly covered: most classes sit on one half.
# For reference, points spread uniformly over the circle have uniformity
# $\log\big(e^{-4} I_0(4)\big) \approx -1.58$ and over the sphere $\log\frac{1-e^{-8}}{8} \approx -2.08$ (t = 2).

# %%
# NBVAL_CHECK_OUTPUT
for name, m in (("circle (d=2)", circle), ("sphere (d=3)", sphere)):
    a, u = align_uniform(m)
    print(f"{name}: alignment {a:.3f}, uniformity {u:.3f}")

# %% [markdown]
# ## The trade-off across temperatures
# Train the same model at five temperatures and measure alignment, uniformity and kNN accuracy
# (backbone $h$, k = 20, held-out test images). Wang & Isola found that, across methods and
# hyper-parameters, the ones with better (lower) uniformity *and* alignment give better
# downstream accuracy.

# %%
# NBVAL_IGNORE_OUTPUT
temperatures = [0.05, 0.1, 0.2, 0.5, 1.0]
sweep = {}
for tau in temperatures:
    m = trained if tau == 0.2 else train_simclr(tau)
    sweep[tau] = (*align_uniform(m), knn(m))

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'tau':>5} {'alignment':>9} {'uniformity':>10} {'kNN':>6}")
for tau, (a, u, k) in sweep.items():
    print(f"{tau:>5} {a:>9.3f} {u:>10.3f} {k:>6.3f}")
rho = spearmanr([v[1] for v in sweep.values()], [v[2] for v in sweep.values()]).statistic
print(f"Spearman rank correlation (uniformity, kNN) = {rho:.2f}")
assert rho < -0.5, "better (lower) uniformity should go with higher kNN accuracy"

# %%
fig = Figure(figsize=(10, 3.6), layout="constrained")
ax1, ax2 = fig.subplots(1, 2)
a, u, k = (np.array([v[i] for v in sweep.values()]) for i in range(3))
sc = ax1.scatter(u, a, c=k, cmap="viridis", s=80)
for tau, ui, ai in zip(temperatures, u, a):
    ax1.annotate(f"tau={tau}", (ui, ai), textcoords="offset points", xytext=(5, 5), fontsize=8)
ax1.set_xlabel("uniformity (lower = better)"); ax1.set_ylabel("alignment (lower = better)")
fig.colorbar(sc, ax=ax1, label="kNN accuracy")
ax1.set_title("alignment vs uniformity, coloured by kNN")
ax2.scatter(u, k, s=60)
ax2.set_xlabel("uniformity (lower = better)"); ax2.set_ylabel("kNN accuracy")
ax2.set_title(f"uniformity vs kNN (Spearman {rho:.2f})")
display(fig)

# %% [markdown]
# ## A map of the learned space: UMAP
# UMAP (McInnes et al., 2018) draws the 256-d backbone features of 2,000 test images in 2-d,
# coloured by class. (With a kNN graph precomputed by scikit-learn it takes a few seconds.)

# %%
import warnings

import umap
from sklearn.neighbors import NearestNeighbors

warnings.filterwarnings("ignore", module="umap")   # notes about n_jobs and the precomputed graph

h = torch.nn.functional.normalize(metrics.embed(trained, test_set.x), dim=1).numpy()
dist, idx = NearestNeighbors(n_neighbors=15).fit(h).kneighbors(h)
xy = umap.UMAP(random_state=0, n_epochs=200, precomputed_knn=(idx, dist, None)).fit_transform(h)
fig = Figure(figsize=(6, 5), layout="constrained")
ax = fig.subplots()
for c in range(10):
    ax.scatter(*xy[test_set.y.numpy() == c].T, s=4, color=f"C{c}", label=classes[c])
ax.set_title("UMAP of SimCLR backbone features (test images)")
ax.set_xlabel("UMAP 1"); ax.set_ylabel("UMAP 2")
ax.legend(fontsize=7, markerscale=3, bbox_to_anchor=(1, 1))
display(fig)

# %% [markdown]
# ## Explore
# Go back to `train_simclr` and try `dim=2` at temperature 0.05 and 1.0: how do the points on the
# circle change? (Low temperature: more uniform; high: clumpier.)
#
# ## Exercise
# Wang & Isola train with $\mathcal L_{\text{align}} + \lambda \mathcal L_{\text{uniform}}$ directly.
# Compute both metrics on the *backbone* features $h$ of `trained` and of `random_net`: does the
# ordering you found on $z$ hold on $h$?

# %%
# BEGIN SOLUTION
for name, m in (("random", random_net), ("trained", trained)):
    h1, h2 = metrics.embed(m, v1), metrics.embed(m, v2)
    print(f"{name:>8} on h: alignment {metrics.alignment(h1, h2).item():.3f}, "
          f"uniformity {metrics.uniformity(metrics.embed(m, test_set.x)).item():.3f}")
# END SOLUTION

# %% [markdown]
# ## Summary
# * Alignment (positives close) and uniformity (spread over the sphere): two one-liners, both
#   needed — the constant map is aligned, a random map is uniform.
# * Training improves both against a (fairly evaluated) random network.
# * Across temperatures, lower uniformity went with higher kNN accuracy in this run (a negative
#   rank correlation, measured above).
#
# **References:** Wang & Isola, *Understanding Contrastive Representation Learning through Alignment
# and Uniformity on the Hypersphere*, ICML 2020 · McInnes, Healy & Melville, *UMAP*, 2018.
