# %% [markdown]
# # 09 BYOL and SimSiam: learning without negatives
#
# **Learning goals**
# 1. Write BYOL's loss: an online network *predicts* the projection of a slowly moving target
#    network (2 - 2 cos), and the target follows by an exponential moving average.
# 2. See that SimSiam keeps only the essential part: a predictor and a stop-gradient.
# 3. Measure what the predictor does: the same "pull positives together" loss collapses without
#    the predictor and stop-gradient; with them it does not, and a trained linear predictor lines
#    up with the eigenvectors of the embeddings' correlation matrix (DirectPred's analysis).
#
# **Prerequisites:** 03 (collapse and its monitors), 05 (SimCLR), 07 (the momentum encoder).
#
# **Time budget:** about 1.5 minutes on a 2-core laptop CPU (one thread), measured in the closing note.

# %%
import copy
import math
import time

import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

import cl_teach
from cl_teach.augment import Augment
from cl_teach.data import ViewLoader, fashion_mnist_subsets
from cl_teach.evaluation import baselines, best_baseline, knn_and_probe
from cl_teach.losses import negative_cosine
from cl_teach.methods import BYOL, SimSiam, ema_update
from cl_teach.metrics import effective_rank, feature_std
from cl_teach.models import SmallCNN, embed
from cl_teach.plotting import LivePlot
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
# Why doesn't it collapse? A constant output would minimise the loss, but nothing descends the
# gradient of this loss towards it: the target gets no gradient and only averages the online
# weights. Grill et al. (section 3.2) argue from an *optimal* predictor, $q^\star(z) =
# \mathbb{E}[z' \mid z]$: then the online network's update follows the gradient of the expected
# conditional variance $\mathbb{E}\big[\sum_i \mathrm{Var}(z'_i \mid z)\big]$, and discarding
# information (a constant $z$ discards all of it) can only *raise* a conditional variance. They
# hypothesise that the slowly moving target's role is to keep the predictor near-optimal as the
# online network changes. In this kit the predictor is trained by the same optimiser at the
# same learning rate as everything else; a *faster* predictor (a larger relative learning rate,
# or setting it directly from the statistics of z) is what Tian, Chen & Ganguli (DirectPred,
# ICML 2021) study, and we measure their alignment property below.
#
# Chen & He (SimSiam, 2021) showed that the EMA is not even required: with **stop-gradient** on
# the target branch (target = the same network, `z.detach()`) and a predictor, training still
# does not collapse; removing either one collapses.
#
# ## Derive: BYOL's loss and target update, inline

# %%
def byol_loss_inline(p1, p2, z1_t, z2_t):
    # BEGIN SOLUTION
    def regression(p, z):                                   # || p/|p| - z/|z| ||^2 = 2 - 2 cos
        return (F.normalize(p, dim=1) - F.normalize(z, dim=1)).pow(2).sum(dim=1)
    return ((regression(p1, z2_t.detach()) + regression(p2, z1_t.detach())) / 2).mean()
    # END SOLUTION


@torch.no_grad()
def target_update_inline(target, online, tau):
    # BEGIN SOLUTION
    for xi, theta in zip(target.parameters(), online.parameters()):
        xi.copy_(tau * xi + (1 - tau) * theta)              # xi <- tau xi + (1 - tau) theta
    # END SOLUTION


cl_teach.setup(SEED, verbose=False)
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
with torch.no_grad():                       # move the online encoder away from its copy, the target
    g = torch.Generator().manual_seed(SEED)   # (at initialisation they are equal: any update passes)
    for theta in byol.encoder.parameters():
        theta.add_(0.01 * torch.randn(theta.shape, generator=g))
target = copy.deepcopy(byol.target_encoder)
assert not all(torch.equal(a, b) for a, b in zip(target.parameters(), byol.encoder.parameters()))
target_update_inline(target, byol.encoder, 0.99)
ema_update(byol.target_encoder, byol.encoder, 0.99)
assert all(torch.allclose(a, b) for a, b in zip(target.parameters(), byol.target_encoder.parameters()))
print(f"inline BYOL loss {ours.item():.4f} = BYOL.training_step = 2 + negative_cosine terms; "
      "inline EMA = ema_update")

# %% [markdown]
# ## Experiment: BYOL, SimSiam, and the same loss without the tricks
# Four runs on the same batches (batch 256):
# - **BYOL** (predictor + EMA target), 250 steps;
# - **SimSiam** (predictor + stop-gradient, no EMA), 250 steps;
# - **SimSiam, linear predictor**: the predictor is one bias-free 64 x 64 matrix $W_p$, the
#   setting DirectPred analyses; 250 steps;
# - **no predictor, no stop-gradient** (`SimSiam(predictor=False, stop_gradient=False,
#   output_bn=False)`): plain "make the two views agree", 40 steps, enough to see it collapse.
#   (`output_bn=False` drops the projector's last BatchNorm, which would hide the collapse from
#   the std monitor, as notebook 03 explains.)
#
# The live monitor is the per-dimension std of the normalised z: about $1/\sqrt{D}$ = 0.125 for a
# healthy 64-d embedding, 0 for a collapsed one (its axis is fixed at [0, 1.05/sqrt(D)], so noise
# does not look like drama). For SimSiam and BYOL this train-mode number cannot show a collapse:
# their projector ends in an affine-free BatchNorm that sets every dimension's batch variance
# to 1, and even if all 64 dimensions were copies of one feature the std would stay at
# $1/\sqrt{D}$. The effective rank (third panel) can; the check below uses it on held-out images.

# %%
STEPS, D = 250, 64
ylim = {"feature_std": (0, 1.05 / math.sqrt(D))}
reference = {"feature_std": 1 / math.sqrt(D)}


def simsiam_linear_predictor():
    m = SimSiam(SmallCNN(), projection_dim=D)
    m.predictor = torch.nn.Linear(D, D, bias=False)          # W_p, DirectPred's linear predictor
    return m


runs, histories, RUNS = {}, {}, {
    "BYOL": (lambda: BYOL(SmallCNN(), projection_dim=D), STEPS),
    "SimSiam": (lambda: SimSiam(SmallCNN(), projection_dim=D), STEPS),
    "SimSiam, linear predictor": (simsiam_linear_predictor, STEPS),
    "no predictor, no stop-grad": (lambda: SimSiam(SmallCNN(), projection_dim=D, predictor=False,
                                                   stop_gradient=False, output_bn=False), 40)}


def train_run(name):
    """One run per cell (a long cell can lose output under nbval): same seed, same batches."""
    make, steps = RUNS[name]
    cl_teach.setup(SEED, verbose=False)
    method = make()
    loader = ViewLoader(train.x, [Augment()] * 2, batch_size=256, seed=SEED + 2)
    start = ([p.detach().clone() for p in method.encoder.parameters()],
             getattr(method.predictor, "weight", torch.empty(0)).detach().clone())
    histories[name] = fit(method, loader, steps=steps, lr=5e-3, desc=name,
                          callbacks=[CollapseMonitor(every=10),
                                     LivePlot(["loss", "feature_std", "effective_rank"], every=50,
                                              title=name, reference=reference, ylim=ylim)])
    runs[name] = method
    return start


theta_init, _ = train_run("BYOL")

# %%
_ = train_run("SimSiam")

# %%
_, W_init = train_run("SimSiam, linear predictor")

# %%
_ = train_run("no predictor, no stop-grad")

# %% [markdown]
# ## Diagnose
# The fair baselines (notebooks 04-05): the raw pixels, and the untrained encoder with its
# BatchNorm statistics re-estimated, under the same kNN and linear-probe protocol. Every
# difference comes with a 95% paired-bootstrap interval over the 5,000 test images.
#
# The collapse check reads z of held-out images **in eval mode** (running statistics, no batch
# standardisation) and its effective rank: a run whose dimensions have become copies of each
# other has a rank near 1 there, whatever the train-mode std says.


# %%
@torch.no_grad()
def z_of(method, x=test.x[:2000]):
    """z = g(f(x)) of held-out images, eval mode."""
    return embed(torch.nn.Sequential(method.encoder, method.projector), x)


cl_teach.setup(SEED, verbose=False)
base = baselines(SmallCNN, train, test)
results = {**base, **{name: knn_and_probe(m.encoder, train, test) for name, m in runs.items()}}
z_eval = {name: z_of(m) for name, m in runs.items()}
for name, (knn, probe) in results.items():
    extra = ""
    if name in runs:
        extra = (f"   train-mode std of z {histories[name].last('feature_std'):.3f}   eval z: std "
                 f"{feature_std(z_eval[name]).item():.3f}, effective rank "
                 f"{effective_rank(z_eval[name]).item():.1f}")
    print(f"{name:30s} kNN {knn:.4f}   linear probe {probe:.4f}{extra}")

best = {on: best_baseline(base, on=on) for on in ("knn", "probe")}
diffs = {(name, on): results[name].compare(best[on][1], on=on)
         for name in ("BYOL", "SimSiam") for on in ("knn", "probe")}
for (name, on), d in diffs.items():
    print(f"{name} - {best[on][0]} ({on}): {d.points()} points")

# %%
# NBVAL_CHECK_OUTPUT
collapsed = histories["no predictor, no stop-grad"]
RANK_MIN = 4.0          # of D = 64; a collapsed run sits near 1-2 (tests/test_claims_09_11.py)
rank = {name: effective_rank(z).item() for name, z in z_eval.items()}
for name in ("BYOL", "SimSiam", "SimSiam, linear predictor"):
    print(f"{name}: {'spread out' if rank[name] > RANK_MIN else 'COLLAPSED'} (eval-mode effective rank of z)")
print("no predictor/stop-grad: "
      f"{'collapsed' if rank['no predictor, no stop-grad'] < RANK_MIN else 'not collapsed'}")
assert collapsed.last("feature_std") < 0.1 / math.sqrt(D) and collapsed.last("loss") < -0.99   # collapsed
assert rank["no predictor, no stop-grad"] < RANK_MIN
for name in ("BYOL", "SimSiam", "SimSiam, linear predictor"):
    assert rank[name] > RANK_MIN, f"{name} should not collapse"
for name in ("BYOL", "SimSiam"):
    print(diffs[(name, "probe")].verdict(f"{name}'s linear probe", "the better baseline's"))
    assert diffs[(name, "probe")].low > 0, f"{name}'s linear probe should beat the best baseline"

# %% [markdown]
# The collapsed run reaches the loss minimum (-1: both views identical) by mapping everything to
# one point; BYOL and SimSiam keep a spread-out embedding without a single negative. The linear
# probe of their h beats both baselines. The kNN intervals above are the honest reading of kNN:
# at 250 steps a 23k-parameter encoder does not reliably beat kNN on raw pixels (whether the
# interval excludes 0 changes with the seed), so this notebook claims nothing about kNN.
#
# The target network of BYOL got no gradient but moved by EMA. Where is it? With tau rising from
# 0.99 to 1, it is an average of the online weights over training. The ratio below is 1 for a
# target the EMA never moved (a broken EMA, or tau = 1 from the start; tests/test_claims_09_11.py
# checks that case) and 0 for a copy of the online network. It is printed, not asserted: its
# spread across seeds has not been measured yet.

# %%
b = runs["BYOL"]
assert all(not p.requires_grad and p.grad is None for p in b.target_encoder.parameters())


def distance(params_a, params_b):
    return sum((a - c).pow(2).sum() for a, c in zip(params_a, params_b)).sqrt().item()


online = list(b.encoder.parameters())
lag = distance(b.target_encoder.parameters(), online) / distance(theta_init, online)
print(f"||xi - theta|| / ||theta_0 - theta|| = {lag:.3f} (1 for a target the EMA never moved, 0 for a copy)")
where = ("closer to the final online network than the initialisation does" if lag < 1
         else "no closer to the final online network than the initialisation")
display(Markdown(
    f"The target sits {where}"
    f" (ratio {lag:.2f}). With tau rising to 1 the late steps barely move it, so it is an average "
    "weighted towards the online networks of the first half of training, not a copy."))

# %% [markdown]
# ## Why: what the predictor learns (DirectPred)
# Tian, Chen & Ganguli (2021) analyse BYOL/SimSiam with a linear predictor $W_p$ and show that
# during training the eigenvectors of $W_p$ line up with those of the correlation matrix of the
# online embeddings, $F = \mathbb{E}[z z^\top]$ (and $W_p$ becomes nearly symmetric). Their
# DirectPred then skips training the predictor altogether and sets $W_p$ from the
# eigendecomposition of $F$. A measurement of the alignment: remove from $W_p$ its multiple of
# the identity ($cI$ is diagonal in every basis, so it says nothing), write the rest in $F$'s
# eigenbasis $U$, $M = U^\top (W_p - cI) U$, and take the share of $\lVert M \rVert^2$ on the
# diagonal. A matrix whose eigenvectors are $U$ gives 1. For a matrix unrelated to $U$ (our random
# initialisation, or the same matrix in a random orthonormal basis) it is about $1/D$.

# %%
@torch.no_grad()
def diagonal_share(W, U):
    """Share of ||M||^2 on the diagonal of M = U^T A U, A = W minus its multiple of I."""
    A = W - W.diagonal().mean() * torch.eye(W.shape[0])       # c I is diagonal in every basis
    M = U.T @ A @ U
    return (M.diagonal().pow(2).sum() / (M.pow(2).sum() + 1e-12)).item()


lin = runs["SimSiam, linear predictor"]
z = z_eval["SimSiam, linear predictor"]
F_corr = z.T @ z / z.shape[0]                                   # (D, D), E[z z^T]
eigenvalues, U = torch.linalg.eigh(F_corr)
W = lin.predictor.weight.detach()
R, _ = torch.linalg.qr(torch.randn(D, D, generator=torch.Generator().manual_seed(SEED)))
share = {"trained W_p, eigenbasis of F": diagonal_share(W, U),
         "trained W_p, random basis": diagonal_share(W, R),
         "initial W_p, eigenbasis of F": diagonal_share(W_init, U)}
for k, v in share.items():
    print(f"diagonal share, {k:30s} {v:.3f}   (1/D = {1 / D:.3f})")
asym = ((W - W.T).pow(2).sum() / (W + W.T).pow(2).sum()).item()
asym0 = ((W_init - W_init.T).pow(2).sum() / (W_init + W_init.T).pow(2).sum()).item()
print(f"antisymmetric / symmetric energy of W_p: {asym0:.2f} at init -> {asym:.2f} trained")

aligned = share["trained W_p, eigenbasis of F"]
is_aligned = (aligned > 5 * share["trained W_p, random basis"]
              and aligned > 5 * share["initial W_p, eigenbasis of F"])
display(Markdown(
    ("In this run the trained predictor **is** aligned: its diagonal share in F's eigenbasis is more "
     "than 5 times that in a random basis and that of the initial W_p. " if is_aligned else
     "In this run the alignment is **not** clear: the diagonal share in F's eigenbasis is not 5 times "
     "both controls. ") +
    "(Printed, not asserted: its spread across seeds has not been measured yet.)"))

# %% [markdown]
# Where the alignment holds, the predictor has learned a map that acts direction by direction
# along the principal axes of z, without a single negative. In DirectPred's analysis this
# alignment, together with the stop-gradient, is what makes the collapsed solution unstable:
# each eigen-direction of F grows or decays by its own dynamics, and with the predictor tied to
# F the directions that carry variance across images are kept. It is a measured property of
# *this* run; the theory behind it (linear networks, a predictor near its optimum) is in their
# paper.
#
# ## Does batch normalisation supply hidden negatives?
# Soon after BYOL, Fetterman & Albrecht (Untitled AI blog, 2020) found that BYOL without BatchNorm
# in its MLPs collapsed, and argued that BN leaks information between the images of a batch,
# an *implicit* contrastive term. Richemond et al. (2020, "BYOL works even without batch
# statistics") answered with BYOL trained with group normalisation plus weight standardisation,
# which uses no batch statistics: 73.9% ImageNet linear accuracy against 74.3% with BN. So BN
# helps (their reading: mostly through better-conditioned initialisation), but it is not the
# reason BYOL avoids collapse. Source 004's line "Batch normalization in SimCLR prevents
# representation collapse implicitly" garbles this: the debate was about BYOL; SimCLR has
# explicit negatives and needs no such help.

# %% [markdown]
# ## Explore: BYOL's momentum, SimSiam's stop-gradient, the predictor
# A CNN run per setting takes too long for a slider, so the explorer trains only the *heads*.
# The BYOL encoder trained above is frozen; its features h of two augmented views of a few
# thousand training images are computed once, and each setting trains BYOL's projector g and
# predictor q on them with the same `fit` and the same `BYOL` / `SimSiam` classes
# (`cl_teach.widgets.byol_heads`; every setting starts from the same weights and sees the same
# batches). The setting is the target branch, from no asymmetry to a slow target:
#
# - **no stop-grad**: the target is the online network itself, with gradient (the collapsing loss);
# - **stop-grad (SimSiam)**: the online network, detached;
# - **EMA tau 0.9 / 0.99 / 0.996**: BYOL's target, an EMA of the online heads with tau held fixed
#   (`schedule="constant"`, as in exercise 2), so the slider's tau is the tau of every step;
#
# and the predictor on or off. Every 10 steps it reads the monitors on held-out images' views, in
# eval mode: the effective rank of z, notebook 03's std of the normalised z (these heads end
# without BatchNorm, so here the std can see a collapse), and the held-out loss $2 - 2\cos$ (for
# SimSiam too, on BYOL's scale). All settings are trained here, once, so that a move only redraws.

# %%
from cl_teach.widgets import byol_runs

cl_teach.setup(SEED, verbose=False)
aug_g = torch.Generator().manual_seed(SEED + 3)
x_views, x_held = train.x[:4096], test.x[:512]
views = tuple(embed(runs["BYOL"].encoder, Augment()(x_views, generator=aug_g)) for _ in range(2))
held_out = tuple(embed(runs["BYOL"].encoder, Augment()(x_held, generator=aug_g)) for _ in range(2))
t_explore = time.perf_counter()
explore_runs = byol_runs(views, held_out, steps=150, seed=SEED)
print(f"{len(explore_runs)} settings trained on frozen features {tuple(views[0].shape)} in "
      f"{time.perf_counter() - t_explore:.1f} s")
for st in explore_runs.values():
    print(f"{st['label']:38s} effective rank {st['rank'][0]:5.1f} -> {st['rank'][-1]:5.1f}   "
          f"std of z {st['std'][-1]:.3f}   held-out loss {st['loss'][-1]:.3f}")

# %% [markdown]
# First, the explorer's numbers are the notebook's own: its held-out loss is `byol_loss_inline`
# from the Derive section (with the online z as the target for SimSiam) and its rank is
# `effective_rank` of the online z, recomputed here from the trained heads. Then the directions it
# shows, each checked with a margin (they held at seeds 0 and 1).

# %%
# NBVAL_CHECK_OUTPUT
@torch.no_grad()
def heads_inline(method, pair):
    """z1, z2 (online), p1, p2 (predictions) and t1, t2 (targets) of held-out view pairs, eval mode."""
    method.eval()
    z1, z2 = (method.projector(v) for v in pair)
    p1, p2 = method.predictor(z1), method.predictor(z2)
    t1, t2 = ((method.target_projector(v) for v in pair) if isinstance(method, BYOL) else (z1, z2))
    method.train()
    return z1, p1, p2, t1, t2


for key in ((None, True, True), (0.99, True, True), (None, False, False)):
    st = explore_runs[key]
    z_h, p_h1, p_h2, t_h1, t_h2 = heads_inline(st["method"], held_out)
    assert abs(byol_loss_inline(p_h1, p_h2, t_h1, t_h2).item() - st["loss"][-1]) < 1e-4, st["label"]
    assert abs(effective_rank(z_h).item() - st["rank"][-1]) < 1e-2 * st["rank"][-1], st["label"]
print("the explorer's held-out loss = byol_loss_inline, its rank = effective_rank of z")

final = {key: st["rank"][-1] for key, st in explore_runs.items()}
std_final = {key: st["std"][-1] for key, st in explore_runs.items()}
loss_final = {key: st["loss"][-1] for key, st in explore_runs.items()}
simsiam_rank = final[(None, True, True)]
claims = {
    "no stop-grad collapses (rank < half of SimSiam's, std < a quarter)":
        final[(None, False, True)] < simsiam_rank / 2
        and std_final[(None, False, True)] < std_final[(None, True, True)] / 4,
    "stop-grad without the predictor collapses too (rank < half of SimSiam's)":
        final[(None, True, False)] < simsiam_rank / 2,
    "BYOL with the predictor keeps its rank at every tau (> twice the no-stop-grad run's)":
        all(final[(tau, True, True)] > 2 * final[(None, False, True)] for tau in (0.9, 0.99, 0.996)),
    "without the predictor, the stop-gradient changes nothing (rank within 5%)":
        abs(final[(None, True, False)] - final[(None, False, False)]) < 0.05 * final[(None, False, False)],
    "without the predictor, a slower target collapses less (rank at tau 0.996 > 1.5 x at 0.9)":
        final[(0.996, True, False)] > 1.5 * final[(0.9, True, False)],
    "the two collapsed settings reach a lower held-out loss than any with predictor and target":
        max(loss_final[(None, False, True)], loss_final[(None, True, False)])
        < min(loss_final[(m, True, True)] for m in (None, 0.9, 0.99, 0.996)),
}
for claim, holds in claims.items():
    print(f"{claim}: {holds}")
    assert holds, claim

# %% [markdown]
# Move **target** from *no stop-grad* to *stop-grad (SimSiam)* with the predictor on: the rank
# that fell towards the collapsed end now stays up, and the std stays near $1/\sqrt{D}$. Then
# switch the **predictor** off: with it gone the stop-gradient no longer saves anything. In fact,
# without a predictor *no stop-grad* and *stop-grad* draw the same curves: the symmetrised loss's
# gradient with the stop-gradient is exactly half the one without it, and AdamW's step does not
# see the scale of a gradient. With the predictor still off, slide **target** to the EMA taus:
# the slower the target, the more rank is left after the same steps (a target that barely moves
# from its random start keeps its spread, and the online heads can only match it); with the
# predictor on, every tau keeps the rank. Watch the held-out loss too: the collapsed settings
# reach the lowest loss, which is why a low loss alone says nothing here. (These are heads on
# frozen features, a cheap model of the runs above, and a collapsed z keeps an effective rank a
# little above 1: the leftover noise in the small directions adds to the entropy; the std shows
# the collapse more plainly.)

# %%
# NBVAL_IGNORE_OUTPUT
from cl_teach.widgets import byol_explorer

byol_explorer(views, held_out, runs=explore_runs)

# %% [markdown]
# ## Exercises
# 1. **BYOL without a predictor.** `BYOL` has no switch for it: write `BYOLNoPredictor`, a subclass
#    whose `__init__` replaces `self.predictor` with `torch.nn.Identity()`. The cell after it trains
#    it for 60 steps on the experiment's batches and measures it with the eval-mode effective rank
#    of z (`z_of`, `effective_rank`), not the train-mode std. Does it collapse?
# 2. **Momentum.** By default `BYOL`'s tau follows the paper's cosine schedule from `momentum`
#    *up to 1*, so `momentum=0` alone does not give "a copy at every step": the target still
#    freezes towards the end. Pass `schedule="constant"` to keep tau fixed: `BYOL(SmallCNN(),
#    momentum=0.0, schedule="constant")` copies the online network into the target after every
#    step (SimSiam with a one-step-old target), `momentum=0.999, schedule="constant"` barely moves
#    the target in 250 steps. Compare the linear probe, with intervals (`results[a].compare(...)`).
# 3. **How far back does the target look?** An EMA with a fixed $\tau$ averages the online
#    weights over about $1/(1-\tau)$ steps. Write `tau_at(base, step, total)`, BYOL's schedule
#    $\tau_k = 1 - (1-\tau_{base})(\cos(\pi k/K) + 1)/2$ (Grill et al., 2020, section 3.2), and
#    print that window at the start, the middle and the last step of this notebook's BYOL run.


# %%
class BYOLNoPredictor(BYOL):
    """BYOL whose online branch has no predictor: q = z."""

    def __init__(self, encoder, **kw):
        # BEGIN SOLUTION
        super().__init__(encoder, **kw)
        self.predictor = torch.nn.Identity()
        # END SOLUTION


# %%
cl_teach.setup(SEED, verbose=False)
no_pred = BYOLNoPredictor(SmallCNN(), projection_dim=D)
assert isinstance(no_pred.predictor, torch.nn.Identity), "the predictor should be an Identity"
h_no_pred = fit(no_pred, ViewLoader(train.x, [Augment()] * 2, batch_size=256, seed=SEED + 2), steps=60,
                lr=5e-3, progress=False, callbacks=[CollapseMonitor(every=10)])
rank["no predictor, 60 steps"] = effective_rank(z_of(no_pred)).item()
print(f"no predictor, 60 steps: loss {h_no_pred.last('loss'):.3f} (0 = the views agree exactly), "
      f"eval-mode effective rank of z {rank['no predictor, 60 steps']:.1f} of {D} "
      f"(BYOL after {STEPS} steps: {rank['BYOL']:.1f}; the collapsed run: "
      f"{rank['no predictor, no stop-grad']:.1f})")

# %%
# NBVAL_CHECK_OUTPUT
print("no predictor, 60 steps:",
      "not collapsed" if rank["no predictor, 60 steps"] > RANK_MIN else "COLLAPSED")
assert rank["no predictor, 60 steps"] > RANK_MIN, "at 60 steps the EMA target should still hold off collapse"

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Answer.** Not within 60 steps: the loss falls towards 0 (the online network matches the
# target's z), but the rank stays well above the collapsed run's, because the EMA target still
# moves slowly and the online network has to chase it. The rank is below BYOL's, but BYOL trained
# four times longer, so the printout is no comparison at equal budgets: train both for the same
# steps (and over seeds) before reading a difference. Grill et al. (2020, section 5) report that
# removing the predictor makes BYOL collapse at ImageNet scale, over hundreds of epochs; Tian,
# Chen & Ganguli (2021) explain why the predictor and the slow target are needed together.
# <!-- END SOLUTION -->
#
# <!-- BEGIN SOLUTION -->
# **Answer to 2.** With `momentum=0.0, schedule="constant"` the target is the online network of the
# previous step: BYOL becomes SimSiam (a predictor and a stop-gradient, a one-step-old target),
# which does not collapse either (the SimSiam run above). With `momentum=0.999` the target hardly
# moves from its random initialisation in 250 steps: the online network regresses features of a
# nearly fixed random network, which still teaches it something (Grill et al., 2020, section 3:
# predicting a fixed random network's projection gives 18.8% ImageNet linear accuracy, against 1.4%
# for the random network itself; bootstrapping on a moving target is what improves on it). Which
# is better at this budget the intervals say; claim a difference only when they exclude 0.
# <!-- END SOLUTION -->

# %%
def tau_at(base, step, total):
    """BYOL's cosine schedule: tau at step `step` of `total`, from `base` up to 1."""
    # BEGIN SOLUTION
    return 1 - (1 - base) * (math.cos(math.pi * step / total) + 1) / 2
    # END SOLUTION


# %%
from cl_teach.methods import cosine_momentum

for base in (0.0, 0.99, 0.996):
    for step in (0, 1, STEPS // 3, STEPS // 2, STEPS - 1, STEPS):
        mine, package = tau_at(base, step, STEPS), cosine_momentum(base, step, STEPS)
        assert math.isclose(mine, package, abs_tol=1e-12), (
            f"tau_at({base}, {step}, {STEPS}) = {mine:.6f}, cl_teach's cosine_momentum {package:.6f}")
assert math.isclose(tau_at(0.99, 0, STEPS), 0.99) and math.isclose(tau_at(0.99, STEPS, STEPS), 1.0), (
    "the schedule starts at base and ends at 1")
for step in (0, STEPS // 2, STEPS - 10):                  # at the very end the window has no bound
    tau = tau_at(0.99, step, STEPS)
    print(f"step {step:3d} of {STEPS}: tau = {tau:.6f}, the target averages over ~{1 / (1 - tau):,.0f} steps")

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Answer to 3.** At the start the window is $1/(1-\tau_{base})$ steps; halfway, $1 - \tau$ has
# halved, so the window has doubled; in the last steps $1 - \tau \to 0$ and the window grows
# without bound: the target stops moving and BYOL ends by regressing a frozen network. Compare the
# first window with the run's length: the target lags the online network by a good share of the
# run from the start. Grill et al. (2020, Table 5a, 300 epochs) found $\tau_{base} = 0.996$ best,
# 0.99 close behind; $\tau = 1$ (a target never updated) gave 18.8% linear accuracy and $\tau = 0$
# (a copy at every step) collapsed in their set-up, which SimSiam (Chen & He, 2021) later made work
# (answer 2).
# <!-- END SOLUTION -->

# %% [markdown]
# ## Summary
# - BYOL: an online network with a predictor regresses the projection of an EMA target
#   (2 - 2 cos); SimSiam: the same with a stop-gradient instead of the EMA.
# - No negatives: the asymmetry (predictor + stop-gradient/EMA) is what prevents collapse.
#   Measured above: without it the std of z goes to 0 and the loss to -1; with it the
#   eval-mode effective rank stays well above 1, and the linear probe beats raw pixels and the
#   untrained encoder.
# - Train-mode std after an affine-free BatchNorm cannot detect collapse; use the rank of
#   held-out embeddings.
# - A linear predictor learns the eigenvectors of the correlation matrix of z (DirectPred).
# - The target network gets no gradient; it moves only by the EMA in `after_step`.
#
# **References:** Grill et al., *Bootstrap Your Own Latent* (BYOL), NeurIPS 2020; Chen & He,
# *Exploring Simple Siamese Representation Learning* (SimSiam), CVPR 2021; Tian, Chen & Ganguli,
# *Understanding Self-Supervised Learning Dynamics without Contrastive Pairs* (DirectPred),
# ICML 2021; Fetterman & Albrecht, *Understanding self-supervised and contrastive learning with
# "Bootstrap Your Own Latent" (BYOL)*, Untitled AI blog, 2020; Richemond et al., *BYOL works
# even without batch statistics*, arXiv:2010.10241, 2020.

# %%
# NBVAL_IGNORE_OUTPUT
print(f"notebook wall time: {time.perf_counter() - t_start:.0f} s")
