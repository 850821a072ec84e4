"""Training-loop throughput (images/s) with the augmentation pipeline on and off.

SimCLR(SmallCNN) trained by ``cl_teach.train.fit`` on real Fashion-MNIST from a
``cl_teach.data.ViewLoader``, batch 256, one torch thread, three ways, interleaved in rounds
(``--steps`` steps each per round, ``--rounds`` rounds):
  * ``aug on``: two ``cl_teach.augment.Augment()`` views per image (the course's pipeline);
  * ``aug off``: the same loop with identity views (the augmentation cost removed);
  * ``augment only``: iterating the augmenting ViewLoader without training (its own ceiling).
Images/s counts source images (each gives two views). The share of a step spent on
augmentation is reported from CPU seconds two ways: ``1 - off/on`` and ``augment only / on``.

    .venv/bin/python benchmarks/bench_throughput.py            # ~1.5 min
    .venv/bin/python benchmarks/bench_throughput.py --full     # more rounds

Writes benchmarks/results/throughput.json and throughput.png.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def identity(x, generator=None):
    return x


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--out", default="throughput")
    a = ap.parse_args(argv)
    C.set_threads(1)
    import cl_teach
    from cl_teach.augment import Augment
    from cl_teach.data import ViewLoader, load_fashion_mnist
    from cl_teach.methods import SimCLR
    from cl_teach.models import SmallCNN
    from cl_teach.train import fit

    cl_teach.setup(seed=0, verbose=False)
    info = C.machine()
    x = load_fashion_mnist("train", fallback=False).subset(20_000).x
    rounds = a.rounds or (12 if a.full else 6)
    bs, steps = a.batch_size, a.steps
    method = SimCLR(SmallCNN())
    loaders = {"aug on": ViewLoader(x, [Augment()] * 2, batch_size=bs, seed=0),
               "aug off": ViewLoader(x, [identity] * 2, batch_size=bs, seed=0)}

    def train(name):
        def run():
            fit(method, loaders[name], steps=steps, progress=False)
        return run

    def augment_only():
        it = iter(loaders["aug on"])
        for _ in range(steps):
            next(it)

    fns = {"aug on": train("aug on"), "aug off": train("aug off"), "augment only": augment_only}
    times = C.interleaved(fns, reps=rounds, warmup=1)
    images = steps * bs
    res = {}
    for k, v in times.items():
        res[k] = {"images_per_s_median": images / statistics.median(v["wall"]),
                  "images_per_s_best": images / min(v["wall"]),
                  "images_per_cpu_s_median": images / statistics.median(v["cpu"]),
                  "wall": C.summary(v["wall"]), "cpu": C.summary(v["cpu"])}
    # Shares from CPU seconds (robust to other users of the machine), two ways: the measured
    # slow-down of a step, and the cost of the augmentation alone relative to an augmented step.
    aug_share = 1 - C.paired_ratio(times["aug off"]["cpu"], times["aug on"]["cpu"])
    aug_alone_share = C.paired_ratio(times["augment only"]["cpu"], times["aug on"]["cpu"])
    for k, v in res.items():
        print(f"{k:13s}: {v['images_per_s_median']:8.0f} img/s (best {v['images_per_s_best']:.0f}, "
              f"{v['images_per_cpu_s_median']:.0f} per CPU-s)")
    print(f"augmentation share of a training step: {aug_share:.1%} from on/off, {aug_alone_share:.1%} "
          f"from augmenting alone (CPU seconds; load {C.loadavg()})")
    C.save_json(a.out, {"machine": info, "batch_size": bs, "steps_per_round": steps, "rounds": rounds,
                        "model": "SimCLR(SmallCNN()) projection 64", "loadavg_end": C.loadavg(),
                        "results": res, "augmentation_share_of_step": aug_share,
                        "augment_alone_share_of_step": aug_alone_share})

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    names = list(res)
    vals = [res[k]["images_per_cpu_s_median"] for k in names]        # CPU clock: robust to load
    ax.barh(names, vals, color=["C0", "C1", "C2"])
    for i, v in enumerate(vals):
        ax.text(v, i, f" {v:,.0f}", va="center")
    ax.set_xlabel("source images per CPU-second (median, 1 thread; two views each)")
    ax.set_title(f"SimCLR(SmallCNN) batch {bs}: augmenting = {aug_alone_share:.0%} of a step's CPU")
    ax.set_xlim(0, max(vals) * 1.25)
    fig.tight_layout()
    C.save_fig(fig, a.out)


if __name__ == "__main__":
    main()
