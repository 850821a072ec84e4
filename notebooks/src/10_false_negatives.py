# %% [markdown]
# # 10 False negatives: when a "negative" is the same kind of thing
#
# **Learning goals**
# 1. Count the false negatives of instance discrimination exactly: the share of a view's in-batch
#    negatives that share its label, $\sum_c \frac{n_c}{N}\frac{n_c - 1}{N - 1}$, and why a bigger
#    batch does not dilute it (it brings *more* of them).
# 2. Write two cures inline and check them against the package: NT-Xent with same-class negatives
#    removed by oracle labels (the supervised limit of false-negative elimination), and the
#    debiased estimator of Chuang et al. (2020), which needs only the class prior $\tau^+$.
# 3. Test a claim from the talk this course follows, "negative-free methods succeed because they
#    avoid treating true positives as negatives", with one budget for SimCLR, the oracle, the
#    debiased loss and BYOL, and paired intervals against each other and the fair baselines.
#
# **Prerequisites:** 01 (InfoNCE and NT-Xent), 05 (SimCLR and the honest evaluation), 09 (BYOL);
# 02 (SupCon) for the supervised limit.
#
# **Time budget:** about 1.5 minutes on a 2-core laptop CPU (one thread), measured in the closing note.

# %%
import math
import time
from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from matplotlib.figure import Figure
from scipy.stats import hypergeom

import cl_teach
from cl_teach.augment import Augment
from cl_teach.data import TensorLoader, ViewLoader, fashion_mnist_subsets
from cl_teach.evaluation import baselines, best_baseline, knn_and_probe
from cl_teach.losses import debiased_info_nce, nt_xent
from cl_teach.methods import BYOL, SimCLR
from cl_teach.models import SmallCNN, embed
from cl_teach.palette import PALETTE
from cl_teach.plotting import LivePlot
from cl_teach.train import fit

SEED = cl_teach.notebook_seed()
device = cl_teach.setup(SEED)
t_start = time.perf_counter()

# %% [markdown]
# ## Data
# Real Fashion-MNIST, read offline (the loader announces loudly if it falls back to scikit-learn's
# digits). We train on 12,000 training images and evaluate on all 10,000 held-out test images
# (the whole test split: the paired intervals below are about 30% narrower than with 5,000).

# %%
train, test = fashion_mnist_subsets(12_000, 10_000, seed=SEED)
C = len(train.classes)
M_c = torch.bincount(train.y, minlength=C)                      # (C,) images per class
print(train, "\n", test)
print("training images per class:", M_c.tolist())

# %% [markdown]
# ## Intuition and math: a negative of the same class
# SimCLR (notebook 05) treats every image as its own class: the positive of a view is the other
# view of the *same image*, and the other $2N - 2$ views of the batch are negatives. Nothing stops
# two T-shirts from meeting in a batch. Each is then pushed away from the other, and *harder* than
# from a sandal: NT-Xent's push on a negative is its softmax weight, which grows with its
# similarity (notebook 01). Yet a classifier on top of $h$ will later want the two together. These
# are the **false negatives** (source 001, pitfall 3).
#
# **How many?** A batch of $N$ images holds $n_c$ of class $c$. A view of class $c$ has $2N - 2$
# negative views, of which $2(n_c - 1)$ share its label, a share $\frac{n_c - 1}{N - 1}$. Averaged
# over the $N$ anchors,
#
# $$\rho(\text{batch}) = \sum_c \frac{n_c}{N}\,\frac{n_c - 1}{N - 1}
#   = \frac{\#\{(i, j): i \neq j,\ y_i = y_j\}}{N (N - 1)} .$$
#
# A loader that draws a batch uniformly without replacement from $M$ training images with $M_c$ of
# class $c$ makes $(n_c)$ multivariate hypergeometric, and
# $\mathbb{E}[n_c (n_c - 1)] = N (N - 1) \frac{M_c (M_c - 1)}{M (M - 1)}$. So
#
# $$\mathbb{E}[\rho] = \sum_c \frac{M_c}{M}\,\frac{M_c - 1}{M - 1} \approx \sum_c \pi_c^2
#   = \frac{1}{C} \text{ for } C \text{ balanced classes,}$$
#
# **whatever the batch size $N$**. A bigger batch brings more negatives, and in the same proportion
# more false ones: $2 (N - 1)\,\mathbb{E}[\rho]$ same-class views per anchor.
#
# ## Derive: the false-negative rate, exact counts
# The loader's batches are what SimCLR trains on. Their order depends only on the seed, the
# epoch and $N$ (not on the augmentations), so a `TensorLoader` of the labels alone, with the
# same seed, yields exactly the labels of the training batches; the check below confirms it.

# %%
def fn_pairs(y, C):
    """Exact counts: same-label ordered pairs (i, j), i != j, in a batch of labels y; all pairs."""
    # BEGIN SOLUTION
    n_c = torch.bincount(y, minlength=C)                        # (C,) images of each class
    return int((n_c * (n_c - 1)).sum()), len(y) * (len(y) - 1)
    # END SOLUTION


def fn_rate_expected(M_c):
    """E[rho] = sum_c M_c (M_c - 1) / (M (M - 1)), exact, for batches drawn without replacement."""
    # BEGIN SOLUTION
    M = int(M_c.sum())
    return Fraction(int((M_c * (M_c - 1)).sum()), M * (M - 1))
    # END SOLUTION


def fn_per_view_bruteforce(y):
    """For each of the 2N views: how many of its 2N - 2 negatives share its label (a loop)."""
    labels, n = torch.cat([y, y]), len(y)
    out = []
    for i in range(2 * n):
        negatives = [j for j in range(2 * n) if j != i and j != (i + n) % (2 * n)]
        out.append(sum(int(labels[j] == labels[i]) for j in negatives))
    return torch.tensor(out)


y_batch = next(iter(TensorLoader(train.y, batch_size=64, seed=SEED + 2)))[0]
_, _, y_views = next(iter(ViewLoader(train.x, [Augment()] * 2, batch_size=64, seed=SEED + 2, y=train.y)))
assert torch.equal(y_batch, y_views)                            # the labels of the training batches
same, pairs = fn_pairs(y_batch, C)
per_view = fn_per_view_bruteforce(y_batch)                      # (2N,) counts out of 2N - 2
assert Fraction(int(per_view.sum()), 2 * len(y_batch) * (2 * len(y_batch) - 2)) == Fraction(same, pairs)
rho_inf = fn_rate_expected(M_c)
print(f"one batch of 64: {same} same-label ordered pairs of {pairs}, rho = {same / pairs:.4f}; "
      f"the loop over 128 views agrees exactly")
print(f"E[rho] for batches of this training set: {float(rho_inf):.5f} (1/C = {1 / C:.5f})")

# %% [markdown]
# Now the loader's batches at six batch sizes, 200 batches each (over as many epochs as that
# takes): the mean share with its 95% interval over batches, the mean number of same-class views
# per anchor, and the share of anchors that meet at least one image of their class in their batch,
# against the formulas (the last one is hypergeometric: $1 - P(\text{no other image of class } c)$).

# %%
BATCH_SIZES, N_BATCHES = (8, 16, 64, 256, 1024, 4096), 200
BATCH_SIZES = tuple(N for N in BATCH_SIZES if len(train.y) >= N)   # all six (fewer on the digits fallback)


def loader_batches(N, count, seed):
    """The labels of the first `count` training batches of size N (epochs reshuffled by seed)."""
    loader, out = TensorLoader(train.y, batch_size=N, seed=seed), []
    while len(out) < count:
        out += [b[0] for b in loader]
    return out[:count]


def p_at_least_one(N, M_c):
    """P(an anchor's batch holds another image of its class), averaged over the anchor's class."""
    M = int(M_c.sum())
    return sum(m / M * (1 - hypergeom(M - 1, m - 1, N - 1).pmf(0)) for m in M_c.tolist())


rows = {}
for N in BATCH_SIZES:
    batches = loader_batches(N, N_BATCHES, SEED + 2)
    rho = np.array([Fraction(*fn_pairs(b, C)) for b in batches], dtype=float)          # (B,)
    met = np.mean([(torch.bincount(b, minlength=C)[b] > 1).float().mean().item() for b in batches])
    rows[N] = {"rho": rho.mean(), "se": rho.std(ddof=1) / math.sqrt(len(rho)), "met": met,
               "count": 2 * (N - 1) * rho.mean()}
print(f"{'N':>5s} {'rho, measured [95%]':>26s} {'E[rho]':>8s} {'same-class views/anchor':>24s} "
      f"{'2(N-1)E[rho]':>12s} {'P(>=1), measured':>17s} {'formula':>8s}")
for N, r in rows.items():
    print(f"{N:5d} {r['rho']:10.5f} [{r['rho'] - 1.96 * r['se']:.5f}, {r['rho'] + 1.96 * r['se']:.5f}] "
          f"{float(rho_inf):8.5f} {r['count']:24.2f} {2 * (N - 1) * float(rho_inf):12.2f} "
          f"{r['met']:17.4f} {p_at_least_one(N, M_c):8.4f}")

# %%
# NBVAL_CHECK_OUTPUT
Z_MAX = 5          # standard errors: a correct formula misses by more with probability < 1e-6
for N, r in rows.items():
    assert abs(r["rho"] - float(rho_inf)) < Z_MAX * r["se"], f"N = {N}: E[rho] should not depend on N"
    print(f"N = {N:4d}: the measured share agrees with E[rho] (within {Z_MAX} standard errors)")
print(f"the share does not fall with N; same-class views per anchor: "
      f"{round(rows[BATCH_SIZES[0]]['count'])} at N = {BATCH_SIZES[0]}, "
      f"{round(rows[BATCH_SIZES[-1]]['count'])} at N = {BATCH_SIZES[-1]}")

# %%
fig = Figure(figsize=(10.2, 3.6), layout="constrained")
ax1, ax2 = fig.subplots(1, 2)
Ns = np.array(BATCH_SIZES)
ax1.errorbar(Ns, [rows[N]["rho"] for N in Ns], yerr=[1.96 * rows[N]["se"] for N in Ns], fmt="o",
             capsize=3, label="measured on the loader's batches (95% interval)")
ax1.axhline(float(rho_inf), color="k", lw=1, label=r"$E[\rho] = \sum_c M_c (M_c-1) / (M (M-1))$")
ax1.plot(Ns, float(rho_inf) * (Ns - 1) / Ns + 1 / Ns, "--", color=PALETTE["red"],
         label=r"wrong: $E[\sum_c (n_c / N)^2]$ (counts the anchor)")
ax1.set_xscale("log", base=2)
ax1.set_xlabel("batch size N (images)")
ax1.set_ylabel("share of a view's negatives of its class")
ax1.set_title("the false-negative share does not fall with N")
ax1.legend(fontsize=9)
ax2.loglog(Ns, [rows[N]["count"] for N in Ns], "o", label="same-class views, measured")
ax2.loglog(Ns, 2 * (Ns - 1) * float(rho_inf), "k-", lw=1, label=r"same-class views, $2 (N - 1)\, E[\rho]$")
ax2.loglog(Ns, 2 * Ns - 2, ":", color="gray", label="all negatives, 2N - 2")
ax2.set_xlabel("batch size N (images)")
ax2.set_ylabel("negative views per anchor")
ax2.set_title("... so a bigger batch brings more of them")
ax2.legend(fontsize=9)
display(fig)

# %% [markdown]
# The dashed line is a classic slip: $\sum_c (n_c/N)^2$ counts the anchor as its own false
# negative; its expectation is $\mathbb{E}[\rho] (N - 1)/N + 1/N$, which at small batches
# overstates the share (at $N = 8$ about twice the true one).
#
# ## Explore: the batch size and the number of classes
# `cl_teach.widgets.false_negative_explorer` splits this notebook's 12,000 training images into
# $C$ balanced classes and draws 200 batches of $N$ images at each setting, as a shuffled loader
# does. First, its numbers are the formulas derived above:

# %%
# NBVAL_CHECK_OUTPUT
from cl_teach.widgets import false_negative_stats

settings = [(c, n) for c, n in ((10, 64), (100, 256), (1000, 4096)) if 2 * c <= len(train.y) >= n]
for n_classes, n in settings:                         # all three (fewer on the digits fallback)
    st = false_negative_stats(n_classes, n, len(train.y))
    counts = torch.full((n_classes,), len(train.y) // n_classes)      # (C,) balanced classes
    assert math.isclose(st["expected"], float(fn_rate_expected(counts)), rel_tol=1e-12)
    assert math.isclose(st["p_any"], p_at_least_one(n, counts), rel_tol=1e-9)
print(f"false_negative_stats equals fn_rate_expected and p_at_least_one at "
      f"{['no', 'one', 'two', 'three'][len(settings)]} settings")

# %% [markdown]
# Move **batch N** from 8 to 4096: the share stays on its line (about $1/C$) while the false
# negatives per anchor grow with $N$. Move **classes C** to 1000 (ImageNet's number): at $N = 256$
# most anchors meet no image of their class at all, at SimCLR's $N = 4096$ nearly every anchor
# does. Each setting draws its own batches, so about one setting in twenty shows an interval
# that misses the line: that is what a 95% interval means.

# %%
# NBVAL_IGNORE_OUTPUT
from cl_teach.widgets import false_negative_explorer

false_negative_explorer(len(train.y))        # this notebook's 12,000 training images, split into C classes

# %% [markdown]
# ## Two cures, derived
# **Oracle elimination.** With the labels (which self-supervised learning does not have; this is
# the upper bound of what *detecting* false negatives could buy), drop same-class views from each
# denominator and keep the twin as the one positive (Huynh et al. (2022) call this false-negative
# *elimination*; making them extra positives instead, *attraction*, leads towards SupCon, notebook
# 02, Khosla et al. 2020):
#
# $$\ell_i = -\log \frac{e^{s_{i,t(i)}}}{e^{s_{i,t(i)}} + \sum_{j \ne i,\, t(i):\ y_j \ne y_i} e^{s_{ij}}},
#   \qquad s_{ij} = \cos(z_i, z_j) / t .$$
#
# **Debiasing** (Chuang et al., 2020). Without labels, model the negatives as drawn from the data
# distribution $p = \tau^+ p^+ + (1 - \tau^+) p^-$: a share $\tau^+$ (the class prior, our
# $\mathbb{E}[\rho]$) is of the anchor's class. Then
# $\mathbb{E}_{p^-}[e^{s}] = \big(\mathbb{E}_p[e^s] - \tau^+ \mathbb{E}_{p^+}[e^s]\big) / (1 - \tau^+)$.
# The loss estimates $\mathbb{E}_p$ by the $M = 2N - 2$ in-batch negatives and
# $\mathbb{E}_{p^+}$ by the one positive it has, the twin:
#
# $$N_g = \max\Big(\frac{\sum_{j \in \text{neg}} e^{s_{ij}} - \tau^+ M e^{s_{i,t(i)}}}{1 - \tau^+},\
#   M e^{-1/t}\Big), \qquad \ell_i = -\log \frac{e^{s_{i,t(i)}}}{e^{s_{i,t(i)}} + N_g}.$$
#
# The clamp is the smallest value the true sum can take (every cosine $\ge -1$). With
# $\tau^+ = 0$ it is NT-Xent.

# %%
def oracle_nt_xent(z1, z2, y, temperature):
    """NT-Xent over the 2N views with the same-label negatives removed (labels y: (N,))."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)                 # (2N, D)
    s = z @ z.T / temperature                                   # (2N, 2N)
    twin = torch.arange(2 * n).roll(n)                          # (2N,) the positive of view i
    labels = torch.cat([y, y])                                  # (2N,)
    drop = labels[:, None] == labels[None, :]                   # self, twin, same-class views
    drop[torch.arange(2 * n), twin] = False                     # ... but the twin stays
    return F.cross_entropy(s.masked_fill(drop, float("-inf")), twin)


def debiased_inline(z1, z2, temperature, tau_plus):
    """Chuang et al.'s N_g and loss, written with plain exponentials (fine for t >= 0.1)."""
    n, m = z1.shape[0], 2 * z1.shape[0] - 2
    z = F.normalize(torch.cat([z1, z2]), dim=1)                 # (2N, D)
    e = (z @ z.T / temperature).exp()                           # (2N, 2N)
    twin = torch.arange(2 * n).roll(n)
    pos = e[torch.arange(2 * n), twin]                          # (2N,) e^{s_i,t(i)}
    not_neg = torch.eye(2 * n, dtype=torch.bool)
    not_neg[torch.arange(2 * n), twin] = True
    neg = e.masked_fill(not_neg, 0).sum(dim=1)                  # (2N,) sum over the M negatives
    ng = ((neg - tau_plus * m * pos) / (1 - tau_plus)).clamp(min=m * math.exp(-1 / temperature))
    return -(pos / (pos + ng)).log().mean()


TEMPERATURE, TAU_PLUS = 0.1, 1 / C       # the kit's SimCLR temperature; the class prior 0.1
g = torch.Generator().manual_seed(SEED)
z1, z2 = torch.randn(32, 16, generator=g), torch.randn(32, 16, generator=g)
y_all_diff, y_some_same = torch.arange(32), torch.randint(0, 4, (32,), generator=g)
assert torch.allclose(oracle_nt_xent(z1, z2, y_all_diff, TEMPERATURE), nt_xent(z1, z2, TEMPERATURE),
                      atol=1e-5)
assert torch.allclose(oracle_nt_xent(z1, z2, y_all_diff, TEMPERATURE),
                      nt_xent(z1, z2, TEMPERATURE, fused=False), atol=1e-5)
assert torch.allclose(debiased_inline(z1, z2, TEMPERATURE, TAU_PLUS),
                      debiased_info_nce(z1, z2, TEMPERATURE, TAU_PLUS), atol=1e-5)
assert torch.allclose(debiased_info_nce(z1, z2, TEMPERATURE, 0.0), nt_xent(z1, z2, TEMPERATURE), atol=1e-5)
# removing negatives can only lower each term: the oracle loss is below NT-Xent when labels repeat
assert oracle_nt_xent(z1, z2, y_some_same, TEMPERATURE) < nt_xent(z1, z2, TEMPERATURE)
print("oracle NT-Xent with all-different labels == nt_xent (fused and plain); "
      "inline debiased == debiased_info_nce; debiased_info_nce(tau_plus=0) == nt_xent")

# %% [markdown]
# **How the two cures meet.** Give the debiased estimator what only the oracle knows: for anchor
# $i$ with $F_i$ same-class negatives, the batch's own share $\hat\tau_i = F_i / M$ and the mean
# $\hat e^+_i$ of $e^{s}$ over those same-class views instead of the twin's $e^{s_{i,t(i)}}$. Then
# $N_g = (S_i - F_i \hat e^+_i) / (1 - F_i/M) = M \cdot \text{mean}_{\text{true neg}}\, e^{s}$:
# exactly $M / (M - F_i)$ times the oracle's denominator sum. The cell checks that identity. So
# the debiased loss is the oracle's, *if* two things hold: $\tau^+ \approx F_i / M$ (true on average,
# above) and $e^{s_{i,t(i)}} \approx \hat e^+_i$, a same-class image about as similar as the
# anchor's own twin. The second is what the diagnosis below measures.

# %%
def ideal_debiased_ng(z1, z2, y, temperature):
    """N_g with the batch's own same-class share and same-class mean: (N_g, sum over true negatives)."""
    n, m = z1.shape[0], 2 * z1.shape[0] - 2
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    e = (z @ z.T / temperature).exp()                           # (2N, 2N)
    twin = torch.arange(2 * n).roll(n)
    labels = torch.cat([y, y])
    neg = ~torch.eye(2 * n, dtype=torch.bool)
    neg[torch.arange(2 * n), twin] = False                      # (2N, 2N) the M negatives
    same = neg & (labels[:, None] == labels[None, :])           # the F_i false negatives
    f = same.sum(dim=1)                                         # (2N,) F_i
    s_all = (e * neg).sum(dim=1)
    e_plus = (e * same).sum(dim=1) / f.clamp(min=1)             # (2N,) mean e^s over same-class views
    tau_hat = f.to(e.dtype) / m
    return (s_all - tau_hat * m * e_plus) / (1 - tau_hat), (e * (neg & ~same)).sum(dim=1), m, f


ng, true_sum, m, f = ideal_debiased_ng(z1.double(), z2.double(), y_some_same, TEMPERATURE)
assert torch.allclose(ng, true_sum * m / (m - f))
print("debiased N_g with the batch's own share and same-class mean == M / (M - F_i) x the oracle's sum")

# %% [markdown]
# ## Experiment: one budget, four losses
# Same 12,000 images, same batches (256 images; the batches carry their labels:
# `ViewLoader(x, [Augment()] * 2, y=labels)`), same augmentations, same initial SmallCNN, same
# 250 steps of AdamW at lr 5e-3, same temperature 0.1 for the three contrastive losses:
# - **SimCLR**: NT-Xent; the labels are carried but not used by the loss;
# - **oracle**: NT-Xent without the same-class negatives (`oracle_nt_xent` above);
# - **debiased**: `debiased_info_nce` with $\tau^+ = 0.1$, the class prior; no labels used;
# - **BYOL** (`cl_teach.methods.BYOL`): no negatives at all.
#
# Every run also logs a monitor computed from the labels (which SimCLR, debiased and BYOL never
# use to learn): **fn_share**, the share of a view's softmax over its $2N - 2$ negatives ($t = 0.1$,
# in the projection space $z$) that lands on views of its own class. For NT-Xent it is exactly the
# share of the loss's *push* on the negatives that goes to false negatives: the gradient of
# $\ell_i$ with respect to the logit $s_{ij}$ of a negative is its softmax weight $p_{ij}$. With
# no class structure it sits at the false-negative rate (the grey line); it rises as same-class
# views move close. The debiased run also logs **clamped**, the share of views whose estimate
# $N_g$ falls under the clamp.

# %%
STEPS, BATCH = 250, 256


@torch.no_grad()
def fn_share(z1, z2, y, temperature=TEMPERATURE):
    """Mean share of each view's softmax over its negatives that falls on same-class views."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    twin = torch.arange(2 * n).roll(n)
    labels = torch.cat([y, y])
    not_neg = torch.eye(2 * n, dtype=torch.bool)
    not_neg[torch.arange(2 * n), twin] = True
    p = (z @ z.T / temperature).masked_fill(not_neg, float("-inf")).softmax(dim=1)    # (2N, 2N)
    same = (labels[:, None] == labels[None, :]) & ~not_neg
    return (p * same).sum(dim=1).mean()


@torch.no_grad()
def clamped_share(z1, z2, temperature=TEMPERATURE, tau_plus=TAU_PLUS):
    """Share of the 2N views whose debiased estimate N_g falls under the clamp M e^{-1/t}."""
    n, m = z1.shape[0], 2 * z1.shape[0] - 2
    z = F.normalize(torch.cat([z1, z2]), dim=1).double()
    e = (z @ z.T / temperature).exp()
    twin = torch.arange(2 * n).roll(n)
    pos = e[torch.arange(2 * n), twin]
    neg = e.sum(dim=1) - e.diagonal() - pos
    return ((neg - tau_plus * m * pos) / (1 - tau_plus) <= m * math.exp(-1 / temperature)).double().mean()


class Contrastive(SimCLR):
    """SimCLR's encoder and projector; the loss is NT-Xent, the oracle's, or the debiased one.

    Batches are (x1, x2, y). One process only: under torchrun z and y would need gathering.
    """

    def __init__(self, encoder, loss="nt_xent", tau_plus=TAU_PLUS, temperature=TEMPERATURE):
        super().__init__(encoder, temperature=temperature)
        self.loss, self.tau_plus = loss, tau_plus

    def training_step(self, batch):
        x1, x2, y = batch
        z1, z2 = self.projector(self.encoder(x1)), self.projector(self.encoder(x2))     # (N, P)
        if self.loss == "oracle":
            loss = oracle_nt_xent(z1, z2, y, self.temperature)
        elif self.loss == "debiased":
            loss = debiased_info_nce(z1, z2, self.temperature, self.tau_plus)
        else:
            loss = nt_xent(z1, z2, self.temperature)
        out = {"loss": loss, "fn_share": fn_share(z1, z2, y), "z1": z1.detach(), "z2": z2.detach()}
        if self.loss == "debiased":
            out["clamped"] = clamped_share(z1, z2, self.temperature, self.tau_plus)
        return out


class LabelledBYOL(BYOL):
    """BYOL unchanged; it only reads the labels to log fn_share of its projections."""

    def training_step(self, batch):
        out = super().training_step(batch[:2])
        return out | {"fn_share": fn_share(out["z1"], out["z2"], batch[2])}


def encoder():
    """The same initial SmallCNN for every run; channels_last only for speed (~30% on a CPU)."""
    return SmallCNN().to(memory_format=torch.channels_last)


RUNS = {"SimCLR": lambda: Contrastive(encoder()),
        "oracle": lambda: Contrastive(encoder(), loss="oracle"),
        "debiased": lambda: Contrastive(encoder(), loss="debiased"),
        "BYOL": lambda: LabelledBYOL(encoder())}
runs, histories = {}, {}


def train_run(name):
    """One run per cell (a long cell can lose output under nbval): same seed, same batches."""
    cl_teach.setup(SEED, verbose=False)
    method = RUNS[name]()
    loader = ViewLoader(train.x, [Augment()] * 2, batch_size=BATCH, seed=SEED + 2, y=train.y)
    keys = ["loss", "fn_share"] + (["clamped"] if name == "debiased" else [])
    histories[name] = fit(method, loader, steps=STEPS, lr=5e-3, desc=name,
                          callbacks=[LivePlot(keys, every=125, title=name,
                                              reference={"fn_share": float(rho_inf)},
                                              ylim={"fn_share": (0, 0.7), "clamped": (0, 1)})])
    runs[name] = method


train_run("SimCLR")

# %%
train_run("oracle")

# %%
train_run("debiased")

# %%
train_run("BYOL")

# %% [markdown]
# ## Diagnose
# The fair baselines (notebooks 04-05): the raw pixels, and the untrained encoder with its
# BatchNorm statistics re-estimated, under the same kNN (k = 20) and linear-probe protocol on
# the representation $h = f(x)$. Every difference is paired over the same 10,000 test images,
# with a 95% bootstrap interval.

# %%
def late(name, key="fn_share", last=25):
    """The mean of the last `last` logged values (one batch's value is noisy)."""
    return histories[name][key][-last:].mean()


cl_teach.setup(SEED, verbose=False)
base = baselines(SmallCNN, train, test)
results = {**base, **{name: knn_and_probe(m.encoder, train, test) for name, m in runs.items()}}
for name, (knn, probe) in results.items():
    extra = f"   fn_share, last 25 steps {late(name):.3f}" if name in histories else ""
    print(f"{name:30s} kNN {knn:.4f}   linear probe {probe:.4f}{extra}")
best = {on: best_baseline(base, on=on) for on in ("knn", "probe")}
PAIRS = [("oracle", "SimCLR"), ("debiased", "SimCLR"), ("BYOL", "SimCLR"),
         ("oracle", "BYOL"), ("oracle", "debiased")]
diffs = {(a, b, on): results[a].compare(results[b], on=on) for a, b in PAIRS for on in ("knn", "probe")}
diffs |= {(a, "best baseline", on): results[a].compare(best[on][1], on=on)
          for a in runs for on in ("knn", "probe")}
print(f"\nbetter baseline: kNN {best['knn'][0]}, linear probe {best['probe'][0]}")
for (a, b, on), d in diffs.items():
    print(f"{a:9s} - {b:14s} ({on:5s}): {d.points():>19s} points   {d.verdict(a, b)}")

# %%
fig = Figure(figsize=(10.2, 3.8), layout="constrained")
ax = fig.subplots()
labels = [f"{a} - {b}" for a, b in PAIRS] + [f"{a} - best baseline" for a in runs]
keys = [(a, b) for a, b in PAIRS] + [(a, "best baseline") for a in runs]
y = np.arange(len(keys))[::-1]
for dy, on, label, color in ((0.2, "knn", "kNN (k = 20)", PALETTE["blue"]),
                             (-0.2, "probe", "linear probe", PALETTE["orange"])):
    d = [diffs[(a, b, on)] for a, b in keys]
    est = np.array([100 * x.estimate for x in d])
    err = np.array([[100 * (x.estimate - x.low) for x in d], [100 * (x.high - x.estimate) for x in d]])
    ax.barh(y + dy, est, height=0.4, xerr=err, capsize=3, color=color, label=label, error_kw={"lw": 1})
ax.axvline(0, color="k", lw=1)
ax.set_yticks(y, labels)
ax.set_xlabel("difference in accuracy (points; 95% paired interval over the 10,000 test images)")
ax.set_title(f"one budget: {STEPS} steps at batch {BATCH}, the same batches and initial f; seed {SEED}")
ax.legend(fontsize=9, loc="lower right")
display(fig)

# %% [markdown]
# Asserted below: the differences whose intervals excluded 0 at seeds 0, 1 and 2 and under the
# other CPU dispatch (`benchmarks/claims.py`), and that BYOL does not beat SimCLR, the question the
# talk's claim raises. Every other comparison is printed with its interval above and read by the
# generated text further down, for this seed only.

# %%
# NBVAL_CHECK_OUTPUT
CLAIMS = [("oracle", "BYOL", "knn"), ("oracle", "BYOL", "probe"),            # a beats b
          ("oracle", "debiased", "knn"), ("oracle", "SimCLR", "knn"),
          ("SimCLR", "best baseline", "probe"), ("oracle", "best baseline", "probe")]
for a, b, on in CLAIMS:
    assert diffs[(a, b, on)].low > 0, f"{a} should beat {b} ({on}): {diffs[(a, b, on)]}"
    print(f"{on}: {a} beats {b}")
for on in ("knn", "probe"):          # the question is whether BYOL gains: it does not, reliably
    assert not diffs[("BYOL", "SimCLR", on)].low > 0, f"BYOL beats SimCLR ({on})?"
    print(f"{on}: BYOL does not beat SimCLR")


FN_FACTOR = 2      # same-class views end with more than twice their share of NT-Xent's push
assert late("SimCLR") > FN_FACTOR * float(rho_inf)
print(f"SimCLR's fn_share over its last 25 steps: more than {FN_FACTOR} x the false-negative rate")
for name in runs:                    # the oracle does not push them away: they come closest
    if name != "oracle":
        assert late("oracle") > late(name), name
print("fn_share over the last 25 steps: the oracle's is the highest of the four")

# %% [markdown]
# ### Why the debiased loss falls short here: the twin is not a typical same-class image
# The estimator subtracts $\tau^+ M e^{s_{i,t(i)}}$: the twin's term, scaled up to stand for all
# $\tau^+ M \approx F_i$ same-class views. Take 512 held-out images, two views each, through a
# trained network, and read per view: how many times that subtraction exceeds what the same-class
# views really contribute, $\sum_{\text{same}} e^{s}$; what share of $S_i$ they contribute; how
# often the estimate falls under the clamp; and, where it does not, the estimate against the
# oracle's $M \cdot \text{mean}_{\text{true neg}}\, e^s$. The estimate is negative (clamped)
# exactly when (subtraction / same-class sum) x (same-class share of $S_i$) > 1.

# %%
@torch.no_grad()
def estimator_report(method, x, y, tau_plus=TAU_PLUS, temperature=TEMPERATURE, seed=SEED + 3):
    """Medians over 2N views of held-out images: how the debiased estimator fares per view."""
    g = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(method.encoder, method.projector)
    z1, z2 = embed(net, Augment()(x, g)), embed(net, Augment()(x, g))
    n, m = len(y), 2 * len(y) - 2
    z = F.normalize(torch.cat([z1, z2]), dim=1).double()
    e = (z @ z.T / temperature).exp()                           # (2N, 2N)
    twin = torch.arange(2 * n).roll(n)
    labels = torch.cat([y, y])
    neg = ~torch.eye(2 * n, dtype=torch.bool)
    neg[torch.arange(2 * n), twin] = False
    same = neg & (labels[:, None] == labels[None, :])           # the false negatives
    pos, s_all, s_same = e[torch.arange(2 * n), twin], (e * neg).sum(1), (e * same).sum(1)
    estimate = (s_all - tau_plus * m * pos) / (1 - tau_plus)
    truth = m * (s_all - s_same) / (neg & ~same).sum(1)
    kept = estimate > m * math.exp(-1 / temperature)
    return {"subtracted / same-class sum": (tau_plus * m * pos / s_same).median().item(),
            "same-class share of S": (s_same / s_all).median().item(),
            "clamped": 1 - kept.double().mean().item(),
            "estimate / truth (unclamped)": (estimate[kept] / truth[kept]).median().item()
            if kept.any() else float("nan")}


x_probe, y_probe = test.x[:512], test.y[:512]
report = {name: estimator_report(runs[name], x_probe, y_probe) for name in ("debiased", "SimCLR", "oracle")}
for name, r in report.items():
    print(f"{name:9s} " + "   ".join(f"{k} {v:.2f}" for k, v in r.items()))

# %%
# NBVAL_CHECK_OUTPUT
CLAMPED_MIN = 0.5
assert report["debiased"]["clamped"] > CLAMPED_MIN
print(f"trained debiased network, t = {TEMPERATURE}: more than half of the views are clamped")

# %%
r = report["debiased"]
ratio_txt = f"{r['estimate / truth (unclamped)']:.2f}"
display(Markdown(
    f"In the trained debiased network the subtraction is a median "
    f"{r['subtracted / same-class sum']:.1f} times what the same-class views contribute, and they "
    f"contribute a median {r['same-class share of S']:.2f} of $S_i$: for "
    f"{100 * r['clamped']:.0f}% of the views the estimate falls under the clamp"
    + (f" (where it does not, it is a median {ratio_txt} times the oracle's value). "
       if not math.isnan(r["estimate / truth (unclamped)"]) else ". ")
    + "A clamped view's loss, $\\log(1 + M e^{-1/t} / e^{s_{i,t(i)}})$, no longer depends on its "
      "negatives: none of them gets a gradient, true negatives included, and the views left "
      "unclamped carry all the repulsion (the live *clamped* panel shows the share growing as "
      "training sharpens the twins). The correction is right on average over the data "
      "distribution, but it samples the anchor's class by its twin, an augmented copy of the same "
      "image (one positive sample, as in the authors' code), "
      + ("which weighs several times as much as a typical image of the class. "
         if r["subtracted / same-class sum"] > 2 else
         "which here weighs about as much as a typical image of the class. ")
      + "Chuang et al. train at $t = 0.5$, where $e^{s}$ spans a factor $e^{4}$ instead of "
      "$e^{20}$ (exercise 2 reads the clamp at both temperatures on SimCLR's network)."))

# %% [markdown]
# ## What the measurements say about the talk's claim
# The Q&A of source 000: *"Negative-free methods (SwAV, BYOL) succeed because they avoid treating
# true positives as negatives."* The measured differences at this budget, generated from the
# intervals above (the asserted ones held at seeds 0-2 and under the other CPU dispatch; the others
# are read at this seed only):

# %%
def said(a, b, on):
    d = diffs[(a, b, on)]
    return f"{d.verdict(a, b)} ({d.points()} points)"


byol_gains = any(diffs[("BYOL", "SimCLR", on)].low > 0 for on in ("knn", "probe"))
NAMES = {"knn": "kNN", "probe": "linear probe"}
oracle_gains = [NAMES[on] for on in NAMES if diffs[("oracle", "SimCLR", on)].low > 0]
debiased_gains = [NAMES[on] for on in NAMES if diffs[("debiased", "SimCLR", on)].low > 0]
lines = [
    f"- **Are false negatives a small matter?** They are {float(rho_inf):.2f} of every batch's "
    f"negatives, but over SimCLR's last 25 steps they drew {late('SimCLR'):.2f} of NT-Xent's push "
    "on the negatives (fn_share): the loss works hardest against the images most like the anchor.",
    f"- **Does BYOL gain anything over SimCLR here?** kNN: {said('BYOL', 'SimCLR', 'knn')}; "
    f"linear probe: {said('BYOL', 'SimCLR', 'probe')}. "
    + ("BYOL gains at this budget, so there is something to explain." if byol_gains else
       "BYOL gains nothing over SimCLR at this budget: there is no BYOL advantage for removing "
       "false negatives to recover."),
    f"- **Does removing the false negatives help SimCLR?** kNN: {said('oracle', 'SimCLR', 'knn')} "
    f"(asserted); linear probe: {said('oracle', 'SimCLR', 'probe')} (not asserted: at another "
    "seed this interval reached 0). "
    + (f"At this seed removing them helps by {' and '.join(oracle_gains)}." if oracle_gains else
       "No reliable difference at this seed."),
    f"- **Does having no negatives give what removing the false negatives gives?** "
    f"kNN: {said('oracle', 'BYOL', 'knn')}; linear probe: {said('oracle', 'BYOL', 'probe')}. "
    "Avoiding false negatives by having no negatives at all is not the same as removing them: BYOL "
    "also gives up the push away from the true negatives.",
    f"- **Does the debiased loss approach the oracle?** kNN: {said('oracle', 'debiased', 'knn')} "
    f"(asserted); linear probe: {said('oracle', 'debiased', 'probe')} (not asserted: under another "
    "CPU dispatch this interval reached 0). Against SimCLR: kNN "
    f"{said('debiased', 'SimCLR', 'knn')}; probe {said('debiased', 'SimCLR', 'probe')}"
    + (f"; at this seed it gains by {' and '.join(debiased_gains)}." if debiased_gains else
       ": it recovers none of the oracle's gain here."),
]
display(Markdown("\n".join(lines)))

# %% [markdown]
# So, at the scale of a laptop: false negatives are a tenth of every batch and, once the network
# has learned something, they take a far larger share of NT-Xent's push (fn_share, asserted above
# to end beyond twice the rate). Removing them helps SimCLR's kNN accuracy (asserted). The
# negative-free BYOL does not come out ahead: it does not beat SimCLR by either measure and is
# behind the oracle by both (asserted). So "BYOL succeeds because it avoids false negatives"
# does not describe what happens here. This does not refute the
# claim at ImageNet scale (BYOL 74.3% vs SimCLR 69.3% linear accuracy in Grill et al., 2020, after
# hundreds of epochs; here 250 steps, under 6 epochs, of a 23k-parameter CNN): it shows that
# avoiding false negatives does not, by itself, produce a BYOL advantage. BYOL's own paper
# explains it otherwise (the predictor and the slowly moving target, notebook 09). And removing
# false negatives is the weaker use of labels: SupCon (Khosla et al., 2020; notebook 02) also
# *pulls* them in as positives.
#
# ## Exercises
# 1. **More classes, fewer false negatives?** For 100 balanced classes (CIFAR-100: 500 training
#    images each) and 1,000 (ImageNet, about 1,281 each), compute $\mathbb{E}[\rho]$, the number of
#    same-class views per anchor at $N = 256$ and $N = 4096$ (SimCLR's ImageNet batch), and the
#    probability that an anchor meets at least one image of its class.
# 2. **A $\tau^+$ sweep, no training.** On the trained SimCLR network's views of the 512 held-out
#    images, read `estimator_report` for $\tau^+ \in \{0, 0.02, 0.05, 0.1, 0.2\}$ at $t = 0.1$, and
#    at $t = 0.5$ (the authors'). When does the clamp start to bind?
# 3. **Over-estimated $\tau^+$.** With $\tau^+$ too large, who still learns? On one batch of the
#    trained SimCLR's $z$, for $\tau^+ \in \{0, 0.1, 0.3, 0.6\}$: the share of views left
#    unclamped (`clamped_share`), the norm of the gradient of `debiased_info_nce` with respect to
#    $z$, and how much of it the 10% of views with the largest gradient carry.
# 4. **Detecting false negatives without labels** (Huynh et al., 2022, in its simplest form). In the
#    trained SimCLR's $z$ of the 512 held-out images, call each anchor's $k$ most similar other
#    images its false negatives. What share of them really share its label, against the base rate
#    $\mathbb{E}[\rho]$, for $k = 1, 5, 20$?

# %%
def balanced_rate(n_classes, per_class):
    """E[rho] for n_classes balanced classes of per_class training images, in closed form."""
    # BEGIN SOLUTION
    return (per_class - 1) / (n_classes * per_class - 1)       # M_c (M_c - 1) C / (M (M - 1)), M = C M_c
    # END SOLUTION


# %%
for n_classes, per_class in ((10, 6000), (100, 500), (1000, 1281)):
    counts = torch.full((n_classes,), per_class)
    rho_c = balanced_rate(n_classes, per_class)
    assert math.isclose(rho_c, float(fn_rate_expected(counts)), rel_tol=1e-12), (
        f"{n_classes} classes of {per_class}: balanced_rate gives {rho_c}, the exact count "
        f"{float(fn_rate_expected(counts))}")
    print(f"{n_classes:5d} classes: E[rho] = {rho_c:.5f}; same-class views per anchor "
          f"{2 * 255 * rho_c:.2f} at N = 256, {2 * 4095 * rho_c:.1f} at N = 4096; "
          f"P(>= 1 same-class image) {p_at_least_one(256, counts):.3f} at N = 256, "
          f"{p_at_least_one(4096, counts):.3f} at N = 4096")

# %%
# BEGIN SOLUTION
for t in (0.1, 0.5):
    for tp in (0.0, 0.02, 0.05, 0.1, 0.2):
        r = estimator_report(runs["SimCLR"], x_probe, y_probe, tau_plus=tp, temperature=t)
        print(f"t = {t}, tau_plus = {tp:4.2f}: clamped {r['clamped']:.3f}, "
              f"subtracted / same-class sum {r['subtracted / same-class sum']:5.2f}, "
              f"estimate / truth {r['estimate / truth (unclamped)']:.2f}")
# END SOLUTION

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Answer to 2.** The clamp binds more as $\tau^+$ grows, and much more at $t = 0.1$ than at
# $t = 0.5$: the debiased estimate subtracts $\tau^+$ times the positive's term, and at a low
# temperature that term is exponentially larger than a typical negative's, so the difference
# crosses the floor $N e^{-1/t}$ for many anchors (Chuang et al., 2020, clamp the estimate at that
# theoretical minimum). At the authors' $t = 0.5$ the terms are closer in size and the estimate
# stays above the floor for small $\tau^+$: the estimator was designed, and tuned, at that
# temperature.
# <!-- END SOLUTION -->

# %%
# BEGIN SOLUTION
# 3. Gradient left for the negatives as tau_plus grows (one batch of the held-out views).
g = torch.Generator().manual_seed(SEED + 3)
net = torch.nn.Sequential(runs["SimCLR"].encoder, runs["SimCLR"].projector)
z1_b, z2_b = embed(net, Augment()(x_probe, g)), embed(net, Augment()(x_probe, g))
for tp in (0.0, 0.1, 0.3, 0.6):
    a, b = z1_b.clone().requires_grad_(), z2_b.clone().requires_grad_()
    debiased_info_nce(a, b, TEMPERATURE, tp).backward()
    per_view = torch.cat([a.grad, b.grad]).norm(dim=1).pow(2)              # (2N,) squared norms
    top = per_view.topk(len(per_view) // 10).values.sum() / per_view.sum()
    print(f"tau_plus = {tp:3.1f}: unclamped {1 - clamped_share(z1_b, z2_b, TEMPERATURE, tp).item():.3f}, "
          f"|grad| = {per_view.sum().sqrt():.4f}, top 10% of views carry {top:.2f} of |grad|^2")
# END SOLUTION

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Answer to 3.** With $\tau^+ > 0$ the views whose estimate is clamped get a constant
# denominator and no gradient from their negatives, and the few unclamped views divide by a small
# difference of large sums: fewer views learn, each with a larger, noisier gradient, and the
# top 10% of views carry more of it as $\tau^+$ grows ($\tau^+ = 0$ is NT-Xent). Over-estimating
# the false-negative rate does not just over-correct: it concentrates learning on a few views.
# Chuang et al. (2020) set $\tau^+$ near the true class rate ($1/C$): compare with
# $\mathbb{E}[\rho]$ above.
# <!-- END SOLUTION -->

# %%
def detected_precision(z, y, k):
    """Share of each image's k most similar other images (cosine) that share its label, averaged."""
    # BEGIN SOLUTION
    zn = F.normalize(z, dim=1)
    sim = (zn @ zn.T).fill_diagonal_(-2)                        # an image is not its own negative
    nearest = sim.topk(k, dim=1).indices                        # (n, k)
    return (y[nearest] == y[:, None]).float().mean().item()
    # END SOLUTION


# %%
from cl_teach.retrieval import brute_force_search

z_probe = embed(net, x_probe)                                   # (512, P), no augmentation
for k in (1, 5, 20):
    _, ids = brute_force_search(z_probe.numpy(), z_probe.numpy(), k=k + 1, normalize=True)
    others = np.array([[j for j in row if j != i][:k] for i, row in enumerate(ids.tolist())])
    reference = float((y_probe.numpy()[others] == y_probe.numpy()[:, None]).mean())
    mine = detected_precision(z_probe, y_probe, k)
    assert abs(mine - reference) < 0.01, f"k = {k}: {mine:.3f}, the NumPy reference {reference:.3f}"
    assert mine > 3 * float(rho_inf), f"k = {k}: the trained space's neighbours should share labels"
    print(f"k = {k:2d}: {mine:.3f} of the detected false negatives share the label "
          f"(base rate {float(rho_inf):.3f})")

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Answer.** Far above the base rate at every k (asserted: more than three times it): an image's
# nearest neighbours in the trained SimCLR's space mostly share its label (that is what kNN
# accuracy measures), so "the k most similar negatives" is a usable detector; compare the three
# rows for how its precision changes with k. The price is the other side: its misses are hard
# negatives of other classes, the most informative ones, and removing them removes what NT-Xent
# learns most from. Huynh et al. (2022) make the detection more robust by aggregating the
# similarity over several support views of each anchor. The detector is only as good as the
# embedding it reads: try it on `SmallCNN()` untrained (BN statistics re-estimated).
# <!-- END SOLUTION -->

# %% [markdown]
# ## Summary
# - With instance discrimination a share $\sum_c \frac{n_c}{N}\frac{n_c-1}{N-1}$ of each batch's
#   negatives are of the anchor's class; its expectation $\sum_c \frac{M_c (M_c-1)}{M (M-1)}$
#   (about $1/C$) does not depend on the batch size, so bigger batches bring more false negatives.
# - Oracle elimination (drop same-class views from the denominator) is NT-Xent with a mask; the
#   debiased loss subtracts $\tau^+$ times the twin's term and equals the oracle's (up to
#   $M/(M - F_i)$) only when the twin is as similar as a typical same-class image. At $t = 0.1$
#   it is far closer, and most views' estimates fall under the clamp (asserted above).
# - Measured at one budget, with paired intervals: the oracle beats BYOL by kNN and linear probe,
#   and the debiased loss and SimCLR by kNN; BYOL does not beat SimCLR. The talk's explanation of
#   why negative-free methods succeed is not what these runs show.
#
# **References:**
# Chuang, Robinson, Lin, Torralba & Jegelka, *Debiased Contrastive Learning*, NeurIPS 2020 (the
# decomposition $p = \tau^+ p^+ + (1 - \tau^+) p^-$, the estimator with its clamp at $M e^{-1/t}$,
# $\tau^+ = 0.1$ on CIFAR-10 at $t = 0.5$; and that sampling negatives of truly different labels,
# where labels are available, improves performance);
# Huynh, Kornblith, Walter, Maire & Khademi, *Boosting Contrastive Self-Supervised Learning with
# False Negative Cancellation*, WACV 2022 (false negatives discard semantic information and slow
# convergence; identify them without labels and either eliminate them from the denominator or
# attract them as positives; without labels they identify false negatives with about 40% accuracy
# among ImageNet's 1,000 classes);
# Grill et al., *Bootstrap Your Own Latent* (BYOL), NeurIPS 2020 (no negatives; 74.3% vs SimCLR's
# 69.3% ImageNet linear accuracy at ResNet-50);
# Khosla et al., *Supervised Contrastive Learning*, NeurIPS 2020 (the supervised limit: every
# same-class view a positive);
# Chen, Kornblith, Norouzi & Hinton, *A Simple Framework for Contrastive Learning of Visual
# Representations* (SimCLR), ICML 2020 (NT-Xent over the 2N views, batch up to 8192).

# %%
# NBVAL_IGNORE_OUTPUT
print(f"notebook wall time: {time.perf_counter() - t_start:.0f} s")
