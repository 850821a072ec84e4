# %% [markdown]
# # 12 DINO: self-distillation with no labels
#
# **Learning goals**
# 1. Write DINO's loss: a student predicts the output distribution of a teacher (an EMA of
#    the student) on other views, through a centred and sharpened teacher softmax.
# 2. Tell apart DINO's two collapse modes by switching centering and sharpening off: one
#    dimension dominating (one-hot output) and the uniform output (loss stuck at log K).
# 3. Train DINO with both, check that its teacher has not collapsed, and that its backbone's
#    features beat the fair baselines (raw pixels, the untrained encoder with BN re-estimated),
#    with a 95% interval.
#
# **Prerequisites:** 03 (collapse), 07 (momentum encoder), 09 (BYOL: an EMA target, no negatives).
#
# **Time budget:** about 1.5 minutes on a 2-core laptop CPU (one thread), measured in the closing note.

# %%
import math
import time

import torch
import torch.nn.functional as F
from IPython.display import display
from matplotlib.figure import Figure

import cl_teach
from cl_teach.augment import Augment
from cl_teach.data import ViewLoader, fashion_mnist_subsets
from cl_teach.evaluation import baselines, best_baseline, knn_and_probe
from cl_teach.losses import dino_loss
from cl_teach.methods import DINO
from cl_teach.models import SmallCNN
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
# DINO (Caron et al., 2021) is knowledge distillation where the teacher is built from the student:
# student $g_{\theta_s}$ and teacher $g_{\theta_t}$ (an EMA of the student, no gradient) both
# output K scores, turned into distributions with temperatures:
#
# $$P_t(x) = \operatorname{softmax}\!\Big(\frac{g_{\theta_t}(x) - c}{\tau_t}\Big),\qquad
# P_s(x') = \operatorname{softmax}\!\Big(\frac{g_{\theta_s}(x')}{\tau_s}\Big),\qquad
# \mathcal{L} = \sum_{x \neq x'} H\big(P_t(x), P_s(x')\big)
#   = -\sum_{x \neq x'} \sum_k P_t(x)_k \log P_s(x')_k.$$
#
# Nothing in this loss forbids collapse; two operations on the teacher balance it:
# - **centering**: subtract c, an EMA of the teacher's mean output,
#   $c \leftarrow m\,c + (1 - m)\,\frac{1}{B}\sum_i g_{\theta_t}(x_i)$. It stops one dimension from
#   dominating, but pushes towards the uniform distribution;
# - **sharpening**: a low teacher temperature ($\tau_t = 0.04 < \tau_s = 0.1$). It pushes
#   towards one-hot outputs, the opposite.
#
# With both, the teacher's output is neither uniform nor the same one-hot vector for everyone.
#
# ## Derive: the loss and the center update, inline

# %%
def dino_loss_inline(student, teacher, c, tau_s=0.1, tau_t=0.04):
    P_t = [F.softmax((t.detach() - c) / tau_t, dim=1) for t in teacher]      # (N, K) each, no gradient
    log_P_s = [F.log_softmax(s / tau_s, dim=1) for s in student]             # (N, K) each
    losses = [-(p_t * log_P_s[v]).sum(dim=1).mean()
              for i, p_t in enumerate(P_t) for v in range(len(student)) if v != i]
    return sum(losses) / len(losses)


def center_update_inline(c, teacher, m=0.9):
    return m * c + (1 - m) * torch.cat(teacher).mean(dim=0)                   # (K,)


cl_teach.setup(SEED, verbose=False)
dino = DINO(SmallCNN())
x1, x2 = train.x[:32], train.x[32:64]
dino.center.normal_()                            # a non-zero center, to check that it is used
out = dino.training_step((x1, x2))
s = [dino.head(dino.encoder(x)) for x in (x1, x2)]
with torch.no_grad():
    t = [dino.teacher_head(dino.teacher_encoder(x)) for x in (x1, x2)]
ours = dino_loss_inline(s, t, dino.center)
assert torch.allclose(ours, out["loss"], atol=1e-5)
assert torch.allclose(ours, dino_loss(s, t, dino.center), atol=1e-5)
c_next = center_update_inline(dino.center, t)
dino.after_step(0, 10)
assert torch.allclose(c_next, dino.center, atol=1e-6)
print(f"inline loss {ours.item():.4f} = DINO.training_step = dino_loss; center update matches after_step")

# %% [markdown]
# ## Experiment: the two collapse modes, then DINO with both
# K = 256 outputs, so a uniform output gives a loss of log K = 5.55. Besides the loss we log two
# entropies of the teacher's distribution P_t (centred and sharpened as in the loss):
# - `teacher_entropy`: the mean entropy of each image's P_t. log K = uniform output; 0 = one-hot;
# - `teacher_batch_entropy`: the entropy of the batch's mean P_t. Near 0 = every image gets the
#   *same* one-hot output.
#
# Three runs on the same batches (batch 256): sharpening only (no centering), centering only
# (no sharpening: tau_t = tau_s = 0.1), and both. The collapsing runs need only 150 steps.

# %%
log_k = math.log(256)
reference = {"loss": log_k, "teacher_entropy": log_k, "teacher_batch_entropy": log_k}   # log K
keys = ["loss", "teacher_entropy", "teacher_batch_entropy"]
RUNS = {"no centering": (dict(centering=False), 150),
        "no sharpening": (dict(sharpening=False), 150),
        "centering + sharpening": (dict(), 300)}
runs, histories = {}, {}


def train_dino(name):
    kwargs, steps = RUNS[name]
    cl_teach.setup(SEED, verbose=False)               # the same initial weights and batches for each run
    method = DINO(SmallCNN(), n_outputs=256, **kwargs)
    loader = ViewLoader(train.x, [Augment()] * 2, batch_size=256, seed=SEED)
    histories[name] = fit(method, loader, steps=steps, lr=5e-3, desc=name,
                          callbacks=[CollapseMonitor(every=25),
                                     LivePlot(keys, every=50, title=f"DINO, {name}", reference=reference)])
    runs[name] = method


# %%
train_dino("no centering")

# %%
train_dino("no sharpening")

# %%
train_dino("centering + sharpening")

# %% [markdown]
# ## Diagnose: which collapse is which?

# %%
def tail(name, key):
    return histories[name][key][-20:].mean()


both = "centering + sharpening"
for name in RUNS:
    print(f"{name:24s} loss {tail(name, 'loss'):.2f}  teacher entropy {tail(name, 'teacher_entropy'):.2f}  "
          f"entropy of the batch mean {tail(name, 'teacher_batch_entropy'):.2f} "
          f"(= {math.exp(tail(name, 'teacher_batch_entropy')):.0f} outputs in use)   (log K = {log_k:.2f})")

fig = Figure(figsize=(12, 3.3), layout="constrained")
for ax, key, label in zip(fig.subplots(1, 3), keys, ["loss", "teacher entropy per image (nats)",
                                                      "entropy of the batch-mean P_t (nats)"]):
    for name in RUNS:
        ax.plot(histories[name].steps(key), histories[name][key], label=name)
    ax.axhline(log_k, color="k", ls=":", lw=1, label="log K")
    ax.set_xlabel("step"), ax.set_ylabel(label), ax.set_ylim(0, 1.05 * log_k)
fig.axes[0].legend(fontsize=8)
fig.suptitle("DINO's three runs on the same batches")
display(fig)

# %% [markdown]
# The same diagnosis on 1,000 *test* images, with each run's trained teacher in eval mode
# (`DINO.collapse_mode`): "uniform" when the mean per-image entropy is above 0.9 log K, "few
# outputs" when the entropy of the batch-mean $P_t$ is below 0.6 log K (fewer than
# $K^{0.6} \approx 28$ of the 256 outputs in use across the images), healthy otherwise.

# %%
# NBVAL_CHECK_OUTPUT
mode = {name: runs[name].collapse_mode(test.x[:1000]) for name in RUNS}
for name in RUNS:
    print(f"{name:24s} {mode[name] or 'healthy'}")
# sharpening only: peaked outputs, and the same few dimensions for every image
assert mode["no centering"] == "few outputs"
assert tail("no centering", "teacher_entropy") < 0.25 * log_k
assert tail("no centering", "teacher_batch_entropy") < 0.5 * tail(both, "teacher_batch_entropy")
# centering only: uniform output, the loss is stuck at log K
assert mode["no sharpening"] == "uniform"
assert abs(tail("no sharpening", "loss") - log_k) < 0.05 * log_k
# both: not uniform, and not the same few outputs for everyone
assert mode[both] is None
assert tail(both, "teacher_entropy") < 0.9 * log_k and tail(both, "teacher_batch_entropy") > 0.6 * log_k

# %% [markdown]
# Without centering, the teacher's output is peaked (low entropy per image) *and* the batch uses
# only a handful of the 256 outputs (the exponential of the batch-mean entropy, printed above):
# it is heading towards the same answer for every image, which the student copies easily (the
# loss drops well below log K and levels off) while the output says less and less about the
# image. In these 150 steps it reaches a handful of outputs, not yet one: "collapse in progress".
# Without sharpening, the output is uniform and the loss sits at log K: the teacher says
# nothing, so there is nothing to learn. With both, the teacher's outputs are peaked per image
# but spread across the batch. (Watch its batch-mean entropy in the plot: a slow drift down
# would be a slow collapse. In the paper's long runs the balance holds; a 300-step run cannot
# show that.)
#
# Do the backbone's features carry information? The fair baselines, under the same kNN and
# linear-probe evaluation: the raw pixels, and the untrained encoder with its BN statistics
# re-estimated on the training images. Each run is compared with the better of the two, on the
# same 5,000 test images (paired bootstrap: it captures the test-set noise only, not the
# variation from one training seed to another).

# %%
cl_teach.setup(SEED, verbose=False)
base = baselines(SmallCNN, train, test)
results = {name: knn_and_probe(m.encoder, train, test) for name, m in runs.items()}
for name, r in {**base, **results}.items():
    print(f"{name:30s} kNN {r.knn:.4f}   linear probe {r.probe:.4f}")
diffs = {}
for on in ("knn", "probe"):
    ref_name, ref = best_baseline(base, on=on)
    for name, r in results.items():
        diffs[name, on] = d = r.compare(ref, on=on)
        print(f"{on:5s} {name:24s} - {ref_name}: {d.points()} points   {d.verdict(name, ref_name)}")

# %% [markdown]
# The claim of goal 3 needs both halves: the teacher has not collapsed *and* the linear probe on
# h beats the better baseline with an interval above 0. A collapsed run must fail it, even when
# its backbone learned something in the steps before the head collapsed (h is read before the
# head).

# %%
# NBVAL_CHECK_OUTPUT
for name in RUNS:
    healthy, beats = mode[name] is None, diffs[name, "probe"].low > 0
    print(f"{name:24s} teacher {mode[name] or 'healthy':12s} -> "
          + ("DINO learned useful features" if healthy and beats
             else "no claim: the teacher collapsed" if not healthy
             else "no claim: within noise of the baseline"))
assert mode[both] is None and diffs[both, "probe"].low > 0, \
    f"DINO should beat the best baseline by linear probe: {diffs[both, 'probe']}"
assert all(mode[name] is not None for name in RUNS if name != both)

# %% [markdown]
# The collapsing runs' backbones are not useless (their probe can beat the pixels too), which is
# why kNN or the probe on h alone could not tell a healthy DINO from a broken one here: the
# teacher's two entropies can.
#
# ## Explore: the teacher's temperature and its center
# Take the trained teacher (centering + sharpening) and its outputs on 512 test images, and redo
# only the last step of the loss, $P_t = \mathrm{softmax}((g_t(x) - c)/\tau_t)$, with other
# choices. Two numbers read the two collapse modes: the entropy of each image's $P_t$ (log K =
# uniform) and the entropy of the batch-mean $P_t$ (low = the same few outputs win for every image).

# %%
# NBVAL_CHECK_OUTPUT
from cl_teach.widgets import dino_teacher_explorer, dino_teacher_stats

teacher = runs[both]
with torch.no_grad():
    teacher.eval()
    t_out = teacher.teacher_head(teacher.teacher_encoder(test.x[:512]))      # (512, K)
    teacher.train()
on = dino_teacher_stats(t_out, teacher.center, 0.04, centering=True)
off = dino_teacher_stats(t_out, teacher.center, 0.04, centering=False)
flat = dino_teacher_stats(t_out, teacher.center, 1.0, centering=True)
assert off["batch_entropy"] < on["batch_entropy"], "without the center, fewer outputs win across the batch"
assert flat["entropy"] > 0.99 * flat["log_k"], "at tau_t = 1 every image's P_t is nearly uniform"
print("without the center, fewer outputs win across the batch:",
      bool(off["batch_entropy"] < on["batch_entropy"]))
print("at tau_t = 1, every image's P_t is nearly uniform:", bool(flat["entropy"] > 0.99 * flat["log_k"]))

# %%
for name, st in (("tau_t 0.04, centering on", on), ("tau_t 0.04, centering off", off),
                 ("tau_t 1, centering on", flat)):
    print(f"{name:26s} entropy per image {st['entropy']:.2f}, of the batch mean {st['batch_entropy']:.2f} "
          f"(log K = {st['log_k']:.2f})")

# %% [markdown]
# Move **teacher tau** up to 1: every image's distribution flattens to uniform (the collapse of
# the run without sharpening). Switch **centering** off: the outputs the whole batch agrees on take
# over (the road to the one-hot collapse). The trained teacher sits between the two.

# %%
# NBVAL_IGNORE_OUTPUT
dino_teacher_explorer(t_out, teacher.center)

# %% [markdown]
# ## Exercises
# 1. **Teacher temperature.** Train DINO with `teacher_temperature` in {0.02, 0.04, 0.07, 0.1}
#    for 150 steps each. At which value does the teacher's entropy approach log K?
# 2. **Center momentum.** With `center_momentum=0.0` the center is the current batch mean. What
#    changes in the entropies?
#
# (The instructor's copy of this notebook has a solution for exercise 1 below; set
# `RUN_SOLUTIONS = True` there to run it, ~40 s.)

# %%
RUN_SOLUTIONS = False
# BEGIN SOLUTION
if RUN_SOLUTIONS:
    for tau_t in (0.02, 0.04, 0.07, 0.1):
        cl_teach.setup(SEED, verbose=False)
        h = fit(DINO(SmallCNN(), teacher_temperature=tau_t),
                ViewLoader(train.x, [Augment()] * 2, batch_size=256, seed=SEED), steps=150, lr=5e-3,
                progress=False)
        print(f"tau_t {tau_t}: teacher entropy {h['teacher_entropy'][-20:].mean():.2f} (log K {log_k:.2f})")
# END SOLUTION

# %% [markdown]
# ## Summary
# - DINO distils a teacher (an EMA of the student) into the student across views, with a
#   cross-entropy between softmax outputs.
# - Centering alone collapses to the uniform output (loss stuck at log K); sharpening alone
#   heads towards the same few outputs for every image (a handful of the 256 after 150 steps).
#   Measured above with the two teacher entropies. Together they balance.
# - A feature claim needs a fair baseline and an interval: DINO's probe on h beats the better of
#   raw pixels and the untrained encoder, but so can a collapsing run's backbone, so the claim
#   also requires a teacher that has not collapsed.
# - Left out here for a CPU budget: multi-crop (DINO's local-to-global views: small crops for
#   the student only), the teacher temperature warm-up (0.04 -> 0.07 over the first epochs in
#   `main_dino.py`), and DINOv2's additions (Oquab et al., 2023: an iBOT masked-patch loss,
#   Sinkhorn-Knopp centering, the KoLeo regulariser).
# - The teacher gets no gradient; the teacher weights and the center change only in `after_step`.
#
# **References:** Caron et al., *Emerging Properties in Self-Supervised Vision Transformers*
# (DINO), ICCV 2021; facebookresearch/dino `main_dino.py`; Hinton, Vinyals & Dean, *Distilling
# the Knowledge in a Neural Network*, 2015.

# %%
# NBVAL_IGNORE_OUTPUT
print(f"notebook wall time: {time.perf_counter() - t_start:.0f} s")
