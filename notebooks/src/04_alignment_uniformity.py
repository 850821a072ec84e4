# %% [markdown]
# # 04 · Alignment and uniformity
#
# **Learning goals**
# 1. Write Wang & Isola's two metrics in one line each and read what they measure.
# 2. *See* a contrastive embedding: train with output dimension 2 and 3 and draw it on the circle
#    and on the sphere.
# 3. Measure what the temperature does: alignment and uniformity *trade off* across τ
#    (Wang & Liu's uniformity–tolerance dilemma), each difference with its 95% interval.
#
# **Prerequisites:** notebooks 01–03. **Time budget:** about 1.5 minutes on a 2-core laptop CPU.

# %%
import math

import numpy as np
import torch
from IPython.display import display
from matplotlib.figure import Figure

import cl_teach
from cl_teach import metrics, models, plotting, train
from cl_teach.augment import Augment, two_views
from cl_teach.data import ViewLoader, load_fashion_mnist
from cl_teach.evaluation import baselines, best_baseline, knn_and_probe
from cl_teach.methods import SimCLR
from cl_teach.metrics import paired_difference, seed_interval
from cl_teach.palette import MANY  # ten distinguishable colours, one per class

SEED = cl_teach.notebook_seed()
device = cl_teach.setup(SEED)
train_set = load_fashion_mnist("train").subset(10_000, seed=SEED)
# 5,000 queries: a kNN interval of about +-1 point
test_set = load_fashion_mnist("test").subset(5_000, seed=SEED)
classes = train_set.classes

# %% [markdown]
# ## Intuition and math
# Wang & Isola (ICML 2020) split what InfoNCE optimises, as the number of negatives grows, into two
# properties of the normalised embedding $f(x) \in S^{d-1}$:
#
# * **Alignment** — positives land close:
#   $\;\mathcal L_{\text{align}} = \mathbb E_{(x,y)\sim p_{\text{pos}}}\lVert f(x) - f(y)\rVert_2^{\alpha}$,
#   with $\alpha = 2$;
# * **Uniformity** — everything spreads over the sphere:
#   $\;\mathcal L_{\text{uniform}} = \log \mathbb E_{x,y \sim p_{\text{data}}}
#   e^{-t\lVert f(x)-f(y)\rVert_2^2}$, with $t = 2$.
#
# Lower is better for both. One alone is trivial: a constant map is perfectly aligned, a random
# map is uniform. A good representation needs both at once.

# %% [markdown]
# ## Derive: the two one-liners (as in the paper's code)

# %%
def my_alignment(x, y, alpha=2):
    # BEGIN SOLUTION
    return (x - y).norm(p=2, dim=1).pow(alpha).mean()
    # END SOLUTION

def my_uniformity(x, t=2):
    # BEGIN SOLUTION
    return torch.pdist(x, p=2).pow(2).mul(-t).exp().mean().log()
    # END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(SEED)
x = torch.nn.functional.normalize(torch.randn(500, 16, generator=g), dim=1)
y = torch.nn.functional.normalize(x + 0.3 * torch.randn(500, 16, generator=g), dim=1)
assert torch.allclose(my_alignment(x, y), metrics.alignment(x, y), atol=1e-5)
assert torch.allclose(my_uniformity(x), metrics.uniformity(x), atol=1e-5)
print("alignment and uniformity: inline == package")
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
#
# Every comparison below comes with a 95% interval. Alignment is a mean over 1,000 test images
# (the distance between each image's two views), so two models compare *paired* on the same images
# (`paired_difference`, a bootstrap). Uniformity is a log-mean over *pairs* of images, not a mean
# over images; its interval comes from five disjoint chunks of 1,000 test images (the paired
# difference on each chunk, then a t-interval over the five: `seed_interval`).

# %%
v1, v2 = two_views(test_set.x[:1000], Augment(), generator=torch.Generator().manual_seed(SEED + 1))

def projected(method):
    return torch.nn.Sequential(method.encoder, method.projector)

def align_uniform(method):
    f = projected(method)
    return (metrics.alignment(models.embed(f, v1), models.embed(f, v2)).item(),
            metrics.uniformity(models.embed(f, test_set.x)).item())

def alignment_items(method):       # (1000,) ||z1 - z2||^2 per test image, normalised z
    f = projected(method)
    z1, z2 = (torch.nn.functional.normalize(models.embed(f, v), dim=1) for v in (v1, v2))
    return (z1 - z2).pow(2).sum(1)

def uniformity_chunks(method, n_chunks=5):   # uniformity of 5 disjoint chunks of 1,000 test images
    z = models.embed(projected(method), test_set.x)
    return [metrics.uniformity(c).item() for c in z.chunk(n_chunks)]

def compare_au(a, b):
    """(alignment a - b, uniformity a - b), each an Interval; negative = a is better."""
    return (paired_difference(alignment_items(a), alignment_items(b)),
            seed_interval([ua - ub for ua, ub in zip(uniformity_chunks(a), uniformity_chunks(b))]))

def train_simclr(temperature=0.2, dim=64, steps=120, live=False):
    cl_teach.setup(SEED, verbose=False)
    m = SimCLR(models.SmallCNN(), projection_dim=dim, temperature=temperature)
    cbs = [train.CollapseMonitor(every=10),
           plotting.LivePlot(["loss", "alignment", "uniformity"], every=10)] if live else []
    train.fit(m, ViewLoader(train_set.x, [Augment()] * 2, batch_size=256, seed=SEED), steps=steps,
              lr=5e-3, callbacks=cbs, progress=live, desc=f"SimCLR tau={temperature} dim={dim}")
    return m

# %%
# NBVAL_IGNORE_OUTPUT
cl_teach.setup(SEED, verbose=False)
random_net = SimCLR(models.SmallCNN(), temperature=0.2)
naive_random = align_uniform(random_net)
metrics.recalibrate_batchnorm(projected(random_net), train_set.x)
trained = train_simclr(0.2, live=True)

# %%
rand_au, trained_au = align_uniform(random_net), align_uniform(trained)
d_align, d_unif = compare_au(trained, random_net)
print(f"{'':>28} {'alignment':>9} {'uniformity':>10}")
print(f"{'random (initial BN stats)':>28} {naive_random[0]:>9.3f} {naive_random[1]:>10.3f}")
print(f"{'random (recalibrated BN)':>28} {rand_au[0]:>9.3f} {rand_au[1]:>10.3f}")
print(f"{'SimCLR, 120 steps':>28} {trained_au[0]:>9.3f} {trained_au[1]:>10.3f}")
print(f"trained - random: alignment {d_align.estimate:+.3f} [{d_align.low:+.3f}, {d_align.high:+.3f}], "
      f"uniformity {d_unif.estimate:+.3f} [{d_unif.low:+.3f}, {d_unif.high:+.3f}] (lower = better)")

# %%
# NBVAL_CHECK_OUTPUT
# lower is better: a negative difference (SimCLR - random) means SimCLR wins, so the names are swapped
print("alignment:", d_align.verdict("the random net", "SimCLR"))
print("uniformity:", d_unif.verdict("the random net", "SimCLR"))
assert d_align.high < 0 and d_unif.high < 0, "training should improve (lower) both, beyond the interval"

# %% [markdown]
# Lower metrics are not yet better *features*. Do they classify better than the two baselines every
# image notebook must beat: raw pixels, and the same untrained network (BN re-estimated)? Same kNN
# (k = 20, on $h$) and linear probe for all three; "better" is asserted against the stronger
# baseline, with the paired 95% interval on the 5,000 test images.

# %%
# NBVAL_IGNORE_OUTPUT
simclr_eval = knn_and_probe(trained, train_set, test_set)
base = baselines(random_net.encoder, train_set, test_set)
best_name, best = best_baseline(base, on="knn")
d_knn = simclr_eval.compare(best, on="knn")
for name, e in {**base, "SimCLR h, 120 steps": simclr_eval}.items():
    print(f"{name:30s} kNN {e.knn:.4f} | linear probe {e.probe:.4f}")
probe_name, probe_best = best_baseline(base, on="probe")
d_probe = simclr_eval.compare(probe_best, on="probe")
print(f"SimCLR - {best_name}, kNN (points): {d_knn.points()}")
print(f"SimCLR - {probe_name}, linear probe (points): {d_probe.points()}")

# %%
# NBVAL_CHECK_OUTPUT
print(f"kNN, against the stronger baseline ({best_name}):", d_knn.verdict("SimCLR", "the baseline"))
print(f"linear probe, against the stronger baseline ({probe_name}):",
      d_probe.verdict("SimCLR", "the baseline"))
assert d_knn.low > 0 and d_probe.low > 0, "120 steps of SimCLR should beat raw pixels and the untrained net"

# %% [markdown]
# Raw pixels are the stronger baseline here, and not by accident: on centred 28×28 garments, pixels
# already separate most classes with a kNN or a linear classifier. The random network, even with its BN
# statistics re-estimated, loses a little of that. 120 steps of SimCLR beat both, by a margin that
# is real but small: notebook 05 trains longer.

# %% [markdown]
# ## See it: embeddings on the circle and on the sphere
# With a projection of dimension 2 the normalised embeddings live on the circle $S^1$, with 3 on
# the sphere $S^2$. Colours are the (unused) class labels. Training spreads the points around the
# sphere (uniformity) while views of similar garments stay together (alignment).

# %%
circle, sphere = train_simclr(0.2, dim=2), train_simclr(0.2, dim=3)

def on_sphere(method, n=1500):
    f = torch.nn.Sequential(method.encoder, method.projector)
    return (torch.nn.functional.normalize(models.embed(f, test_set.x[:n]), dim=1).numpy(),
            test_set.y[:n].numpy())

fig = Figure(figsize=(10.2, 4), layout="constrained")
ax1 = fig.add_subplot(1, 2, 1)
z, yl = on_sphere(circle)
theta = np.arctan2(z[:, 1], z[:, 0])
for c in range(10):   # jitter the radius by class so the classes can be told apart
    r = 1 + 0.04 * c
    ax1.scatter(r * np.cos(theta[yl == c]), r * np.sin(theta[yl == c]), s=4, label=classes[c], color=MANY[c])
t = np.linspace(0, 2 * np.pi, 200)
ax1.plot(np.cos(t), np.sin(t), color="lightgray", lw=0.8, zorder=0)
ax1.set_xlim(-1.45, 1.45); ax1.set_ylim(-1.45, 1.45)
ax1.set_aspect("equal"); ax1.set_title("output dim 2: the circle (radius offset by class)")
ax1.set_xlabel("z1"); ax1.set_ylabel("z2")
ax1.legend(fontsize=9, markerscale=3, bbox_to_anchor=(1.02, 1), loc="upper left", frameon=False)
ax2 = fig.add_subplot(1, 2, 2, projection="3d")
z, yl = on_sphere(sphere)
for c in range(10):
    ax2.scatter(*z[yl == c].T, s=3, color=MANY[c])
ax2.set_title("output dim 3: the sphere"); ax2.set_xlabel("z1"); ax2.set_ylabel("z2"); ax2.set_zlabel("z3")
display(fig)

# %% [markdown]
# After only 120 steps the circle is far from uniformly covered: most classes sit on one half.
# For reference, points spread uniformly over the circle have uniformity
# $\log\big(e^{-4} I_0(4)\big) \approx -1.58$ and over the sphere $\log\frac{1-e^{-8}}{8} \approx -2.08$
# (t = 2). The measured values (the closer to these, the more uniform):

# %%
for name, m in (("circle (d=2)", circle), ("sphere (d=3)", sphere)):
    a, u = align_uniform(m)
    print(f"{name}: alignment {a:.3f}, uniformity {u:.3f}")

# %% [markdown]
# ## The trade-off across temperatures
# Wang & Isola found that, across methods and hyper-parameters, encoders with better alignment
# *and* better uniformity transfer better. A sweep of the temperature alone does **not** move the two
# together. Wang & Liu (CVPR 2021, *Understanding the Behaviour of Contrastive Loss*) call it the
# **uniformity–tolerance dilemma**: a small τ puts almost all of the loss on the hardest negatives,
# which pushes towards a uniform embedding but also pushes apart semantically similar images (low
# *tolerance*); a large τ weighs all negatives alike: more tolerant, **less** uniform. (Source 001
# says a temperature set too high "can lead to poorer, more uniform representations": the direction
# is wrong; a high τ gives *less* uniform embeddings.)
#
# Three temperatures a factor 10 apart, τ = 0.02, 0.2, 2, the same 120 steps and seed. Each
# extreme is compared with τ = 0.2, paired on the same test images.

# %%
# NBVAL_IGNORE_OUTPUT
temperatures = [0.02, 0.2, 2.0]
runs = {tau: trained if tau == 0.2 else train_simclr(tau) for tau in temperatures}
def knn_correct(m):            # (5000,) 1 where the kNN on h is right
    pred = metrics.knn_predict(models.embed(m, train_set.x), train_set.y, models.embed(m, test_set.x), k=20)
    return (pred == test_set.y).float()

sweep = {tau: (*align_uniform(m), knn_correct(m) if tau != 0.2 else simclr_eval.knn_correct)
         for tau, m in runs.items()}
vs_ref = {tau: (*compare_au(runs[tau], trained), paired_difference(sweep[tau][2], simclr_eval.knn_correct))
          for tau in temperatures if tau != 0.2}

# %%
print(f"{'tau':>5} {'alignment':>9} {'uniformity':>10} {'kNN':>6}")
for tau, (a, u, e) in sweep.items():
    print(f"{tau:>5} {a:>9.3f} {u:>10.3f} {e.mean():>6.3f}")
print("\ndifferences against tau = 0.2, 95% intervals (alignment, uniformity: lower = better):")
for tau, (da, du, dk) in vs_ref.items():
    print(f"tau {tau:>4}: alignment {da.estimate:+.3f} [{da.low:+.3f}, {da.high:+.3f}] | uniformity "
          f"{du.estimate:+.3f} [{du.low:+.3f}, {du.high:+.3f}] | kNN (points) {dk.points()}")

# %%
# NBVAL_CHECK_OUTPUT
for tau, (da, du, _dk) in vs_ref.items():
    # lower is better for both metrics, so a negative difference (tau - 0.2) means tau wins: names swapped
    print(f"tau {tau} vs 0.2: alignment: {da.verdict('tau=0.2', f'tau={tau}')}; "
          f"uniformity: {du.verdict('tau=0.2', f'tau={tau}')}")
    assert da.high < 0 and du.low > 0, "at both extremes: better alignment, worse uniformity (the trade-off)"

# %% [markdown]
# The check above is the trade-off: at *both* extremes the two views of an image sit closer
# (alignment improves) while the images spread less over the sphere (uniformity gets worse). The kNN
# column moves much less: the differences against τ = 0.2 (right panel) are a point or two, about
# the width of their own intervals, so at this budget no kNN ranking of the three temperatures is
# asserted.
#
# One part of the table goes against the literature: at τ = 0.02 the embedding is the *least*
# uniform, where Wang & Liu (and notebook 01's gradient weights) predict the most uniform. Their
# result holds at convergence, after hundreds of epochs; here, after 120 steps (3 epochs of a
# 10,000-image subset), the small-τ run has pulled views together but not yet spread the images
# out. The dilemma's other half (a large τ: tolerant, less uniform) is there already.

# %%
fig = Figure(figsize=(10, 3.6), layout="constrained")
ax1, ax2 = fig.subplots(1, 2)
a, u = (np.array([sweep[t][i] for t in temperatures]) for i in range(2))
ax1.plot(u, a, color="lightgray", zorder=0)
ax1.scatter(u, a, s=60, c=[f"C{i}" for i in range(len(temperatures))])
for tau, ui, ai in zip(temperatures, u, a):
    ax1.annotate(f"tau={tau}", (ui, ai), textcoords="offset points", xytext=(5, 5), fontsize=9)
ax1.set_xlabel("uniformity (lower = better)"); ax1.set_ylabel("alignment (lower = better)")
ax1.margins(0.15)
ax1.set_title("alignment vs uniformity across tau: a trade-off")
others = list(vs_ref)
est = np.array([100 * vs_ref[t][2].estimate for t in others])
err = np.array([[100 * (vs_ref[t][2].estimate - vs_ref[t][2].low) for t in others],
                [100 * (vs_ref[t][2].high - vs_ref[t][2].estimate) for t in others]])
ax2.errorbar(range(len(others)), est, yerr=err, fmt="o", capsize=5, color="C0")
ax2.axhline(0, color="gray", lw=0.8)
ax2.set_xticks(range(len(others)), [f"tau={t}" for t in others]); ax2.set_xlim(-0.5, len(others) - 0.5)
ax2.set_ylabel("kNN accuracy minus tau=0.2's (points)")
ax2.set_title("kNN against tau=0.2, paired 95% intervals")
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

h = torch.nn.functional.normalize(models.embed(trained, test_set.x[:2000]), dim=1).numpy()
dist, idx = NearestNeighbors(n_neighbors=15).fit(h).kneighbors(h)
xy = umap.UMAP(random_state=SEED, n_epochs=200, precomputed_knn=(idx, dist, None)).fit_transform(h)
fig = Figure(figsize=(6, 5), layout="constrained")
ax = fig.subplots()
for c in range(10):
    ax.scatter(*xy[test_set.y[:2000].numpy() == c].T, s=4, color=MANY[c], label=classes[c])
ax.set_title("UMAP of SimCLR backbone features (test images)")
ax.set_xlabel("UMAP 1"); ax.set_ylabel("UMAP 2")
ax.legend(fontsize=9, markerscale=3, bbox_to_anchor=(1, 1))
display(fig)

# %% [markdown]
# ## Explore
# `cl_teach.widgets.circle_explorer` draws points on the circle from a von Mises distribution
# (concentration kappa; 0 is uniform) and gives each a positive at an angle of Gaussian noise. It
# reads both metrics on them; for the uniform circle, uniformity has a closed form,
# $\log \mathbb E\, e^{-t(2 - 2\cos\delta)} = -2t + \log I_0(2t)$ ($I_0$ the modified Bessel
# function), the lowest value points on the circle can reach. First, the explorer's numbers are your
# one-liners, and a large uniform sample meets the closed form:

# %%
# NBVAL_CHECK_OUTPUT
from cl_teach.widgets import circle_stats

for kappa, noise in ((0.0, 0.3), (8.0, 0.1)):
    st = circle_stats(kappa, noise)
    assert torch.isclose(my_alignment(st["x"], st["y"]), torch.tensor(st["alignment"], dtype=torch.float64))
    assert torch.isclose(my_uniformity(st["x"]), torch.tensor(st["uniformity"], dtype=torch.float64))
big = circle_stats(0.0, 0.0, n=4000)
assert abs(big["uniformity"] - big["uniform_limit"]) < 0.02, (big["uniformity"], big["uniform_limit"])
print(f"circle_stats equals my_alignment and my_uniformity; 4,000 uniform points: uniformity within "
      f"0.02 of -2t + log I0(2t) = {big['uniform_limit']:.3f}")

# %% [markdown]
# Move **kappa** up: the points clump and uniformity climbs towards 0 (one point); move **noise**
# down to 0: alignment is perfect whatever kappa. The goal is the star, both at once.

# %%
# NBVAL_IGNORE_OUTPUT
from cl_teach.widgets import circle_explorer

circle_explorer()

# %% [markdown]
# Then go back to `train_simclr` and try `dim=2` at temperature 0.05 and 1.0, then again with
# `steps=600`: how do the points on the circle change? (At convergence, Wang & Liu predict a low
# temperature spreads the points more uniformly and a high one leaves them clumpier; at 120 steps
# the sweep above found the small-τ embedding the *least* uniform. Which one do you see at 600?)

# %% [markdown]
# ## Exercises
# Each code exercise is a function to fill in; the cell after it checks it, in the student copy
# too.
#
# 1. Two points on the circle at angle $\theta$ apart: write `alignment_at_angle(theta)`, their
#    alignment ($\alpha = 2$) in closed form (hint: $\lVert x - y\rVert^2 = 2 - 2\cos\theta$ on
#    the unit sphere; notebook 02 derives it).

# %%
def alignment_at_angle(theta):
    """Alignment (alpha = 2) of unit vectors at angle theta (a float, radians)."""
    # BEGIN SOLUTION
    return 2 - 2 * math.cos(theta)
    # END SOLUTION


# %%
for theta in (0.0, 0.5, math.pi / 2, math.pi):
    pair = torch.tensor([[1.0, 0.0]]), torch.tensor([[math.cos(theta), math.sin(theta)]])
    want = metrics.alignment(*pair).item()
    got = alignment_at_angle(theta)
    assert abs(got - want) < 1e-5, f"theta = {theta:.3f}: yours {got}, metrics.alignment {want:.5f}"
print("exercise 1: alignment = 2 - 2 cos(theta), from 0 (same point) to 4 (antipodes)")

# %% [markdown]
# 2. The most uniform two points are antipodal. Write `uniformity_of_antipodes(t)`, the
#    uniformity of $\{x, -x\}$ in closed form, and say why the one-liner of the derive cell
#    returned `-inf` for it at t = 200 while the package did not.

# %%
def uniformity_of_antipodes(t):
    """Uniformity log E[exp(-t |x - y|^2)] of two antipodal unit vectors."""
    # BEGIN SOLUTION
    return -4.0 * t                       # |x - (-x)|^2 = 4: log exp(-4t), exactly
    # END SOLUTION


# %%
for t in (0.5, 2.0, 200.0):
    want = metrics.uniformity(far, t=t).item()
    got = uniformity_of_antipodes(t)
    assert abs(got - want) < 1e-3 * max(1.0, abs(want)), f"t = {t}: yours {got}, the package {want:.4f}"
print("exercise 2: log exp(-4t) = -4t; exp(-800) underflows to 0 in float32 (log 0 = -inf), "
      "log-sum-exp never forms it")

# %% [markdown]
# 3. Wang & Isola train with $\mathcal L_{\text{align}} + \lambda \mathcal L_{\text{uniform}}$
#    directly. Compute both metrics on the *backbone* features $h$ of `trained` and of
#    `random_net`: does the ordering you found on $z$ hold on $h$?

# %%
# BEGIN SOLUTION
for name, m in (("random", random_net), ("trained", trained)):
    h1, h2 = models.embed(m, v1), models.embed(m, v2)
    print(f"{name:>8} on h: alignment {metrics.alignment(h1, h2).item():.3f}, "
          f"uniformity {metrics.uniformity(models.embed(m, test_set.x)).item():.3f}")
# END SOLUTION

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Answer.** Alignment improves on $h$ too, but uniformity on $h$ gets *worse* with training:
# the ordering found on $z$ does not carry over. Two reasons. (1) $h$ comes out of a ReLU (then an
# average pool), so every coordinate is $\ge 0$: the normalised $h$ lives in the positive orthant
# of the sphere, where any two points have cosine $\ge 0$, and it can never be uniform on the whole
# sphere. (2) The loss shapes $z = g(h)$, not $h$: nothing asks $h$ to spread out, and training
# concentrates it on the directions that $g$ needs. Uniformity is a property of the space the loss
# acts on.
# <!-- END SOLUTION -->

# %% [markdown]
# ## Summary
# * Alignment (positives close) and uniformity (spread over the sphere): two one-liners, both
#   needed — the constant map is aligned, a random map is uniform.
# * Training improves both against a (fairly evaluated) random network, with intervals, and its
#   features beat raw pixels and the untrained network by kNN.
# * Across temperatures alignment and uniformity *trade off* (Wang & Liu's uniformity–tolerance
#   dilemma): both extremes align views better and spread images worse than τ = 0.2. At this short
#   budget the kNN differences between temperatures are small.
#
# **References:** Wang & Isola, *Understanding Contrastive Representation Learning through Alignment
# and Uniformity on the Hypersphere*, ICML 2020 · Wang & Liu, *Understanding the Behaviour of
# Contrastive Loss*, CVPR 2021 · McInnes, Healy & Melville, *UMAP*, 2018.
