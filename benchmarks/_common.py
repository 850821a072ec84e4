"""Shared helpers of the benchmarks: machine description, interleaved timing, result files.

The benchmark machine is shared (2 cores, several users), so wall-clock numbers are noisy. Every
benchmark therefore times ours and the peer *interleaved in the same process* (one repetition of
each, in rotating order, again and again), reports medians and minima and above all their
*ratios*, and records the load average next to each result.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

PACKAGES = ["torch", "torchvision", "numpy", "lightly", "pytorch-metric-learning", "open_clip_torch",
            "faiss-cpu", "mnist1d", "scikit-learn"]


def set_threads(n: int = 1) -> None:
    """One torch thread unless a benchmark is about threads (the course runs with one)."""
    import torch
    torch.set_num_threads(n)
    os.environ.setdefault("CL_TEACH_THREADS", str(n))


def machine() -> dict:
    """What the numbers were measured on."""
    import torch
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gb = None
    versions = {}
    for p in PACKAGES:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            versions[p] = None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001 - git missing is fine, the commit is informative only
        commit = None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem_gb, 1) if mem_gb else None,
            "python": platform.python_version(), "platform": platform.platform(),
            "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(),
            "versions": versions, "commit": commit,
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "loadavg_at_start": os.getloadavg()}


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process, all threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def interleaved(fns: dict[str, Callable[[], None]], reps: int, warmup: int = 1,
                min_seconds: float = 0.0,
                max_seconds_each: float = 15.0) -> dict[str, dict[str, list[float]]]:
    """Time each callable ``reps`` times, alternating between them in rotating order.

    Interleaving means a burst of load from another user hits every contender alike; the
    rotation removes any first-in-round advantage. A contender whose warm-up call is slow gets
    fewer repetitions (at least 3, about ``max_seconds_each`` in all), so a peer 1000x slower
    does not eat the budget. Returns per name the lists of wall (``perf_counter``) and CPU
    (``process_time``) seconds.
    """
    names = list(fns)
    cap = {}
    for n in names:
        t = time.perf_counter()
        for _ in range(warmup):
            fns[n]()
        per_call = (time.perf_counter() - t) / max(1, warmup)
        cap[n] = max(3, int(max_seconds_each / max(per_call, 1e-9)))
    out = {n: {"wall": [], "cpu": []} for n in names}
    t_end = time.perf_counter() + min_seconds
    r = 0
    while r < reps or time.perf_counter() < t_end:
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            if len(out[n]["wall"]) >= cap[n]:
                continue
            w, c = time.perf_counter(), time.process_time()
            fns[n]()
            out[n]["cpu"].append(time.process_time() - c)
            out[n]["wall"].append(time.perf_counter() - w)
        r += 1
    return out


def summary(times: Sequence[float]) -> dict:
    return {"median": statistics.median(times), "min": min(times), "n": len(times)}


def paired_ratio(peer: Sequence[float], ours: Sequence[float]) -> float:
    """Median over repetitions of peer/ours, each pair taken in the same round (same load).

    When one list is shorter (a slow contender capped), the ratio of medians is returned.
    """
    if len(peer) != len(ours):
        return statistics.median(peer) / statistics.median(ours)
    return statistics.median(p / o for p, o in zip(peer, ours))


def maxrss_mb() -> float:
    """Peak resident set of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def save_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1, default=float) + "\n")
    print(f"wrote {path.relative_to(HERE.parent)}")
    return path


def save_fig(fig, name: str) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"wrote {path.relative_to(HERE.parent)}")
    return path


def python() -> str:
    return sys.executable
