# %% [markdown]
# # 08 Barlow Twins: redundancy reduction
#
# **Learning goals**
# 1. Compute the cross-correlation matrix C of two batch-normalised views and Barlow Twins'
#    loss: diagonal to 1 (invariance), off-diagonal to 0 (redundancy reduction).
# 2. Watch C go to the identity during training.
# 3. See what lambda, the weight of the off-diagonal term, buys: without it the dimensions
#    become copies of each other (dimensional collapse).
#
# **Prerequisites:** 02 (collapse, effective rank), 04 (SimCLR).
#
# **Time budget:** about 1.5 minutes on a 2-core laptop CPU (one thread), measured in the closing note.

# %%
import time

import torch
import torch.nn.functional as F
from IPython.display import display

import cl_teach
from cl_teach.augment import Augment
from cl_teach.data import ViewLoader, load_fashion_mnist
from cl_teach.losses import barlow_twins_loss, cross_correlation
from cl_teach.methods import BarlowTwins
from cl_teach.evaluation import knn_and_probe
from cl_teach.metrics import effective_rank, recalibrate_batchnorm
from cl_teach.models import SmallCNN
from cl_teach.plotting import LivePlot, plot_matrices
from cl_teach.train import Callback, CollapseMonitor, fit

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
    N, D = zA.shape
    zA = (zA - zA.mean(0)) / torch.sqrt(zA.var(0, unbiased=False) + 1e-5)   # (N, D), batch-normalised
    zB = (zB - zB.mean(0)) / torch.sqrt(zB.var(0, unbiased=False) + 1e-5)
    C = zA.T @ zB / N                                                        # (D, D)
    on_diag = (1 - torch.diagonal(C)).pow(2).sum()
    off_diag = (C - torch.diag(torch.diagonal(C))).pow(2).sum()
    return on_diag + lambd * off_diag, C


g = torch.Generator().manual_seed(0)
zA, zB = torch.randn(64, 32, generator=g), torch.randn(64, 32, generator=g)
ours, C = barlow_inline(zA, zB)
assert torch.allclose(ours, barlow_twins_loss(zA, zB), atol=1e-4)
assert torch.allclose(C, cross_correlation(zA, zB), atol=1e-5)
print(f"inline loss {ours.item():.4f} = barlow_twins_loss(zA, zB)")

# %% [markdown]
# ## Experiment: watch C go to the identity
# Batch 256, a 3-layer projector to D = 128, lambda = 5e-3 (the paper's value; it was tuned for
# D = 8192, and about 1/D works well), 300 steps. The method returns C at every step; a small
# callback keeps it at a few steps and redraws the heatmaps live.

# %%
class CrossCorrelationSnapshots(Callback):
    """Keep C (the first 32 dimensions) at the given steps, and redraw them live."""

    def __init__(self, at):
        self.at, self.snapshots, self.handle = set(at), {}, None

    def on_step_end(self, step, logs, method, history):
        c = logs["c"]
        history.log(step, diag_mean=c.diagonal().mean().item(),
                    offdiag_abs_mean=(c - torch.diag(c.diagonal())).abs().sum().item() / (c.numel() - c.shape[0]))
        if step in self.at:
            self.snapshots[f"step {step}"] = c[:32, :32].clone()
            fig = plot_matrices(self.snapshots, title="cross-correlation C (32 of 128 dims)")
            if self.handle is None:
                self.handle = display(fig, display_id=True)
            else:
                self.handle.update(fig)


STEPS = 300
cl_teach.setup(seed=0, verbose=False)
bt = BarlowTwins(SmallCNN(), lambd=5e-3)
snaps = CrossCorrelationSnapshots(at=[0, 30, 100, STEPS - 1])
loader = ViewLoader(train.x, [Augment()] * 2, batch_size=256, seed=0)
history = fit(bt, loader, steps=STEPS, lr=5e-3,
              callbacks=[snaps, CollapseMonitor(every=25),
                         LivePlot(["loss", "diag_mean", "offdiag_abs_mean"], every=50, title="Barlow Twins")])

# %%
# NBVAL_CHECK_OUTPUT
d, o = history["diag_mean"], history["offdiag_abs_mean"]
print(f"mean diagonal of C: {d[0]:.2f} -> {d[-20:].mean():.2f};  mean |off-diagonal|: {o[0]:.2f} -> {o[-20:].mean():.2f}")
assert d[-20:].mean() > max(0.7, d[0] + 0.3)                      # the diagonal goes towards 1
assert o[-20:].mean() < 0.5 * d[-20:].mean()                      # the off-diagonal stays well below it
assert o[-20:].mean() < 0.7 * o.max()                             # ... and falls after its early peak

# %% [markdown]
# At initialisation the two views of an image are barely correlated: C is near 0 everywhere.
# In the first few steps everything correlates at once (the invariance term is the big one: the
# loss starts near D = 128), then the redundancy term takes over and the off-diagonal fades
# while the diagonal stays near 1: C heads to the identity. In 300 steps with a 23k-parameter
# encoder it gets only part of the way. What does the off-diagonal term buy? Switch it off.
#
# ## Lambda: what the redundancy term buys
# With lambda = 0 only the diagonal is trained. Batch normalisation still forbids a constant
# output, but nothing stops all 128 dimensions from encoding the same feature: the effective
# rank of z (notebook 02) drops. 120 steps are enough to see it (compared with the 300-step
# run above).

# %%
cl_teach.setup(seed=0, verbose=False)
no_redundancy = BarlowTwins(SmallCNN(), lambd=0.0)
h0 = fit(no_redundancy, ViewLoader(train.x, [Augment()] * 2, batch_size=256, seed=0), steps=120,
         lr=5e-3, desc="lambda = 0", callbacks=[CrossCorrelationSnapshots(at=[119])])


@torch.no_grad()
def rank_of_z(method, x=test.x[:2000]):
    """Effective rank of the projections z = g(f(x)) of held-out images (eval mode)."""
    method.eval()
    return effective_rank(method.projector(method.encoder(x))).item()


ranks = {0.0: rank_of_z(no_redundancy), 5e-3: rank_of_z(bt)}

# %%
# NBVAL_CHECK_OUTPUT
print(f"mean |off-diagonal of C|: lambda=0 -> {h0['offdiag_abs_mean'][-20:].mean():.2f}, "
      f"lambda=5e-3 -> {o[-20:].mean():.2f}")
print(f"effective rank of z (D = 128) on test images: lambda=0 -> {ranks[0.0]:.1f}, "
      f"lambda=5e-3 -> {ranks[5e-3]:.1f}")
assert h0["offdiag_abs_mean"][-20:].mean() > 2 * o[-20:].mean()   # dimensions become copies
assert ranks[0.0] < 0.5 * ranks[5e-3]

# %% [markdown]
# ## Diagnose: accuracy on held-out images

# %%
cl_teach.setup(seed=0, verbose=False)
results = {"untrained (BN recalibrated)": evaluate(recalibrate_batchnorm(SmallCNN(), train.x)),
           "Barlow Twins": evaluate(bt.encoder),
           "lambda = 0": evaluate(no_redundancy.encoder)}
for name, (knn, probe) in results.items():
    print(f"{name:28s} kNN {knn:.3f}   linear probe {probe:.3f}")
assert results["Barlow Twins"][0] > results["untrained (BN recalibrated)"][0]

# %% [markdown]
# ## Exercises
# 1. **Lambda sweep.** Train 120 steps each with lambda in {1e-3, 5e-3, 2e-2, 1e-1}. Plot the
#    effective rank and kNN against lambda. Where does the invariance term start to lose?
# 2. **Width.** The paper found Barlow Twins keeps improving with a wider projector (up to
#    8192). Try `projection_dim=32` and `projection_dim=512` (adjust lambda to about 1/D).
#
# A solution for exercise 1 (set `RUN_SOLUTIONS = True` to run it, ~40 s):

# %%
RUN_SOLUTIONS = False
# BEGIN SOLUTION
if RUN_SOLUTIONS:
    for lambd in (1e-3, 5e-3, 2e-2, 1e-1):
        cl_teach.setup(seed=0, verbose=False)
        m = BarlowTwins(SmallCNN(), lambd=lambd)
        fit(m, ViewLoader(train.x, [Augment()] * 2, batch_size=256, seed=0), steps=120, lr=5e-3, progress=False)
        m.eval()
        with torch.no_grad():
            r = effective_rank(m.projector(m.encoder(test.x[:2000]))).item()
        print(f"lambda {lambd:g}: effective rank {r:.1f}, kNN {evaluate(m.encoder)[0]:.3f}")
# END SOLUTION

# %% [markdown]
# ## Summary
# - Barlow Twins standardises each dimension over the batch and drives the cross-correlation of
#   the two views to the identity: invariant dimensions that are decorrelated from each other.
# - Measured above: the diagonal of C goes towards 1 while the off-diagonal stays well below it;
#   without the off-diagonal term (lambda = 0) the dimensions become copies of each other (large
#   off-diagonal) and the effective rank of z collapses.
# - No negatives, no predictor, no momentum encoder: the loss alone prevents collapse.
#
# **References:** Zbontar et al., *Barlow Twins: Self-Supervised Learning via Redundancy
# Reduction*, ICML 2021; facebookresearch/barlowtwins `main.py`; Barlow, *Possible principles
# underlying the transformation of sensory messages*, 1961.

# %%
# NBVAL_IGNORE_OUTPUT
print(f"notebook wall time: {time.perf_counter() - t_start:.0f} s")
