# %% [markdown]
# # 09 DINO: self-distillation with no labels
#
# **Learning goals**
# 1. Write DINO's loss: a student predicts the output distribution of a teacher (an EMA of
#    the student) on other views, through a centred and sharpened teacher softmax.
# 2. Tell apart DINO's two collapse modes by switching centering and sharpening off: one
#    dimension dominating (one-hot output) and the uniform output (loss stuck at log K).
# 3. Train DINO with both and check that it learns features that beat an untrained encoder.
#
# **Prerequisites:** 02 (collapse), 05 (momentum encoder), 07 (BYOL: an EMA target, no negatives).
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
from cl_teach.losses import dino_loss
from cl_teach.methods import DINO
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
# DINO (Caron et al., 2021) is knowledge distillation where the teacher is built from the student:
# student $g_{\theta_s}$ and teacher $g_{\theta_t}$ (an EMA of the student, no gradient) both
# output K scores, turned into distributions with temperatures:
#
# $$P_t(x) = \operatorname{softmax}\!\Big(\frac{g_{\theta_t}(x) - c}{\tau_t}\Big),\qquad
# P_s(x') = \operatorname{softmax}\!\Big(\frac{g_{\theta_s}(x')}{\tau_s}\Big),\qquad
# \mathcal{L} = \sum_{x \neq x'} H\big(P_t(x), P_s(x')\big) = -\sum_{x \neq x'} \sum_k P_t(x)_k \log P_s(x')_k.$$
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


cl_teach.setup(seed=0, verbose=False)
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
reference = {"loss": log_k, "teacher_entropy": log_k, "teacher_batch_entropy": log_k}
keys = ["loss", "teacher_entropy", "teacher_batch_entropy"]
RUNS = {"no centering": (dict(centering=False), 150),
        "no sharpening": (dict(sharpening=False), 150),
        "centering + sharpening": (dict(), 300)}
runs, histories = {}, {}


def train_dino(name):
    kwargs, steps = RUNS[name]
    cl_teach.setup(seed=0, verbose=False)
    method = DINO(SmallCNN(), out_dim=256, **kwargs)
    loader = ViewLoader(train.x, [Augment()] * 2, batch_size=256, seed=0)
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
# NBVAL_CHECK_OUTPUT
def tail(name, key):
    return histories[name][key][-20:].mean()


for name in RUNS:
    print(f"{name:24s} loss {tail(name, 'loss'):.2f}  teacher entropy {tail(name, 'teacher_entropy'):.2f}  "
          f"entropy of the batch mean {tail(name, 'teacher_batch_entropy'):.2f}   (log K = {log_k:.2f})")
both = "centering + sharpening"
# sharpening only: peaked outputs, and the same few dimensions for every image
assert tail("no centering", "teacher_entropy") < 0.25 * log_k
assert tail("no centering", "teacher_batch_entropy") < 0.5 * tail(both, "teacher_batch_entropy")
# centering only: uniform output, the loss is stuck at log K
assert tail("no sharpening", "teacher_entropy") > 0.95 * log_k
assert abs(tail("no sharpening", "loss") - log_k) < 0.05 * log_k
# both: not uniform, and not the same output for everyone
assert tail(both, "teacher_entropy") < 0.9 * log_k and tail(both, "teacher_batch_entropy") > 0.6 * log_k

# %% [markdown]
# Without centering, the teacher's output is peaked (low entropy per image) *and* the batch uses
# only a handful of the 256 outputs (exp of the batch-mean entropy): it is heading to the same
# one-hot answer for every image, which the student copies easily (the loss falls towards 0
# while the output stops saying anything about the image). Without sharpening, the output is
# uniform and the loss sits at log K: the teacher says nothing, so there is nothing to learn.
# With both, the teacher's outputs are peaked per image but spread across the batch. Do the
# backbone's features carry information?

# %%
cl_teach.setup(seed=0, verbose=False)
results = {"untrained (BN recalibrated)": evaluate(recalibrate_batchnorm(SmallCNN(), train.x))}
results.update({name: evaluate(m.encoder) for name, m in runs.items()})
for name, (knn, probe) in results.items():
    print(f"{name:28s} kNN {knn:.3f}   linear probe {probe:.3f}")
assert results[both][0] > results["untrained (BN recalibrated)"][0]

# %% [markdown]
# The backbone of the collapsing runs also learned something, in the steps before the head
# collapsed (these runs are short, and h is read before the head), so kNN on h separates the runs
# only weakly here; the entropies of the head's output above are the clear diagnosis.
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
on = dino_teacher_stats(t_out, teacher.center, 0.04, centering=True)
off = dino_teacher_stats(t_out, teacher.center, 0.04, centering=False)
flat = dino_teacher_stats(t_out, teacher.center, 1.0, centering=True)
for name, st in (("tau_t 0.04, centering on", on), ("tau_t 0.04, centering off", off), ("tau_t 1, centering on", flat)):
    print(f"{name:26s} entropy per image {st['entropy']:.2f}, of the batch mean {st['batch_entropy']:.2f} "
          f"(log K = {st['log_k']:.2f})")
assert off["batch_entropy"] < on["batch_entropy"], "without the center, fewer outputs win across the batch"
assert flat["entropy"] > 0.99 * flat["log_k"], "at tau_t = 1 every image's P_t is nearly uniform"

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
# A solution for exercise 1 (set `RUN_SOLUTIONS = True` to run it, ~40 s):

# %%
RUN_SOLUTIONS = False
# BEGIN SOLUTION
if RUN_SOLUTIONS:
    for tau_t in (0.02, 0.04, 0.07, 0.1):
        cl_teach.setup(seed=0, verbose=False)
        h = fit(DINO(SmallCNN(), teacher_temperature=tau_t),
                ViewLoader(train.x, [Augment()] * 2, batch_size=256, seed=0), steps=150, lr=5e-3,
                progress=False)
        print(f"tau_t {tau_t}: teacher entropy {h['teacher_entropy'][-20:].mean():.2f} (log K {log_k:.2f})")
# END SOLUTION

# %% [markdown]
# ## Summary
# - DINO distils a teacher (an EMA of the student) into the student across views, with a
#   cross-entropy between softmax outputs.
# - Centering alone collapses to the uniform output (loss stuck at log K); sharpening alone
#   collapses to the same one-hot output for every image. Measured above with the two teacher
#   entropies. Together they balance, and the features learn.
# - The teacher gets no gradient; the teacher weights and the center change only in `after_step`.
#
# **References:** Caron et al., *Emerging Properties in Self-Supervised Vision Transformers*
# (DINO), ICCV 2021; facebookresearch/dino `main_dino.py`; Hinton, Vinyals & Dean, *Distilling
# the Knowledge in a Neural Network*, 2015.

# %%
# NBVAL_IGNORE_OUTPUT
print(f"notebook wall time: {time.perf_counter() - t_start:.0f} s")
