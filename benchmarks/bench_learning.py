"""Learning per CPU-second: SimCLR with cl_teach vs lightly's SimCLR recipe, same encoder and budget.

Both train ``cl_teach.models.SmallCNN`` (the same initial weights) with a 256-256-64 projection
head at batch 256 on the same 20,000 real Fashion-MNIST training images, one torch thread, for
the same budget of CPU seconds (``resource.getrusage``, user + system, training only: the
evaluations are timed and subtracted). At fixed shares of the budget both are evaluated by a
weighted kNN (k=20, cl_teach.metrics.knn_accuracy) of the representation h on the
Fashion-MNIST test split (first --test images) against 10,000 labelled training images.

* cl_teach: ``SimCLR(SmallCNN())`` (NT-Xent at tau=0.1), ``ViewLoader`` + ``[Augment()] * 2``
  (batched tensor augmentation), ``train.fit``.
* lightly: its recipe from its own modules, as its SimCLR example builds it:
  ``SimCLRTransform(input_size=28, normalize=None)`` (per-image PIL/torchvision transforms, its
  defaults otherwise: crop scale 0.08-1, colour jitter 0.8, grey 0.2, blur 0.5),
  ``SimCLRProjectionHead(256, 256, 64)``, ``NTXentLoss()`` (its default tau=0.5), a standard
  ``torch.utils.data.DataLoader`` (shuffle, drop_last, num_workers=0: worker processes are
  slower on 2 cores and their CPU would escape the budget), its own training loop.
* Same optimiser for both (AdamW lr 5e-3, wd 1e-4, 5% warm-up then cosine, cl_teach's fit
  default; lightly's example uses SGD lr 0.06, which learns far slower in a short budget): each
  recipe's step count is calibrated to its own cost per step so both finish their schedule
  inside the budget.

    .venv/bin/python benchmarks/bench_learning.py              # 60 CPU-s each, ~4 min
    .venv/bin/python benchmarks/bench_learning.py --full       # 240 CPU-s each

Writes benchmarks/results/learning.json and learning.png.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

FRACTIONS = (0.125, 0.25, 0.5, 0.75, 1.0)


class Evaluator:
    """kNN accuracy of h on the test split; keeps the training CPU clock free of its own cost."""

    def __init__(self, x_bank, y_bank, x_test, y_test):
        self.x_bank, self.y_bank, self.x_test, self.y_test = x_bank, y_bank, x_test, y_test
        self.eval_cpu = 0.0
        self.points = []

    def start(self):
        self.cpu0, self.wall0 = C.cpu_seconds(), time.perf_counter()

    def __call__(self, encoder: nn.Module, step: int):
        from cl_teach.metrics import knn_accuracy
        from cl_teach.models import embed
        c = C.cpu_seconds()
        train_cpu = c - self.cpu0 - self.eval_cpu
        acc = knn_accuracy(embed(encoder, self.x_bank), self.y_bank, embed(encoder, self.x_test), self.y_test,
                           k=20)
        self.eval_cpu += C.cpu_seconds() - c
        self.points.append({"step": step, "train_cpu_s": train_cpu, "knn_acc": acc,
                            "loadavg": C.loadavg()[0]})
        print(f"    step {step:5d}  {train_cpu:6.1f} CPU-s  kNN {acc:.3f}", flush=True)


def eval_steps(total: int):
    return sorted({max(1, round(f * total)) for f in FRACTIONS})


def cpu_per_step(step_fn, n: int = 6) -> float:
    step_fn()                                                       # warm-up
    c = C.cpu_seconds()
    for _ in range(n):
        step_fn()
    return (C.cpu_seconds() - c) / n


# ------------------------------------------------------------------ cl_teach ----------------------
def run_cl_teach(encoder, x_train, budget, ev: Evaluator, bs: int, seed: int):
    from cl_teach.augment import Augment
    from cl_teach.data import ViewLoader
    from cl_teach.methods import SimCLR
    from cl_teach.train import Callback, fit

    method = SimCLR(encoder)                                        # projection 256-256-64, tau 0.1
    loader = ViewLoader(x_train, [Augment()] * 2, batch_size=bs, seed=seed)
    # Calibrate on a copy: the cost of one training step of this recipe.
    probe, it = copy.deepcopy(method), iter(ViewLoader(x_train, [Augment()] * 2, batch_size=bs, seed=99))
    opt = torch.optim.AdamW(probe.parameters(), lr=1e-3)

    def step():
        loss = probe.training_step(next(it))["loss"]
        opt.zero_grad(); loss.backward(); opt.step()
    per_step = cpu_per_step(step)
    total = max(8, int(budget / per_step))
    marks = set(eval_steps(total))
    print(f"  cl_teach: {per_step * 1e3:.0f} CPU-ms/step -> {total} steps", flush=True)

    class Eval(Callback):
        def on_step_end(self, step, logs, method, history):
            if step + 1 in marks:
                ev(method.encoder, step + 1)

    ev.start()
    fit(method, loader, steps=total, progress=False, callbacks=[Eval()])
    return {"cpu_per_step": per_step, "steps": total}


# ------------------------------------------------------------------ lightly -----------------------
class PILDataset(torch.utils.data.Dataset):
    """Fashion-MNIST as PIL images through a transform: the torchvision-style data set."""

    def __init__(self, x_uint8: np.ndarray, transform):
        self.x, self.transform = x_uint8, transform

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        from PIL import Image
        return self.transform(Image.fromarray(self.x[i], mode="L")), 0


class LightlySimCLR(nn.Module):
    def __init__(self, backbone):
        super().__init__()
        from lightly.models.modules import SimCLRProjectionHead
        self.backbone = backbone
        self.projection_head = SimCLRProjectionHead(backbone.out_dim, 256, 64)

    def forward(self, x):
        return self.projection_head(self.backbone(x))


def run_lightly(encoder, x_uint8, budget, ev: Evaluator, bs: int, seed: int):
    from lightly.loss import NTXentLoss
    from lightly.transforms import SimCLRTransform

    from cl_teach.train import warmup_cosine

    model = LightlySimCLR(encoder)
    criterion = NTXentLoss()
    transform = SimCLRTransform(input_size=28, normalize=None)

    def make_loader(s):
        g = torch.Generator().manual_seed(s)
        return torch.utils.data.DataLoader(PILDataset(x_uint8, transform), batch_size=bs, shuffle=True,
                                           drop_last=True, num_workers=0, generator=g)

    def forever(loader):
        while True:
            yield from loader

    probe, it = copy.deepcopy(model), forever(make_loader(99))
    popt = torch.optim.AdamW(probe.parameters(), lr=1e-3)

    def pstep():
        (x0, x1), _ = next(it)
        loss = criterion(probe(x0), probe(x1))
        popt.zero_grad(); loss.backward(); popt.step()
    per_step = cpu_per_step(pstep)
    total = max(8, int(budget / per_step))
    marks = set(eval_steps(total))
    print(f"  lightly: {per_step * 1e3:.0f} CPU-ms/step -> {total} steps", flush=True)

    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=1e-4)
    warm = max(1, int(0.05 * total))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, total, warm))
    model.train()
    ev.start()
    batches = forever(make_loader(seed))
    for step in range(total):
        (x0, x1), _ = next(batches)
        loss = criterion(model(x0), model(x1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step + 1 in marks:
            ev(model.backbone, step + 1)
            model.train()
    return {"cpu_per_step": per_step, "steps": total}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=None, help="training CPU seconds per recipe")
    ap.add_argument("--full", action="store_true", help="240 CPU-s per recipe")
    ap.add_argument("--train", type=int, default=20_000)
    ap.add_argument("--test", type=int, default=5_000)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="learning")
    a = ap.parse_args(argv)
    budget = a.budget or (240.0 if a.full else 60.0)
    C.set_threads(1)
    import cl_teach
    from cl_teach.data import load_fashion_mnist
    from cl_teach.models import SmallCNN

    cl_teach.setup(seed=a.seed, verbose=False)
    info = C.machine()
    tr, te = load_fashion_mnist("train", fallback=False), load_fashion_mnist("test", fallback=False)
    sub = tr.subset(a.train, seed=a.seed)
    bank = tr.subset(10_000, seed=a.seed + 1)
    x_test, y_test = te.x[:a.test], te.y[:a.test]
    x_uint8 = (sub.x[:, 0] * 255).round().to(torch.uint8).numpy()
    torch.manual_seed(a.seed)
    encoder0 = SmallCNN()
    results = {}
    for name, runner, data in (("cl_teach", run_cl_teach, sub.x), ("lightly", run_lightly, x_uint8)):
        print(f"[{name}] budget {budget:.0f} CPU-s", flush=True)
        ev = Evaluator(bank.x, bank.y, x_test, y_test)
        torch.manual_seed(a.seed)
        t = time.perf_counter()
        meta = runner(copy.deepcopy(encoder0), data, budget, ev, a.batch_size, a.seed)
        results[name] = {**meta, "curve": ev.points, "wall_s": time.perf_counter() - t,
                         "eval_cpu_s": ev.eval_cpu}
    ahead = all(p["knn_acc"] > q["knn_acc"]
                for p, q in zip(results["cl_teach"]["curve"], results["lightly"]["curve"]))
    print("cl_teach ahead at every budget share:", ahead)
    C.save_json(a.out, {"machine": info, "budget_cpu_s": budget, "fractions": FRACTIONS,
                        "config": vars(a), "results": results, "ours_ahead_at_every_share": ahead})
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.8, 3.8))
    for name, r in results.items():
        pts = r["curve"]
        ax.plot([p["train_cpu_s"] for p in pts], [p["knn_acc"] for p in pts], marker="o",
                label=f"{name} ({r['steps']} steps, {r['cpu_per_step'] * 1e3:.0f} CPU-ms/step)")
    ax.set_xlabel("training CPU seconds (1 thread)")
    ax.set_ylabel("kNN accuracy, Fashion-MNIST test")
    ax.set_title(f"SimCLR, SmallCNN, batch {a.batch_size}: learning per CPU-second")
    ax.grid(alpha=0.3); ax.legend(fontsize=8)
    fig.tight_layout()
    C.save_fig(fig, a.out)


if __name__ == "__main__":
    main()
