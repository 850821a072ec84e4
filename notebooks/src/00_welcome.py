# %% [markdown]
# # 00 · Welcome to cl-teach: a tour of contrastive learning
#
# **Learning goals**
# 1. Name the parts of a contrastive system: positives, negatives, encoder $f$, projector $g$,
#    embeddings on the unit hypersphere, and a loss.
# 2. Meet the data sets of the course (all real, all offline).
# 3. Know the conventions: the setup cell, seeds, the device, live plots and widgets.
#
# **Prerequisites:** Python, a little PyTorch (tensors, `nn.Module`, autograd).
# **Time budget:** about 30 seconds on a 2-core laptop CPU.

# %% [markdown]
# ## Setup
# Every notebook starts with this one cell. `SEED = cl_teach.notebook_seed()` reads the notebook's
# seed from the environment variable `CL_TEACH_SEED` (0 when unset), and every random draw in the
# notebook (data subsets, initialisations, augmentations) derives from it: `SEED`, `SEED + 1`, ...
# `cl_teach.setup(SEED)` seeds Python, NumPy and torch, sets the number of CPU threads (one by
# default, so that a rerun gives the same numbers bit for bit) and picks the device. Nothing
# happens at import time.
#
# **The device line.** `setup` prints one line: the torch version, `device=` (the device the
# course trains on: `cuda` when PyTorch sees a GPU, `cpu` otherwise; `CL_TEACH_DEVICE=cpu` forces
# the CPU), `threads=` and `seed=`. Every notebook is sized to run on a laptop CPU, so `device=cpu`
# is the expected line, not a problem: no GPU is ever required. If you do have one, check that the
# line says `cuda`; if it says `cpu`, your PyTorch build does not see it.

# %%
import torch
from IPython.display import display

import cl_teach
from cl_teach import models, plotting, train
from cl_teach.augment import Augment, two_views
from cl_teach.data import ViewLoader, load_fashion_mnist, load_photos, load_weibo
from cl_teach.lineage import family_tree
from cl_teach.methods import SimCLR

SEED = cl_teach.notebook_seed()
device = cl_teach.setup(SEED)

# %% [markdown]
# ## The abstract system on one page
#
# ```
#        x ──augment──▶ x₁ ──f──▶ h₁ ──g──▶ z₁ ─┐
#        │                                      ├──▶ loss: pull z₁, z₂ together (positives),
#        └──augment──▶ x₂ ──f──▶ h₂ ──g──▶ z₂ ─┘          push other z's away (negatives)
# ```
#
# * **Positives**: two views of the same thing (two crops of one image, a post and its hashtag,
#   a picture and its caption).
# * **Negatives**: views of *other* things, usually the rest of the batch.
# * **Encoder** $f$: the network whose representation $h = f(x)$ we keep after training.
# * **Projector** $g$: a small MLP; the loss is computed on $z = g(h)$, then $g$ is thrown away.
# * **Hypersphere**: $z$ is L2-normalised, so similarity is the cosine
#   $z_1^\top z_2 / \lVert z_1\rVert \lVert z_2\rVert$.
# * **Loss**: InfoNCE,
#   $\;\mathcal L = -\log \dfrac{e^{\,s(z, z^+)/\tau}}{\sum_{j=1}^{K} e^{\,s(z, z_j)/\tau}}$, where the
#   sum runs over all $K$ candidates, **the positive $z^+$ included** (it is one of the $z_j$) and the
#   $K-1$ negatives; $\tau$ is the temperature. It is a $K$-way classification problem: *which of
#   these candidates is my positive?* (notebook 01).
#
# The same loss with labels deciding the positives is *metric learning* (notebook 02): contrastive
# learning is its self-supervised version. What can go wrong: with no negatives every $z$ can
# collapse to the same point (notebook 03). How to tell a good embedding: **alignment** and
# **uniformity** (notebook 04). Then the method families (05–13; 06 shows the shortcuts an
# augmentation can leave open, 10 the negatives that are secretly positives), text and images
# (14–16), three applications on real Weibo data (17–19), and training on several processes (20).
#
# ## The family tree
# Where each method comes from and what it changed, drawn from `cl_teach.lineage.LINEAGE` (the
# talk's slide "基于负例方法谱系", *the lineage of negative-based methods*, shows the second lane;
# the other lanes are the families the course adds). Four families avoid collapse in four ways:
# negatives (a softmax over other images), clustering (balanced codes or a centred teacher), an
# asymmetric predictor with a stop-gradient, and decorrelating the dimensions.

# %%
display(family_tree())

# %% [markdown]
# ## The data sets of the course
# **Fashion-MNIST** (Xiao et al., 2017): 70,000 real 28×28 photos of clothing in 10 classes, read
# offline from Debian's `dataset-fashion-mnist`. If it is missing the loader says where it looked
# and falls back, loudly, to scikit-learn's digits.

# %%
train_set = load_fashion_mnist("train")
test_set = load_fashion_mnist("test")
print(train_set)
print(test_set)
if train_set.is_fallback:
    print("!! FALLBACK DATA: Fashion-MNIST was not found (the warning above says how to get it); the "
          "course's notebooks run on scikit-learn's digits instead, and their numbers are not the course's.")
idx = torch.cat([torch.nonzero(train_set.y == c)[:4, 0] for c in range(10)])
display(plotting.show_images(train_set.x[idx], nrow=10, scale=0.9,
                             titles=[train_set.classes[c] for c in train_set.y[idx]],
                             title="Fashion-MNIST: four training images per class"))

# %% [markdown]
# **Real photographs** bundled with scikit-image and scikit-learn, for showing augmentations in colour:

# %%
photos, photo_names = load_photos(size=96)
display(plotting.show_images(photos, nrow=6, titles=photo_names, scale=1.4,
                             title="Bundled photos (scikit-image, scikit-learn)"))

# %% [markdown]
# **Weibo hashtags** (Wang et al., NAACL 2019): real microblog posts with the hashtags their authors
# chose, read from `../shared/data/weibo_hashtags` (or `$CL_TEACH_WEIBO`) and checked by sha256.
# Notebooks 17–19 learn to find a post's hashtag.

# %%
try:
    weibo = load_weibo("valid")
    print(weibo)
    for post, tags in list(zip(weibo.posts, weibo.tags))[:4]:
        print(f"  #{'# #'.join(tags)}#  ←  {post[:60]}")
except FileNotFoundError as err:
    print("Weibo corpus not available here:", err)

# %% [markdown]
# ## Two views of a batch
# Augmentation makes the positives. `cl_teach.augment` draws independent random parameters for
# *every image* in a batch (a random crop, a flip, brightness and contrast), as batched tensor ops,
# so augmentation costs almost nothing next to the network.

# %%
gen = torch.Generator().manual_seed(SEED)
x = train_set.x[idx[::4]]                                       # one image per class
x1, x2 = two_views(x, Augment(), generator=gen)
display(plotting.show_images(torch.cat([x, x1, x2]), nrow=10, scale=0.9,
                             title="rows: original, view 1, view 2 "
                                   "(each image its own random crop/flip/jitter)"))

# %% [markdown]
# ## Live plots and progress bars
# Every method in the course trains with the same loop, `cl_teach.train.fit`. Callbacks add live
# plots (`LivePlot`, redrawn in place while training) and monitors (`CollapseMonitor`). Here is
# a 60-step SimCLR run on 5,000 images, just to see the machinery; notebook 05 does it properly.
#
# **What to expect in the uniformity panel** (lower = more spread over the sphere, notebook 04).
# The first reading, at step 0, is the *random* network, whose embeddings are already well spread.
# In the first few steps the learning rate warms up to its peak and the first large updates move
# all embeddings the same way: uniformity gets *worse* for a while (a brief partial collapse,
# the topic of notebook 03). Then the negatives push the embeddings apart again and uniformity
# improves. The cell after the run prints where the early peak was, so you can compare.

# %%
# NBVAL_IGNORE_OUTPUT
small = train_set.subset(5000, seed=SEED)
cl_teach.setup(SEED, verbose=False)                       # re-seed before each run
method = SimCLR(models.SmallCNN(), temperature=0.1)
print(f"encoder f: {models.count_parameters(method.encoder):,} parameters; "
      f"projector g: {models.count_parameters(method.projector):,}")
loader = ViewLoader(small.x, [Augment()] * 2, batch_size=256, seed=SEED)
history = train.fit(method, loader, steps=60, lr=5e-3,
                    callbacks=[train.CollapseMonitor(every=5),
                               plotting.LivePlot(["loss", "uniformity"], every=10)])

# %%
u, u_steps = history["uniformity"], history.steps("uniformity")
early = int(u[: len(u) // 3].argmax())                   # the worst reading in the first third
print(f"uniformity at step 0 (random network): {u[0]:.2f}; worst early reading: {u[early]:.2f} "
      f"at step {int(u_steps[early])}; at the end (step {int(u_steps[-1])}): {u[-1]:.2f}")

# %% [markdown]
# ## The seed convention
# A seeded run reproduces the same numbers bit for bit **on the same CPU with the same thread
# count**: let us check it by training the same 10 steps twice, and once more from another seed.
# On another CPU the last digits can differ (its kernels round differently), and another seed
# draws other subsets and initialisations. So the course's test suite (nbval) checks only what
# rounding cannot change: verdicts, integers, shapes. The claims of every notebook are `assert`s
# that must hold at seeds 0, 1 and 2 (`CL_TEACH_SEED=1 jupyter lab` reruns a notebook at seed 1).

# %%
def ten_steps(seed):
    cl_teach.setup(seed, verbose=False)
    m = SimCLR(models.SmallCNN(), temperature=0.1)
    h = train.fit(m, ViewLoader(small.x, [Augment()] * 2, batch_size=128, seed=seed), steps=10,
                  progress=False)
    return h["loss"]

first, second, other = ten_steps(SEED), ten_steps(SEED), ten_steps(SEED + 1)
print(f"loss after 10 steps: seed {SEED}, run 1: {first[-1]:.6f} | run 2: {second[-1]:.6f} | "
      f"seed {SEED + 1}: {other[-1]:.6f}")

# %%
# NBVAL_CHECK_OUTPUT
assert (first == second).all(), "a seeded rerun must give identical losses"
assert (first != other).any(), "another seed must give other draws"
print("same seed: identical losses at all 10 steps:", bool((first == second).all()))
print("another seed: the same losses?", bool((first == other).all()))

# %% [markdown]
# ## Widgets
# Notebooks end with an *explore* section: a widget that recomputes a plot when you move a
# control. Try the temperature explorer of notebook 01: move **tau** and watch how the softmax
# over negatives changes. (Widgets need a live kernel: in a static view they show as text.)

# %%
# NBVAL_IGNORE_OUTPUT
from cl_teach.widgets import temperature_explorer

temperature_explorer(temperature=0.1)

# %% [markdown]
# ## Exercises
# 1. **How strong can a view be?** Make three views of the first image with a *stronger*
#    augmentation (crop area from 0.1) and display them. How small can a crop get before you
#    cannot tell what the garment is?
# 2. **Views from a seed.** Write `views_from_seed(x, seed)`: the two views `two_views` makes of
#    the batch `x` with `Augment()` and a `torch.Generator` seeded with `seed`. The check asks what
#    the seed convention promises: the same seed gives the same views, another seed other views.
# 3. **How many negatives?** In a batch of $N$ images with two views each, every view has one
#    positive (the other view of its image). Write `negatives_per_view(n)`: how many negatives it
#    has in SimCLR's loss (notebook 05), as a formula in $n$.

# %%
# BEGIN SOLUTION
strong = Augment(crop_scale=(0.1, 1.0), strength=1.5)
views = torch.cat([strong(x[:1], generator=gen) for _ in range(3)])
display(plotting.show_images(views, nrow=3, title="strong augmentation"))
# END SOLUTION

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Answer.** Try a few draws: at a tenth of the image a crop often holds only a patch of fabric
# or an edge, and the garment is guessed, not seen. That is the trade-off of augmentation
# strength: the views must differ enough that matching them is not trivial, and share enough that
# they are still the same image. Chen et al. (2020, SimCLR) crop from 8% of the area on ImageNet,
# where an object covers more of the photo than a garment's detail does here; notebook 05's
# explorer lets you move the crop and watch kNN respond.
# <!-- END SOLUTION -->

# %%
def views_from_seed(x, seed):
    """(x1, x2): two_views(x, Augment()) drawn with a generator seeded with `seed`."""
    # BEGIN SOLUTION
    return two_views(x, Augment(), generator=torch.Generator().manual_seed(seed))
    # END SOLUTION


# %%
a1, a2 = views_from_seed(x, SEED)
b1, b2 = views_from_seed(x, SEED)
c1, c2 = views_from_seed(x, SEED + 1)
assert a1.shape == x.shape and a2.shape == x.shape, f"views keep the batch's shape {tuple(x.shape)}"
assert torch.equal(a1, b1) and torch.equal(a2, b2), "the same seed must give the same views, bit for bit"
assert not torch.equal(a1, c1), "another seed must draw other views"
assert not torch.equal(a1, a2), "the two views of one call are two independent draws"
print("same seed: identical views; another seed: other views; views 1 and 2 differ")

# %%
def negatives_per_view(n):
    """Negatives of one view in NT-Xent over a batch of n images, two views each."""
    # BEGIN SOLUTION
    return 2 * n - 2                  # the 2n views, less the view itself and its positive
    # END SOLUTION


# %%
for n in (1, 2, 8, 256):
    views_of = torch.arange(2 * n) % n                        # view i shows image i mod n
    same_image = views_of[:, None] == views_of[None, :]       # (2n, 2n): the view itself or its positive
    counted = int((~same_image).sum(1)[0])                    # every other image's two views
    assert negatives_per_view(n) == counted, (
        f"n = {n}: negatives_per_view gives {negatives_per_view(n)}, counting the batch gives {counted}")
print(f"a batch of 256 images: {negatives_per_view(256)} negatives per view")

# %% [markdown]
# ## Summary
# * A contrastive system: two views → $f$ → $g$ → the hypersphere → a loss that picks the positive.
# * All data is real and local; each loader says what it looked for if something is missing.
# * `SEED = cl_teach.notebook_seed()` and `cl_teach.setup(SEED)` once per notebook; every seed derives
#   from `SEED`. Seeded runs reproduce bit for bit on one machine; the checked claims hold at any seed.
# * `device=cpu` in the setup line is expected: the course never needs a GPU.
#
# **References:** Chen et al., *A Simple Framework for Contrastive Learning of Visual Representations*
# (SimCLR), ICML 2020 · Xiao et al., *Fashion-MNIST*, 2017 · Wang et al., *Microblog Hashtag Generation via
# Encoding Conversation Contexts*, NAACL 2019.
