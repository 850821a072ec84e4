"""Loss parity and speed: every cl_teach loss against its published peers, forward + backward.

For each loss and batch size N (D=128), on the same inputs:
  * parity: max |ours - peer| of the loss value and of every input's gradient;
  * speed: ours, each peer and the *floor* (the bare matrix products the loss cannot avoid,
    e.g. for NT-Xent the (2N x D) @ (D x 2N) similarity and its two gradient products), timed
    interleaved in one process, one torch thread; the ratios peer/ours and ours/floor are
    medians of per-round ratios, so load from other users of the machine cancels out;
  * peak memory: each (loss, implementation, N) once in a fresh subprocess, the rise of the
    resident set's high-water mark (VmHWM, reset through /proc/self/clear_refs) over the inputs.
    The subprocess runs under an address-space limit (--mem-limit-gb) so that a peer that
    needs tens of GB fails cleanly ("out of memory") instead of taking the shared machine down.

    .venv/bin/python benchmarks/bench_losses.py            # default: memory at N=4096 only
    .venv/bin/python benchmarks/bench_losses.py --full     # 3x the repetitions, memory at every N
    .venv/bin/python benchmarks/bench_losses.py --memory-sizes 256 1024 4096   # as recorded
    .venv/bin/python benchmarks/bench_losses.py --cases nt_xent --sizes 256 1024

Writes benchmarks/results/losses.json and losses.png.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from cl_teach._validate import check_embeddings  # noqa: E402

D = 128
TEMPERATURE = 0.1


@dataclass
class Case:
    """One loss: how to make its inputs, ours, the peers, and its floor."""
    make: Callable[[int, torch.Generator], tuple[torch.Tensor, ...]]   # leaf tensors, requires_grad
    ours: Callable[..., torch.Tensor]
    peers: dict[str, Callable[[], Callable[..., torch.Tensor]]]        # name -> factory of fn(*inputs)
    floor: Callable[..., None]                                         # the unavoidable products
    floor_what: str
    needs_memory_gb: dict[str, Callable[[int], float]] = field(default_factory=dict)


# ---------------------------------------------------------------- NT-Xent -----------------------
def _two_views(n: int, g: torch.Generator):
    z1 = torch.randn(n, D, generator=g)
    z2 = z1 + 0.5 * torch.randn(n, D, generator=g)                 # correlated views, as in training
    return z1.requires_grad_(), z2.requires_grad_()


def _nt_xent_floor(z1, z2):
    # Forward: S = Z Z^T with Z = cat(z1, z2) (2N x D); backward: dZ = G Z + G^T Z (two products).
    with torch.no_grad():
        z = torch.cat([z1, z2])
        s = z @ z.T
        s @ z
        s.T @ z


def _lightly_ntxent():
    from lightly.loss import NTXentLoss
    loss = NTXentLoss(temperature=TEMPERATURE)
    return lambda z1, z2: loss(z1, z2)


def _pml_ntxent():
    from pytorch_metric_learning.losses import NTXentLoss
    loss = NTXentLoss(temperature=TEMPERATURE)

    def fn(z1, z2):
        n = z1.shape[0]
        return loss(torch.cat([z1, z2]), torch.arange(n).repeat(2))
    return fn


def _plain_ntxent():
    # cl_teach's nt_xent before this benchmark (plain autograd), kept to show what the hand-written
    # backward buys. Not a peer: it is excluded from the "behind a peer" verdicts.
    def fn(z1, z2):
        n = z1.shape[0]
        z = F.normalize(torch.cat([z1, z2]), dim=1)
        sim = (z @ z.T) / TEMPERATURE
        sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
        return F.cross_entropy(sim, torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]))
    return fn


def _pml_gb(n: int) -> float:
    # GenericPairLoss builds a (positive pairs x negative pairs) mask: 2N x 2N(2N-2) floats.
    return 2 * n * (2 * n) * (2 * n - 2) * 4 / 2**30


def _nt_xent_case():
    from cl_teach.losses import nt_xent
    return Case(make=_two_views, ours=lambda z1, z2: nt_xent(z1, z2, TEMPERATURE),
                peers={"lightly": _lightly_ntxent, "pytorch-metric-learning": _pml_ntxent,
                       "plain-autograd (ours before)": _plain_ntxent},
                floor=_nt_xent_floor, floor_what="(2N,D)@(D,2N) and two (2N,2N)@(2N,D)",
                needs_memory_gb={"pytorch-metric-learning": _pml_gb})


# ------------------------------------------------------------ Barlow Twins ----------------------
def _barlow_floor(z1, z2):
    # C = z1n^T z2n (D x D from N); backward: dz1 = z2n dC^T, dz2 = z1n dC (two (N,D)@(D,D)).
    with torch.no_grad():
        c = z1.T @ z2
        z2 @ c.T
        z1 @ c


def _lightly_barlow():
    from lightly.loss import BarlowTwinsLoss
    return BarlowTwinsLoss(lambda_param=5e-3)


def _barlow_case():
    from cl_teach.losses import barlow_twins_loss
    return Case(make=_two_views, ours=lambda z1, z2: barlow_twins_loss(z1, z2, lambd=5e-3),
                peers={"lightly": _lightly_barlow}, floor=_barlow_floor,
                floor_what="(D,N)@(N,D) and two (N,D)@(D,D)")


# ---------------------------------------------------- negative cosine (BYOL/SimSiam) ------------
def _negcos_floor(p, z):
    # Row-wise dot products and norms: one pass over both inputs forward, one backward.
    with torch.no_grad():
        (p * z).sum(1)
        p * z.sum(1, keepdim=True)


def _lightly_negcos():
    from lightly.loss import NegativeCosineSimilarity
    return NegativeCosineSimilarity()


def _negcos_case():
    from cl_teach.losses import negative_cosine
    return Case(make=_two_views, ours=negative_cosine, peers={"lightly": _lightly_negcos},
                floor=_negcos_floor, floor_what="row-wise dot products forward + backward")


# -------------------------------------------------------------------- SwAV ---------------------
N_GLOBAL, N_LOCAL = 2, 4                 # multi-crop: 2 global + 4 local views, K = D prototypes


def _scores(n: int, g: torch.Generator, views: int):
    # Scores of normalised z against normalised prototypes: cosines in [-1, 1].
    c = F.normalize(torch.randn(D, D, generator=g), dim=0)
    base = F.normalize(torch.randn(n, D, generator=g), dim=1)
    return tuple((F.normalize(base + 0.5 * torch.randn(n, D, generator=g), dim=1) @ c).requires_grad_()
                 for _ in range(views))


def _swav_make(n, g):
    return _scores(n, g, N_GLOBAL + N_LOCAL)


def _softmax_floor(*views):
    # No products to avoid: one log-softmax per view forward + backward is the least any
    # softmax cross-entropy does.
    views = [v.detach().requires_grad_() for v in views]
    sum(F.log_softmax(v, dim=1).sum() for v in views).backward()


def _lightly_swav():
    from lightly.loss import SwaVLoss
    loss = SwaVLoss(temperature=0.1, sinkhorn_iterations=3, sinkhorn_epsilon=0.05)
    return lambda *v: loss(list(v[:N_GLOBAL]), list(v[N_GLOBAL:]))


def _swav_case():
    from cl_teach.losses import swav_loss
    return Case(make=_swav_make, ours=lambda *v: swav_loss(list(v[:N_GLOBAL]), list(v[N_GLOBAL:])),
                peers={"lightly": _lightly_swav}, floor=_softmax_floor,
                floor_what=f"one log-softmax per view ({N_GLOBAL}+{N_LOCAL} views of (N, K={D})), fwd+bwd")


# -------------------------------------------------------------------- DINO ---------------------
def _dino_make(n, g):
    student = _scores(n, g, N_GLOBAL + N_LOCAL)
    teacher = tuple(s.detach().clone() * 3 for s in student[:N_GLOBAL])   # no gradient to the teacher
    return student + teacher


def _lightly_dino():
    from lightly.loss import DINOLoss
    loss = DINOLoss(output_dim=D, teacher_temp=0.04, student_temp=0.1, warmup_teacher_temp_epochs=0)

    def fn(*v):
        loss.center.zero_()               # lightly updates its center inside forward; ours is pure
        return loss(list(v[N_GLOBAL + N_LOCAL:]), list(v[:N_GLOBAL + N_LOCAL]))
    return fn


def _dino_case():
    from cl_teach.losses import dino_loss
    center = torch.zeros(D)
    return Case(make=_dino_make,
                ours=lambda *v: dino_loss(list(v[:N_GLOBAL + N_LOCAL]), list(v[N_GLOBAL + N_LOCAL:]), center,
                                          student_temperature=0.1, teacher_temperature=0.04),
                peers={"lightly": _lightly_dino}, floor=lambda *v: _softmax_floor(*v[:N_GLOBAL + N_LOCAL]),
                floor_what=f"one log-softmax per student view ({N_GLOBAL}+{N_LOCAL} views "
                           f"of (N, K={D})), fwd+bwd")


# -------------------------------------------------------------------- CLIP ---------------------
CLIP_TEMPERATURE = 0.07


def _clip_floor(i, t):
    # logits = i t^T (N x N); backward: di = G t, dt = G^T i (two (N,N)@(N,D)).
    with torch.no_grad():
        s = i @ t.T
        s @ t
        s.T @ i


def _open_clip():
    from open_clip.loss import ClipLoss
    loss = ClipLoss()
    scale = torch.tensor(1 / CLIP_TEMPERATURE)
    # open_clip's model normalises the features before the loss; the loss does not.
    return lambda i, t: loss(F.normalize(i, dim=1), F.normalize(t, dim=1), scale)


def _clip_case():
    from cl_teach.losses import clip_loss
    return Case(make=_two_views, ours=lambda i, t: clip_loss(i, t, CLIP_TEMPERATURE),
                peers={"open_clip": _open_clip}, floor=_clip_floor,
                floor_what="(N,D)@(D,N) and two (N,N)@(N,D)")


CASES: dict[str, Callable[[], Case]] = {"nt_xent": _nt_xent_case, "barlow_twins": _barlow_case,
                                        "swav": _swav_case, "dino": _dino_case,
                                        "negative_cosine": _negcos_case, "clip": _clip_case}


# ---------------------------------------------------------------- running -----------------------
def _impl(case: Case, name: str):
    return case.ours if name == "ours" else case.peers[name]()


def _step(fn, inputs):
    def run():
        for t in inputs:
            t.grad = None
        fn(*inputs).backward()
    return run


def _with_grad(inputs):
    return [t for t in inputs if t.requires_grad]


def parity(case: Case, n: int, peer: str) -> dict:
    g = torch.Generator().manual_seed(n)
    inputs = case.make(n, g)
    out = {}
    for name in ("ours", peer):
        for t in inputs:
            t.grad = None
        loss = _impl(case, name)(*inputs)
        loss.backward()
        out[name] = (loss.detach().clone().reshape(()), [t.grad.clone() for t in _with_grad(inputs)])
    (lo, go), (lp, gp) = out["ours"], out[peer]
    # The float64 value of our formula as an arbiter when the two float32 values differ.
    ref = float(case.ours(*[t.detach().double() for t in inputs]))
    return {"loss": float(lo), "value_diff": float((lo - lp).abs()),
            "grad_diff": max(float((a - b).abs().max()) for a, b in zip(go, gp)),
            "ours_vs_float64": abs(float(lo) - ref), "peer_vs_float64": abs(float(lp) - ref)}


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def child_memory(case_name: str, impl: str, n: int, limit_gb: float) -> dict:
    """Run once in this (fresh) process; report the peak resident-set rise in MiB."""
    C.set_threads(1)
    case = CASES[case_name]()
    fn = _impl(case, impl) if impl != "floor" else None
    inputs = case.make(n, torch.Generator().manual_seed(0))
    if limit_gb:
        vm = _status_kb("VmSize") * 1024
        lim = vm + int(limit_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    Path("/proc/self/clear_refs").write_text("5")                     # reset VmHWM to VmRSS
    base = _status_kb("VmRSS")
    try:
        if fn is None:
            case.floor(*inputs)
        else:
            fn(*inputs).backward()
    except (RuntimeError, MemoryError) as e:
        return {"peak_mb": None, "error": f"out of memory under a {limit_gb:g} GB limit: "
                                          f"{str(e).splitlines()[0][:120]}"}
    return {"peak_mb": round((_status_kb("VmHWM") - base) / 1024, 1), "error": None}


def memory(case_name: str, impl: str, n: int, limit_gb: float) -> dict:
    cmd = [sys.executable, __file__, "--child", case_name, impl, str(n), str(limit_gb)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"peak_mb": None, "error": f"subprocess failed (rc={r.returncode}): {r.stderr.strip()[-200:]}"}


def bench_case(name: str, sizes, reps_scale: float, limit_gb: float, memory_sizes) -> dict:
    case = CASES[name]()
    rows = []
    for n in sizes:
        impls = ["floor", "ours", *case.peers] if n in memory_sizes else []
        mem = {impl: memory(name, impl, n, limit_gb) for impl in impls}
        fns, skipped = {"floor": lambda: case.floor(*inputs)}, {}
        g = torch.Generator().manual_seed(1)
        inputs = case.make(n, g)
        fns["ours"] = _step(case.ours, inputs)
        # What our input checks (cl_teach._validate: shape, dtype, finiteness) cost on these inputs.
        fns["input checks"] = lambda: [check_embeddings("x", t) for t in inputs]
        for peer in case.peers:
            need = case.needs_memory_gb.get(peer, lambda _: 0)(n)
            err = mem.get(peer, {}).get("error")
            if err or need > limit_gb:
                skipped[peer] = err or f"needs ~{need:.0f} GB"
                continue
            fns[peer] = _step(case.peers[peer](), inputs)
        reps = max(3, int(reps_scale * {256: 40, 1024: 12}.get(n, 4)))
        times = C.interleaved(fns, reps=reps, warmup=1)
        row = {"N": n, "D": D, "reps": reps, "loadavg": C.loadavg(), "memory": mem, "skipped": skipped,
               "time": {k: {"wall": C.summary(v["wall"]), "cpu": C.summary(v["cpu"])}
                        for k, v in times.items()},
               "ours_over_floor": C.paired_ratio(times["ours"]["wall"], times["floor"]["wall"]),
               "checks_share_of_ours": C.paired_ratio(times["input checks"]["wall"], times["ours"]["wall"]),
               "peers": {}}
        for peer in case.peers:
            if peer in skipped:
                row["peers"][peer] = {"skipped": skipped[peer]}
                continue
            row["peers"][peer] = {"ratio_peer_over_ours": C.paired_ratio(times[peer]["wall"],
                                                                         times["ours"]["wall"]),
                                  "ratio_cpu": C.paired_ratio(times[peer]["cpu"], times["ours"]["cpu"]),
                                  **parity(case, n, peer)}
        rows.append(row)
        msg = "  ".join(f"{p}: x{v.get('ratio_peer_over_ours', float('nan')):.2f} "
                        f"dv={v.get('value_diff', float('nan')):.1e} "
                        f"dg={v.get('grad_diff', float('nan')):.1e}"
                        for p, v in row["peers"].items())
        print(f"{name} N={n}: ours {row['time']['ours']['wall']['median'] * 1e3:.1f} ms, "
              f"ours/floor {row['ours_over_floor']:.2f}, checks {row['checks_share_of_ours']:.0%}, {msg}  "
              f"mem ours {mem.get('ours', {}).get('peak_mb')} MB, "
              f"load {row['loadavg'][0]}", flush=True)
    return {"floor": case.floor_what, "rows": rows}


def plot(results: dict):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(results)
    cols = min(3, len(names))
    rows_ = -(-len(names) // cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(4.6 * cols, 3.6 * rows_), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names):
        rows = results[name]["rows"]
        ns = [r["N"] for r in rows]
        impls = ["floor", "ours"] + sorted({k for r in rows for k in r["time"]}
                                           - {"floor", "ours", "input checks"})
        for impl in impls:
            pts = [(r["N"], r["time"][impl]["wall"]["median"] * 1e3) for r in rows if impl in r["time"]]
            if pts:
                ax.plot(*zip(*pts), marker="o", ls="--" if impl == "floor" else "-", label=impl)
        ax.set_xscale("log", base=2); ax.set_yscale("log")
        ax.set_xticks(ns); ax.set_xticklabels(ns)
        ax.set_xlabel("batch size N (D=128)"); ax.set_ylabel("forward+backward, ms (median)")
        ax.set_title(f"{name}\nfloor: {results[name]['floor']}", fontsize=8)
        ax.legend(fontsize=8); ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="*", default=None, help=f"default: all of {list(CASES)}")
    ap.add_argument("--sizes", nargs="*", type=int, default=[256, 1024, 4096])
    ap.add_argument("--full", action="store_true", help="3x the repetitions")
    ap.add_argument("--mem-limit-gb", type=float, default=6.0,
                    help="address-space limit of each memory subprocess above its baseline")
    ap.add_argument("--memory-sizes", nargs="*", type=int, default=None,
                    help="sizes whose peak memory is measured (a subprocess each; default 4096, "
                         "--full: every size)")
    ap.add_argument("--out", default="losses")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--plot-only", action="store_true", help="redraw the PNG from the recorded JSON")
    a = ap.parse_args(argv)
    if a.plot_only:
        C.save_fig(plot(json.loads((C.RESULTS / f"{a.out}.json").read_text())["results"]), a.out)
        return
    if a.child:
        print(json.dumps(child_memory(a.child[0], a.child[1], int(a.child[2]), float(a.child[3]))))
        return
    C.set_threads(1)
    info = C.machine()
    mem_sizes = a.memory_sizes if a.memory_sizes is not None else (a.sizes if a.full else [4096])
    results = {name: bench_case(name, a.sizes, 3.0 if a.full else 1.0, a.mem_limit_gb, mem_sizes)
               for name in (a.cases or CASES)}
    C.save_json(a.out, {"machine": info, "temperature": TEMPERATURE, "D": D, "results": results})
    C.save_fig(plot(results), a.out)


if __name__ == "__main__":
    main()
