# %% [markdown]
# # 07 BYOL and SimSiam: learning without negatives
#
# **Learning goals**
# 1. Write BYOL's loss: an online network *predicts* the projection of a slowly moving target
#    network (2 - 2 cos), and the target follows by an exponential moving average.
# 2. See that SimSiam keeps only the essential part: a predictor and a stop-gradient.
# 3. Measure why no negatives are needed: the same "pull positives together" loss collapses
#    without the predictor and stop-gradient, and does not with them.
#
# **Prerequisites:** 02 (collapse and its monitors), 04 (SimCLR), 05 (the momentum encoder).
#
# **Time budget:** about 1.5 minutes on a 2-core laptop CPU (one thread), measured in the closing note.

# %%
import copy
import math
import time

import torch
import torch.nn.functional as F
from IPython.display import display

import cl_teach
from cl_teach.augment import Augment
from cl_teach.data import ViewLoader, load_fashion_mnist
from cl_teach.losses import negative_cosine
from cl_teach.methods import BYOL, SimSiam, ema_update
from cl_teach.evaluation import knn_and_probe
from cl_teach.metrics import recalibrate_batchnorm
from cl_teach.models import SmallCNN
from cl_teach.plotting import LivePlot, plot_history
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
# Contrastive methods need negatives to stop every image from mapping to the same point.
# BYOL (Grill et al., 2020) has none. Two networks see two views of an image:
#
# - the **online** network: $z = g_\theta(f_\theta(x))$, then a predictor $p = q_\theta(z)$;
# - the **target** network: $z' = g_\xi(f_\xi(x'))$, with **no gradient**, and after each step
#   $\xi \leftarrow \tau \xi + (1 - \tau)\theta$ (tau from 0.99 up to 1 on a cosine schedule).
#
# The loss is the squared distance of the normalised vectors,
# $\mathcal{L} = \lVert \bar p - \bar z' \rVert^2 = 2 - 2\cos(p, z')$, symmetrised over the two views.
#
# Why doesn't it collapse? A constant output would minimise the loss, but the target is not
# trained towards it: it only averages the online weights, and the predictor, trained much
# faster, keeps tracking the best prediction of the target (close to the conditional mean
# of z' given z). Chen & He (SimSiam, 2021) showed that the EMA is not even required: with
# **stop-gradient** on the target branch (target = the same network, `z.detach()`) and a
# predictor, training still does not collapse; removing either one collapses.
#
# ## Derive: BYOL's loss and target update, inline

# %%
def byol_loss_inline(p1, p2, z1_t, z2_t):
    def regression(p, z):                                   # || p/|p| - z/|z| ||^2 = 2 - 2 cos
        return (F.normalize(p, dim=1) - F.normalize(z, dim=1)).pow(2).sum(dim=1)
    return ((regression(p1, z2_t.detach()) + regression(p2, z1_t.detach())) / 2).mean()


@torch.no_grad()
def target_update_inline(target, online, tau):
    for xi, theta in zip(target.parameters(), online.parameters()):
        xi.copy_(tau * xi + (1 - tau) * theta)              # xi <- tau xi + (1 - tau) theta


cl_teach.setup(seed=0, verbose=False)
byol = BYOL(SmallCNN())
x1, x2 = train.x[:16], train.x[16:32]
out = byol.training_step((x1, x2))
p1 = byol.predictor(byol.projector(byol.encoder(x1)))
p2 = byol.predictor(byol.projector(byol.encoder(x2)))
with torch.no_grad():
    t1, t2 = (byol.target_projector(byol.target_encoder(x)) for x in (x1, x2))
ours = byol_loss_inline(p1, p2, t1, t2)
assert torch.allclose(ours, out["loss"], atol=1e-5)
assert torch.allclose(ours, 2 + negative_cosine(p1, t2) + negative_cosine(p2, t1), atol=1e-5)
target = copy.deepcopy(byol.target_encoder)
target_update_inline(target, byol.encoder, 0.99)
ema_update(byol.target_encoder, byol.encoder, 0.99)
assert all(torch.allclose(a, b) for a, b in zip(target.parameters(), byol.target_encoder.parameters()))
print(f"inline BYOL loss {ours.item():.4f} = BYOL.training_step = 2 + negative_cosine terms; "
      "inline EMA = ema_update")

# %% [markdown]
# ## Experiment: BYOL, SimSiam, and the same loss without the tricks
# Three runs on the same batches (batch 256):
# - **BYOL** (predictor + EMA target), 250 steps;
# - **SimSiam** (predictor + stop-gradient, no EMA), 250 steps;
# - **no predictor, no stop-gradient** (`SimSiam(predictor=False, stop_gradient=False,
#   output_bn=False)`): plain "make the two views agree", 40 steps, enough to see it collapse.
#   (`output_bn=False` drops the projector's last BatchNorm, which would hide the collapse from
#   the std monitor, as notebook 02 explains.)
#
# The collapse monitor is the per-dimension std of the normalised z: about $1/\sqrt{D}$ = 0.125
# for a healthy 64-d embedding, 0 for a collapsed one.

# %%
STEPS = 250
reference = {"feature_std": 1 / math.sqrt(64)}
runs, histories = {}, {}
for name, make, steps in [("BYOL", lambda: BYOL(SmallCNN()), STEPS),
                          ("SimSiam", lambda: SimSiam(SmallCNN()), STEPS),
                          ("no predictor, no stop-grad",
                           lambda: SimSiam(SmallCNN(), predictor=False, stop_gradient=False, output_bn=False), 40)]:
    cl_teach.setup(seed=0, verbose=False)
    method = make()
    loader = ViewLoader(train.x, [Augment()] * 2, batch_size=256, seed=0)
    histories[name] = fit(method, loader, steps=steps, lr=5e-3, desc=name,
                          callbacks=[CollapseMonitor(every=10),
                                     LivePlot(["loss", "feature_std", "effective_rank"], every=50,
                                              title=name, reference=reference)])
    runs[name] = method

# %% [markdown]
# ## Diagnose

# %%
cl_teach.setup(seed=0, verbose=False)
results = {"untrained": evaluate(recalibrate_batchnorm(SmallCNN(), train.x))}   # fair baseline (02)
results.update({name: evaluate(m.encoder) for name, m in runs.items()})
for name, (knn, probe) in results.items():
    std = f"{histories[name].last('feature_std'):.3f}" if name in histories else "-"
    print(f"{name:28s} kNN {knn:.3f}   linear probe {probe:.3f}   std of z {std}")

# %%
# NBVAL_CHECK_OUTPUT
collapsed = histories["no predictor, no stop-grad"]
print(f"std of normalised z at the end: BYOL {histories['BYOL'].last('feature_std'):.2f}, "
      f"SimSiam {histories['SimSiam'].last('feature_std'):.2f}, "
      f"no predictor/stop-grad {collapsed.last('feature_std'):.2f}")
assert collapsed.last("feature_std") < 0.1 / math.sqrt(64) and collapsed.last("loss") < -0.99   # collapsed
for name in ("BYOL", "SimSiam"):
    assert histories[name].last("feature_std") > 0.05, f"{name} should not collapse"
    assert results[name][0] > results["untrained"][0], f"{name} should beat the untrained encoder"

# %% [markdown]
# The collapsed run reaches the loss minimum (-1: both views identical) by mapping everything to
# one point; BYOL and SimSiam keep a spread-out embedding without a single negative. The target
# network of BYOL got no gradient but moved by EMA:

# %%
b = runs["BYOL"]
assert all(not p.requires_grad and p.grad is None for p in b.target_encoder.parameters())
gap = sum((pt - po).pow(2).sum() for pt, po in zip(b.target_encoder.parameters(), b.encoder.parameters())).sqrt()
print(f"||xi - theta|| after training: {gap.item():.3f} (the target trails the online network)")
assert gap > 0

# %% [markdown]
# ## Exercises
# 1. **BYOL without a predictor.** `BYOL` has no switch for it; subclass it and replace
#    `self.predictor` with `torch.nn.Identity()`. Train 120 steps: does it collapse?
# 2. **Momentum.** Train BYOL with `momentum=0` (the target is a copy of the online network at
#    every step, like SimSiam) and `momentum=0.999`. Compare kNN.
#
# A solution for exercise 1 (set `RUN_SOLUTIONS = True` to run it, ~15 s):

# %%
RUN_SOLUTIONS = False
# BEGIN SOLUTION
class BYOLNoPredictor(BYOL):
    def __init__(self, encoder, **kw):
        super().__init__(encoder, **kw)
        self.predictor = torch.nn.Identity()


if RUN_SOLUTIONS:
    cl_teach.setup(seed=0, verbose=False)
    h = fit(BYOLNoPredictor(SmallCNN()), ViewLoader(train.x, [Augment()] * 2, batch_size=256, seed=0),
            steps=120, lr=5e-3, callbacks=[CollapseMonitor(every=10)])
    print("std of z:", h["feature_std"][-3:])   # goes towards 0: the BYOL paper reports collapse too
# END SOLUTION

# %% [markdown]
# ## Summary
# - BYOL: an online network with a predictor regresses the projection of an EMA target
#   (2 - 2 cos); SimSiam: the same with a stop-gradient instead of the EMA.
# - No negatives: the asymmetry (predictor + stop-gradient/EMA) is what prevents collapse.
#   Measured above: without it the std of z goes to 0 and the loss to -1.
# - The target network gets no gradient; it moves only by the EMA in `after_step`.
#
# **References:** Grill et al., *Bootstrap Your Own Latent* (BYOL), NeurIPS 2020; Chen & He,
# *Exploring Simple Siamese Representation Learning* (SimSiam), CVPR 2021; Tian, Chen & Ganguli,
# *Understanding Self-Supervised Learning Dynamics without Contrastive Pairs*, ICML 2021.

# %%
# NBVAL_IGNORE_OUTPUT
print(f"notebook wall time: {time.perf_counter() - t_start:.0f} s")
