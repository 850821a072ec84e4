# %% [markdown]
# # 02 · Collapse: how a contrastive system fails
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
from cl_teach.losses import alignment
from cl_teach.methods import Method, SimSiam

device = cl_teach.setup(seed=0)
train_set = load_fashion_mnist("train").subset(10_000, seed=0)
test_set = load_fashion_mnist("test").subset(2_000, seed=0)

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
#   singular values $\sigma_i$ (Roy & Vetterli, 2007): $D$ if all directions are used, 1 if one.

# %% [markdown]
# ## Derive the monitors

# %%
def my_feature_std(z):
    zn = z / z.norm(dim=1, keepdim=True)                    # on the sphere
    return zn.std(dim=0).mean()                             # std of each dimension, averaged

def my_effective_rank(z):
    s = torch.linalg.svdvals(F.normalize(z, dim=1))         # singular values, descending
    p = s / s.sum()
    return torch.exp(-(p * torch.log(p + 1e-12)).sum())

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(0)
healthy = torch.randn(512, 64, generator=g)                  # spread over all directions
collapsed = torch.ones(512, 64) + 1e-3 * torch.randn(512, 64, generator=g)    # one point
flat = torch.randn(512, 3, generator=g) @ torch.randn(3, 64, generator=g)     # three directions
for name, z in [("healthy", healthy), ("collapsed", collapsed), ("3-d subspace", flat)]:
    assert torch.allclose(my_feature_std(z), metrics.feature_std(z), atol=1e-5)
    assert torch.allclose(my_effective_rank(z), metrics.effective_rank(z), atol=1e-3)
    print(f"{name:>13}: std {metrics.feature_std(z).item():.4f} (1/sqrt(64) = {1 / 8:.4f}), "
          f"effective rank {metrics.effective_rank(z).item():.2f}")

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
    loader = ViewLoader(train_set.x, [Augment()] * 2, batch_size=256, seed=0)
    return train.fit(method, loader, steps=steps, lr=5e-3, desc=title,
                     callbacks=[train.CollapseMonitor(every=5),
                                plotting.LivePlot(["loss", "feature_std", "effective_rank"], every=10,
                                                  title=title, reference={"feature_std": 1 / math.sqrt(64)})])

# %%
# NBVAL_IGNORE_OUTPUT
cl_teach.seed_everything(0)
pos_only = PositivesOnly(models.SmallCNN())
h_pos = run(pos_only, title="positives only")

# %% [markdown]
# ## Experiment 2: SimSiam with and without its stop-gradient, and without its predictor
# SimSiam (Chen & He, 2021) has no negatives either. It predicts one view's projection from the
# other's, $p = q(z)$, and **stops the gradient** through the target:
# $\mathcal L = \tfrac12 D(p_1, \mathrm{sg}(z_2)) + \tfrac12 D(p_2, \mathrm{sg}(z_1))$ with
# $D$ the negative cosine. We train three variants under the same budget. (SimSiam's projector ends in a
# BatchNorm that fixes every dimension's variance and so hides complete collapse from the std
# monitor; we switch that layer off, `output_bn=False`, to see the effect plainly.)

# %%
# NBVAL_IGNORE_OUTPUT
variants = {"SimSiam": dict(), "no stop-gradient": dict(stop_gradient=False),
            "no predictor": dict(predictor=False)}
runs = {}
for name, kw in variants.items():
    cl_teach.seed_everything(0)
    m = SimSiam(models.SmallCNN(), dim=64, output_bn=False, **kw)
    runs[name] = (m, run(m, title=name))

# %% [markdown]
# ## Diagnose
# The monitors at the end of training, measured on held-out test images, and a kNN probe on the
# backbone $h$ (does the encoder still separate the classes?).

# %%
# NBVAL_CHECK_OUTPUT
def summary(method):
    z = metrics.embed(torch.nn.Sequential(method.encoder, method.projector), test_set.x[:1000])
    knn = metrics.knn_accuracy(metrics.embed(method, train_set.x), train_set.y,
                               metrics.embed(method, test_set.x), test_set.y, k=20)
    return z, metrics.feature_std(z).item(), metrics.effective_rank(z).item(), knn

results = {"positives only": summary(pos_only)}
results.update({name: summary(m) for name, (m, _) in runs.items()})
print(f"{'':>17} {'std(z/|z|)':>10} {'eff. rank':>9} {'kNN':>6}    healthy std = 1/sqrt(64) = 0.125")
for name, (_, std, rank, knn) in results.items():
    print(f"{name:>17} {std:>10.4f} {rank:>9.2f} {knn:>6.3f}")

# %% [markdown]
# The claims of this notebook, checked on the numbers above:
# * positives-only training collapses completely: std $\to\approx 0$, effective rank $\to\approx 1$;
# * SimSiam *with* stop-gradient keeps its embeddings spread out;
# * *without* the stop-gradient, or *without* the predictor, it collapses.

# %%
healthy_std = 1 / math.sqrt(64)
for name in ("positives only", "no stop-gradient", "no predictor"):
    _, std, rank, _ = results[name]
    assert std < 0.1 * healthy_std and rank < 2.5, f"{name} should collapse: std {std}, rank {rank}"
_, std, rank, _ = results["SimSiam"]
assert std > 0.5 * healthy_std and rank > 5, f"SimSiam should not collapse: std {std}, rank {rank}"
print("collapse claims hold")

# %% [markdown]
# ## Dimensional collapse in the spectrum
# Complete collapse leaves one singular value; a healthy embedding spreads its energy over many.
# Even SimSiam here uses far fewer than its 64 directions: *dimensional* collapse (Jing et al.,
# ICLR 2022), which the effective rank reads off as one number.

# %%
display(plotting.plot_spectrum({name: r[0] for name, r in results.items()},
                               title="singular values of test embeddings z (log scale)"))

# %% [markdown]
# ## Explore
# Run `run(...)` on a SimSiam with `output_bn=True` (the paper's projector) and no stop-gradient:
# does the std monitor still see the collapse? What does the effective rank say?
#
# ## Exercise
# Add a weak *uniformity* term to the positives-only loss,
# $\mathcal L = \text{alignment} + \lambda\,\text{uniformity}$ (notebook 03), train 100 steps and
# compare its monitors with positives-only. (Wang & Isola show this alone learns good features.)

# %%
# NBVAL_IGNORE_OUTPUT
from cl_teach.losses import uniformity
# BEGIN SOLUTION
class AlignUniform(PositivesOnly):
    def training_step(self, batch):
        out = super().training_step(batch)
        z1 = self.projector(self.encoder(batch[0]))
        out["loss"] = out["loss"] + 1.0 * uniformity(z1)
        return out

cl_teach.seed_everything(0)
au = AlignUniform(models.SmallCNN())
h_au = run(au, steps=60, title="alignment + uniformity")
print(f"final std {h_au.last('feature_std'):.3f}, effective rank {h_au.last('effective_rank'):.1f}")
# END SOLUTION

# %% [markdown]
# ## Summary
# * Without something that pushes embeddings apart, "make positives similar" collapses to a point.
# * Watch the std of normalised embeddings ($\approx 1/\sqrt D$ healthy) and the effective rank.
# * SimSiam avoids collapse without negatives thanks to the stop-gradient *and* the predictor;
#   remove either and it collapses.
#
# **References:** Chen & He, *Exploring Simple Siamese Representation Learning* (SimSiam), CVPR 2021 ·
# Jing et al., *Understanding Dimensional Collapse in Contrastive Self-supervised Learning*, ICLR 2022 ·
# Roy & Vetterli, *The effective rank*, 2007 · Garrido et al., *RankMe*, ICML 2023.
