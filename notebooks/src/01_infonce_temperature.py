# %% [markdown]
# # 01 · InfoNCE and the temperature
#
# **Learning goals**
# 1. Read InfoNCE as an $(N{+}1)$-way classification: logits are similarities divided by $\tau$,
#    the label is the positive. Write it, and SimCLR's NT-Xent, in a few lines.
# 2. See what the temperature does: a low $\tau$ puts the gradient on the hardest negatives.
# 3. Know the numbers to expect: $\log(2N-1)$ for random embeddings, the bound
#    $I(x;y) \ge \log N - \mathcal L$, and why the loss must be computed with log-sum-exp.
#
# **Prerequisites:** notebook 00. **Time budget:** about 1 minute on a 2-core laptop CPU.

# %%
import math

import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import display
from matplotlib.figure import Figure

import cl_teach
from cl_teach import losses, metrics, models, plotting, train
from cl_teach.augment import Augment
from cl_teach.data import ViewLoader, load_fashion_mnist
from cl_teach.methods import SimCLR
from cl_teach.widgets import temperature_explorer, temperature_stats

device = cl_teach.setup(seed=0)

# %% [markdown]
# ## Intuition: a classification problem
# A query $q$ has one positive key $k^+$ (another view of the same image) and $N$ negative keys
# $k_1 \dots k_N$. With cosine similarity $s(\cdot,\cdot)$ and temperature $\tau$, InfoNCE
# (van den Oord et al., 2018) is the cross-entropy of picking the positive:
#
# $$\mathcal L_{\text{InfoNCE}} = -\log \frac{\exp(s(q,k^+)/\tau)}{\exp(s(q,k^+)/\tau) + \sum_{j=1}^{N}\exp(s(q,k_j)/\tau)}$$
#
# so the **logits** are $s/\tau$ and the **label** is the index of the positive (MoCo's code returns
# exactly `logits, labels`). SimCLR's **NT-Xent** (Chen et al., 2020) makes $2N$ views from a batch of
# $N$ images; each view's positive is its twin and the other $2N-2$ views are its negatives.
#
# Minimising it maximises a lower bound on the mutual information between the views:
# $I(x;y) \ge \log(\#\text{candidates}) - \mathcal L$. More negatives, higher ceiling.

# %% [markdown]
# ## Derive it: InfoNCE and NT-Xent in a few lines

# %%
def my_info_nce(q, k, tau):
    """q, k: (N, D); k[i] is the positive of q[i], the other keys are its negatives."""
    q, k = q / q.norm(dim=1, keepdim=True), k / k.norm(dim=1, keepdim=True)
    logits = q @ k.T / tau                                   # (N, N): query i against every key
    labels = torch.arange(q.shape[0])                        # the positive of query i is key i
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)   # log-softmax, stable
    return -log_prob[labels, labels].mean()


def my_nt_xent(z1, z2, tau):
    """z1, z2: (N, D), two views of N images -> 2N views, 2N - 2 negatives each."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)              # (2N, D)
    sim = z @ z.T / tau                                      # (2N, 2N)
    sim.fill_diagonal_(float("-inf"))                        # a view is not its own negative
    pos = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])   # the twin of view i
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    return -log_prob[torch.arange(2 * n), pos].mean()

# %% [markdown]
# Check: the package functions compute the same numbers.

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(0)
z1, z2 = torch.randn(64, 16, generator=g), torch.randn(64, 16, generator=g)
for tau in (0.05, 0.5):
    ours, pkg = my_info_nce(z1, z2, tau), losses.info_nce(z1, z2, temperature=tau)
    assert torch.allclose(ours, pkg, atol=1e-5), (ours, pkg)
    ours, pkg = my_nt_xent(z1, z2, tau), losses.nt_xent(z1, z2, temperature=tau)
    assert torch.allclose(ours, pkg, atol=1e-5), (ours, pkg)
logits, labels = losses.info_nce_logits(z1, z2, temperature=0.5)
print("logits", tuple(logits.shape), "labels", labels[:5].tolist(), "...")
print("inline == package for InfoNCE and NT-Xent at tau = 0.05 and 0.5")

# %% [markdown]
# ## The loss of a random embedding is about $\log(2N-1)$
# With random embeddings every candidate looks alike, the softmax is nearly uniform over the
# $2N-1$ candidates and the loss is $\log(2N-1)$: the classifier is guessing. The bound
# $\log(2N-1) - \mathcal L$ is then about 0 nats: nothing is known about the pairing yet.

# %%
# NBVAL_CHECK_OUTPUT
rows = []
for n in (16, 64, 256, 1024):
    z1, z2 = torch.randn(n, 128, generator=g), torch.randn(n, 128, generator=g)
    loss = losses.nt_xent(z1, z2, temperature=0.5).item()
    rows.append((n, loss, math.log(2 * n - 1)))
    assert abs(loss - math.log(2 * n - 1)) < 0.05, (n, loss)
print(f"{'N':>6} {'NT-Xent':>9} {'log(2N-1)':>10}")
for n, loss, ref in rows:
    print(f"{n:>6} {loss:>9.3f} {ref:>10.3f}")

# %% [markdown]
# ## Why log-sum-exp: the loss at $\tau = 0.01$
# At $\tau = 0.01$ a cosine similarity of 0.9 becomes a logit of 90, and $e^{90} \approx 10^{39}$ does
# not fit in a float32 (max $\approx 3.4\cdot10^{38}$). A naive softmax overflows; subtracting the
# maximum first (log-sum-exp) keeps everything finite.

# %%
# NBVAL_CHECK_OUTPUT
def naive_info_nce(q, k, tau):
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    e = torch.exp(q @ k.T / tau)                             # overflows for large logits
    return -torch.log(e.diagonal() / e.sum(dim=1)).mean()

q = torch.randn(32, 8, generator=g)
k = (q + 0.5 * torch.randn(32, 8, generator=g)).requires_grad_(True)   # noisy positives
naive = naive_info_nce(q, k, 0.01)
stable = losses.info_nce(q, k, temperature=0.01)
(grad,) = torch.autograd.grad(stable, k)
print(f"naive exp: {naive.item()} | log-sum-exp: {stable.item():.4f} | gradient finite: {bool(torch.isfinite(grad).all())}")
assert not torch.isfinite(naive) and torch.isfinite(stable) and torch.isfinite(grad).all()

# %% [markdown]
# ## What the temperature does to the gradient
# The gradient of the loss with respect to a negative's similarity $s_j$ is $p_j/\tau$, where
# $p_j$ is that negative's softmax probability. So each negative's **share of the gradient weight**
# is its softmax probability among the negatives. A low $\tau$ sharpens the softmax: the hardest
# negatives (most similar to the query) take almost all of the weight. A high $\tau$ spreads the
# weight uniformly (Wang & Liu, CVPR 2021, "Understanding the Behaviour of Contrastive Loss").
# `temperature_stats` computes this with autograd through the package's logits.

# %%
# NBVAL_CHECK_OUTPUT
taus = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
shares = [temperature_stats(t, n_negatives=32, hardness=0.5)["hardest_share"] for t in taus]
print(f"{'tau':>6} {'hardest negative share':>23}   (uniform = 1/32 = 0.031)")
for t, s in zip(taus, shares):
    print(f"{t:>6} {s:>23.3f}")
assert all(a > b for a, b in zip(shares, shares[1:])), "share must fall as tau rises"

fig = Figure(figsize=(5, 3), layout="constrained")
ax = fig.subplots()
ax.semilogx(taus, shares, marker="o")
ax.axhline(1 / 32, color="gray", ls="--", label="uniform share 1/K")
ax.set_xlabel("temperature tau (log scale)")
ax.set_ylabel("hardest negative's share of gradient")
ax.set_title("lower tau focuses the gradient on hard negatives")
ax.legend()
display(fig)

# %% [markdown]
# ## Explore: the temperature explorer
# Move **tau** (log scale, 0.01 to 10), the number of **negatives** and their **hardness** (how
# similar they are to the query). Left: each negative's similarity; right: its share of the gradient.
# The line above the plot prints the loss and the hardest negative's share.

# %%
# NBVAL_IGNORE_OUTPUT
temperature_explorer(temperature=0.1, n_negatives=32, hardness=0.5)

# %% [markdown]
# ## Experiment: train at a temperature of your choice
# SimCLR on 10,000 Fashion-MNIST images for 150 steps, with alignment and uniformity (notebook 03)
# read out live. Change `TAU` and rerun this cell and the next ones.

# %%
# NBVAL_IGNORE_OUTPUT
TAU = 0.2
train_set = load_fashion_mnist("train").subset(10_000, seed=0)
test_set = load_fashion_mnist("test").subset(2_000, seed=0)
cl_teach.seed_everything(0)
method = SimCLR(models.SmallCNN(), temperature=TAU)
loader = ViewLoader(train_set.x, [Augment()] * 2, batch_size=256, seed=0)
history = train.fit(method, loader, steps=150, lr=5e-3,
                    callbacks=[train.CollapseMonitor(every=10),
                               plotting.LivePlot(["loss", "alignment", "uniformity"], every=10,
                                                 title=f"SimCLR at tau = {TAU}")])

# %% [markdown]
# ## Diagnose: what did it learn?
# The final loss against the guessing level $\log(2N-1)$ gives the bound on mutual information,
# and a kNN classifier on the frozen encoder says whether the embedding groups the classes.

# %%
# NBVAL_CHECK_OUTPUT
n = loader.batch_size
final = float(np.mean(history["loss"][-10:]))
print(f"batch N = {n}: guessing loss log(2N-1) = {math.log(2 * n - 1):.3f}, final loss = {final:.3f}")
print(f"bound on I(view1; view2) >= {math.log(2 * n - 1) - final:.2f} nats")
untrained = SimCLR(models.SmallCNN(), temperature=TAU)
knn_trained = metrics.knn_accuracy(metrics.embed(method, train_set.x), train_set.y,
                                   metrics.embed(method, test_set.x), test_set.y, k=20)
knn_untrained = metrics.knn_accuracy(metrics.embed(untrained, train_set.x), train_set.y,
                                     metrics.embed(untrained, test_set.x), test_set.y, k=20)
print(f"kNN accuracy (k=20): trained {knn_trained:.3f} vs untrained encoder {knn_untrained:.3f}")
assert final < math.log(2 * n - 1) - 1.0 and knn_trained > knn_untrained

# %% [markdown]
# ## The same claim on a real batch
# Take one batch of real views through the trained model and measure, for each query, the share
# of the gradient weight that falls on its 5% hardest negatives, at two temperatures.

# %%
# NBVAL_CHECK_OUTPUT
x1, x2 = next(iter(ViewLoader(test_set.x, [Augment()] * 2, batch_size=256, seed=1)))
with torch.no_grad():
    method.eval()
    z1, z2 = method.projector(method.encoder(x1)), method.projector(method.encoder(x2))
    method.train()

def top_share(z1, z2, tau, top=0.05):
    logits, labels = losses.info_nce_logits(z1, z2, temperature=tau)      # (N, N)
    neg = logits.masked_fill(torch.eye(len(z1), dtype=torch.bool), float("-inf"))
    w = torch.softmax(neg, dim=1)                          # gradient weight of each negative
    k = max(1, int(top * (len(z1) - 1)))
    return w.topk(k, dim=1).values.sum(1).mean().item()

real = {tau: top_share(z1, z2, tau) for tau in (0.05, 0.2, 1.0)}
for tau, s in real.items():
    print(f"tau = {tau:<4}: the 5% hardest negatives get {s:.1%} of the gradient weight")
assert real[0.05] > real[0.2] > real[1.0]

# %% [markdown]
# ## Exercises
# 1. MoCo keeps a bank of negatives instead of using the batch. Write InfoNCE with an explicit
#    `(K, D)` bank: logits `[q·k⁺, q·n₁, …, q·n_K] / τ`, label 0. Check it against
#    `losses.info_nce(q, k, temperature, negatives=bank)`.
# 2. In the explorer, find a temperature where the hardest negative gets about half the weight
#    with hardness 0.5. What happens to that temperature when you raise the hardness?

# %%
bank = torch.randn(100, 16, generator=g)
q, k = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
# BEGIN SOLUTION
def my_info_nce_bank(q, k, bank, tau):
    q, k, bank = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(bank, dim=1)
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ bank.T], dim=1) / tau   # (N, 1 + K)
    return -(logits[:, 0] - torch.logsumexp(logits, dim=1)).mean()

assert torch.allclose(my_info_nce_bank(q, k, bank, 0.1),
                      losses.info_nce(q, k, temperature=0.1, negatives=bank), atol=1e-5)
# END SOLUTION

# %% [markdown]
# ## Summary
# * InfoNCE = cross-entropy over similarities$/\tau$ with the positive as the label; NT-Xent uses
#   the $2N$ views of a batch. Random embeddings give $\log(2N-1)$; the gap below it bounds the
#   mutual information between the views.
# * Always compute it with log-sum-exp: at $\tau=0.01$ a naive softmax overflows.
# * Low $\tau$ = the gradient concentrates on the hardest negatives; high $\tau$ = all negatives
#   alike. Measured above on synthetic similarities and on a real batch.
#
# **References:** van den Oord, Li & Vinyals, *Representation Learning with Contrastive Predictive
# Coding*, 2018 · Chen et al., *SimCLR*, ICML 2020 · He et al., *MoCo*, CVPR 2020 · Wang & Liu,
# *Understanding the Behaviour of Contrastive Loss*, CVPR 2021 · Poole et al., *On Variational Bounds of
# Mutual Information*, ICML 2019.
