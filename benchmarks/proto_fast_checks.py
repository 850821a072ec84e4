"""Prototype for cl_teach/_validate.py (owned elsewhere): a finiteness check by one reduction.

``check_tensor`` tests ``torch.isfinite(x).all()``; this prototype first tests the sum (a NaN or
inf makes it non-finite; a finite overflow only falls through to the exact test), then runs the
original check. Times the small losses with the original and the fast check against lightly,
interleaved, one thread.

    CL_TEACH_THREADS=1 .venv/bin/python benchmarks/proto_fast_checks.py
"""
import math
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import bench_losses as B  # noqa: E402
from cl_teach import _validate  # noqa: E402

ORIGINAL = _validate.check_tensor


def fast_check_tensor(name, x, *, ndim=None, floating=True, finite=True, nonempty=True):
    if finite and isinstance(x, torch.Tensor) and x.is_floating_point() and x.numel() \
            and math.isfinite(float(x.detach().sum())):
        finite = False                                   # proven finite by the sum
    return ORIGINAL(name, x, ndim=ndim, floating=floating, finite=finite, nonempty=nonempty)


def with_checks(fn, check):
    def run():
        _validate.check_tensor = check
        try:
            fn()
        finally:
            _validate.check_tensor = ORIGINAL
    return run


def main():
    C.set_threads(1)
    for name in ("barlow_twins", "negative_cosine", "swav", "dino"):
        case = B.CASES[name]()
        for n in (1024, 4096):
            inputs = case.make(n, torch.Generator().manual_seed(1))
            peer = next(iter(case.peers))
            fns = {"ours": with_checks(B._step(case.ours, inputs), ORIGINAL),
                   "ours, fast check": with_checks(B._step(case.ours, inputs), fast_check_tensor),
                   peer: B._step(case.peers[peer](), inputs)}
            t = C.interleaved(fns, reps=30 if n == 1024 else 12)
            ms = {k: statistics.median(v["wall"]) * 1e3 for k, v in t.items()}
            print(f"{name} N={n}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in ms.items())
                  + f"; {peer}/ours {C.paired_ratio(t[peer]['wall'], t['ours']['wall']):.2f} -> "
                  f"{C.paired_ratio(t[peer]['wall'], t['ours, fast check']['wall']):.2f} (load {C.loadavg()[0]})",
                  flush=True)


if __name__ == "__main__":
    main()
