# %% [markdown]
# # 18 · Similar posts: exact and approximate nearest neighbours with Faiss
#
# **Learning goals**
# 1. Search 8,000 real post embeddings with an **exact** index (flat inner product) and two
#    **approximate** ones, an inverted file (IVF, derived here in a few lines and checked against
#    Faiss) and a graph (HNSW), and read what each knob buys: recall against the latency of one
#    query, the throughput of a batch, memory and build time.
# 2. Judge "similar" with the data's own labels: two posts that share a hashtag count as
#    relevant (precision@10, mAP@10), against the strongest simple method, TF-IDF neighbours.
# 3. Look at the post space with UMAP, coloured by hashtag, and at the nearest posts of a query.
#
# **Prerequisites:** notebook 17 (the post/hashtag towers). **Time budget:** about 1 minute on a
# 2-core laptop CPU.

# %%
import time

import faiss
import numpy as np
import torch
from IPython.display import Markdown, display

import cl_teach
from cl_teach import fonts, plotting
from cl_teach.apps.hashtags import fit_hashtag_towers, tfidf_vectorizer
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


def without_self(ids, qs, k=10):
    """The first k ids of each row of a (k + 1)-search, the query itself removed."""
    return np.array([[j for j in row if j != q][:k] for row, q in zip(ids.tolist(), qs)])


def neighbours(index, vectors, k=10):
    """Top-k database ids of each query, the query itself removed."""
    _, ids = index.search(vectors[queries], k + 1)
    return without_self(ids, queries, k)

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


def tfidf_neighbours(k=10, chunk=1000):
    """Exact top-k by cosine of character TF-IDF vectors (the query itself removed)."""
    T = tfidf_vectorizer(posts).transform(posts)        # (N, V) sparse, rows L2-normalised
    out = []
    for start in range(0, len(queries), chunk):
        q = queries[start:start + chunk]
        sims = np.asarray((T[q] @ T.T).todense())
        sims[np.arange(len(q)), q] = -np.inf              # not itself
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, 1), axis=1, kind="stable")
        out.append(np.take_along_axis(top, order, 1))
    return np.concatenate(out)


exact_untrained = neighbours(EmbeddingIndex().fit(X0), X0)
tfidf_ids = tfidf_neighbours()
found = {"trained tower": exact, "untrained tower": exact_untrained, "TF-IDF (no learning)": tfidf_ids}
q_trained = quality(exact)
for name, ids in found.items():
    print(f"{name:21s}", quality(ids))
p_at_10 = {name: precision_at_k(ids, relevant, 10, per_query=True) for name, ids in found.items()}
d_tower = paired_difference(p_at_10["trained tower"], p_at_10["untrained tower"], seed=SEED)
d_tfidf = paired_difference(p_at_10["trained tower"], p_at_10["TF-IDF (no learning)"], seed=SEED)
print(f"P@10, trained tower - untrained tower: {d_tower}")
print(f"P@10, trained tower - TF-IDF:          {d_tfidf}")

# %% [markdown]
# The TF-IDF row is the baseline a learned index must beat: character n-grams of the same posts,
# no labels, no training (its IDF is fitted on the database it searches, which a search engine
# may do). The untrained tower is the same network before training.

# %%
# NBVAL_CHECK_OUTPUT
print("P@10:", d_tower.verdict("the trained tower", "the untrained tower"))
print("P@10:", d_tfidf.verdict("the trained tower", "TF-IDF"))
assert d_tower.low > 0, d_tower
assert d_tfidf.low > 0, d_tfidf

# %%
display(Markdown(
    f"Against TF-IDF: {d_tfidf.verdict('the trained tower', 'TF-IDF')} by P@10 "
    f"({d_tfidf.points()} points; R@10 {quality(exact)['R@10']:.3f} against "
    f"{quality(tfidf_ids)['R@10']:.3f}). "
    + ("The 64-number tower, trained on the hashtags of other posts, finds neighbours that share "
       "a hashtag more often than the sparse n-gram vectors of the same text, and it is what "
       "makes Faiss's dense indexes usable at scale."
       if d_tfidf.low > 0 else
       "So the tower's gain is over a random projection, not over the simple method; what it "
       "still brings is a dense 64-number vector that Faiss can index at any scale.")))

# %% [markdown]
# ## An inverted file in a few lines
# IVF (Jégou, Douze & Schmid, 2011) cuts the database into `nlist` cells with k-means and keeps,
# for each cell, the list of its vectors (an *inverted list*). A query scores the `nlist`
# centroids, visits the `nprobe` best cells and searches only their lists, exactly. The cost per
# query is `nlist` centroid scores plus about `nprobe / nlist` of the database. Below: the
# inline version, given Faiss's trained centroids, must return what Faiss's `IndexIVFFlat` does.

# %%
def ivf_search(X, centroids, queries_x, nprobe, k):
    """Inverted-file search by inner product: assign, probe the best cells, exact search inside."""
    cell = np.argmax(X @ centroids.T, axis=1)                        # (N,) each vector's cell
    lists = [np.flatnonzero(cell == c) for c in range(len(centroids))]
    probe = np.argsort(-(queries_x @ centroids.T), axis=1)[:, :nprobe]   # (Q, nprobe) best cells
    scores, ids = [], []
    for q, cells in zip(queries_x, probe):
        cand = np.concatenate([lists[c] for c in cells])
        s = X[cand] @ q
        best = np.argsort(-s, kind="stable")[:k]
        scores.append(s[best]), ids.append(cand[best])
    return np.array(scores), np.array(ids)


ivf = EmbeddingIndex(kind="ivf", nprobe=4).fit(X)
centroids = ivf.index_.quantizer.reconstruct_n(0, ivf.index_.nlist)   # (nlist, 64) Faiss's k-means
mine_s, mine_i = ivf_search(X, centroids, X[queries[:300]], nprobe=4, k=11)
faiss_s, faiss_i = ivf.search(X[queries[:300]], k=11)
same = np.isclose(mine_s, faiss_s, atol=1e-5).all(axis=1)
print(f"{ivf.index_.nlist} cells; inline IVF = Faiss IVF (scores) for {same.sum()} of 300 queries; "
      f"identical ids for {(mine_i == faiss_i).all(axis=1).sum()}")

# %%
# NBVAL_CHECK_OUTPUT
assert same.mean() >= 0.99, same.mean()            # a vector on a cell boundary may land either side
print("the inline inverted file returns Faiss's IVF results:", bool(same.mean() >= 0.99))

# %% [markdown]
# ## Approximate search: recall versus throughput
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
    """Neighbours, and the best of 3 of one batched search of all queries, in ms per query."""
    best, xq = float("inf"), X[queries]
    for _ in range(repeats):
        t = time.perf_counter()
        _, ids = index.search(xq, 11)                    # only the search is timed
        best = min(best, time.perf_counter() - t)
    ids = without_self(ids, queries)
    return ids, 1000 * best / len(queries)


def overlap(ids):
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids.tolist(), exact.tolist())]))


_, flat_ms = timed(flat)
curves = {}
nlist = ivf.index_.nlist
rows = []
for nprobe in [1, 2, 4, 8, 16, 32, nlist]:
    ivf.nprobe = nprobe
    ids, ms = timed(ivf)
    rows.append(("ivf", nprobe, ms, overlap(ids), quality(ids)["P@10"]))
hnsw = EmbeddingIndex(kind="hnsw", m=16).fit(X)
for ef in [11, 16, 32, 64, 128]:                    # the beam must hold the k + 1 = 11 results
    hnsw.ef_search = ef
    ids, ms = timed(hnsw)
    rows.append(("hnsw", ef, ms, overlap(ids), quality(ids)["P@10"]))
for kind, label in (("ivf", "IVF (nprobe)"), ("hnsw", "HNSW (ef_search)")):
    r = [row for row in rows if row[0] == kind]
    curves[label] = ([row[2] for row in r], [row[3] for row in r], [row[1] for row in r])
display(plotting.plot_curves(curves, xlabel="ms per query, batch of all queries (1 thread)",
                             ylabel="recall of the exact top-10", xscale="log",
                             title=f"approximate search over {len(X):,} posts",
                             points={"flat (exact)": (flat_ms, 1.0)}))
print(f"flat: {flat_ms:.3f} ms/query; IVF has {nlist} cells")
for kind, knob, ms, rec, p10 in rows:
    print(f"{kind:4s} {knob:4d}: {ms:.3f} ms/query, recall of exact top-10 {rec:.3f}, P@10 {p10:.3f}")

# %% [markdown]
# Those milliseconds are a whole batch of queries divided by their number: **throughput**. A user
# sends one query at a time, and one query pays Python's and Faiss's fixed costs alone: its
# **latency** is measured below, one query per call, with each index's build time and memory.

# %%
# NBVAL_IGNORE_OUTPUT
def latency_ms(index, n=200):
    """Median milliseconds of one single-query search (n queries, one call each)."""
    times = []
    for q in queries[:n]:
        t = time.perf_counter()
        index.search(X[q:q + 1], 11)
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


ivf.nprobe, hnsw.ef_search = 8, 32
table = []
for name, make in (("flat", lambda: EmbeddingIndex(kind="flat")),
                   ("IVF, nprobe 8", lambda: EmbeddingIndex(kind="ivf", nprobe=8)),
                   ("HNSW, m 16, ef_search 32", lambda: EmbeddingIndex(kind="hnsw", m=16, ef_search=32))):
    t = time.perf_counter()
    index = make().fit(X)
    build = time.perf_counter() - t
    _, batch_ms = timed(index)
    table.append((name, build, index.index_bytes() / 2**20, latency_ms(index), batch_ms))
print(f"{'index':26s} {'build s':>8s} {'MiB':>6s} {'1 query ms':>11s} {'batched ms/q':>13s}")
for name, build, mib, lat, thr in table:
    print(f"{name:26s} {build:8.3f} {mib:6.2f} {lat:11.3f} {thr:13.4f}")
print(f"raw vectors: {X.nbytes / 2**20:.2f} MiB")

# %%
display(Markdown(
    f"With the flat index one query alone takes **{table[0][3] / table[0][4]:.1f}x** the time per "
    f"query of a batch ({table[0][3]:.3f} ms against {table[0][4]:.4f} ms): a single call pays fixed "
    f"costs that a batch shares, and a batch runs as one matrix product. Quote latency for a user, "
    f"throughput for a backfill. HNSW's "
    f"graph costs memory beyond the vectors ({table[2][2]:.2f} MiB against the flat index's "
    f"{table[0][2]:.2f} MiB: about `2m` neighbour ids per vector) and the longest build; IVF "
    f"needs a k-means training pass before it can add anything."))

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
# cost grows linearly and HNSW's (and IVF's, with `nlist` grown like $\sqrt N$) does not. Note
# also how *task* quality (P@10) drops more slowly than the overlap with the exact answer. Mostly
# because P@10 is low: most of the exact top-10 share no hashtag with the query, so losing some
# of them costs little; the neighbours an approximate index swaps in are also close to the query.

# %% [markdown]
# ## Explore: nprobe
# `cl_teach.widgets.search_explorer` moves the IVF index's `nprobe` and reads, for the same
# queries, the recall of the exact top-10, the share of the posts the visited cells hold, and the
# time per query on this machine at this moment (reported, never compared: it moves with the
# machine's load). First, its recall is this notebook's `overlap`:

# %%
# NBVAL_CHECK_OUTPUT
from cl_teach.widgets import search_stats

for nprobe in (1, 4, nlist):
    ivf.nprobe = nprobe
    ids, _ = timed(ivf, repeats=1)
    assert np.isclose(search_stats(ivf, X, queries, exact, nprobe)["recall"], overlap(ids)), nprobe
print("search_stats's recall equals overlap() at nprobe 1, 4 and nlist")

# %% [markdown]
# Move **nprobe** from 1 to `nlist`: the mean recall climbs to 1 while the share scanned grows
# like nprobe / nlist. The histogram shows what the mean hides: at small nprobe the recall is
# spread over the queries, some keep all ten neighbours while others lose half or more (their
# neighbours sit across a cell border the query's few cells do not reach).

# %%
# NBVAL_IGNORE_OUTPUT
from cl_teach.widgets import search_explorer

search_explorer(ivf, X, queries, exact, knob=4)

# %% [markdown]
# ## Diagnose: the nearest posts of a few queries

# %%
def hashtag(t):
    return "#" + t.replace(" ", "") + "#"


hits = 0
for q in queries[[0, 5, 9]]:
    print(f"query {' '.join(map(hashtag, tags[q]))}: {posts[q][:50].replace(' ', '')}")
    row = exact[list(queries).index(q)][:3]
    for j in row:
        mark = "+" if set(tags[j]) & set(tags[q]) else " "
        hits += mark == "+"
        print(f"  {mark} {' '.join(map(hashtag, tags[j]))}: {posts[j][:50].replace(' ', '')}")

# %%
display(Markdown(
    f"{hits} of these 9 neighbours share a hashtag with their query (marked +; over all "
    f"queries P@10 = {q_trained['P@10']:.2f}). Read the misses before you call them "
    f"wrong: a neighbour can be on the query's topic under another hashtag (a show and its "
    f"cast, a news story under two tags). Shared hashtags are an *incomplete* relevance "
    f"label: they undercount what a reader would call similar, so every P@10 here is a lower "
    f"bound, and equally so for TF-IDF and the tower."))

# %% [markdown]
# ## The post space with UMAP
# 2,000 *test* posts (their hashtags never trained the tower), a 15-nearest-neighbour graph from
# the flat index (cosine), then UMAP (McInnes et al., 2018). Colours are the ten most frequent
# hashtags.

# %%
# NBVAL_IGNORE_OUTPUT
import warnings

import umap

sample = first_test + np.random.default_rng(SEED).choice(len(test_split), size=2000, replace=False)
sims, knn = EmbeddingIndex().fit(X[sample]).search(X[sample], k=15)
dist = np.clip(1 - sims, 0, None)                                   # cosine distance
with warnings.catch_warnings():                                     # "n_jobs overridden by random_state"
    warnings.simplefilter("ignore", UserWarning)
    xy = umap.UMAP(n_neighbors=15, metric="cosine", random_state=SEED, n_epochs=200,
                   precomputed_knn=(knn, dist, None)).fit_transform(X[sample])
display(plotting.plot_embedding_2d(xy, [hashtag(tags[i][0]) for i in sample],
                                   title="2,000 Weibo test posts (trained tower, UMAP), by hashtag"))
if plotting.CJK_FONT is None:
    print(fonts.HOW)

# %% [markdown]
# ## Exercises
# Each code exercise is a function to fill in; the cell after it checks it, in the student copy
# too.
#
# 1. **HNSW's m.** Write `hnsw_cost(m)`: build an HNSW index of `X` with `m` links per vector
#    (`EmbeddingIndex(kind="hnsw", m=m, ef_search=32)`) and return its memory in MiB
#    (`index_bytes()`) and its recall of the exact top-10 (`timed` and `overlap` from above).
#    The check compares m = 4, 16 and 48.
# 2. **A mismatched quantizer.** The IVF index's k-means is trained on the data it indexes. Write
#    `quantizer_recall(cell_centroids)`: the recall of the exact top-10 of the first 300 queries
#    when `ivf_search` (nprobe 4) uses the given centroids. The check trains `faiss.Kmeans` on the
#    untrained tower's `X0` instead, and compares.
# 3. **Frequent or rare hashtags?** Where does the tower's P@10 gain over the untrained tower come
#    from? Write `gain_on(mask)`: the paired difference of `p_at_10` (trained minus untrained
#    tower) on the queries where `mask` is True. The check splits the queries at the median size
#    of their relevant set.

# %%
def hnsw_cost(m):
    """(MiB, recall of the exact top-10) of an HNSW index of X with m links per vector, ef_search 32."""
    # BEGIN SOLUTION
    index = EmbeddingIndex(kind="hnsw", m=m, ef_search=32).fit(X)
    ids, _ = timed(index)
    return index.index_bytes() / 2**20, overlap(ids)
    # END SOLUTION


# %%
costs = {m: hnsw_cost(m) for m in (4, 16, 48)}
for m, (mib, rec) in costs.items():
    print(f"m = {m:2d}: {mib:.2f} MiB, recall of the exact top-10 {rec:.3f} at ef_search 32")
assert costs[4][0] < costs[16][0] < costs[48][0], f"more links per vector, a bigger index: {costs}"
assert costs[4][1] < costs[16][1] <= costs[48][1] + 0.005, f"more links, a better-connected graph: {costs}"

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Answer.** Memory grows with m (each vector stores about 2m links on its bottom layer), and
# so does recall at a fixed beam: a sparse graph (m = 4) has dead ends where the greedy walk
# stops short of the true neighbours. Past the default the gain is small and the index keeps
# growing. Malkov & Yashunin (2018) suggest m between 5 and 48; hnswlib's parameter guide: higher m
# for data of high intrinsic dimension or a high recall target, lower for the opposite.
# <!-- END SOLUTION -->

# %%
def quantizer_recall(cell_centroids):
    """Recall of the exact top-10 of the first 300 queries: ivf_search with these centroids, nprobe 4."""
    # BEGIN SOLUTION
    _, ids = ivf_search(X, cell_centroids, X[queries[:300]], nprobe=4, k=11)
    ids = without_self(ids, queries[:300])
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids.tolist(), exact[:300].tolist())]))
    # END SOLUTION


# %%
km = faiss.Kmeans(X0.shape[1], len(centroids), niter=20, seed=SEED)
km.train(np.ascontiguousarray(X0, dtype=np.float32))
matched, mismatched = quantizer_recall(centroids), quantizer_recall(km.centroids)
print(f"recall of the exact top-10 at nprobe 4: quantizer from X {matched:.3f}, from X0 {mismatched:.3f}")
assert matched > mismatched + 0.1, "cells made for other vectors cut X's neighbourhoods apart"

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Answer.** Much worse: the cells of a k-means trained on other vectors do not follow the
# clusters of `X`, so a query's true neighbours fall into cells it does not probe. That is why an
# IVF index is retrained (or rebuilt) when the encoder changes, and why the Faiss documentation
# asks for training vectors distributed like the database.
# <!-- END SOLUTION -->

# %%
def gain_on(mask):
    """Paired difference of P@10, trained minus untrained tower, on the queries where mask is True."""
    # BEGIN SOLUTION
    return paired_difference(p_at_10["trained tower"][mask], p_at_10["untrained tower"][mask], seed=SEED)
    # END SOLUTION


# %%
size = np.array([len(r) for r in relevant])
rare, frequent = size <= np.median(size), size > np.median(size)
halves = {"rare (relevant set <= median)": gain_on(rare), "frequent (> median)": gain_on(frequent)}
for name, d in halves.items():
    print(f"{name:30s} P@10 trained - untrained {d}")
overall = (p_at_10["trained tower"] - p_at_10["untrained tower"]).mean()
weighted = (halves["rare (relevant set <= median)"].estimate * rare.sum()
            + halves["frequent (> median)"].estimate * frequent.sum()) / len(size)
assert abs(weighted - overall) < 1e-9, "the two halves' gains, weighted by their sizes, are the overall gain"
display(Markdown(
    "Where the gain comes from: "
    + ("the frequent hashtags carry more of it" if halves["frequent (> median)"].low
       > halves["rare (relevant set <= median)"].high else
       "the rare hashtags carry more of it" if halves["rare (relevant set <= median)"].low
       > halves["frequent (> median)"].high else "the two intervals overlap: no reliable difference")
    + " (a query with many relevant posts has more chances of a hit in its top 10, trained or not)."))

# %% [markdown]
# ## Summary
# * Flat inner-product search is exact and, at thousands of vectors, fast enough. An inverted
#   file is k-means cells plus an exact search inside the `nprobe` best cells: a dozen lines,
#   and the same results as Faiss's `IndexIVFFlat`.
# * IVF trades recall for speed with `nprobe`, HNSW with `ef_search` (at least k); measure both
#   against the exact answer *and* against the task's labels. Quote single-query latency and
#   batched throughput separately, with memory and build time: each index pays in a different
#   currency.
# * The trained tower finds posts that share a hashtag far more often than the untrained tower;
#   whether it beats TF-IDF neighbours is measured above, with its interval, and shared hashtags
#   undercount what a reader would call similar.
#
# **References:** Jégou, Douze & Schmid, *Product quantization for nearest neighbor search*,
# IEEE TPAMI 2011 (the inverted file with exact re-ranking inside probed cells, IVFADC).
# Malkov & Yashunin, *Efficient and robust approximate nearest neighbor search using
# Hierarchical Navigable Small World graphs*, IEEE TPAMI 2018 (the layered graph, `M`,
# `efSearch`). Johnson, Douze & Jégou, *Billion-scale similarity search with GPUs*, IEEE Trans.
# Big Data 2019 (Faiss). McInnes, Healy & Melville, *UMAP*, arXiv 1802.03426, 2018.
