# %% [markdown]
# # 18 · Similar posts: exact and approximate nearest neighbours with Faiss
#
# **Learning goals**
# 1. Search 8,000 real post embeddings with an **exact** index (flat inner product) and two
#    **approximate** ones — an inverted file (IVF) and a graph (HNSW) — and read the
#    recall-versus-latency trade-off each knob buys.
# 2. Judge "similar" with the data's own labels: two posts that share a hashtag count as
#    relevant (precision@10, mAP@10).
# 3. Look at the post space with UMAP, coloured by hashtag, and at the nearest posts of a query.
#
# **Prerequisites:** notebook 17 (the post/hashtag towers). **Time budget:** about 1 minute on a
# 2-core laptop CPU.

# %%
import time

import numpy as np
import torch
from IPython.display import display

import cl_teach
from cl_teach import plotting
from cl_teach.apps.hashtags import fit_hashtag_towers
from cl_teach.data import load_weibo
from cl_teach.methods import DualTower
from cl_teach.metrics import paired_difference
from cl_teach.models import embed_bags
from cl_teach.ranking import mean_average_precision, precision_at_k, recall_at_k
from cl_teach.retrieval import EmbeddingIndex, brute_force_search

SEED = cl_teach.notebook_seed()                 # CL_TEACH_SEED, default 0
device = cl_teach.setup(SEED)
# without the real corpus: a loud warning and a GENERATED stand-in (is_fallback=True)
train_split, test_split = load_weibo("valid", fallback=True), load_weibo("test", fallback=True)
REAL = not train_split.is_fallback

# %% [markdown]
# ## The post space
# We train notebook 17's tower on the `valid` posts (about 10 s) and embed *every* post of both
# splits: that is the database. The queries are the test posts that share a hashtag with at
# least one other post; a query's relevant set is those other posts.

# %%
model, featurizer = fit_hashtag_towers(train_split.posts, train_split.tags, epochs=10, seed=SEED)
posts = train_split.posts + test_split.posts
tags = train_split.tags + test_split.tags
X = embed_bags(model.post_tower, featurizer.transform(posts), featurizer.idf_)   # (N, 64)
torch.manual_seed(SEED + 1)
untrained = DualTower(featurizer.n_features_, 64, 64, shared=True, head=False, init_std=0.01)
X0 = embed_bags(untrained.post_tower, featurizer.transform(posts), featurizer.idf_)

by_tag = {}
for i, ts in enumerate(tags):
    for t in ts:
        by_tag.setdefault(t, set()).add(i)
first_test = len(train_split)
relevant_all = [set().union(*(by_tag[t] for t in tags[i])) - {i} for i in range(first_test, len(posts))]
queries = np.array([first_test + j for j, r in enumerate(relevant_all) if r])
relevant = [relevant_all[q - first_test] for q in queries]
print(f"database {X.shape}, {len(queries)} queries with at least one relevant post "
      f"(median {int(np.median([len(r) for r in relevant]))} relevant each)")


def neighbours(index, vectors, k=10):
    """Top-k database ids of each query, the query itself removed."""
    _, ids = index.search(vectors[queries], k + 1)
    return np.array([[j for j in row if j != q][:k] for row, q in zip(ids.tolist(), queries)])

# %% [markdown]
# ## Exact search is brute force
# `IndexFlatIP` compares each query with every vector: exact, and already fast at this size.

# %%
flat = EmbeddingIndex(kind="flat").fit(X)
exact = neighbours(flat, X)
scores, _ = flat.search(X[queries[:300]], k=11)
ref_scores, _ = brute_force_search(X, X[queries[:300]], k=11)
assert np.allclose(scores, ref_scores, atol=1e-5)                  # ids may differ only on exact ties
print(format(np.mean([len(set(tags[j]) & set(tags[q])) > 0
                      for q, row in zip(queries, exact) for j in row[:1]]), ".3f")
      + " of the queries' nearest posts share a hashtag with them")

# %%
def quality(ids):
    return {"P@10": round(precision_at_k(ids, relevant, 10), 4),
            "R@10": round(recall_at_k(ids, relevant, 10), 4),
            "mAP@10": round(mean_average_precision(ids, relevant, 10), 4)}


exact_untrained = neighbours(EmbeddingIndex().fit(X0), X0)
q_trained = quality(exact)
q_untrained = quality(exact_untrained)
d_tower = paired_difference(precision_at_k(exact, relevant, 10, per_query=True),
                           precision_at_k(exact_untrained, relevant, 10, per_query=True), seed=SEED)
print("trained tower:  ", q_trained)
print("untrained tower:", q_untrained)
print(f"P@10, trained - untrained: {d_tower}")

# %%
# NBVAL_CHECK_OUTPUT
print("P@10:", d_tower.verdict("the trained tower", "the untrained tower"))
assert d_tower.low > 0, d_tower

# %% [markdown]
# ## Approximate search: recall versus latency
# * **IVF** clusters the database with k-means into `nlist` cells; a query visits the `nprobe`
#   cells whose centroids are closest. `nprobe = nlist` is exact again.
# * **HNSW** links every vector to ~`m` neighbours in a layered graph; a query walks it greedily
#   with a beam of `ef_search` candidates.
#
# "Recall" here is the share of the exact top-10 that the approximate index returns (how good an
# approximation it is); precision@10 against the hashtags says whether users would notice.

# %%
# NBVAL_IGNORE_OUTPUT
def timed(index, repeats=3):
    """Neighbours and the best-of-3 milliseconds per query (the machine may be busy)."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        ids = neighbours(index, X)
        best = min(best, time.perf_counter() - t)
    return ids, 1000 * best / len(queries)


def overlap(ids):
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids.tolist(), exact.tolist())]))


_, flat_ms = timed(flat)
curves = {}
ivf = EmbeddingIndex(kind="ivf").fit(X)
nlist = ivf.index_.nlist
rows = []
for nprobe in [1, 2, 4, 8, 16, 32, nlist]:
    ivf.nprobe = nprobe
    ids, ms = timed(ivf)
    rows.append(("ivf", nprobe, ms, overlap(ids), quality(ids)["P@10"]))
hnsw = EmbeddingIndex(kind="hnsw", m=16).fit(X)
for ef in [4, 8, 16, 32, 64, 128]:
    hnsw.ef_search = ef
    ids, ms = timed(hnsw)
    rows.append(("hnsw", ef, ms, overlap(ids), quality(ids)["P@10"]))
for kind, label in (("ivf", "IVF (nprobe)"), ("hnsw", "HNSW (ef_search)")):
    r = [row for row in rows if row[0] == kind]
    curves[label] = ([row[2] for row in r], [row[3] for row in r], [row[1] for row in r])
display(plotting.plot_curves(curves, xlabel="milliseconds per query (1 thread)",
                             ylabel="recall of the exact top-10", xscale="log",
                             title=f"approximate search over {len(X):,} posts",
                             points={"flat (exact)": (flat_ms, 1.0)}))
print(f"flat: {flat_ms:.3f} ms/query; IVF has {nlist} cells")
for kind, knob, ms, rec, p10 in rows:
    print(f"{kind:4s} {knob:4d}: {ms:.3f} ms/query, recall of exact top-10 {rec:.3f}, P@10 {p10:.3f}")

# %%
ivf_rows = [row for row in rows if row[0] == "ivf"]
hnsw_rows = [row for row in rows if row[0] == "hnsw"]
assert ivf_rows[-1][3] > 0.99                       # every cell probed: exact again
assert ivf_rows[0][3] < ivf_rows[-1][3]             # one cell misses neighbours
assert hnsw_rows[-1][3] > 0.95                      # a wide beam finds nearly all
assert all(a[3] <= b[3] + 0.01 for a, b in zip(hnsw_rows, hnsw_rows[1:]))   # wider beam, more recall
# users barely notice at nprobe=4: P@10 within a tenth of the exact search's (a relative tolerance)
assert abs(ivf_rows[2][4] - q_trained["P@10"]) < 0.1 * q_trained["P@10"], (ivf_rows[2], q_trained)

# %% [markdown]
# At 8,000 vectors exact search is already a fraction of a millisecond per query, so the
# approximate indexes buy little here; their point is millions of vectors, where the flat index's
# cost grows linearly and HNSW's (and IVF's, with `nlist` grown like $\sqrt N$) does not. The
# milliseconds are all queries searched as one batch, divided by their number: throughput, not
# the latency of a single query, which is higher. Note also how *task* quality (P@10) drops more
# slowly than the overlap with the exact answer. Mostly because P@10 is low: most of the exact
# top-10 share no hashtag with the query, so losing some of them costs little; the neighbours an
# approximate index swaps in are also close to the query.

# %% [markdown]
# ## Diagnose: the nearest posts of a few queries

# %%
for q in queries[[0, 5, 9]]:
    print(f"query {tags[q]}: {posts[q][:50].replace(' ', '')}")
    row = exact[list(queries).index(q)][:3]
    for j in row:
        mark = "+" if set(tags[j]) & set(tags[q]) else " "
        print(f"  {mark} {tags[j]}: {posts[j][:50].replace(' ', '')}")

# %% [markdown]
# ## The post space with UMAP
# 2,000 posts, a 15-nearest-neighbour graph from the flat index (cosine), then UMAP
# (McInnes et al., 2018). Colours are the ten most frequent hashtags.

# %%
# NBVAL_IGNORE_OUTPUT
import warnings

import umap

sample = np.random.default_rng(SEED).choice(len(X), size=2000, replace=False)
sims, knn = EmbeddingIndex().fit(X[sample]).search(X[sample], k=15)
dist = np.clip(1 - sims, 0, None)                                   # cosine distance
with warnings.catch_warnings():                                     # "n_jobs overridden by random_state"
    warnings.simplefilter("ignore", UserWarning)
    xy = umap.UMAP(n_neighbors=15, metric="cosine", random_state=SEED, n_epochs=200,
                   precomputed_knn=(knn, dist, None)).fit_transform(X[sample])
first_tags = [tags[i][0] for i in sample]
names, counts = np.unique(first_tags, return_counts=True)
top10 = names[np.argsort(-counts, kind="stable")[:10]]
legend = {t: f"hashtag {r + 1}" for r, t in enumerate(top10)}     # matplotlib here has no CJK font
display(plotting.plot_embedding_2d(xy, [legend.get(t, t) for t in first_tags],
                                   title="2,000 Weibo posts (trained tower, UMAP), coloured by hashtag"))
print("; ".join(f"{legend[t]} = #{t.replace(' ', '')}#" for t in top10))

# %% [markdown]
# ## Exercises
# 1. Rebuild the HNSW index with `m=4` and `m=48`. How do the build time and the curve change?
# 2. The IVF index's k-means is trained on the data it indexes. What happens to recall if it is
#    trained on the untrained tower's embeddings instead (a mismatched quantizer)?

# %%
# BEGIN SOLUTION
for m in (4, 48):
    t = time.perf_counter()
    h = EmbeddingIndex(kind="hnsw", m=m, ef_search=32).fit(X)
    build = time.perf_counter() - t
    ids, ms = timed(h)
    print(f"m={m:2d}: build {build:.2f} s, {ms:.3f} ms/query, recall of exact top-10 {overlap(ids):.3f}")
# END SOLUTION

# %% [markdown]
# ## Summary
# * Flat inner-product search is exact and, at thousands of vectors, fast enough.
# * IVF trades recall for speed with `nprobe`, HNSW with `ef_search`; measure both against the
#   exact answer *and* against the task's labels.
# * Posts sharing a hashtag cluster together in the trained tower's space; the untrained tower's
#   neighbours are much less often relevant.
#
# **References:** Jégou, Douze, Schmid, *Product quantization for nearest neighbor search*, 2011
# (IVF). Malkov & Yashunin, *HNSW*, 2018. Johnson, Douze, Jégou, *Faiss*, 2019. McInnes, Healy,
# Melville, *UMAP*, 2018.
