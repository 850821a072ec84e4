# %% [markdown]
# # 01 · InfoNCE and the temperature
#
# **Learning goals**
# 1. Read InfoNCE as a $K$-way classification over $K$ candidates (the positive and $K-1$
#    negatives): logits are similarities divided by $\tau$, the label is the positive. Write it,
#    and SimCLR's NT-Xent, in a few lines.
# 2. See what the temperature does: a low $\tau$ puts the gradient on the hardest negatives and
#    scales its size like $1/\tau$.
# 3. Know the numbers to expect: $\log K + \frac{1}{2D\tau^2}$ for random embeddings, the bound
#    $I(x;y) \ge \log K - \mathcal L$ with its assumptions, and why the loss must be computed
#    with log-sum-exp.
#
# **Notation.** $K$ = number of candidates a query is scored against (its positive included);
# $N$ = number of images in a batch; $D$ = embedding dimension. For SimCLR's NT-Xent, $K = 2N-1$.
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
from cl_teach.evaluation import UNTRAINED, baselines, best_baseline, knn_and_probe
from cl_teach.methods import SimCLR
from cl_teach.widgets import temperature_explorer, temperature_stats

SEED = cl_teach.notebook_seed()
device = cl_teach.setup(SEED)

# %% [markdown]
# ## Intuition: a classification problem
# A query $q$ is scored against $K$ candidate keys: one positive $k^+$ (another view of the same
# image) and $K-1$ negatives $k_1 \dots k_{K-1}$. With cosine similarity $s(\cdot,\cdot)$ and
# temperature $\tau$, InfoNCE (van den Oord et al., 2018) is the cross-entropy of picking the
# positive among the $K$:
#
# $$\mathcal L_{\text{InfoNCE}} = -\log \frac{\exp(s(q,k^+)/\tau)}
#   {\exp(s(q,k^+)/\tau) + \sum_{j=1}^{K-1}\exp(s(q,k_j)/\tau)}$$
#
# so the **logits** are $s/\tau$ and the **label** is the index of the positive (MoCo's code returns
# exactly `logits, labels`). In a batch of $N$ pairs where each query's negatives are the other
# queries' keys, $K = N$. SimCLR's **NT-Xent** (Chen et al., 2020) makes $2N$ views from a batch of
# $N$ images; each view's positive is its twin and the other $2N-2$ views are its negatives, so
# $K = 2N-1$.
#
# **What the loss says about mutual information.** $I(x;y) \ge \log K - \mathcal L$ (van den Oord
# et al., 2018; Poole et al., 2019), *provided* the $K-1$ negatives are drawn i.i.d. from the
# marginal and $\mathcal L$ is the expected loss on fresh data (not the loss on the batches the
# network was just fitted on). Two caveats keep this from being a reason to want more negatives:
# * the bound can never exceed $\log K$, whatever the true $I$: it saturates (McAllester &
#   Stratos, AISTATS 2020, show that any such distribution-free lower bound needs a sample size
#   exponential in the mutual information);
# * maximising it is not why the representations get better: Tschannen et al. (ICLR 2020) find
#   that tighter MI estimators can give *worse* representations, and that the encoder's
#   architecture and the critic explain the success better than the MI.

# %% [markdown]
# ## Derive it: InfoNCE and NT-Xent in a few lines

# %%
def my_info_nce(q, k, tau):
    """q, k: (N, D); k[i] is the positive of q[i], the other N - 1 keys its negatives (K = N)."""
    # BEGIN SOLUTION
    q, k = q / q.norm(dim=1, keepdim=True), k / k.norm(dim=1, keepdim=True)
    logits = q @ k.T / tau                                   # (N, N): query i against every key
    labels = torch.arange(q.shape[0])                        # the positive of query i is key i
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)   # log-softmax, stable
    return -log_prob[labels, labels].mean()
    # END SOLUTION


def my_nt_xent(z1, z2, tau):
    """z1, z2: (N, D), two views of N images -> 2N views, each with K = 2N - 1 candidates."""
    # BEGIN SOLUTION
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)              # (2N, D)
    sim = z @ z.T / tau                                      # (2N, 2N)
    sim.fill_diagonal_(float("-inf"))                        # a view is not its own negative
    pos = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])   # the twin of view i
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    return -log_prob[torch.arange(2 * n), pos].mean()
    # END SOLUTION

# %% [markdown]
# Check: the package functions compute the same numbers.

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(SEED)
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
# ## The loss of a random embedding: $\log K + \frac{1}{2D\tau^2}$
# With random embeddings every candidate looks alike and the classifier is guessing: to first
# order the softmax is uniform over the $K$ candidates and the loss is $\log K$. But random
# similarities are not exactly 0: in $D$ dimensions the cosine of two random directions has mean 0
# and variance $1/D$, and $\log \mathbb E\, e^{s/\tau} \approx \frac{1}{2D\tau^2}$. So the loss of
# random embeddings is
#
# $$\mathcal L_{\text{random}} \approx \log K + \frac{1}{2D\tau^2},$$
#
# a small correction at $\tau = 0.5$, $D = 128$ (0.016 nats), a large one at $\tau = 0.1$, $D = 64$
# (0.78 nats: the "chance" level of a low-temperature run is well above $\log K$).
# One batch gives one noisy draw: the positive's logit $s^+/\tau$ has sd $1/(\tau\sqrt D)$ and
# the loss averages $N$ independent pairs, so its standard error is about $1/(\tau\sqrt{DN})$. The
# check below asks each draw to lie within 4 standard errors of the prediction (a draw further
# out has odds of about 1 in 15,000), and shows that $\log K$ alone fails that test at
# $\tau = 0.1$.

# %%
configs = [(16, 128, 0.5), (64, 128, 0.5), (256, 128, 0.5), (1024, 128, 0.5), (256, 128, 0.2), (256, 64, 0.1)]
rows = []
for n, d, tau in configs:
    z1, z2 = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    loss = losses.nt_xent(z1, z2, temperature=tau).item()
    log_k, pred, se = (math.log(2 * n - 1), math.log(2 * n - 1) + 1 / (2 * d * tau**2),
                       1 / (tau * math.sqrt(d * n)))
    rows.append(dict(n=n, d=d, tau=tau, loss=loss, log_k=log_k, pred=pred, se=se,
                     ok=abs(loss - pred) < 4 * se, ok_log_k=abs(loss - log_k) < 4 * se))
print(f"{'N':>5} {'D':>4} {'tau':>4} {'K=2N-1':>7} {'NT-Xent':>8} {'log K':>7} "
      f"{'+1/(2Dtau^2)':>13} {'SE':>6}  (loss - pred)/SE")
for r in rows:
    print(f"{r['n']:>5} {r['d']:>4} {r['tau']:>4} {2 * r['n'] - 1:>7} {r['loss']:>8.3f} {r['log_k']:>7.3f} "
          f"{r['pred']:>13.3f} {r['se']:>6.3f}  {(r['loss'] - r['pred']) / r['se']:+.1f}")

# %%
# NBVAL_CHECK_OUTPUT
for r in rows:
    assert r["ok"], (f"random loss {r['loss']:.3f} is more than 4 SE from "
                     f"log K + 1/(2 D tau^2) = {r['pred']:.3f}")
low_tau = [r for r in rows if r["tau"] == 0.1]
assert not any(r["ok_log_k"] for r in low_tau), "at tau = 0.1 the correction 1/(2 D tau^2) must matter"
print("within 4 SE of log K + 1/(2 D tau^2), every row:", all(r["ok"] for r in rows))
print("within 4 SE of log K alone, the tau = 0.1 row:", any(r["ok_log_k"] for r in low_tau))

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
assert not torch.isfinite(naive) and torch.isfinite(stable) and torch.isfinite(grad).all()
print(f"naive exp finite: {bool(torch.isfinite(naive))} | log-sum-exp finite: {bool(torch.isfinite(stable))} "
      f"| gradient finite: {bool(torch.isfinite(grad).all())}")

# %%
print(f"naive exp: {naive.item()} | log-sum-exp: {stable.item():.4f}")

# %% [markdown]
# ## What the temperature does to the gradient
# The gradient of the loss with respect to a negative's similarity $s_j$ is $p_j/\tau$, where
# $p_j$ is that negative's softmax probability (and $-(1-p^+)/\tau$ for the positive). Two
# consequences (Wang & Liu, CVPR 2021, "Understanding the Behaviour of Contrastive Loss"):
#
# **Where the gradient goes.** Each negative's **share of the gradient weight** is its softmax
# probability among the negatives. A low $\tau$ sharpens the softmax: the hardest negatives (most
# similar to the query) take almost all of the weight. A high $\tau$ spreads the weight uniformly.
# This is a **property of the softmax**, not an experimental finding: for *any* fixed similarities
# the share of the largest ones falls as $\tau$ rises, so it holds for a trained network, an
# untrained one, or the synthetic similarities below alike. `temperature_stats` computes the shares
# with autograd through the package's logits.
#
# **The price: the uniformity–tolerance dilemma.** Focusing on hard negatives spreads the
# embeddings evenly (uniformity), but the hardest negatives are often images of the *same* class
# (false negatives). A low $\tau$ pushes them away hardest, so the embedding becomes less
# *tolerant* of semantically similar samples; a high $\tau$ is tolerant but ignores what makes hard
# negatives hard. Wang & Liu call this the uniformity–tolerance dilemma. What training at a given
# $\tau$ does to the embedding is an empirical question, measured in notebook 04 (false negatives:
# notebook 10).
#
# **Which temperature?** Source 004 says "0.5 for SimCLR". That is the authors' CIFAR-10 recipe
# (batch 512, ResNet-18); their ImageNet recipe, "the default hyperparameters in our paper" (batch
# 4096, 100 epochs), uses $\tau = 0.1$ (google-research/simclr, README), and the paper's Table 5
# compares temperatures with and without the L2 normalisation. MoCo uses 0.07 (v1) and 0.2 (v2);
# CLIP learns $\tau$ from 0.07. There is no one SimCLR temperature: it depends on the data, the
# batch and the training length, and notebook 04 measures it at this course's budget.

# %%
taus = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
shares = [temperature_stats(t, n_negatives=32, hardness=0.5, seed=SEED)["hardest_share"] for t in taus]
print(f"{'tau':>6} {'hardest negative share':>23}   (32 negatives: uniform = 1/32 = 0.031)")
for t, s in zip(taus, shares):
    print(f"{t:>6} {s:>23.3f}")

fig = Figure(figsize=(5, 3), layout="constrained")
ax = fig.subplots()
ax.semilogx(taus, shares, marker="o")
ax.axhline(1 / 32, color="gray", ls="--", label="uniform share 1/32 (32 negatives)")
ax.set_xlabel("temperature tau (log scale)")
ax.set_ylabel("hardest negative's share of gradient")
ax.set_title("lower tau focuses the gradient on hard negatives")
ax.legend()
display(fig)

# %% [markdown]
# **How big the gradient is.** The total size of the gradient on the similarities is
# $\sum_j |\partial \mathcal L / \partial s_j| = 2(1-p^+)/\tau$. Early in training (random
# embeddings, the positive not yet singled out) $p^+$ is small, so the gradient's size grows like
# $1/\tau$: at $\tau = 0.05$ every step is about 20 times larger than at $\tau = 1$. This is why
# low temperatures make training unstable unless the learning rate (or a warm-up) compensates.
# Below: random queries against $K = 256$ random candidates, the gradient by autograd, checked
# against the formula $(p - y)/\tau$.

# %%
gq = torch.Generator().manual_seed(SEED + 1)
sims = (F.normalize(torch.randn(64, 64, generator=gq), dim=1)
        @ F.normalize(torch.randn(256, 64, generator=gq), dim=1).T)
target = torch.zeros(64, dtype=torch.long)                 # candidate 0 is each query's positive
print(f"{'tau':>5} {'mean p+':>8} {'sum |dL/ds|':>12} {'tau * sum |dL/ds|':>18}")
for tau in (0.05, 0.1, 0.2, 0.5, 1.0):
    s_ = sims.clone().requires_grad_(True)
    (grad_s,) = torch.autograd.grad(F.cross_entropy(s_ / tau, target, reduction="sum"), s_)
    p = torch.softmax(sims / tau, dim=1)
    assert torch.allclose(grad_s, (p - F.one_hot(target, 256)) / tau, atol=1e-5)   # the formula
    size = grad_s.abs().sum(1).mean().item()
    print(f"{tau:>5} {p[:, 0].mean().item():>8.4f} {size:>12.2f} {tau * size:>18.3f}")

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
# SimCLR on 10,000 Fashion-MNIST images for `STEPS` steps, with alignment and uniformity
# (notebook 04) read out live. Change `TAU` and rerun this cell and the next ones.

# %%
# NBVAL_IGNORE_OUTPUT
TAU, STEPS = 0.2, 150
train_set = load_fashion_mnist("train").subset(10_000, seed=SEED)
test_set = load_fashion_mnist("test").subset(2_000, seed=SEED + 1)
cl_teach.setup(SEED, verbose=False)
method = SimCLR(models.SmallCNN(), temperature=TAU)
loader = ViewLoader(train_set.x, [Augment()] * 2, batch_size=256, seed=SEED)
history = train.fit(method, loader, steps=STEPS, lr=5e-3,
                    callbacks=[train.CollapseMonitor(every=10),
                               plotting.LivePlot(["loss", "alignment", "uniformity"], every=10,
                                                 title=f"SimCLR at tau = {TAU}")])

# %% [markdown]
# ## Diagnose: what did it learn?
# **The loss.** The guessing level is $\log K + \frac{1}{2D\tau^2}$ with $K = 2N - 1$. The MI bound
# asks for the expected loss on *fresh* data, so we measure the loss on held-out test batches
# with the network in eval mode, not on the training batches. Even so, read $\log K - \mathcal L$ as
# an estimate under assumptions NT-Xent breaks: its $2N-2$ negatives are $N-1$ images seen
# twice, not i.i.d. draws, and it can never exceed $\log K$.
#
# **The features.** kNN (k = 20) and a linear probe on the frozen encoder $h$, against the two
# fair baselines of the course under the same protocol: raw pixels, and the untrained encoder
# with its BatchNorm statistics re-estimated (`cl_teach.evaluation.baselines`). Each difference is
# paired on the same 2,000 test images, with a 95% bootstrap interval.

# %%
n = loader.batch_size
d = next(m.out_features for m in reversed(method.projector) if isinstance(m, torch.nn.Linear))   # D of z
k_cand = 2 * n - 1
chance = math.log(k_cand) + 1 / (2 * d * TAU**2)
train_loss = float(np.mean(history["loss"][-10:]))
method.eval()
with torch.no_grad():
    held_out = [losses.nt_xent(method.projector(method.encoder(x1)), method.projector(method.encoder(x2)),
                               temperature=TAU).item()
                for x1, x2 in ViewLoader(test_set.x, [Augment()] * 2, batch_size=n, seed=SEED + 3)]
method.train()
test_loss = float(np.mean(held_out))
print(f"N = {n} images, K = 2N-1 = {k_cand} candidates, D = {d}: guessing loss "
      f"log K + 1/(2 D tau^2) = {chance:.3f} (log K = {math.log(k_cand):.3f})")
print(f"loss: last 10 training batches {train_loss:.3f} | {len(held_out)} held-out test batches, "
      f"eval mode {test_loss:.3f}")
print(f"InfoNCE estimate of I(view1; view2): log K - L(test) = {math.log(k_cand) - test_loss:.2f} nats "
      f"(it can never exceed log K = {math.log(k_cand):.2f})")

ev = knn_and_probe(method, train_set, test_set)
cl_teach.setup(SEED + 2, verbose=False)                   # the untrained encoder's initialisation
base = baselines(models.SmallCNN, train_set, test_set)
diffs = {(name, on): ev.compare(b, on=on) for name, b in base.items() for on in ("knn", "probe")}
print(f"\n{'':>31} {'kNN':>6} {'probe':>6}")
for name, e in [("SimCLR h (trained)", ev), *base.items()]:
    print(f"{name:>31} {e.knn:>6.3f} {e.probe:>6.3f}")
print()
for (name, on), dd in diffs.items():
    print(f"trained - {name}, {on:>5}: {dd.points()} points")

# %% [markdown]
# **What the intervals say, and what this notebook claims.** Training moves the held-out loss far
# below the guessing level, and the trained encoder's linear probe beats the untrained encoder's
# by a margin well outside the test-set noise: that much is asserted. Raw pixels are a strong
# baseline on Fashion-MNIST, and the best of the two baselines by kNN is usually raw pixels: at
# this budget (150 steps, a few seconds of CPU) the kNN gain over them sits inside the noise of a
# 2,000-image test set (the verdicts below say which way it falls for this seed), and doubling
# the steps does not change that. So this notebook does **not** claim that 150 steps of SimCLR
# beat raw pixels; notebook 05 trains longer and measures it.

# %%
name, _ = best_baseline(base, on="knn")
for (b_name, on), dd in diffs.items():
    print(f"{on:>5}: {dd.verdict('trained SimCLR', b_name)}")
print(f"best baseline by kNN: {name}")

# %%
# NBVAL_CHECK_OUTPUT
assert test_loss < chance - 1.0, f"held-out loss {test_loss:.3f} should be well below guessing {chance:.3f}"
assert diffs[(UNTRAINED, "probe")].low > 0, ("the probe must beat the untrained encoder's: "
                                             f"{diffs[(UNTRAINED, 'probe')]}")
print("held-out loss more than 1 nat below the guessing level:", test_loss < chance - 1.0)
print("probe:", diffs[(UNTRAINED, "probe")].verdict("trained SimCLR", UNTRAINED))
# %% [markdown]
# ## The softmax property on a real batch
# Take one batch of real views and measure, for each query, the share of the gradient weight that
# falls on its 5% hardest negatives, at three temperatures. As said above, this is a property of the
# softmax: the share falls as $\tau$ rises for *any* similarities. The untrained network (BN
# statistics re-estimated) shows the same ordering as the trained one, which is the point: the
# ordering is not evidence that training did anything. What can differ is the *level* at a given
# $\tau$: it depends on how spread the similarities are, and that is where training shows
# (compare the two networks' rows).

# %%
x1, x2 = next(iter(ViewLoader(test_set.x, [Augment()] * 2, batch_size=256, seed=SEED + 4)))
cl_teach.setup(SEED + 5, verbose=False)
fresh = SimCLR(models.SmallCNN(), temperature=TAU)
nets = {"trained": torch.nn.Sequential(method.encoder, method.projector),
        "untrained": metrics.recalibrate_batchnorm(torch.nn.Sequential(fresh.encoder, fresh.projector),
                                                   train_set.x)}

def top_share(z1, z2, tau, top=0.05):
    logits, labels = losses.info_nce_logits(z1, z2, temperature=tau)      # (N, N)
    neg = logits.masked_fill(torch.eye(len(z1), dtype=torch.bool), float("-inf"))
    w = torch.softmax(neg, dim=1)                          # gradient weight of each negative
    k = max(1, int(top * (len(z1) - 1)))
    return w.topk(k, dim=1).values.sum(1).mean().item()

for net_name, net in nets.items():
    net.eval()
    with torch.no_grad():
        z1, z2 = net(x1), net(x2)
    for tau in (0.05, 0.2, 1.0):
        print(f"{net_name:>9}, tau = {tau:<4}: the 5% hardest negatives get {top_share(z1, z2, tau):.1%} "
              "of the gradient weight")
_ = method.train()

# %% [markdown]
# ## Exercises
# Each code exercise is a function to fill in; the cell after it checks it (in the student copy
# too), so run that cell until it passes.
#
# 1. MoCo keeps a bank of negatives instead of using the batch. Write InfoNCE with an explicit
#    `(K, D)` bank: logits `[q·k⁺, q·n₁, …, q·n_K] / τ`, label 0.

# %%
def my_info_nce_bank(q, k, bank, tau):
    """q, k: (N, D) queries and their positives; bank: (K, D) negatives shared by every query."""
    # BEGIN SOLUTION
    q, k, bank = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(bank, dim=1)
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ bank.T], dim=1) / tau   # (N, 1 + K)
    return -(logits[:, 0] - torch.logsumexp(logits, dim=1)).mean()
    # END SOLUTION


# %%
bank = torch.randn(100, 16, generator=g)
q, k = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
for tau in (0.05, 0.5):
    ours, pkg = my_info_nce_bank(q, k, bank, tau), losses.info_nce(q, k, temperature=tau, negatives=bank)
    assert torch.allclose(ours, pkg, atol=1e-5), f"at tau = {tau}: yours {ours:.5f}, the package {pkg:.5f}"
print("exercise 1: my_info_nce_bank equals losses.info_nce(..., negatives=bank)")

# %% [markdown]
# 2. The explorer's question, answered by code: write `tau_for_share(share, hardness)`, the
#    temperature at which the hardest negative gets `share` of the gradient weight
#    (`temperature_stats(tau, hardness=hardness)["hardest_share"]`). The share falls as τ rises,
#    so a bisection on $\log	au$ between 0.001 and 10 finds it.

# %%
def tau_for_share(share, hardness=0.5):
    """The temperature where the hardest of the explorer's 32 negatives gets ``share`` of the weight."""
    # BEGIN SOLUTION
    lo, hi = math.log(1e-3), math.log(10.0)
    for _ in range(50):
        mid = (lo + hi) / 2
        if temperature_stats(math.exp(mid), hardness=hardness)["hardest_share"] > share:
            lo = mid                                   # still too concentrated: warm up
        else:
            hi = mid
    return math.exp((lo + hi) / 2)
    # END SOLUTION


# %%
# NBVAL_CHECK_OUTPUT
t_half = tau_for_share(0.5)
got = temperature_stats(t_half, hardness=0.5)["hardest_share"]
assert abs(got - 0.5) < 0.01, f"at tau = {t_half:.4g} the hardest negative gets {got:.3f}, not 0.5"
print(f"exercise 2: the hardest negative gets half the weight at tau = {t_half:.2f}")

# %% [markdown]
# 3. Now raise the hardness from 0.2 to 0.5 to 0.8 (the negatives move towards the positive).
#    Does the temperature of exercise 2 change? Predict first, then run the cell below.

# %%
for h in (0.2, 0.5, 0.8):
    cap = temperature_stats(1e-3, hardness=h)["hardest_share"]          # the coldest share: the most
    t = f"{tau_for_share(0.5, hardness=h):.4f}" if cap > 0.5 else "none (never half)"
    print(f"hardness {h}: tau for half the weight {t}; the hardest share at tau = 0.001: {cap:.3f}")

# %% [markdown]
# <details><summary><b>Worked answer</b> (open it when you have your own)</summary>
#
# Hardness moves every negative's similarity by the **same** amount (the spread stays 0.15), and
# a softmax does not change when the same constant is added to all its inputs:
# $p_j = e^{s_j/\tau} / \sum_l e^{s_l/\tau}$ is the same for $s_j + c$. So the weights *among
# the negatives*, and the temperature that gives the hardest one half of them, do not depend on
# the hardness (0.2 and 0.5 above). What hardness does change is the positive's share of the whole
# softmax, and so the loss. At 0.8 the negatives reach the positive's similarity, where the
# explorer caps them: several negatives tie at the cap, and even at τ → 0 the hardest one only gets
# 1/(number tied) of the weight — no temperature gives it half.
# </details>
#
# 4. The gradient of InfoNCE with respect to its logits is $\partial L / \partial \ell_j =
#    (p_j - [j = 0]) / N$ for each of N queries (softmax minus the one-hot label). Write it and
#    compare it with autograd.

# %%
def logit_gradient(logits):
    """dL/dlogits of the mean cross-entropy with label 0 for each row of (N, 1 + K) logits."""
    # BEGIN SOLUTION
    p = torch.softmax(logits, dim=1)
    p[:, 0] -= 1
    return p / logits.shape[0]
    # END SOLUTION


# %%
ell = torch.randn(6, 11, generator=g, dtype=torch.float64, requires_grad=True)
(auto,) = torch.autograd.grad(F.cross_entropy(ell, torch.zeros(6, dtype=torch.long)), ell)
ours = logit_gradient(ell.detach())
assert torch.allclose(ours, auto), f"largest difference from autograd {(ours - auto).abs().max():.3g}"
print("exercise 4: softmax minus one-hot, over N, is the gradient autograd computes")

# %% [markdown]
# ## Summary
# * InfoNCE = cross-entropy over the $K$ candidates' similarities$/\tau$, the positive as the label;
#   NT-Xent uses the $2N$ views of a batch ($K = 2N-1$). Random embeddings give
#   $\log K + \frac{1}{2D\tau^2}$. The gap below $\log K$ on fresh data bounds the mutual
#   information only under i.i.d. negatives, saturates at $\log K$, and is not why features improve.
# * Always compute it with log-sum-exp: at $\tau=0.01$ a naive softmax overflows.
# * Low $\tau$ = the gradient concentrates on the hardest negatives (a property of the softmax) and
#   grows like $1/\tau$; high $\tau$ = all negatives alike. Low $\tau$ also pushes away false
#   negatives: the uniformity–tolerance dilemma.
# * After 150 steps SimCLR's encoder beats the untrained encoder (linear probe, 95% interval); it does
#   not reliably beat raw pixels by kNN at this budget. Always compare with both baselines.
#
# **References:** van den Oord, Li & Vinyals, *Representation Learning with Contrastive Predictive
# Coding*, 2018 · Chen et al., *SimCLR*, ICML 2020 · He et al., *MoCo*, CVPR 2020 · Wang & Liu,
# *Understanding the Behaviour of Contrastive Loss*, CVPR 2021 · Poole et al., *On Variational Bounds of
# Mutual Information*, ICML 2019 · McAllester & Stratos, *Formal Limitations on the Measurement of Mutual
# Information*, AISTATS 2020 · Tschannen et al., *On Mutual Information Maximization for Representation
# Learning*, ICLR 2020.
