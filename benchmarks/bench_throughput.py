"""Training-loop throughput (images/s): cl_teach's SimCLR vs lightly's recipe, augmentation on/off.

SimCLR(SmallCNN) on 20,000 real Fashion-MNIST images, batch 256, one torch thread, five ways,
interleaved in rounds (``--steps`` steps each per round, ``--rounds`` rounds, rotating order):
  * ``aug on``: ``cl_teach.train.fit`` from a ``cl_teach.data.ViewLoader`` with two
    ``cl_teach.augment.Augment()`` views per image (the course's pipeline, "ours");
  * ``lightly, our views``: lightly's SimCLR recipe as in its example and bench_learning.py -
    the same SmallCNN (same initial weights), ``SimCLRProjectionHead(256, 256, 64)``,
    ``NTXentLoss()`` (its default tau 0.5; the temperature does not change the cost), a plain
    PyTorch loop with ``torch.optim.AdamW`` (lr 5e-3, wd 1e-4) and the same warm-up + cosine
    ``LambdaLR`` - fed the *same augmented views* from an identical ViewLoader, so the
    augmentation is equal and only the model/loss/loop differ;
  * ``lightly, its transforms``: the whole recipe of bench_learning.py, i.e. the same loop fed by
    lightly's ``SimCLRTransform(input_size=28, normalize=None)`` through a torch ``DataLoader``
    (per-image PIL/torchvision, num_workers=0);
  * ``aug off``: ours with identity views (the augmentation cost removed);
  * ``augment only``: iterating the augmenting ViewLoader without training (its own ceiling).
Images/s counts source images (each gives two views). ours/lightly is the median over rounds of
the per-round ratio lightly time / our time (same round, same load), with its min-max over rounds.
The share of a step spent on augmentation is reported from CPU seconds two ways:
``1 - off/on`` and ``augment only / on``.

    .venv/bin/python benchmarks/bench_throughput.py            # 8 rounds, ~2.5 min
    .venv/bin/python benchmarks/bench_throughput.py --full     # 16 rounds, ~5 min
    .venv/bin/python benchmarks/bench_throughput.py --replot   # redraw the PNG from the JSON

Writes benchmarks/results/throughput.json and throughput.png.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def identity(x, generator=None):
    return x


def lightly_recipe(encoder, view_loader, x, bs: int, steps: int, rounds: int):
    """Two callables running ``steps`` steps of lightly's SimCLR recipe: fed by our ViewLoader, and by
    lightly's SimCLRTransform through a DataLoader (as bench_learning.py)."""
    import torch
    from bench_learning import LightlySimCLR, PILDataset
    from lightly.loss import NTXentLoss
    from lightly.transforms import SimCLRTransform

    from cl_teach.train import warmup_cosine

    runs = {}
    for name in ("ours", "lightly"):
        model = LightlySimCLR(copy.deepcopy(encoder))
        opt = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=1e-4)
        total = steps * (rounds + 2)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s, t=total: warmup_cosine(s, t, max(1, t // 20)))
        runs[name] = (model, opt, sched)
    criterion = NTXentLoss()
    x_uint8 = (x[:, 0] * 255).round().to(torch.uint8).numpy()
    g = torch.Generator().manual_seed(0)
    pil_data = PILDataset(x_uint8, SimCLRTransform(input_size=28, normalize=None))
    pil_loader = torch.utils.data.DataLoader(pil_data, batch_size=bs, shuffle=True, drop_last=True,
                                             num_workers=0, generator=g)

    def loop(name, batches):
        model, opt, sched = runs[name]
        model.train()
        for _, (x0, x1) in zip(range(steps), batches):
            loss = criterion(model(x0), model(x1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()

    def with_our_views():
        loop("ours", iter(view_loader))

    def with_its_transforms():
        loop("lightly", ((x0, x1) for (x0, x1), _ in pil_loader))
    return with_our_views, with_its_transforms


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--out", default="throughput")
    ap.add_argument("--replot", action="store_true", help="redraw the PNG from the recorded JSON")
    a = ap.parse_args(argv)
    if a.replot:
        import json
        d = json.loads((C.RESULTS / f"{a.out}.json").read_text())
        fig = plot(d["results"], d["ours_over_lightly"], d["batch_size"], d["augment_alone_share_of_step"])
        C.save_fig(fig, a.out)
        return
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
    rounds = a.rounds or (16 if a.full else 8)
    bs, steps = a.batch_size, a.steps
    method = SimCLR(SmallCNN())
    loaders = {"aug on": ViewLoader(x, [Augment()] * 2, batch_size=bs, seed=0),
               "aug off": ViewLoader(x, [identity] * 2, batch_size=bs, seed=0),
               "lightly": ViewLoader(x, [Augment()] * 2, batch_size=bs, seed=0)}
    lightly_our_views, lightly_transforms = lightly_recipe(copy.deepcopy(method.encoder), loaders["lightly"],
                                                           x, bs, steps, rounds)

    def train(name):
        def run():
            fit(method, loaders[name], steps=steps, progress=False)
        return run

    def augment_only():
        it = iter(loaders["aug on"])
        for _ in range(steps):
            next(it)

    fns = {"aug on": train("aug on"), "lightly, our views": lightly_our_views,
           "lightly, its transforms": lightly_transforms, "aug off": train("aug off"),
           "augment only": augment_only}
    times = C.interleaved(fns, reps=rounds, warmup=1, max_seconds_each=120.0)
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
    vs = {}
    for peer in ("lightly, our views", "lightly, its transforms"):
        vs[peer] = {}
        for clock in ("wall", "cpu"):
            per_round = [p / o for p, o in zip(times[peer][clock], times["aug on"][clock])]
            vs[peer][clock] = {"median": statistics.median(per_round), "min": min(per_round),
                               "max": max(per_round), "per_round": per_round}
    for k, v in res.items():
        print(f"{k:23s}: {v['images_per_s_median']:8.0f} img/s (best {v['images_per_s_best']:.0f}, "
              f"{v['images_per_cpu_s_median']:.0f} per CPU-s)")
    for peer, v in vs.items():
        print(f"ours / {peer}: {v['wall']['median']:.2f}x wall (rounds {v['wall']['min']:.2f}-"
              f"{v['wall']['max']:.2f}), {v['cpu']['median']:.2f}x CPU "
              f"({v['cpu']['min']:.2f}-{v['cpu']['max']:.2f})")
    print(f"augmentation share of a training step: {aug_share:.1%} from on/off, {aug_alone_share:.1%} "
          f"from augmenting alone (CPU seconds; load {C.loadavg()})")
    C.save_json(a.out, {"machine": info, "batch_size": bs, "steps_per_round": steps, "rounds": rounds,
                        "model": "SimCLR(SmallCNN()) projection 64", "loadavg_end": C.loadavg(),
                        "results": res, "ours_over_lightly": vs,
                        "lightly_recipe": "SmallCNN (same initial weights) + lightly SimCLRProjectionHead"
                                          "(256, 256, 64) + lightly NTXentLoss() (tau 0.5), plain loop, "
                                          "torch.optim.AdamW lr 5e-3 wd 1e-4 + warm-up/cosine LambdaLR; "
                                          "'our views': fed by an identical ViewLoader([Augment()] * 2); "
                                          "'its transforms': SimCLRTransform(input_size=28, normalize=None) "
                                          "through a DataLoader (num_workers=0), as bench_learning.py",
                        "augmentation_share_of_step": aug_share,
                        "augment_alone_share_of_step": aug_alone_share})

    C.save_fig(plot(res, vs, bs, aug_alone_share), a.out)


def plot(res, vs, bs, aug_alone_share):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8.2, 3.6))
    names = list(res)
    vals = [res[k]["images_per_cpu_s_median"] for k in names]        # CPU clock: robust to load
    labels = {"aug on": "cl_teach fit (ours)", "aug off": "ours, augmentation off",
              "augment only": "augmenting alone (ViewLoader)",
              "lightly, our views": "lightly recipe, our views",
              "lightly, its transforms": "lightly recipe, SimCLRTransform"}
    ax.barh([labels[k] for k in names], vals,
            color=["C0", "C1", "C1", "C2", "C7"])
    for i, k in enumerate(names):
        extra = (f"  ours / this: {vs[k]['cpu']['median']:.2f}x (rounds {vs[k]['cpu']['min']:.2f}-"
                 f"{vs[k]['cpu']['max']:.2f})" if k in vs else "")
        ax.text(vals[i], i, f" {vals[i]:,.0f}{extra}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("source images per CPU-second (median over rounds, 1 thread; two views each)")
    ax.set_title(f"SimCLR(SmallCNN) batch {bs}: ours vs lightly's recipe;\n"
                 f"augmenting = {aug_alone_share:.0%} of our step's CPU", fontsize=10)
    ax.set_xlim(0, max(vals) * 1.25)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    main()
