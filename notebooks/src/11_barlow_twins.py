# %% [markdown]
# # 11 Barlow Twins: redundancy reduction
#
# **Learning goals**
# 1. Compute the cross-correlation matrix C of two batch-normalised views and Barlow Twins'
#    loss: diagonal to 1 (invariance), off-diagonal to 0 (redundancy reduction).
# 2. Watch C during training: its diagonal goes towards 1; its off-diagonal first rises, then
#    is pushed back down, but in a short run C gets only part of the way to the identity.
# 3. See what lambda, the weight of the off-diagonal term, buys: without it the dimensions
#    become copies of each other (dimensional collapse).
#
# **Prerequisites:** 03 (collapse, effective rank), 05 (SimCLR).
#
# **Time budget:** about 1.5 minutes on a 2-core laptop CPU (one thread), measured in the closing note.

# %%
import time

import torch
from IPython.display import display

import cl_teach
from cl_teach.augment import Augment
from cl_teach.data import ViewLoader, fashion_mnist_subsets
from cl_teach.evaluation import baselines, best_baseline, knn_and_probe
from cl_teach.losses import barlow_twins_loss, cross_correlation
from cl_teach.methods import BarlowTwins
from cl_teach.metrics import effective_rank
from cl_teach.models import SmallCNN
from cl_teach.plotting import LivePlot, plot_matrices
from cl_teach.train import Callback, CollapseMonitor, fit

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
# Barlow Twins (Zbontar et al., 2021), after the neuroscientist H. Barlow's *redundancy
# reduction*: a good code has independent components. Standardise each dimension of the two
# views' projections over the batch ($\hat z = (z - \mu) / \sigma$), then
#
# $$\mathcal{C}_{ij} = \frac{1}{N}\sum_b \hat z^A_{b,i}\, \hat z^B_{b,j},\qquad
# \mathcal{L}_{BT} = \underbrace{\sum_i (1 - \mathcal{C}_{ii})^2}_{\text{invariance}}
# + \lambda \underbrace{\sum_i \sum_{j \neq i} \mathcal{C}_{ij}^2}_{\text{redundancy reduction}}.$$
#
# The diagonal term makes every dimension agree across the views; the off-diagonal term
# decorrelates dimensions, so they cannot all carry the same information. No negatives, no
# predictor, no EMA: collapse is prevented by the loss itself (a constant z has no variance,
# and identical dimensions are penalised).
#
# ## Derive: the cross-correlation and the loss, inline

# %%
def barlow_inline(zA, zB, lambd=5e-3):
    # BEGIN SOLUTION
    N, D = zA.shape
    zA = (zA - zA.mean(0)) / torch.sqrt(zA.var(0, unbiased=False) + 1e-5)   # (N, D), batch-normalised
    zB = (zB - zB.mean(0)) / torch.sqrt(zB.var(0, unbiased=False) + 1e-5)
    C = zA.T @ zB / N                                                        # (D, D)
    on_diag = (1 - torch.diagonal(C)).pow(2).sum()
    off_diag = (C - torch.diag(torch.diagonal(C))).pow(2).sum()
    return on_diag + lambd * off_diag, C
    # END SOLUTION


g = torch.Generator().manual_seed(SEED)
zA, zB = torch.randn(64, 32, generator=g), torch.randn(64, 32, generator=g)
ours, C = barlow_inline(zA, zB)
assert torch.allclose(ours, barlow_twins_loss(zA, zB), atol=1e-4)
assert torch.allclose(C, cross_correlation(zA, zB), atol=1e-5)
print(f"inline loss {ours.item():.4f} = barlow_twins_loss(zA, zB)")

# %% [markdown]
# ## Experiment: watch the diagonal of C go to 1
# Batch 256, a 3-layer projector to D = 128, lambda = 5e-3, 250 steps. 5e-3 is the value
# Zbontar et al. tuned by a grid search at D = 8192; it is *not* 1/D there (1/8192 = 1.2e-4).
# The rule of thumb lambda = 1/D comes later, from Tsai et al. (2021, *A Note on Connecting Barlow
# Twins with Negative-Sample-Free Contrastive Learning*); at our D = 128 it gives 7.8e-3, close
# to 5e-3 by coincidence. The method returns C at every step; a small callback keeps it at a few
# steps and redraws the heatmaps live.

# %%
class CrossCorrelationSnapshots(Callback):
    """Keep C (the first 32 dimensions) at the given steps, and redraw them live."""

    def __init__(self, at):
        self.at, self.snapshots, self.handle = set(at), {}, None

    def on_step_end(self, step, logs, method, history):
        c = logs["c"]
        history.log(step, diag_mean=c.diagonal().mean().item(),
                    offdiag_abs_mean=(c - torch.diag(c.diagonal())).abs().sum().item()
                                     / (c.numel() - c.shape[0]))
        if step in self.at:
            self.snapshots[f"step {step}"] = c[:32, :32].clone()
            fig = plot_matrices(self.snapshots, title="cross-correlation C (32 of 128 dims)")
            if self.handle is None:
                self.handle = display(fig, display_id=True)
            else:
                self.handle.update(fig)


STEPS, D = 250, 128
cl_teach.setup(SEED, verbose=False)
bt = BarlowTwins(SmallCNN(), projection_dim=D, lambd=5e-3)
snaps = CrossCorrelationSnapshots(at=[0, 30, 100, STEPS - 1])
loader = ViewLoader(train.x, [Augment()] * 2, batch_size=256, seed=SEED + 2)
history = fit(bt, loader, steps=STEPS, lr=5e-3,
              callbacks=[snaps, CollapseMonitor(every=25),
                         LivePlot(["loss", "diag_mean", "offdiag_abs_mean"], every=50, title="Barlow Twins")])

# %%
d, o, loss = history["diag_mean"], history["offdiag_abs_mean"], history["loss"]
c0 = history["diag_mean"][0]
print(f"mean diagonal of C: {d[0]:.3f} at step 0 -> {d[-20:].mean():.3f} (last 20 steps)")
print(f"mean |off-diagonal of C|: {o[0]:.3f} at step 0, peak {o.max():.3f} at step {int(o.argmax())}, "
      f"{o[-20:].mean():.3f} (last 20 steps)")
print(f"loss at step 0: {loss[0]:.1f}; invariance term alone sum_i (1 - C_ii)^2 = "
      f"{history['on_diag'][0]:.1f}; its estimate D (1 - mean C_ii)^2 = {D * (1 - c0) ** 2:.1f}")

# %%
# NBVAL_CHECK_OUTPUT
print("the diagonal of C rises towards 1:", bool(d[-20:].mean() > max(0.7, d[0] + 0.3)))
print("the off-diagonal stays well below the diagonal:", bool(o[-20:].mean() < 0.5 * d[-20:].mean()))
print("the off-diagonal falls after its early peak:", bool(o[-20:].mean() < 0.7 * o.max()))
print("the off-diagonal ends above where it started (C is not the identity yet):",
      bool(o[-20:].mean() > o[0]))
assert d[-20:].mean() > max(0.7, d[0] + 0.3)                      # the diagonal goes towards 1
assert o[-20:].mean() < 0.5 * d[-20:].mean()                      # the off-diagonal stays well below it
assert o[-20:].mean() < 0.7 * o.max()                             # ... and falls after its early peak
assert o[-20:].mean() > o[0]                                      # ... but C is not the identity

# %% [markdown]
# At initialisation the two views of an image are only weakly correlated: C is small everywhere.
# The loss starts close to the invariance term, $\sum_i (1 - \mathcal{C}_{ii})^2 \approx
# D(1 - \bar{\mathcal{C}}_{ii})^2$ (printed above): a little below D = 128, because even a random
# network gives the two views of an image some correlation. In the first few steps everything
# correlates at once (the invariance term is the big one), then the redundancy term takes over
# and the off-diagonal is pushed back down while the diagonal stays near 1. Only the *diagonal*
# reaches its target in this run: the off-diagonal ends below its peak but above its starting
# value, so in 250 steps with a 23k-parameter encoder C is far from the identity. What does the
# off-diagonal term buy? Switch it off.
#
# ## Lambda: what the redundancy term buys
# With lambda = 0 only the diagonal is trained. Batch normalisation still forbids a constant
# output, but nothing stops all 128 dimensions from encoding the same feature: the effective
# rank of z (notebook 03) drops. Same seed, same batches, same 250 steps as the run above.

# %%
cl_teach.setup(SEED, verbose=False)
no_redundancy = BarlowTwins(SmallCNN(), projection_dim=D, lambd=0.0)
h0 = fit(no_redundancy, ViewLoader(train.x, [Augment()] * 2, batch_size=256, seed=SEED + 2), steps=STEPS,
         lr=5e-3, desc="lambda = 0", callbacks=[CrossCorrelationSnapshots(at=[STEPS - 1])])


@torch.no_grad()
def rank_of_z(method, x=test.x[:2000]):
    """Effective rank of the projections z = g(f(x)) of held-out images (eval mode)."""
    method.eval()
    return effective_rank(method.projector(method.encoder(x))).item()


ranks = {0.0: rank_of_z(no_redundancy), 5e-3: rank_of_z(bt)}
offdiag = {0.0: h0["offdiag_abs_mean"][-20:].mean(), 5e-3: o[-20:].mean()}
for lambd in (0.0, 5e-3):
    print(f"lambda={lambd:g}: mean |off-diagonal of C| {offdiag[lambd]:.3f} (last 20 steps), "
          f"effective rank of z on test images {ranks[lambd]:.1f} of D = {D}")

# %%
# NBVAL_CHECK_OUTPUT
print("without the redundancy term the dimensions become copies (off-diagonal > 2x):",
      bool(offdiag[0.0] > 2 * offdiag[5e-3]))
print("... and the effective rank of z falls below half:", bool(ranks[0.0] < 0.5 * ranks[5e-3]))
assert offdiag[0.0] > 2 * offdiag[5e-3]                            # dimensions become copies
assert ranks[0.0] < 0.5 * ranks[5e-3]

# %% [markdown]
# ## Diagnose: accuracy on held-out images
# The fair baselines (notebooks 04-05): the raw pixels, and the untrained encoder with its
# BatchNorm statistics re-estimated, under the same kNN and linear-probe protocol. Every
# difference comes with a 95% paired-bootstrap interval over the 5,000 test images.

# %%
cl_teach.setup(SEED, verbose=False)
base = baselines(SmallCNN, train, test)
results = {**base, "Barlow Twins": knn_and_probe(bt.encoder, train, test),
           "lambda = 0": knn_and_probe(no_redundancy.encoder, train, test)}
for name, (knn, probe) in results.items():
    print(f"{name:30s} kNN {knn:.4f}   linear probe {probe:.4f}")
best = {on: best_baseline(base, on=on) for on in ("knn", "probe")}
diffs = {}
for on in ("knn", "probe"):
    diffs[("Barlow Twins", on)] = results["Barlow Twins"].compare(best[on][1], on=on)
    diffs[("lambda = 0", on)] = results["Barlow Twins"].compare(results["lambda = 0"], on=on)
    print(f"Barlow Twins - {best[on][0]} ({on}): {diffs[('Barlow Twins', on)].points()} points;   "
          f"Barlow Twins - lambda = 0 ({on}): {diffs[('lambda = 0', on)].points()} points")

# %%
# NBVAL_CHECK_OUTPUT
print(diffs[("Barlow Twins", "probe")].verdict("Barlow Twins' linear probe", "the better baseline's"))
assert diffs[("Barlow Twins", "probe")].low > 0, "the linear probe should beat raw pixels and the untrained f"

# %% [markdown]
# The linear probe on Barlow Twins' h beats both baselines. kNN is the harder test at this
# budget: read its interval above before believing a kNN gap (at 250 steps kNN on h is close to
# kNN on raw pixels, and whether the interval excludes 0 changes with the seed), so the notebook
# claims nothing about kNN. Compare lambda = 0 with lambda = 5e-3 the same way (its interval is
# printed above): whatever its sign, the gap in the accuracy of h is small next to the gap in the
# rank of z, because the projector absorbs much of the redundancy (as in notebook 03).

# %% [markdown]
# ## Explore: lambda, live
# Retraining the CNN for every lambda takes minutes, so `cl_teach.widgets.lambda_explorer` freezes
# the encoder f trained above: its features of two augmented views of 2,048 training images are
# computed once, and for each lambda on the slider only a fresh projector g (3 layers, hidden
# width 128, D = 128) is trained on those pairs, with the same `BarlowTwins` and `fit` (100 steps,
# batch 256; a few seconds for the whole sweep). It then shows C of all the pairs, its mean
# diagonal and mean |off-diagonal|, and the effective rank of z. First, its C and its loss are
# your `barlow_inline`'s, and the projector alone repeats the claim of the CNN run above:

# %%
# NBVAL_CHECK_OUTPUT
from cl_teach.models import embed
from cl_teach.widgets import barlow_sweep

n_pairs = min(2048, len(train.x))                              # 2,048 (fewer on the digits fallback)
pairs = ViewLoader(train.x[:n_pairs], [Augment()] * 2, batch_size=n_pairs, seed=SEED + 3)
h1, h2 = (embed(bt.encoder, v) for v in next(iter(pairs)))      # frozen f of two views: (2048, 256)
sweep = barlow_sweep(h1, h2, projection_dim=D, seed=SEED)        # {lambda: stats}, one projector each
for lambd, st in sweep.items():
    inline_loss, inline_c = barlow_inline(st["z1"], st["z2"], lambd)
    inline_off = (inline_c - torch.diag(inline_c.diagonal())).abs().sum() / (D * D - D)
    assert torch.allclose(inline_c, st["c"], atol=1e-4), lambd
    assert abs(inline_loss.item() - st["loss"]) < 1e-3 * (1 + st["loss"]), (lambd, inline_loss, st["loss"])
    assert abs(inline_off.item() - st["offdiag_abs_mean"]) < 1e-5, lambd
    assert abs(inline_c.diagonal().mean().item() - st["diag_mean"]) < 1e-5, lambd
print(f"the widget's C, loss and means equal barlow_inline's at all {len(sweep)} lambdas")
copies, ours = sweep[0.0], sweep[5e-3]
print("lambda = 0: the off-diagonal of C is over 2x lambda = 5e-3's:",
      bool(copies["offdiag_abs_mean"] > 2 * ours["offdiag_abs_mean"]))
print("... and the effective rank of z under 0.6x:", bool(copies["rank"] < 0.6 * ours["rank"]))
assert copies["offdiag_abs_mean"] > 2 * ours["offdiag_abs_mean"]        # the dimensions become copies
assert copies["rank"] < 0.6 * ours["rank"]

# %%
for lambd, st in sweep.items():
    print(f"lambda = {lambd:g}: mean diagonal of C {st['diag_mean']:.3f}, mean |off-diagonal| "
          f"{st['offdiag_abs_mean']:.3f}, effective rank of z {st['rank']:.1f} of D = {D}")

# %% [markdown]
# Move **lambda** from 5e-3 down to 0 and watch the heatmap: the off-diagonal fills with colour
# (the dimensions of z correlate, copies of a few features) while the effective rank of z falls.
# Move it up to 0.1: the off-diagonal fades towards the identity's 0, the rank climbs, and the
# diagonal pays for it (the invariance term now weighs less against the redundancy term).

# %%
# NBVAL_IGNORE_OUTPUT
from cl_teach.widgets import lambda_explorer

lambda_explorer(sweep, lambd=5e-3)

# %% [markdown]
# ## Exercises
# Each code exercise is a function to fill in; the cell after it checks it, in the student copy
# too.
#
# 1. **The optimum, built by hand.** The loss is 0 exactly when C is the identity. For two
#    *identical* views that means features that are standardised and uncorrelated over the batch:
#    *whitened*. Write `whiten(z)` (centre, then multiply by the inverse square root of the batch
#    covariance, e.g. from `torch.linalg.eigh`), and see the loss of identical whitened views vanish.

# %%
def whiten(z):
    """(N, D) -> (N, D) with zero mean and identity (biased) covariance over the batch, N > D."""
    # BEGIN SOLUTION
    zc = z - z.mean(0)
    cov = zc.T @ zc / z.shape[0]                                        # (D, D)
    evals, evecs = torch.linalg.eigh(cov)
    return zc @ evecs @ torch.diag(evals.rsqrt()) @ evecs.T             # ZCA whitening
    # END SOLUTION


# %%
g = torch.Generator().manual_seed(SEED)
z_raw = torch.randn(512, 16, generator=g, dtype=torch.float64) @ torch.randn(16, 16, generator=g,
                                                                            dtype=torch.float64)
w = whiten(z_raw)
c_w = cross_correlation(w, w)
assert torch.allclose(c_w, torch.eye(16, dtype=torch.float64), atol=1e-4), \
    f"C of the whitened views is not the identity: largest error {(c_w - torch.eye(16)).abs().max():.2g}"
(loss_raw, _, red_raw, _), (loss_w, _, red_w, _) = (barlow_twins_loss(v, v, terms=True) for v in (z_raw, w))
assert loss_w < 1e-4 < loss_raw, (loss_raw, loss_w)
print(f"exercise 1: identical views; sum of squared off-diagonal C: correlated features {red_raw:.2f}, "
      f"whitened {red_w:.1e} (the loss weighs it by lambda = 5e-3)")

# %% [markdown]
# 2. **Why it cannot collapse.** Write `loss_of_a_constant(D)`: the loss, in closed form, of
#    an embedding that maps every image to the same point (hint: after the batch standardisation
#    in `barlow_inline`, what is left of a constant, and so what is C?).

# %%
def loss_of_a_constant(D):
    """barlow_twins_loss(z, z) when every row of the (N, D) z is the same vector."""
    # BEGIN SOLUTION
    return float(D)             # standardised, a constant is 0: C = 0, and each (1 - C_ii)^2 = 1
    # END SOLUTION


# %%
for dim in (8, 32, D):
    const = torch.randn(1, dim, generator=g).expand(64, dim).contiguous()
    want = barlow_twins_loss(const, const).item()
    got = loss_of_a_constant(dim)
    assert abs(got - want) < 1e-3 * dim, f"D = {dim}: yours {got}, the package {want:.4f}"
print(f"exercise 2: a collapsed embedding costs D (here {D}): the invariance term alone forbids it")

# %% [markdown]
# 3. **The batch must be larger than D.** With N = 16 images and D = 32 dimensions, no embedding,
#    however good, brings the loss of two identical views to 0. Which term stays above 0, and
#    what is the least it can be? Predict, then run the cell (it prints a bound to compare with).

# %%
for n in (16, 33, 64):
    z_n = torch.randn(n, 32, generator=g, dtype=torch.float64)
    z_n = whiten(z_n) if n > 32 else z_n
    _, on_diag, off_diag, c_n = barlow_twins_loss(z_n, z_n, terms=True)
    r = torch.linalg.matrix_rank(c_n).item()
    print(f"N = {n:2d}, D = 32: rank of C {r:2d}, invariance term {on_diag.item():.3f}, redundancy "
          f"term {off_diag.item():6.2f} (bound D^2/rank - D = {32 ** 2 / r - 32:.2f})")

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# For identical views each dimension is perfectly correlated with itself, so $C_{ii} = 1$ and the
# invariance term is 0 whatever N is. The redundancy term is the one that stays. After centring,
# the N rows span at most N - 1 directions, so C (D × D, positive semi-definite, unit diagonal)
# has rank r ≤ N - 1. Its eigenvalues $\mu_k$ sum to its trace, D, over at most r nonzero ones, so
# by Cauchy–Schwarz $\lVert C\rVert_F^2 = \sum_k \mu_k^2 \ge D^2 / r$, and the off-diagonal part
# is at least $D^2/r - D$: 36.3 for N = 16, D = 32, reached only when the r eigenvalues are equal
# (the random batch above sits above it). Once N > D, whitening reaches C = I (33 and 64 above).
# The batch must outnumber the dimensions for the redundancy term to be satisfiable. Zbontar et
# al. (2021) train with N = 2048 and D = 8192, more dimensions than images in a batch: at their
# scale the floor is there too, and the loss is minimised, never zeroed.
# <!-- END SOLUTION -->

# %% [markdown]
# ## Summary
# - Barlow Twins standardises each dimension over the batch and drives the cross-correlation of
#   the two views towards the identity: invariant dimensions that are decorrelated from each other.
# - Measured above: the diagonal of C goes towards 1 while the off-diagonal stays well below it
#   (but not at 0: a short run gets only the diagonal to its target); without the off-diagonal
#   term (lambda = 0, same steps) the dimensions become copies of each other (large
#   off-diagonal) and the effective rank of z collapses.
# - lambda = 5e-3 is the paper's tuned value at D = 8192, not 1/D; lambda = 1/D is Tsai et al.'s
#   later rule of thumb.
# - The linear probe on h beats raw pixels and the untrained encoder, with a 95% interval.
# - No negatives, no predictor, no momentum encoder: the loss alone prevents collapse.
#
# **References:** Zbontar et al., *Barlow Twins: Self-Supervised Learning via Redundancy
# Reduction*, ICML 2021; facebookresearch/barlowtwins `main.py`; Tsai, Bai, Morency &
# Salakhutdinov, *A Note on Connecting Barlow Twins with Negative-Sample-Free Contrastive
# Learning*, arXiv:2104.13712, 2021; Barlow, *Possible principles
# underlying the transformation of sensory messages*, 1961.

# %%
# NBVAL_IGNORE_OUTPUT
print(f"notebook wall time: {time.perf_counter() - t_start:.0f} s")
