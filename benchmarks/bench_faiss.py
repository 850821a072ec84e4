"""Faiss at scale: exact (flat) vs IVF vs HNSW through cl_teach.retrieval.EmbeddingIndex.

Two databases of L2-normalised 128-d vectors, inner-product (cosine) search, k = 10:
  * random: Gaussian vectors (no structure: the hardest case for approximate search);
  * real: all 70,000 Fashion-MNIST images (train + test) projected on their first 128 principal
    components (PCA of the pixels: deterministic, no training), 1,000 test images held out as
    queries. Fashion-MNIST has 70k images in all, so "100k real" is capped at 70k here.

For each index: build time, search time of the query batch (one thread, ms per query), and
recall@10 against the exact top-10 of the flat index, over a sweep of nprobe (IVF) and
efSearch (HNSW); then, for the best setting, the latency of one query at a time (200 queries,
median), where exact search can no longer batch its matrix product. The verdict: the fastest
setting with recall@10 >= 0.95 and its speed-up over exact search (target >= 10x). Each search
is timed ``--reps`` times (minimum kept); the exact search is timed at the start and the end of
each sweep (median kept), with the load average.

    .venv/bin/python benchmarks/bench_faiss.py                 # random 200k + real 70k, ~4 min
    .venv/bin/python benchmarks/bench_faiss.py --full          # random 1M (HNSW build ~10+ min)

Writes benchmarks/results/faiss.json and faiss.png.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

K = 10
DIM = 128


def normalize(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


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
    emb = ((x - mean) @ v[:DIM].T).float().numpy()                   # (70000, 128)
    emb = normalize(emb)
    queries, db = emb[-q:], emb[:-q]                                 # the last test images query
    return db, queries


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact)]))


def timed_search(index, queries, reps):
    best, out = float("inf"), None
    for _ in range(reps):
        t = time.perf_counter()
        out = index.search(queries, K)
        best = min(best, time.perf_counter() - t)
    return best, out


def one_by_one(index, queries) -> float:
    """Median ms of a single-query search."""
    times = []
    for i in range(queries.shape[0]):
        t = time.perf_counter()
        index.search(queries[i:i + 1], K)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def bench_set(name, db, queries, reps, ivf_nlist, hnsw_m, hnsw_efc, ivf_probes, hnsw_efs, n_single=200):
    from cl_teach.retrieval import EmbeddingIndex
    n, q = db.shape[0], queries.shape[0]
    print(f"[{name}] N={n} Q={q}", flush=True)
    res = {"N": n, "Q": q, "k": K, "indexes": {}}
    t = time.perf_counter()
    flat = EmbeddingIndex("flat").fit(db)
    build_flat = time.perf_counter() - t
    flat_times, indexes = [], {}
    ft, (_, exact) = timed_search(flat, queries, reps)
    flat_times.append(ft)
    res["indexes"]["flat"] = {"build_s": build_flat}
    print(f"  flat: build {build_flat:.2f} s, search {ft / q * 1e3:.3f} ms/query", flush=True)

    sweeps = {"ivf": ("nprobe", ivf_probes, dict(nlist=ivf_nlist)),
              "hnsw": ("ef_search", hnsw_efs, dict(m=hnsw_m, ef_construction=hnsw_efc))}
    for kind, (param, values, kw) in sweeps.items():
        t = time.perf_counter()
        index = indexes[kind] = EmbeddingIndex(kind, **kw).fit(db)
        build = time.perf_counter() - t
        points = []
        for v in values:
            setattr(index, param, v)
            st, (_, ids) = timed_search(index, queries, reps)
            points.append({param: v, "search_s": st, "ms_per_query": st / q * 1e3,
                           "recall_at_10": recall(ids, exact), "loadavg": C.loadavg()})
            print(f"  {kind} {param}={v}: {st / q * 1e3:.3f} ms/query, recall@10 "
                  f"{points[-1]['recall_at_10']:.3f}", flush=True)
            if points[-1]["recall_at_10"] > 0.999 or st > 1.5 * flat_times[0]:
                break                                                # exact, or slower than exact
        res["indexes"][kind] = {"build_s": build, "params": kw, "sweep": points}
        print(f"  {kind}: build {build:.1f} s", flush=True)
        ft, _ = timed_search(flat, queries, reps)
        flat_times.append(ft)
    flat_s = statistics.median(flat_times)
    # One query at a time (the interactive case): exact search can no longer batch its products.
    single = queries[:n_single]
    res["indexes"]["flat"]["single_query_ms"] = one_by_one(flat, single)
    res["indexes"]["flat"].update(search_s=flat_s, ms_per_query=flat_s / q * 1e3, search_s_all=flat_times)
    for kind in sweeps:
        for p in res["indexes"][kind]["sweep"]:
            p["speedup_vs_exact"] = flat_s / p["search_s"]
        ok = [p for p in res["indexes"][kind]["sweep"] if p["recall_at_10"] >= 0.95]
        best = max(ok, key=lambda p: p["speedup_vs_exact"]) if ok else None
        res["indexes"][kind]["best_at_recall_0.95"] = best
        if best:
            index = indexes[kind]
            setattr(index, sweeps[kind][0], best[sweeps[kind][0]])
            best["single_query_ms"] = one_by_one(index, single)
            best["single_query_speedup"] = (res["indexes"]["flat"]["single_query_ms"]
                                            / best["single_query_ms"])
            print(f"  {kind}: one query at a time {best['single_query_ms']:.3f} ms vs exact "
                  f"{res['indexes']['flat']['single_query_ms']:.3f} ms "
                  f"-> {best['single_query_speedup']:.1f}x",
                  flush=True)
        verdict = (f"{best['speedup_vs_exact']:.1f}x faster than exact at recall@10 "
                   f"{best['recall_at_10']:.3f}" if best else "never reaches recall@10 0.95 in the sweep")
        print(f"  => {kind}: {verdict}", flush=True)
    return res


def plot(results):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 4), squeeze=False)
    for ax, (name, r) in zip(axes[0], results.items()):
        for kind, marker in (("ivf", "o"), ("hnsw", "s")):
            sw = r["indexes"][kind]["sweep"]
            ax.plot([p["recall_at_10"] for p in sw], [p["speedup_vs_exact"] for p in sw],
                    marker=marker, label=f"{kind} (build {r['indexes'][kind]['build_s']:.0f} s)")
        ax.axhline(10, color="gray", ls="--", lw=1, label="target 10x")
        ax.axvline(0.95, color="gray", ls=":", lw=1, label="recall 0.95")
        ax.set_yscale("log")
        ax.set_xlabel("recall@10 vs exact")
        ax.set_ylabel("speed-up over exact search (1 thread)")
        ax.set_title(f"{name}: N={r['N']:,}, D={DIM}")
        ax.legend(fontsize=8); ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="random set of 1M vectors")
    ap.add_argument("--random-n", type=int, default=None)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sets", nargs="*", default=["real", "random"])
    ap.add_argument("--out", default="faiss")
    a = ap.parse_args(argv)
    C.set_threads(1)
    info = C.machine()
    n_random = a.random_n or (1_000_000 if a.full else 200_000)
    results = {}
    for s in a.sets:
        if s == "real":
            db, q = fashion_pca(a.queries)
            name = "Fashion-MNIST PCA-128"
        else:
            db, q = random_set(n_random, a.queries)
            name = "random Gaussian"
        n = db.shape[0]
        nlist = int(4 * np.sqrt(n)) if n < 300_000 else 1024      # k-means of 4*sqrt(1M) cells is minutes
        results[name] = bench_set(name, db, q, a.reps, ivf_nlist=nlist, hnsw_m=32, hnsw_efc=64,
                                  ivf_probes=[1, 2, 4, 8, 16, 32, 64, 128, 256],
                                  hnsw_efs=[16, 32, 64, 128, 256, 512, 1024])
    C.save_json(a.out, {"machine": info, "threads": 1, "results": results})
    C.save_fig(plot(results), a.out)


if __name__ == "__main__":
    main()
