# %% [markdown]
# # 03 · Collapse: how a contrastive system fails
#
# **Learning goals**
# 1. See **complete collapse**: pull positives together with nothing pushing apart, and every
#    embedding goes to one point.
# 2. See **dimensional collapse**: embeddings that use only a few directions, read off the
#    singular-value spectrum and the effective rank.
# 3. Use the two live monitors of the course — per-dimension std of normalised embeddings and
#    effective rank — and learn why SimSiam needs its stop-gradient *and* its predictor.
#
# **Prerequisites:** notebooks 00–01. **Time budget:** about 1.5 minutes on a 2-core laptop CPU.

# %%
import math

import torch
import torch.nn.functional as F
from IPython.display import display

import cl_teach
from cl_teach import metrics, models, plotting, train
from cl_teach.augment import Augment
from cl_teach.data import ViewLoader, load_fashion_mnist
from cl_teach.evaluation import baselines, best_baseline, knn_and_probe
from cl_teach.losses import alignment
from cl_teach.methods import Method, SimCLR, SimSiam

SEED = cl_teach.notebook_seed()
device = cl_teach.setup(SEED)
train_set = load_fashion_mnist("train").subset(10_000, seed=SEED)
test_set = load_fashion_mnist("test").subset(2_000, seed=SEED + 1)

# %% [markdown]
# ## Intuition
# A loss that only says "make the two views of an image similar" has a perfect, useless
# solution: map *every* image to the same vector. Alignment is then perfect (0) and the
# representation carries no information. Negatives prevent this by pushing other images away;
# methods without negatives (BYOL, SimSiam) need another mechanism.
#
# Two monitors tell collapse apart from learning, both on $\bar z = z/\lVert z \rVert$ over a batch:
# * **std per dimension** of $\bar z$, averaged over dimensions: $\approx 1/\sqrt{D}$ when the
#   embeddings spread over the sphere, $\to 0$ under complete collapse (Chen & He, 2021);
# * **effective rank** $\exp\big(-\sum_i p_i \log p_i\big)$, $p_i = \sigma_i / \sum_j \sigma_j$ from the
#   singular values $\sigma_i$ of the matrix of $\bar z$ (not centred; Roy & Vetterli, 2007): $D$ if
#   all directions are used equally, 1 if only one is.

# %% [markdown]
# ## Derive the monitors

# %%
def my_feature_std(z):
    # BEGIN SOLUTION
    zn = z / z.norm(dim=1, keepdim=True)                    # on the sphere
    return zn.std(dim=0).mean()                             # std of each dimension, averaged
    # END SOLUTION

def my_effective_rank(z):
    # BEGIN SOLUTION
    s = torch.linalg.svdvals(F.normalize(z, dim=1))         # singular values, descending
    p = s / s.sum()
    return torch.exp(-(p * torch.log(p + 1e-12)).sum())
    # END SOLUTION

# %%
g = torch.Generator().manual_seed(SEED)
healthy = torch.randn(512, 64, generator=g)                  # spread over all directions
collapsed = torch.ones(512, 64) + 1e-3 * torch.randn(512, 64, generator=g)    # one point
flat = torch.randn(512, 3, generator=g) @ torch.randn(3, 64, generator=g)     # three directions
for name, z in [("healthy", healthy), ("collapsed", collapsed), ("3-d subspace", flat)]:
    assert torch.allclose(my_feature_std(z), metrics.feature_std(z), atol=1e-5)
    assert torch.allclose(my_effective_rank(z), metrics.effective_rank(z), atol=1e-3)
    print(f"{name:>13}: std {metrics.feature_std(z).item():.4f} (1/sqrt(64) = {1 / 8:.4f}), "
          f"effective rank {metrics.effective_rank(z).item():.2f}")

# %%
# NBVAL_CHECK_OUTPUT
ranks = {name: metrics.effective_rank(z).item() for name, z in
         [("healthy", healthy), ("collapsed", collapsed), ("3-d subspace", flat)]}
assert ranks["healthy"] > 55 and ranks["collapsed"] < 1.5 and 2.5 < ranks["3-d subspace"] < 3.5, ranks
print("effective rank reads about 64, 1 and 3 directions:", True)

# %% [markdown]
# ## Experiment 1: positives only → complete collapse
# The loss is just alignment, $\mathbb E\lVert \bar z_1 - \bar z_2\rVert^2$: the encoder, projector,
# data and loop are exactly those of SimCLR, only the negatives are gone.

# %%
class PositivesOnly(Method):
    """Two views, an encoder and a projector, and a loss with no negatives."""

    def __init__(self, encoder, dim=64):
        super().__init__(encoder)
        self.projector = models.projector(encoder.out_dim, 256, dim)

    def training_step(self, batch):
        x1, x2 = batch
        z1, z2 = self.projector(self.encoder(x1)), self.projector(self.encoder(x2))
        return {"loss": alignment(z1, z2), "z1": z1.detach(), "z2": z2.detach()}


def run(method, steps=100, title=None):
    """Train with the collapse monitors drawn live; return the history."""
    loader = ViewLoader(train_set.x, [Augment()] * 2, batch_size=256, seed=SEED)
    return train.fit(method, loader, steps=steps, lr=5e-3, desc=title,
                     callbacks=[train.CollapseMonitor(every=5),
                                plotting.LivePlot(["loss", "feature_std", "effective_rank"], every=10,
                                                  title=title, reference={"feature_std": 1 / math.sqrt(64)},
                                                  ylim={"feature_std": (0, 1.05 / math.sqrt(64))})])

# %%
# NBVAL_IGNORE_OUTPUT
cl_teach.setup(SEED, verbose=False)
pos_only = PositivesOnly(models.SmallCNN())
h_pos = run(pos_only, title="positives only")

# %% [markdown]
# ## Experiment 2: SimSiam with and without its stop-gradient, and without its predictor
# SimSiam (Chen & He, 2021) has no negatives either. It predicts one view's projection from the
# other's, $p = q(z)$, and **stops the gradient** through the target:
# $\mathcal L = \tfrac12 D(p_1, \mathrm{sg}(z_2)) + \tfrac12 D(p_2, \mathrm{sg}(z_1))$ with
# $D$ the negative cosine. We train three variants under the same budget. (SimSiam's projector ends in a
# BatchNorm that fixes every dimension's variance and so hides complete collapse from the std
# monitor; we switch that layer off, `output_bn=False`, to see the effect plainly.) A fourth run,
# SimCLR with the same encoder, $D = 64$ and steps, is the contrast: what a method *with*
# negatives reaches at this budget.

# %%
# NBVAL_IGNORE_OUTPUT
variants = {"SimSiam": dict(), "no stop-gradient": dict(stop_gradient=False),
            "no predictor": dict(predictor=False)}
runs = {}
for name, kw in variants.items():
    cl_teach.setup(SEED, verbose=False)
    m = SimSiam(models.SmallCNN(), projection_dim=64, output_bn=False, **kw)
    runs[name] = (m, run(m, title=name))
cl_teach.setup(SEED, verbose=False)
m = SimCLR(models.SmallCNN(), projection_dim=64, temperature=0.2)
runs["SimCLR (contrast)"] = (m, run(m, title="SimCLR, the contrast with negatives"))

# %% [markdown]
# ## Diagnose
# The monitors at the end of training, measured on held-out test images in eval mode, and the
# course's evaluation of the backbone $h$ (kNN with k = 20 and a linear probe: does the encoder
# still separate the classes?). The first row is the *untrained* network (BN statistics
# re-estimated): where every run started. The fair baselines for $h$, under the same protocol, are
# raw pixels and that untrained encoder.

# %%
def summary(method):
    z = models.embed(torch.nn.Sequential(method.encoder, method.projector), test_set.x[:1000])
    return dict(z=z, std=metrics.feature_std(z).item(), rank=metrics.effective_rank(z).item(),
                eval=knn_and_probe(method, train_set, test_set))

cl_teach.setup(SEED + 2, verbose=False)                   # the untrained network's initialisation
fresh = SimSiam(models.SmallCNN(), projection_dim=64, output_bn=False)
metrics.recalibrate_batchnorm(torch.nn.Sequential(fresh.encoder, fresh.projector), train_set.x)
results = {"untrained (start)": summary(fresh), "positives only": summary(pos_only)}
results.update({name: summary(m) for name, (m, _) in runs.items()})
base = baselines(models.SmallCNN, train_set, test_set)
print(f"{'':>29} {'std(z/|z|)':>10} {'eff. rank':>9} {'kNN(h)':>7} {'probe(h)':>8}"
      "    healthy std = 1/sqrt(64) = 0.125")
for name, r in results.items():
    print(f"{name:>29} {r['std']:>10.4f} {r['rank']:>9.2f} {r['eval'].knn:>7.3f} {r['eval'].probe:>8.3f}")
for name, e in base.items():
    print(f"{name:>29} {'':>10} {'':>9} {e.knn:>7.3f} {e.probe:>8.3f}")

# %% [markdown]
# The claims of this notebook, checked on the numbers above:
# * positives-only training collapses completely: std $\to\approx 0$ and the effective rank falls
#   from about 50 at the start to 2 or 3 (thresholds: std below a fifth of the healthy $1/\sqrt D$,
#   effective rank below 5 of 64);
# * SimSiam *with* stop-gradient keeps its embeddings spread out (std above half the healthy value,
#   rank above 5), and so does SimCLR;
# * *without* the stop-gradient, or *without* the predictor, it collapses.
#
# **Why 2 or 3 and not 1.** A collapsed $\bar z$ is one direction plus a tiny spread around it.
# The effective rank reads the singular values $\sigma_i$ themselves (not $\sigma_i^2$): the
# spread puts a tiny $\sigma_i$ on each of the other 63 directions, and 63 tiny values still add up
# to a visible share of $\sum_j \sigma_j$. The next cell builds one direction plus *isotropic* noise
# with each collapsed run's measured std and reads its effective rank: a spread that small
# already lifts the rank from 1 to 2 or 3. The runs read a little lower than their isotropic
# twins because their spread is not isotropic (it uses fewer directions); either way the residual
# above 1 comes from the tiny spread, not from a second direction that carries information. The
# spectrum figure below shows it: one large $\sigma_1$, then a flat floor of tiny values.

# %%
healthy_std = 1 / math.sqrt(64)
gn = torch.Generator().manual_seed(SEED + 3)
direction = F.normalize(torch.randn(64, generator=gn), dim=0)
for name in ("positives only", "no stop-gradient", "no predictor"):
    r = results[name]
    synthetic = direction + r["std"] * torch.randn(1000, 64, generator=gn)
    print(f"{name:>17}: effective rank {r['rank']:.2f} | one direction + isotropic noise of the same "
          f"std ({r['std']:.4f}): {metrics.effective_rank(synthetic).item():.2f}")

# %%
# NBVAL_CHECK_OUTPUT
for name in ("positives only", "no stop-gradient", "no predictor"):
    std, rank = results[name]["std"], results[name]["rank"]
    assert std < 0.2 * healthy_std and rank < 5, f"{name} should collapse: std {std}, rank {rank}"
for name in ("SimSiam", "SimCLR (contrast)"):
    std, rank = results[name]["std"], results[name]["rank"]
    assert std > 0.5 * healthy_std and rank > 5, f"{name} should not collapse: std {std}, rank {rank}"
print("collapse claims hold")
# h survives the collapse of z: a linear probe on h stays far above chance (10 classes: 0.1).
for name in ("positives only", "no stop-gradient", "no predictor"):
    assert results[name]["eval"].probe > 0.5, f"{name}: h should survive the collapse of z"
print("the collapsed runs' h still separates the classes (probe > 0.5):", True)

# %% [markdown]
# ## What the backbone $h$ learned
# Collapse is a statement about $z$. The kNN and probe columns are about $h$, one projector
# earlier, and they tell a different story. Each row below is a difference with the better
# baseline (raw pixels or the untrained encoder), paired on the same 2,000 test images, in points
# with its 95% bootstrap interval.

# %%
best_name, best = best_baseline(base, on="knn")
vs_best = {name: {on: r["eval"].compare(best, on=on) for on in ("knn", "probe")}
           for name, r in results.items() if name != "untrained (start)"}
print(f"best baseline by kNN: {best_name} (kNN {best.knn:.3f}, probe {best.probe:.3f})")
for name, d in vs_best.items():
    print(f"{name:>18}: kNN {d['knn'].points()} | probe {d['probe'].points()}  "
          f"-> kNN: {d['knn'].verdict(name, best_name)}")


# %% [markdown]
# Read the table with the collapse table above:
# * **The collapse happens in $z$, and $h$ survives it.** The collapsed runs' $z$ carry almost no
#   information, yet their $h$ still classifies far above chance (10%): the projector absorbed
#   the collapse, mapping a still-varied $h$ to one point. A collapsed $z$ does not mean an empty
#   encoder, and a healthy $z$ does not mean a useful one.
# * **What 100 steps of SimSiam learned.** Its $z$ is spread out, but whether its $h$ beats the
#   baselines is what the interval says; at this budget SimSiam has not learned measurably more
#   than what raw pixels and an untrained encoder already give (notebook 09 trains it longer).
#   What it *did* learn is to avoid collapse.
# * SimCLR, with negatives, at the same budget, is the contrast for both.

# %% [markdown]
# ## Dimensional collapse in the spectrum
# Complete collapse leaves one singular value; a healthy embedding spreads its energy over many.
# The figure plots the spectrum the effective rank reads: the singular values of the
# L2-normalised, *uncentred* test embeddings $\bar z$ (so a collapsed run keeps one large
# $\sigma_1$, its shared direction). SimSiam uses far fewer than its 64 directions. Jing et al.
# (ICLR 2022) call a spectrum that drops to (near) zero after a few directions *dimensional
# collapse*; here the contrast matters before using that word: the untrained start is where every
# run began, and SimCLR shows what a method with negatives reaches in the same 100 steps. A low
# rank after 100 steps can be early training dynamics as much as a collapse that lasts.

# %%
print("effective rank of test z:", ", ".join(f"{name} {r['rank']:.1f}" for name, r in results.items()))
print("effective rank at step 0 of each run (first training batch):",
      ", ".join(f"{name} {h['effective_rank'][0]:.1f}"
                for name, (_, h) in [("positives only", (None, h_pos)), *runs.items()]))
display(plotting.plot_spectrum({f"{name} (eff. rank {r['rank']:.1f})": r["z"] for name, r in results.items()},
                               title="spectrum of L2-normalised, uncentred test z"))

# %% [markdown]
# ## Explore
# `cl_teach.widgets.collapse_explorer` takes the trained SimCLR's test embeddings and keeps only
# their largest singular directions, optionally adding a little isotropic noise, and reads the
# monitors on the result: the effective rank, the std of $z/\|z\|$, and that std after an
# affine-free BatchNorm over the batch (what a projector ending in BN shows the std monitor in
# train mode). First, its numbers are your monitors from the top of the notebook:

# %%
# NBVAL_CHECK_OUTPUT
from cl_teach.widgets import collapse_stats

z_simclr = results["SimCLR (contrast)"]["z"]                      # (1000, 64) test embeddings
u, s, vh = torch.linalg.svd(z_simclr.double(), full_matrices=False)
for keep in (64, 3, 1):
    st = collapse_stats(z_simclr, keep)
    squeezed = (u[:, :keep] * s[:keep]) @ vh[:keep]                # the `keep` largest directions
    assert math.isclose(st["rank"], my_effective_rank(squeezed).item(), abs_tol=1e-3), keep   # as above
    assert math.isclose(st["std"], my_feature_std(squeezed).item(), rel_tol=1e-4, abs_tol=1e-6), keep
    assert st["std_after_bn"] > 0.9 / math.sqrt(64), "after BN the std monitor reads healthy, always"
print("collapse_stats equals my_effective_rank and my_feature_std at 64, 3 and 1 directions; "
      "after BN the std monitor reads healthy at all three")

# %% [markdown]
# Move **directions** down to 3, then 1: the effective rank follows and the plain std falls, but
# the std after BN stays at $1/\sqrt{D}$, which is why this notebook's SimSiam runs use
# `output_bn=False`. At 1 direction, move **noise** up a little: a spread of a few percent
# lifts the rank from 1 to 2 or more, the residual of the collapsed runs above. Then run
# `run(...)` on a SimSiam with `output_bn=True` (the paper's projector) and no stop-gradient: does
# the std monitor still see the collapse? What does the effective rank say?

# %%
# NBVAL_IGNORE_OUTPUT
from cl_teach.widgets import collapse_explorer

collapse_explorer(z_simclr)

# %% [markdown]
# ## Exercises
# Each code exercise is a function (or a method) to fill in; the cell after it checks it, in the
# student copy too.
#
# 1. **What a healthy spread looks like.** Write `sphere_sample(n, d, generator)`: n points drawn
#    uniformly on the unit sphere of $\mathbb R^d$ (hint: a standard normal vector, normalised, is
#    uniform on the sphere). The check compares the monitors with what uniform points give.

# %%
def sphere_sample(n, d, generator):
    """(n, d) points uniform on the unit sphere."""
    # BEGIN SOLUTION
    x = torch.randn(n, d, generator=generator)
    return x / x.norm(dim=1, keepdim=True)
    # END SOLUTION


# %%
g = torch.Generator().manual_seed(SEED)
z_u = sphere_sample(4096, 64, g)
assert z_u.shape == (4096, 64) and torch.allclose(z_u.norm(dim=1), torch.ones(4096), atol=1e-5), \
    "each row must have norm 1"
std_u, rank_u = metrics.feature_std(z_u).item(), metrics.effective_rank(z_u).item()
assert abs(std_u - 1 / math.sqrt(64)) < 0.005, f"feature std {std_u:.4f}; uniform gives 1/sqrt(64) = 0.125"
assert rank_u > 60 and abs(z_u.mean(0)).max() < 0.05, f"effective rank {rank_u:.1f}: not spread evenly"
print(f"exercise 1: uniform on the sphere: std {std_u:.3f} (1/sqrt(64) = 0.125), effective rank {rank_u:.1f}")

# %% [markdown]
# 2. **A spectrum you choose.** Write `embedding_with_rank(n, d, r, generator)`: n embeddings in
#    $\mathbb R^d$ that use exactly r directions equally (all r nonzero singular values equal): the
#    "dimensional collapse" of the spectrum plot, made on purpose.

# %%
def embedding_with_rank(n, d, r, generator):
    """(n, d) embeddings whose r nonzero singular values are equal."""
    # BEGIN SOLUTION
    u, _ = torch.linalg.qr(torch.randn(n, r, generator=generator))      # (n, r) orthonormal columns
    v, _ = torch.linalg.qr(torch.randn(d, r, generator=generator))      # (d, r) orthonormal columns
    return u @ v.T                                                      # singular values: r ones
    # END SOLUTION


# %%
for r in (1, 3, 16):
    z_r = embedding_with_rank(512, 64, r, g)
    s_r = torch.linalg.svdvals(z_r)
    assert z_r.shape == (512, 64) and (s_r > 1e-4).sum() == r, \
        f"r = {r}: {(s_r > 1e-4).sum()} nonzero singular values"
    assert torch.allclose(s_r[:r], s_r[0].expand(r), rtol=1e-3), f"r = {r}: the singular values differ"
print("exercise 2: r equal singular values; the monitor (rows normalised first) reads",
      {r: round(metrics.effective_rank(embedding_with_rank(512, 64, r, g)).item(), 1) for r in (1, 3, 16)})

# %% [markdown]
# <details><summary><b>Question: which monitor would miss a collapse to 3 directions, and
# why?</b> (open it when you have your own answer)</summary>
#
# The std monitor. Look at the derive cell's printout: the "3-d subspace" embeddings have a
# feature std close to the healthy ones', while their effective rank reads 3. The std of each
# coordinate measures spread along the axes, and points spread over a 3-dimensional subspace
# that is not aligned with the axes still vary along every axis. Only the spectrum counts the
# directions used: *dimensional* collapse (Jing et al., ICLR 2022) shows in the effective rank
# (and in the spectrum plot above), a *complete* collapse in both.
# </details>
#
# 3. **The cure for Experiment 1.** Add a *uniformity* term to the positives-only loss,
#    $\mathcal L = \text{alignment} + \lambda\,\tfrac12\big(\text{uniformity}(z_1) +
#    \text{uniformity}(z_2)\big)$ (notebook 04) with $\lambda = 1$, the weight Wang & Isola
#    (ICML 2020) use, averaged over both views as they do: write the loss in `training_step`. The
#    check trains it as long as positives-only trained and compares the effective ranks.

# %%
from cl_teach.losses import uniformity


class AlignUniform(PositivesOnly):
    def __init__(self, encoder, lam=1.0, dim=64):
        super().__init__(encoder, dim)
        self.lam = lam

    def training_step(self, batch):
        x1, x2 = batch
        z1, z2 = self.projector(self.encoder(x1)), self.projector(self.encoder(x2))
        # BEGIN SOLUTION
        loss = alignment(z1, z2) + self.lam * (uniformity(z1) + uniformity(z2)) / 2
        # END SOLUTION
        return {"loss": loss, "z1": z1.detach(), "z2": z2.detach()}


# %%
# NBVAL_IGNORE_OUTPUT
cl_teach.setup(SEED, verbose=False)
h_au = run(AlignUniform(models.SmallCNN(), lam=1.0), steps=len(h_pos["loss"]), title="alignment + uniformity")
rank_au, rank_pos = h_au.last("effective_rank"), h_pos.last("effective_rank")
print(f"exercise 3: effective rank after {len(h_pos['loss'])} steps: alignment + uniformity "
      f"{rank_au:.1f}, positives only {rank_pos:.1f}")
assert rank_au > 5 * rank_pos, "with the uniformity term the embeddings should not collapse"

# %% [markdown]
# ## Summary
# * Without something that pushes embeddings apart, "make positives similar" collapses to a point.
# * Watch the std of normalised embeddings ($\approx 1/\sqrt D$ healthy) and the effective rank.
# * SimSiam avoids collapse without negatives thanks to the stop-gradient *and* the predictor;
#   remove either and it collapses. A collapsed run's effective rank reads 2 or 3, not 1: a tiny
#   spread around one direction.
# * Collapse of $z$ is not collapse of $h$: the projector can absorb it. And avoiding collapse is not
#   learning: compare $h$ with raw pixels and the untrained encoder, with an interval.
#
# **References:** Chen & He, *Exploring Simple Siamese Representation Learning* (SimSiam), CVPR 2021 ·
# Jing et al., *Understanding Dimensional Collapse in Contrastive Self-supervised Learning*, ICLR 2022 ·
# Roy & Vetterli, *The effective rank*, 2007 · Garrido et al., *RankMe*, ICML 2023 · Wang & Isola,
# *Understanding Contrastive Representation Learning through Alignment and Uniformity on the
# Hypersphere*, ICML 2020.
