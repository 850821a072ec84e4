"""Faiss at scale: exact (flat) vs IVF vs HNSW through cl_teach.retrieval.EmbeddingIndex.

L2-normalised 128-d vectors, inner-product (cosine) search, k = 10, 1,000 queries not in the
database, recall@10 against the exact top 10 of the flat index. Data sets:

  * clustered: a Gaussian mixture on the sphere at several sizes N (the same distribution, more
    samples), with low intrinsic dimension inside each cluster as real embeddings have (the
    Fashion-MNIST PCA-128 set's participation ratio is 7.4): 4,096 centres uniform on the unit
    sphere; a point = a uniformly chosen centre c + noise in c's own random 8-d subspace (std 0.5
    per direction) + isotropic noise (std 0.05 per dimension), renormalised. Why these: with
    isotropic noise only, the nearest-neighbour structure is either trivial or structureless -
    at std 0.12 per dimension the exact top 10 lie in the query's own cluster (88% at 100k, 99%
    at 1M) and, inside a cluster, 128 i.i.d. dimensions are the random case again (IVF 0.69 at
    nprobe 64, HNSW 0.93 at efSearch 64 at 100k with efConstruction 40); at 0.14 the clusters
    dissolve (recall <= 0.91 in the whole sweep). With the 8-d in-cluster noise: at 100k the 1st
    and 10th neighbours are at cosine 0.69 / 0.41 (random pair 0.00 +- 0.09) and 10% of the true
    top 10 come from other clusters; from 300k on (73+ points per cluster) they are all in the
    query's cluster, but spread along its 8-d subspace, which the k-means cells cut: IVF with
    nprobe 1 finds 0.32 / 0.57 / 0.85 of them at 100k / 300k / 1M (``structure`` and the sweeps
    in the JSON). Queries: fresh draws from the same mixture.
  * real: all 70,000 Fashion-MNIST images (train + test) projected on their first 128 principal
    components of the pixels (deterministic, no training); the last 1,000 test images query the
    other 69,000.
  * random (only with ``--sets random``): i.i.d. Gaussian vectors, the known worst case (no
    structure: no index reaches recall 0.95 faster than exact).

Per index - flat (exact ``IndexFlatIP``), IVF (nlist = 4 sqrt(N), k-means trained on a seeded
subsample of 64 points per cell), HNSW (M = 32, efConstruction 64 unless ``--hnsw-efc``) - the
build time, the memory of the index (``EmbeddingIndex.index_bytes()``: the serialised index,
i.e. vectors + lists/graph + quantizer; the rise of the process's resident set during the build
is recorded too), and over a sweep of nprobe / efSearch: recall@10, the batched search time (the
1,000 queries in one call, best of ``--reps``) and the single-query time (one query per call,
median over 200 queries), each with its speed-up over exact search. Exact search is timed
again next to every sweep point, interleaved with it (``paired``), and each speed-up is the
ratio within that one measurement (the flat row reports the median over the points); the load
average is recorded next to every point. Verdict per set and size: the fastest setting with recall@10 >=
0.95, batched and single, and whether it is >= 10x faster than exact. Search runs on one
thread; ``--build-threads 2`` builds on two (recorded).

    .venv/bin/python benchmarks/bench_faiss.py           # real 69k + clustered 100k, ~3 min
    .venv/bin/python benchmarks/bench_faiss.py --full    # + clustered 300k and 1M, ~16 min
    .venv/bin/python benchmarks/bench_faiss.py --replot  # redraw faiss.png from faiss.json

Writes benchmarks/results/faiss.json and faiss.png ("what to pick at which size").
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

K = 10
DIM = 128
TARGET_RECALL, TARGET_SPEEDUP = 0.95, 10.0
CENTRES, LOCAL_DIM, LOCAL_STD, ISO_STD = 4096, 8, 0.5, 0.05
IVF_PROBES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
HNSW_EFS = [16, 32, 64, 128, 256, 512, 1024]


def normalize(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def clustered_set(n: int, q: int, seed: int = 0):
    """Mixture of low-rank Gaussians on the unit sphere: (db, queries, db labels, query labels)."""
    rng = np.random.default_rng(seed)
    c = normalize(rng.standard_normal((CENTRES, DIM), dtype=np.float32))
    u = np.linalg.qr(rng.standard_normal((CENTRES, DIM, LOCAL_DIM), dtype=np.float32))[0]  # bases

    def draw(m, s):
        rng = np.random.default_rng(s)
        lab = rng.integers(0, CENTRES, m)
        x = c[lab] + ISO_STD * rng.standard_normal((m, DIM), dtype=np.float32)
        g = LOCAL_STD * rng.standard_normal((m, LOCAL_DIM), dtype=np.float32)
        for a in range(0, m, 50_000):                                # (50k, 128, 8) at a time
            x[a:a + 50_000] += np.einsum("nij,nj->ni", u[lab[a:a + 50_000]], g[a:a + 50_000])
        return normalize(x), lab
    (db, ldb), (qs, lq) = draw(n, seed + 1), draw(q, seed + 2)     # queries: fresh draws
    return db, qs, ldb, lq


def random_set(n: int, q: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return normalize(rng.standard_normal((n, DIM), dtype=np.float32)), \
        normalize(rng.standard_normal((q, DIM), dtype=np.float32))


def fashion_pca(q: int):
    import torch

    from cl_teach.data import load_fashion_mnist
    tr, te = load_fashion_mnist("train", fallback=False), load_fashion_mnist("test", fallback=False)
    x = torch.cat([tr.x, te.x]).flatten(1).double()                 # (70000, 784)
    mean = x[:60000].mean(0)
    _, _, v = torch.linalg.svd(x[:60000] - mean, full_matrices=False)
    emb = normalize(((x - mean) @ v[:DIM].T).float().numpy())        # (70000, 128)
    return emb[:-q], emb[-q:]                                        # the last test images query


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found.tolist(), exact.tolist())]))


def paired(flat, index, queries, one, reps) -> dict:
    """Exact and approximate search timed interleaved, so a burst of load hits both alike.

    Batched: the whole query batch, exact and approximate alternating (the first of each pair
    rotating), best of ``reps`` each. Single: one query per call, in blocks - all of ``one``
    through the approximate index, then through exact search, then the approximate index again -
    medians (not query by query: an exact search between two approximate ones would evict the
    index's hot data from the caches and time it cold). Speed-ups are ratios within this one
    measurement.
    """
    fb = ib = float("inf")
    ids = None
    for r in range(reps):
        for which in ((0, 1) if r % 2 == 0 else (1, 0)):
            t = time.perf_counter()
            if which == 0:
                flat.search(queries, K)
                fb = min(fb, time.perf_counter() - t)
            else:
                ids = index.search(queries, K)[1]
                ib = min(ib, time.perf_counter() - t)

    def block(ix):
        out = []
        for i in range(one.shape[0]):
            x = one[i:i + 1]
            t = time.perf_counter()
            ix.search(x, K)
            out.append(time.perf_counter() - t)
        return out
    si = block(index)
    fs = block(flat)
    si += block(index)
    q = queries.shape[0]
    fs_ms, si_ms = statistics.median(fs) * 1e3, statistics.median(si) * 1e3
    return {"ids": ids, "exact_batch_ms_per_query": fb / q * 1e3, "batch_ms_per_query": ib / q * 1e3,
            "batch_speedup": fb / ib, "exact_single_ms": fs_ms, "single_ms": si_ms,
            "single_speedup": fs_ms / si_ms}


def structure(db, queries, exact_ids, exact_scores, labels=None) -> dict:
    """How hard the neighbour structure is: similarities of the 1st / 10th neighbour vs a random
    pair, and (clustered) the share of the exact top 10 in the query's own cluster."""
    rng = np.random.default_rng(0)
    rand = queries[:200] @ db[rng.choice(db.shape[0], 2000, replace=False)].T
    out = {"sim_1st": float(exact_scores[:, 0].mean()), "sim_10th": float(exact_scores[:, -1].mean()),
           "sim_random_pair": float(rand.mean()), "sim_random_pair_std": float(rand.std())}
    if labels is not None:
        ldb, lq = labels
        out["own_cluster_share"] = float(np.mean(ldb[exact_ids] == lq[:, None]))
    return out


def bench_set(name, db, queries, a, labels=None):
    from cl_teach.retrieval import EmbeddingIndex
    n, q = db.shape[0], queries.shape[0]
    one = queries[:a.single]
    print(f"[{name}] N={n:,} Q={q} load {C.loadavg()}", flush=True)
    res = {"set": name, "N": n, "Q": q, "k": K, "single_queries": one.shape[0], "indexes": {}}
    t = time.perf_counter()
    flat = EmbeddingIndex("flat").fit(db)
    fl = res["indexes"]["flat"] = {"build_s": time.perf_counter() - t, "memory_bytes": flat.index_bytes()}
    exact_scores, exact = flat.search(queries, K)
    res["structure"] = structure(db, queries, exact, exact_scores, labels)
    print(f"  structure: {res['structure']}", flush=True)

    nlist = int(4 * np.sqrt(n))
    ivf_kw = dict(nlist=nlist, train_size=min(n, 64 * nlist))
    hnsw_kw = dict(m=32, ef_construction=a.hnsw_efc)
    sweeps = {"ivf": ("nprobe", IVF_PROBES, ivf_kw), "hnsw": ("ef_search", HNSW_EFS, hnsw_kw)}
    for kind, (param, values, kw) in sweeps.items():
        gc.collect()
        r0, t = rss_bytes(), time.perf_counter()
        index = EmbeddingIndex(kind, threads=a.build_threads, **kw).fit(db)
        build = time.perf_counter() - t
        index.threads = 1                                            # search: one thread
        entry = res["indexes"][kind] = {"params": kw, "build_s": build, "build_threads": a.build_threads,
                                        "memory_bytes": index.index_bytes(),
                                        "rss_rise_bytes": rss_bytes() - r0, "sweep": []}
        print(f"  {kind}: build {build:.1f} s ({a.build_threads} thread(s)), "
              f"{entry['memory_bytes'] / 2**20:.0f} MiB", flush=True)
        for v in values:
            setattr(index, param, v)
            p = {param: v, **paired(flat, index, queries, one, a.reps)}
            p["recall_at_10"] = recall(p.pop("ids"), exact)
            p["loadavg"] = C.loadavg()
            entry["sweep"].append(p)
            print(f"  {kind} {param}={v}: recall@10 {p['recall_at_10']:.3f}; batched "
                  f"{p['batch_ms_per_query']:.3f} ms/query ({p['batch_speedup']:.1f}x, exact "
                  f"{p['exact_batch_ms_per_query']:.3f}); single "
                  f"{p['single_ms']:.3f} ms ({p['single_speedup']:.1f}x, exact {p['exact_single_ms']:.3f}); "
                  f"load {p['loadavg'][0]}", flush=True)
            if p["recall_at_10"] > 0.999 or (p["batch_speedup"] < 1 and p["single_speedup"] < 1):
                break                                                # exact, or slower than exact
        del index
    pts = [p for kind in sweeps for p in res["indexes"][kind]["sweep"]]
    for k in ("batch_ms_per_query", "single_ms"):
        fl[k] = statistics.median(p[f"exact_{k}"] for p in pts)
    fl["note"] = "exact search re-timed next to every sweep point; median over them"
    res["verdict"] = {}
    for kind, (param, _, _) in sweeps.items():
        sw = res["indexes"][kind]["sweep"]
        ok = [p for p in sw if p["recall_at_10"] >= TARGET_RECALL]
        v = res["verdict"][kind] = {}
        for mode in ("batch", "single"):
            best = max(ok, key=lambda p: p[f"{mode}_speedup"]) if ok else None
            v[mode] = None if best is None else {
                param: best[param], "recall_at_10": best["recall_at_10"],
                "ms_per_query": best["batch_ms_per_query" if mode == "batch" else "single_ms"],
                "speedup": best[f"{mode}_speedup"], "met_10x": best[f"{mode}_speedup"] >= TARGET_SPEEDUP}
        say = {m: (f"{x['speedup']:.1f}x at {param} {x[param]} (recall {x['recall_at_10']:.3f})"
                   if x else "never reaches recall 0.95") for m, x in v.items()}
        print(f"  => {kind}: batched {say['batch']}; single {say['single']}", flush=True)
    return res


def plot(runs, threads=1, efc=64):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter
    size_fmt = FuncFormatter(lambda v, _: f"{v / 1e6:g}M" if v >= 1e6 else f"{v / 1e3:g}k")
    fig, axes = plt.subplots(2, 2, figsize=(11.5, 8.2))
    colors = {"flat": "black", "ivf": "C0", "hnsw": "C3"}
    labels = {"flat": "exact (flat)", "ivf": "IVF", "hnsw": "HNSW M=32"}
    clus = sorted((r for r in runs if r["set"] == "clustered"), key=lambda r: r["N"])
    real = [r for r in runs if r["set"] == "real"]
    short = {"nprobe": "np", "ef_search": "ef"}
    missing = []
    for ax, mode in zip(axes[0], ("batch", "single")):
        key = "batch_ms_per_query" if mode == "batch" else "single_ms"
        for group, style, mk in ((clus, "-", "o"), (real, "none", "*")):
            if not group:
                continue
            ns = [r["N"] for r in group]
            exact = [r["indexes"]["flat"][key] for r in group]
            tag = "clustered" if group is clus else "Fashion-MNIST"
            ax.plot(ns, exact, color="black", ls=style, marker=mk, ms=9 if mk == "*" else 5,
                    label=f"exact, {tag}")
            ax.plot(ns, [e / TARGET_SPEEDUP for e in exact], color="gray", ls=":" if style == "-" else "none",
                    marker="_" if mk == "o" else "x", ms=10, label=f"exact / 10 (target), {tag}")
            for kind in ("ivf", "hnsw"):
                pts = [(r["N"], r["verdict"][kind][mode]) for r in group if r["verdict"][kind][mode]]
                param = "nprobe" if kind == "ivf" else "ef_search"
                for r in group:
                    if mode == "batch" and not r["verdict"][kind][mode]:      # same recall single
                        best = max(r["indexes"][kind]["sweep"], key=lambda p: p["recall_at_10"])
                        missing.append(f"{labels[kind]}, N={r['N']:,} ({tag}): never recall >= "
                                       f"{TARGET_RECALL} (best {best['recall_at_10']:.3f} at "
                                       f"{short[param]}={best[param]})")
                if not pts:
                    continue
                ax.plot([p[0] for p in pts], [p[1]["ms_per_query"] for p in pts], color=colors[kind],
                        ls=style, marker=mk, ms=11 if mk == "*" else 6, label=f"{labels[kind]}, {tag}")
                for nn, p in pts:
                    ax.annotate(f"{short[param]}={p[param]}: {p['speedup']:.1f}x", (nn, p["ms_per_query"]),
                                textcoords="offset points", xytext=(7, -11 if kind == "ivf" else 5),
                                fontsize=7, color=colors[kind])
        ax.set_xscale("log"); ax.set_yscale("log")
        ax.set_xlabel("database size N (log)")
        ax.set_ylabel("ms per query (1 thread, log)")
        ax.set_title(("batched: 1,000 queries per call" if mode == "batch" else "single: one query per call")
                     + f"\nfastest setting with recall@10 >= {TARGET_RECALL}")
        ax.grid(alpha=0.3, which="both")
        ax.margins(y=0.12)
    sizes = sorted({r["N"] for r in runs})
    for ax, (key, scale, ylab, title) in zip(axes[1], (
            ("build_s", 1, "build time, s (log)",
             f"build time ({threads} thread(s); HNSW efConstruction {efc})"),
            ("memory_bytes", 2**20, "index memory, MiB (log)", "memory (serialised index)"))):
        for kind in ("flat", "ivf", "hnsw"):
            for group, style, mk in ((clus, "-", "o"), (real, "none", "*")):
                if group:
                    ax.plot([r["N"] for r in group], [r["indexes"][kind][key] / scale for r in group],
                            color=colors[kind], ls=style, marker=mk, ms=11 if mk == "*" else 6,
                            label=labels[kind] + (", clustered" if group is clus else ", Fashion-MNIST"))
        ax.set_xscale("log"); ax.set_yscale("log")
        ax.set_xlabel("database size N (log)"); ax.set_ylabel(ylab); ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else ""))
    for ax in axes.flat:                                             # ticks at the measured sizes
        ax.set_xticks(sizes, [size_fmt(v, None) for v in sizes]); ax.set_xticks([], minor=True)
        ax.set_xlim(min(sizes) / 1.4, max(sizes) * 2.2)
    handles, names = axes[0][0].get_legend_handles_labels()
    for m in missing:                                                # notes: legend lines without a marker
        handles.append(plt.Line2D([], [], ls="none")); names.append(m)
    fig.suptitle("What to pick at which size: 128-d cosine search, k = 10 "
                 "(lines: clustered synthetic; stars: Fashion-MNIST PCA-128)", fontsize=11)
    fig.tight_layout(rect=(0, 0.065, 1, 1))
    fig.legend(handles, names, loc="lower center", ncol=4, fontsize=7.5, frameon=False)
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="clustered at 100k, 300k and 1M")
    ap.add_argument("--sizes", type=int, nargs="*", default=None, help="clustered sizes")
    ap.add_argument("--sets", nargs="*", default=["real", "clustered"],
                    choices=["real", "clustered", "random"])
    ap.add_argument("--random-n", type=int, default=200_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--single", type=int, default=200, help="queries timed one at a time")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--hnsw-efc", type=int, default=64)
    ap.add_argument("--build-threads", type=int, default=1)
    ap.add_argument("--out", default="faiss")
    ap.add_argument("--replot", action="store_true", help="redraw the PNG from the recorded JSON")
    a = ap.parse_args(argv)
    if a.replot:
        import json
        d = json.loads((C.RESULTS / f"{a.out}.json").read_text())
        C.save_fig(plot(d["runs"], d["build_threads"], d["config"]["hnsw_efc"]), a.out)
        return
    C.set_threads(1)
    import faiss
    faiss.omp_set_num_threads(1)
    info = C.machine()
    sizes = a.sizes or ([100_000, 300_000, 1_000_000] if a.full else [100_000])
    runs, t0 = [], time.perf_counter()
    for s in a.sets:
        if s == "real":
            db, q = fashion_pca(a.queries)
            runs.append(bench_set("real", db, q, a))
        elif s == "random":
            db, q = random_set(a.random_n, a.queries)
            runs.append(bench_set("random", db, q, a))
        else:
            for n in sizes:
                db, q, ldb, lq = clustered_set(n, a.queries)
                runs.append(bench_set("clustered", db, q, a, labels=(ldb, lq)))
                C.save_json(a.out, {"machine": info, "config": vars(a), "partial": True, "runs": runs})
        del db, q
        gc.collect()
        C.save_json(a.out, {"machine": info, "config": vars(a), "partial": True, "runs": runs})
    total = time.perf_counter() - t0
    print(f"total {total / 60:.1f} min", flush=True)
    C.save_json(a.out, {
        "machine": info, "config": vars(a), "total_wall_s": total, "loadavg_end": C.loadavg(),
        "search_threads": 1, "build_threads": a.build_threads,
        "data": {"clustered": {"centres": CENTRES, "dim": DIM, "local_dim": LOCAL_DIM,
                               "local_std_per_direction": LOCAL_STD, "isotropic_std_per_dim": ISO_STD,
                               "model": "x = normalise(c + U_c g + e): c uniform on the sphere, U_c a random "
                                        "orthonormal 128x8 basis per centre, g ~ N(0, 0.5^2 I_8), "
                                        "e ~ N(0, 0.05^2 I_128)",
                               "why": "low intrinsic dimension inside clusters, like real embeddings (the "
                                      "Fashion-MNIST PCA-128 set has participation ratio 7.4). Isotropic "
                                      "noise alone is trivial or structureless: at std 0.12/dim the exact "
                                      "top 10 lie in the query's cluster (88% at 100k, 99% at 1M) and "
                                      "within it the problem is the random one (100k: IVF recall 0.69 at "
                                      "nprobe 64, HNSW 0.93 at efSearch 64); at 0.14 the clusters dissolve "
                                      "(100k: recall <= 0.91 over the whole sweep). Here ~10% of the true "
                                      "top 10 at 100k come from other clusters and no IVF cell holds a "
                                      "query's neighbours (see structure per run)",
                               "queries": "fresh draws from the same mixture, not in the database"},
                 "real": "Fashion-MNIST train+test, PCA-128 of the pixels, L2-normalised; last 1,000 "
                         "test images query the other 69,000"},
        "memory": "memory_bytes = EmbeddingIndex.index_bytes(), the serialised Faiss index; rss_rise_bytes "
                  "= rise of the resident set during fit (includes allocator slack)",
        "ivf": "nlist = 4 sqrt(N), k-means trained on a seeded subsample of 64 points per cell",
        "target": {"recall_at_10": TARGET_RECALL, "speedup": TARGET_SPEEDUP}, "runs": runs})
    C.save_fig(plot(runs, a.build_threads, a.hnsw_efc), a.out)


if __name__ == "__main__":
    main()
