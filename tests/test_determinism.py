"""Seeded reruns give identical numbers on the CPU: fit twice, compare losses and weights bit for bit.

Every image method is trained for a few steps on real Fashion-MNIST images twice, each time after
``cl_teach.setup(seed=0)`` (one torch thread); the logged histories and every tensor of the
state dict (weights, BatchNorm statistics, queues, centers, prototypes) must be *equal*, not
close. A second Python process must reproduce the same digest, so nothing depends on hash
seeds, import order or memory addresses.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import cl_teach
from cl_teach import models, train
from cl_teach.augment import Augment
from cl_teach.data import ViewLoader, load_fashion_mnist
from cl_teach.methods import BYOL, DINO, BarlowTwins, MoCo, SimCLR, SimSiam, SwAV

ROOT = Path(__file__).resolve().parent.parent
STEPS, BATCH = 4, 32

METHODS = {
    "SimCLR": lambda: SimCLR(models.SmallCNN()),
    "SimSiam": lambda: SimSiam(models.SmallCNN()),
    "MoCo": lambda: MoCo(models.SmallCNN(), queue_size=64),
    "BYOL": lambda: BYOL(models.SmallCNN()),
    "BarlowTwins": lambda: BarlowTwins(models.SmallCNN()),
    "SwAV": lambda: SwAV(models.SmallCNN(), n_prototypes=10),
    "DINO": lambda: DINO(models.SmallCNN(), n_outputs=32),
}


@pytest.fixture(scope="module")
def images():
    return load_fashion_mnist("train").subset(STEPS * BATCH, seed=0).x


def _run(name: str, x: torch.Tensor):
    cl_teach.setup(seed=0, verbose=False)
    method = METHODS[name]()
    loader = ViewLoader(x, [Augment()] * 2, batch_size=BATCH, seed=0)
    history = train.fit(method, loader, steps=STEPS, progress=False,
                        callbacks=[train.CollapseMonitor(every=2)], device=torch.device("cpu"))
    return history, {k: v.detach().clone() for k, v in method.state_dict().items()}


@pytest.mark.parametrize("name", list(METHODS))
def test_fit_twice_is_bitwise_identical(name, images):
    threads = torch.get_num_threads()
    try:
        h1, w1 = _run(name, images)
        h2, w2 = _run(name, images)
    finally:
        torch.set_num_threads(threads)
    for key in h1.keys():  # noqa: SIM118 (History has keys() and __getitem__ but no __iter__)
        assert np.array_equal(h1[key], h2[key]), f"{name}: logged {key!r} differs: {h1[key]} vs {h2[key]}"
    assert w1.keys() == w2.keys()
    differ = [k for k in w1 if not torch.equal(w1[k], w2[k])]
    assert not differ, f"{name}: these tensors differ between seeded reruns: {differ}"
    assert np.isfinite(h1["loss"]).all()


def test_views_and_batches_are_reproducible(images):
    a = [tuple(v.clone() for v in b) for b in ViewLoader(images, [Augment()] * 2, batch_size=BATCH, seed=3)]
    b = [tuple(v.clone() for v in b) for b in ViewLoader(images, [Augment()] * 2, batch_size=BATCH, seed=3)]
    c = next(iter(ViewLoader(images, [Augment()] * 2, batch_size=BATCH, seed=4)))
    assert all(torch.equal(u, v) for x, y in zip(a, b) for u, v in zip(x, y))
    assert not torch.equal(a[0][0], c[0]), "a different seed must give different views"


def _digest(images) -> str:
    """sha256 of the losses and of every byte of the trained state dict of a seeded SimCLR run."""
    threads = torch.get_num_threads()
    try:
        h, w = _run("SimCLR", images)
    finally:
        torch.set_num_threads(threads)
    d = hashlib.sha256(h["loss"].tobytes())
    for k in sorted(w):
        d.update(k.encode())
        d.update(w[k].contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return d.hexdigest()


def test_fresh_process_reproduces_the_numbers(images):
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT / "tests")!r})
        import test_determinism as t
        print(t._digest(t.load_fashion_mnist("train").subset(t.STEPS * t.BATCH, seed=0).x))
    """)
    env = {**os.environ, "CL_TEACH_THREADS": "1", "PYTHONHASHSEED": "123"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT),
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == _digest(images), "a fresh process trained different numbers"
