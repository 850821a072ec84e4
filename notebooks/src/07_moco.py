# %% [markdown]
# # 07 MoCo: a momentum encoder and a queue of negatives
#
# **Learning goals**
# 1. Write MoCo's loss as (1 + K)-way classification: one positive key, K negatives from a queue.
# 2. See why the key encoder must move slowly (an exponential moving average, no gradient) for a
#    queue of old keys to stay useful, and how that decouples the number of negatives from the batch.
# 3. Compare a queue of negatives with in-batch negatives at a small batch, and meet MoCo v3.
#
# **Prerequisites:** 01 (InfoNCE), 03 (collapse monitors), 05 (SimCLR).
#
# **Time budget:** about 1.5 minutes on a 2-core laptop CPU (one thread), measured in the closing note.

# %%
import copy
import time

import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

import cl_teach
from cl_teach.augment import Augment
from cl_teach.data import ViewLoader, fashion_mnist_subsets
from cl_teach.evaluation import baselines, best_baseline, knn_and_probe
from cl_teach.losses import info_nce
from cl_teach.methods import MoCo
from cl_teach.metrics import paired_difference, uniformity
from cl_teach.models import SmallCNN
from cl_teach.plotting import LivePlot, plot_history
from cl_teach.train import CollapseMonitor, fit

SEED = cl_teach.notebook_seed()
device = cl_teach.setup(SEED)
t_start = time.perf_counter()

# %% [markdown]
# ## Data
# Real Fashion-MNIST, read offline (the loader announces loudly if it has to fall back to
# scikit-learn's digits). To fit the budget we train on a 12,000-image subsample and evaluate
# on 5,000 held-out test images, with the training subsample as the kNN memory bank.

# %%
train, test = fashion_mnist_subsets(12_000, 5_000, seed=SEED)
print(train, "\n", test)


# %% [markdown]
# ## Intuition and math
# SimCLR takes its negatives from the batch, so more negatives means a bigger batch, and a
# bigger batch means more memory. MoCo (He et al., 2020) keeps a **queue** of the keys of the
# last K / N batches instead. For a query q = f_q(x) and its positive key k+ = f_k(x'),
#
# $$\mathcal{L}_q = -\log \frac{\exp(q\cdot k_+/\tau)}
#   {\exp(q\cdot k_+/\tau) + \sum_{i=1}^{K} \exp(q\cdot k_i/\tau)}$$
#
# with all vectors L2-normalised. The keys in the queue were computed by earlier versions of the
# key encoder, so f_k must change slowly: it receives **no gradient** and follows the query
# encoder by an exponential moving average, $\theta_k \leftarrow m\,\theta_k + (1-m)\,\theta_q$.
# After each step the batch's keys are enqueued and the oldest are dropped.
#
# ## Derive: one MoCo step, inline
# Written with the paper's symbols, checked against the package's `info_nce` and `MoCo`.

# %%
def moco_loss_inline(q, k, queue, tau):
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)        # queries, keys: (N, C)
    l_pos = (q * k).sum(dim=1, keepdim=True)                   # (N, 1)
    l_neg = q @ F.normalize(queue, dim=1).T                    # (N, K)
    logits = torch.cat([l_pos, l_neg], dim=1) / tau            # (N, 1 + K)
    labels = torch.zeros(q.shape[0], dtype=torch.long)         # the positive is class 0
    return F.cross_entropy(logits, labels)


@torch.no_grad()
def momentum_and_enqueue_inline(f_k, f_q, queue, ptr, keys, m):
    for p_k, p_q in zip(f_k.parameters(), f_q.parameters()):
        p_k.mul_(m).add_((1 - m) * p_q)                        # theta_k <- m theta_k + (1 - m) theta_q
    n, K = keys.shape[0], queue.shape[0]
    queue[(ptr + torch.arange(n)) % K] = keys                  # replace the oldest keys
    return (ptr + n) % K


g = torch.Generator().manual_seed(SEED)
q, k, queue = (torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g),
               torch.randn(64, 16, generator=g))
ours = moco_loss_inline(q, k, queue, 0.2)
assert torch.allclose(ours, info_nce(q, k, 0.2, negatives=queue), atol=1e-6)
print(f"inline loss {ours.item():.4f} = info_nce(q, k, 0.2, negatives=queue)")

# %% [markdown]
# Now the same on the package's `MoCo`: its loss for a batch equals the inline loss on its own
# query/key encoders and queue, and its `after_step` does exactly the inline momentum update and
# enqueue. (`bn_splits=1` turns off the Shuffling-BN trick explained below, so that one call of
# the encoders reproduces the method.)

# %%
torch.manual_seed(SEED)
moco = MoCo(SmallCNN(), queue_size=32, bn_splits=1)
x1, x2 = train.x[:8], train.x[8:16]
out = moco.training_step((x1, x2))
q = moco.projector(moco.encoder(x1))
with torch.no_grad():
    k = moco.projector_k(moco.encoder_k(x2))
assert torch.allclose(out["loss"], moco_loss_inline(q, k, moco.queue, moco.temperature), atol=1e-5)

enc_k, queue, ptr = copy.deepcopy(moco.encoder_k), moco.queue.clone(), int(moco.queue_ptr)
ptr = momentum_and_enqueue_inline(enc_k, moco.encoder, queue, ptr, F.normalize(k, dim=1), moco.momentum)
moco.after_step(0, 1)
assert all(torch.allclose(a, b) for a, b in zip(enc_k.parameters(), moco.encoder_k.parameters()))
assert torch.allclose(queue, moco.queue, atol=1e-6) and ptr == int(moco.queue_ptr) == 8
print("MoCo.training_step and MoCo.after_step equal the inline derivation; queue pointer:", ptr)

# %% [markdown]
# ## Experiment: a queue of negatives vs in-batch negatives at a small batch
# Batch size 32. **In-batch**: the negatives of each query are the other 31 keys of its batch
# (`MoCo(queue_size=0, symmetric=False, predictor=False)`: the same model, loss and momentum
# encoder; only the negatives differ). **Queue**: 4,096 negatives from the last 128 batches.
# Both see the same 600 batches (seeded).
#
# Two choices keep the queue run healthy in so short a run. The authors start the queue with
# random unit vectors; here they would be easy negatives (nothing like a real key) for the
# first 128 steps, so we **fill the queue with real keys** of augmented training images before
# training (`MoCo.fill_queue`). And we take the paper's momentum **m = 0.999**: the key encoder
# then lags the query encoder by about 1 / (1 - m) = 1,000 steps, so the keys in the queue
# (at most 128 steps old) come from nearly the same encoder as today's keys.
#
# One detail matters on a single device: batch norm. A query and its positive key would be
# normalised with the same batch statistics while the queue's keys come from other batches, so
# the network could tell them apart by those statistics instead of by content. MoCo's fix,
# *Shuffling BN*, normalises queries and keys in sub-batches, the keys shuffled first
# (`bn_splits=2`, the default).
#
# A small callback tracks how far the key encoder is from the query encoder, and checks at every
# step that it never holds a gradient.

# %%
class KeyEncoderDistance(cl_teach.train.Callback):
    """Log ||theta_k - theta_q|| and check that the key encoder never gets a gradient."""

    def on_step_end(self, step, logs, method, history):
        assert all(p.grad is None and not p.requires_grad for p in method.encoder_k.parameters())
        if step % 10 == 0:
            d = sum((pk - pq).pow(2).sum() for pk, pq in zip(method.encoder_k.parameters(),
                                                            method.encoder.parameters()))
            history.log(step, key_query_distance=d.sqrt().item())


STEPS, BATCH = 600, 32
VARIANTS = {"queue K=4096": dict(queue_size=4096),
            "in-batch (31 negatives)": dict(queue_size=0, symmetric=False, predictor=False)}
MOMENTUM = 0.999
runs, histories = {}, {}
for name, kwargs in VARIANTS.items():
    cl_teach.setup(SEED, verbose=False)
    method = MoCo(SmallCNN(), temperature=0.2, momentum=MOMENTUM, **kwargs)
    if method.queue_size:                                  # real keys instead of random vectors
        g = torch.Generator().manual_seed(SEED + 2)
        fill = train.x[torch.randperm(len(train.x), generator=g)[:method.queue_size]]
        method.fill_queue(Augment()(fill, g))
    loader = ViewLoader(train.x, [Augment()] * 2, batch_size=BATCH, seed=SEED)
    histories[name] = fit(method, loader, steps=STEPS, lr=5e-3, desc=name,
                          callbacks=[CollapseMonitor(every=50), KeyEncoderDistance(),
                                     LivePlot(["loss", "key_query_distance", "uniformity"],
                                              every=100, title=f"MoCo, {name}")])
    runs[name] = method

# %% [markdown]
# The queue's loss is higher: it is a 4,097-way classification, the in-batch one a 32-way one
# (compare with log 4097 = 8.3 and log 32 = 3.5 for a random embedding), so the two loss values
# cannot be compared with each other, only their trends.
#
# **Are stale keys easier negatives?** A key in the queue was computed by the key encoder of up
# to 128 steps ago. If the encoders drift, old keys sit away from where today's queries land,
# and the task could partly be solved by telling a fresh key from stale ones instead of by
# content. That is a claim we can measure: take a fresh batch, and bin the queue's keys by their
# age (in steps). For each query, compare its mean similarity q . k with the youngest keys and
# with the oldest ones (a paired difference over the queries).

# %%
@torch.no_grad()
def similarity_by_age(method, x1, x2, n_bins=8):
    """Mean q . k of each query with the queue's keys, binned by key age; also fresh keys."""
    m = copy.deepcopy(method)                              # training_step updates BN statistics
    out = m.training_step((x1, x2))
    q, k_now = F.normalize(out["z1"], dim=1), out["z2"]    # (N, P) queries, today's keys
    K, n = m.queue_size, x1.shape[0]
    age = ((int(m.queue_ptr) - 1 - torch.arange(K)) % K) // BATCH    # steps since enqueued, (K,)
    bins = age * n_bins // (K // BATCH)                                # (K,) in 0 .. n_bins - 1
    s = q @ m.queue.T                                                  # (N, K)
    per_bin = torch.stack([s[:, bins == b].mean(1) for b in range(n_bins)], dim=1)   # (N, bins)
    off = ~torch.eye(n, dtype=torch.bool)
    fresh = (q @ k_now.T)[off].view(n, n - 1).mean(1)                 # other images' keys, age 0
    return fresh, per_bin


g = torch.Generator().manual_seed(SEED + 3)
idx = torch.randperm(len(train.x), generator=g)[:256]
fresh, per_bin = similarity_by_age(runs["queue K=4096"], Augment()(train.x[idx], g),
                                   Augment()(train.x[idx], g))
ages = [f"{b * 16}-{b * 16 + 15}" for b in range(per_bin.shape[1])]
print("mean q.k, today's keys of other images:", f"{fresh.mean():+.3f}")
print("mean q.k by key age (steps):", "  ".join(f"{a}: {v:+.3f}" for a, v in zip(ages, per_bin.mean(0))))
stale = paired_difference(per_bin[:, 0], per_bin[:, -1])
print("youngest minus oldest keys:", stale)

# %%
if stale.excludes_zero:
    what = ("the youngest keys are *more* similar to today's queries than the oldest: stale keys "
            "are easier negatives" if stale.estimate > 0 else
            "the oldest keys are *more* similar to today's queries than the youngest")
else:
    what = "the similarity does not depend on the key's age (within the interval)"
display(Markdown(f"Measured in this run (m = {MOMENTUM}): {what}. The difference, "
                 f"{stale.estimate:+.3f}, is small next to the mean similarity itself "
                 f"({fresh.mean():+.3f}), but the queue is ordered by age: even a slow key encoder "
                 "leaves a trace of when a key was computed. The smaller m, the faster the key "
                 "encoder follows the query encoder and the more a 128-step-old key differs from "
                 "a fresh one (exercise 1 measures it)."))

# %%
# NBVAL_CHECK_OUTPUT
print("young vs old keys:", stale.verdict("similarity to young keys", "similarity to old keys"))
assert stale.low > 0, "keys of the current encoder should sit closer to today's queries than old keys"

# %% [markdown]
# ## Diagnose: kNN and linear probe on held-out images

# %%
cl_teach.setup(SEED, verbose=False)
base = baselines(SmallCNN, train, test)               # raw pixels; untrained f, BN re-estimated
results = {**base, **{name: knn_and_probe(method.encoder, train, test) for name, method in runs.items()}}
for name, (knn, probe) in results.items():
    print(f"{name:30s} kNN {knn:.3f}   linear probe {probe:.3f}")
with torch.no_grad():                                  # uniformity of the test embeddings (03, 04)
    for name, method in runs.items():
        method.eval()
        z = F.normalize(method.projector(method.encoder(test.x[:2000])), dim=1)
        print(f"{name:30s} uniformity of z (test, eval mode): {uniformity(z).item():.2f}")
queue, batch = results["queue K=4096"], results["in-batch (31 negatives)"]
d_neg = {on: queue.compare(batch, on=on) for on in ("knn", "probe")}
best_name, best = best_baseline(base, on="knn")
d_base = {name: results[name].compare(best, on="knn") for name in runs}
print(f"\nqueue - in-batch, kNN:   {d_neg['knn'].points()} points (95% paired bootstrap over test images)")
print(f"queue - in-batch, probe: {d_neg['probe'].points()} points")
for name, d in d_base.items():
    print(f"{name} - best baseline ({best_name}), kNN: {d.points()} points")

# %%
print(d_neg["knn"].verdict("the queue", "in-batch negatives"), "(kNN, this seed)")
for name, d in d_base.items():
    print(d.verdict(name, best_name), "(kNN, this seed)")

# %% [markdown]
# **Read these intervals with care.** They cover the test images, not the training run: rerun
# the notebook with `CL_TEACH_SEED=1` or `2` and the queue-minus-in-batch difference changes
# sign. At this budget (600 steps at batch 32) there is **no reliable difference** between a
# queue of 4,096 negatives and 31 in-batch ones, and neither is reliably better than raw pixels
# under kNN. That is consistent with the paper: MoCo's Figure 3 shows the end-to-end variant
# (in-batch negatives, gradients through the keys) performing like MoCo for the K it can afford
# (up to 1,024 on their 8 GPUs), and the gains from more negatives appear over hundreds of epochs,
# not 600 steps. The queue buys the *number* of negatives without the memory of a big batch; it does
# not make a one-minute run learn better features.

# %% [markdown]
# The key encoder never held a gradient (checked at every step), yet it moved: it started as a
# copy of the query encoder and then trailed it, because it follows by EMA with m = 0.999 (a lag
# of about 1 / (1 - m) = 1,000 steps, longer than this run: the key encoder is still catching up).

# %%
moco, h = runs["queue K=4096"], histories["queue K=4096"]
assert all(not p.requires_grad for p in moco.encoder_k.parameters())
d = h["key_query_distance"]
print(f"||theta_k - theta_q||: step 0 {d[0]:.3f}, max {d.max():.3f}, last {d[-1]:.3f}")
assert d[0] < 0.1 * d.max()           # close after step 0 (they start equal), then it trails
display(plot_history(h, ["key_query_distance"], title="the key encoder trails the query encoder"))

# %% [markdown]
# ## MoCo v2: what changed
# MoCo v2 (Chen, Fan, Girshick & He, 2020) keeps the queue and the momentum encoder and imports
# SimCLR's recipe: a 2-layer **MLP projection head** instead of a linear one, stronger
# augmentation with **Gaussian blur**, temperature **tau = 0.2** instead of 0.07, and a **cosine
# learning-rate schedule**. On ImageNet (200 epochs, linear probe) these lift MoCo from 60.6% to
# 67.5% (their Table 1). The kit's `MoCo` with a queue is v2 without the blur (`Augment` leaves
# it off on 28x28 images): MLP head, tau = 0.2, and `fit`'s cosine schedule.
#
# ## MoCo v3: no queue, and Vision Transformers
# MoCo v3 (Chen, Xie & He, 2021) drops the queue: with large batches (4,096) the in-batch keys
# are enough. It keeps the momentum key encoder, adds a predictor after the projector (as BYOL)
# and symmetrises the loss over the two views. In the kit it is `MoCo(encoder, queue_size=0)`.
#
# The paper's real subject is the encoder: it is "an empirical study of training
# self-supervised **Vision Transformers**" (ViT). Self-supervised ViTs train unstably: the
# accuracy curve shows sudden dips that a longer run does not recover from (worse final
# accuracy rather than divergence), and the authors trace them to gradient spikes that appear
# first in the **patch projection**, the first layer that maps 16x16 patches to tokens. Their
# trick is to **freeze that layer at its random initialisation** (a fixed random patch
# projection), which removes the dips and improves accuracy. Our encoder is a small CNN, so the
# trick does not apply here.
#
# Below, the v3 loss on one batch, written inline with the model's own encoders, equals the
# package's: each view's query goes through the predictor and predicts the other view's key.

# %%
torch.manual_seed(SEED)
v3 = MoCo(SmallCNN(), queue_size=0, bn_splits=1)
out = v3.training_step((x1, x2))
p1, p2 = (v3.predictor(v3.projector(v3.encoder(x))) for x in (x1, x2))     # queries: (N, P)
with torch.no_grad():
    k1, k2 = (F.normalize(v3.projector_k(v3.encoder_k(x)), dim=1) for x in (x1, x2))   # keys
ours = 0.5 * (info_nce(p1, k2, v3.temperature) + info_nce(p2, k1, v3.temperature))
assert torch.allclose(out["loss"], ours, atol=1e-5)
print(f"v3 loss {out['loss'].item():.4f} = inline symmetric loss with the predictor, in-batch negatives")

# %% [markdown]
# ## Exercises
# 1. **Momentum.** Train the queue variant with `momentum=0.9` and `momentum=0.99` (300 steps
#    each) and rerun `similarity_by_age` on each: are the old keys now easier negatives than
#    the young ones? What happens to kNN? For reference, He et al. (2020, section 4.1, ResNet-50,
#    K = 4,096, ImageNet linear probe): m = 0 fails (the training loss oscillates and does not
#    converge); m = 0.9 gives 55.2%, 0.99 gives 57.8%, 0.999 gives 59.0% and 0.9999 gives 58.9%.
# 2. **Shuffling BN.** Train with `bn_splits=1` and compare the loss curve and kNN with the
#    default. Why does the loss of the cheating model drop faster?
#
# A solution sketch for exercise 1, on a short run (set `RUN_SOLUTIONS = True` to run it):

# %%
RUN_SOLUTIONS = False
# BEGIN SOLUTION
def knn_after(momentum, steps=300):
    cl_teach.setup(SEED, verbose=False)
    m = MoCo(SmallCNN(), queue_size=4096, temperature=0.2, momentum=momentum)
    g = torch.Generator().manual_seed(SEED + 2)
    m.fill_queue(Augment()(train.x[torch.randperm(len(train.x), generator=g)[:4096]], g))
    fit(m, ViewLoader(train.x, [Augment()] * 2, batch_size=BATCH, seed=SEED), steps=steps, lr=5e-3,
        progress=False)
    young_old = paired_difference(*similarity_by_age(m, Augment()(train.x[idx], g),
                                                     Augment()(train.x[idx], g))[1][:, [0, -1]].T)
    return knn_and_probe(m.encoder, train, test).knn, young_old


if RUN_SOLUTIONS:
    for mom in (0.9, 0.99, 0.999):
        knn, young_old = knn_after(mom)
        print(f"momentum {mom}: kNN {knn:.3f}, q.k youngest minus oldest keys {young_old}")
# END SOLUTION

# %% [markdown]
# ## Summary
# - MoCo is InfoNCE with negatives from a queue: the number of negatives K no longer depends on
#   the batch size, so a small batch still gets thousands of negatives.
# - The queue only works because the key encoder moves slowly: no gradient, EMA of the query
#   encoder. Shuffling BN stops the network from cheating through batch statistics.
# - Measured here at batch 32 over 600 steps: no reliable difference between the queue and
#   in-batch negatives (the interval above covers the test images; other seeds change the
#   sign), and both are close to raw pixels under kNN. One reason a bigger K helps less than it
#   sounds: with 10 classes about 400 of the 4,096 negatives share the query's class.
# - A queue needs consistent keys: fill it with real keys, and let the key encoder move slowly
#   compared with the queue's age (m = 0.999); the age-binned q . k shows whether stale keys
#   have become a shortcut.
# - MoCo v2 = MoCo + MLP head, blur, tau = 0.2, cosine schedule. MoCo v3 drops the queue for
#   large batches, adds a predictor and a symmetric loss, and stabilises ViT training by
#   freezing a random patch projection.
#
# **References:** He et al., *Momentum Contrast for Unsupervised Visual Representation Learning*,
# CVPR 2020; Chen et al., *Improved Baselines with Momentum Contrastive Learning* (MoCo v2),
# 2020; Chen, Xie & He, *An Empirical Study of Training Self-Supervised Vision Transformers*
# (MoCo v3), ICCV 2021; facebookresearch/moco `moco/builder.py`.

# %%
# NBVAL_IGNORE_OUTPUT
print(f"notebook wall time: {time.perf_counter() - t_start:.0f} s")
