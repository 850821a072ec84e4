"""``python -m cl_teach.prepare``: check every data source of the course and warm caches.

Prints what was found, where, and how to get what is missing. Downloads nothing unless
``--download`` is given (then Fashion-MNIST comes through torchvision when absent).
"""
from __future__ import annotations

import argparse
import time


def main(argv=None) -> int:
    """Check (and with ``--download`` fetch) every data source, print the findings; returns 0."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--download", action="store_true", help="download Fashion-MNIST if absent")
    ap.add_argument("--no-warm", action="store_true", help="skip warming numba's cache for UMAP")
    args = ap.parse_args(argv)
    from .data import load_fashion_mnist, load_weibo
    from .data.clipart import describe_clipart
    from .data.emoji import describe_emoji

    ds = load_fashion_mnist("train", download=args.download)
    print(f"[data] {ds}")
    try:
        for split in ("valid", "test"):
            print(f"[data] {load_weibo(split)}  (sha256 verified)")
    except (FileNotFoundError, ValueError) as e:
        print(f"[data] Weibo corpus: {e}\n       notebooks 17-19 will use a generated corpus, "
              f"labelled as such.")
    print(describe_emoji())
    print(describe_clipart())
    print("[data] shapes-and-captions: generated on the fly (make_shapes), nothing to install")
    if not args.no_warm:
        t = time.perf_counter()
        import umap  # noqa: F401  - numba compiles and caches here, not in a notebook's budget
        print(f"[cache] umap/numba warmed in {time.perf_counter() - t:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
