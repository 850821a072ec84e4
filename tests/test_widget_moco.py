"""Notebook 07's MoCo queue explorer: the traced queue, key consistency, and bad input."""
import pytest
import torch

import cl_teach.widgets.moco as moco_widget
from cl_teach.data import TensorLoader
from cl_teach.methods import MoCo
from cl_teach.models import FeatureTower
from cl_teach.train import fit
from cl_teach.widgets import moco_queue_explorer, moco_queue_stats, plot_moco_queue_stats


def _features(m=1024, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(m, d, generator=g)
    return h + 0.1 * torch.randn(m, d, generator=g), h


def test_traced_queue_matches_plain_moco_and_the_loaders_order():
    """The traced run trains exactly as plain MoCo (same keys in the queue), and the ids it records
    are the last K / N batches of an independent replay of the loader's order."""
    h1, h2 = _features()
    n, k, steps = 32, 256, 20
    st = moco_queue_stats(h1, h2, 0.9, k, batch_size=n, steps=steps, seed=3)
    torch.manual_seed(3)
    plain = MoCo(FeatureTower(16, 128, 64), queue_size=k, momentum=0.9, hidden_dim=128, bn_splits=1)
    fit(plain, TensorLoader(h1, h2, batch_size=n, seed=3), steps=steps, lr=5e-3, warmup=1.0,
        progress=False, device=torch.device("cpu"))
    assert torch.allclose(st["method"].queue, plain.queue, atol=1e-6)
    order = [idx for idx, _ in TensorLoader(h1, h2, batch_size=n, seed=3).batches()][:steps]
    method = st["method"]
    for age in range(k // n):                                  # the batch of step steps - 1 - age
        slots = st["age"] == age
        assert torch.equal(method.queue_ids[slots], order[steps - 1 - age])
    ptr = int(method.queue_ptr)
    assert torch.equal(st["age"], ((ptr - 1 - torch.arange(k)) % k) // n)
    assert st["extent"] == k // n and st["ages"].tolist() == list(range(k // n))


def test_consistency_is_one_for_a_frozen_key_encoder_and_a_broken_tracer_is_caught(monkeypatch):
    """m = 1: the key encoder never moves, so every queued key equals today's key (cos 1). A tracer
    that records the ids one batch late (after the pointer moved) must fail that."""
    h1, h2 = _features()
    frozen = moco_queue_stats(h1, h2, 1.0, 256, steps=20)
    assert torch.allclose(frozen["consistency"], torch.ones(256), atol=1e-5)
    assert frozen["lag"] == float("inf") and frozen["consistent"] == 256

    class LateTracer(moco_widget.TracedMoCo):
        @torch.no_grad()
        def after_step(self, step, total_steps):
            ids, self._ids = self._ids, None
            MoCo.after_step(self, step, total_steps)            # the pointer has moved
            idx = (self.queue_ptr + torch.arange(ids.shape[0])) % self.queue_size
            self.queue_ids[idx], self.queue_step[idx] = ids, step

    monkeypatch.setattr(moco_widget, "TracedMoCo", LateTracer)
    broken = moco_queue_stats(h1, h2, 1.0, 256, steps=20)
    assert broken["consistency"].min() < 0.9


def test_a_fast_key_encoder_leaves_older_keys_less_consistent():
    h1, h2 = _features(2048)
    fast, slow = (moco_queue_stats(h1, h2, m, 512, steps=40) for m in (0.0, 0.999))
    assert slow["oldest"] > fast["oldest"] + 0.05 and slow["mean"] > fast["mean"]
    assert fast["youngest"] > fast["oldest"]                   # within one run: older is staler
    by_hand = torch.stack([fast["consistency"][fast["age"] == a].mean() for a in range(16)])
    assert torch.allclose(torch.as_tensor(fast["by_age"]), by_hand)


def test_random_state_is_left_alone():
    h1, h2 = _features()
    torch.manual_seed(11)
    want = torch.rand(3)
    torch.manual_seed(11)
    moco_queue_stats(h1, h2, 0.9, 256, steps=10)
    assert torch.equal(torch.rand(3), want)


@pytest.mark.parametrize("kwargs, match", [
    ({"momentum": 1.5}, "momentum"),
    ({"momentum": float("nan")}, "momentum"),
    ({"queue_size": 100}, "queue_size"),                       # not a multiple of 32
    ({"queue_size": 1024, "steps": 10}, "queue_size"),         # older than the run
    ({"queue_size": 0}, "queue_size"),
    ({"batch_size": 0}, "batch_size"),
    ({"lr": -1.0}, "lr"),
    ({"steps": 40}, "rows"),                                   # 40 * 32 > 1024 features
])
def test_bad_input(kwargs, match):
    h1, h2 = _features()
    args = {"momentum": 0.9, "queue_size": 256, "steps": 20, **kwargs}
    with pytest.raises(ValueError, match=match):
        moco_queue_stats(h1, h2, **args)


def test_bad_features():
    h1, h2 = _features()
    with pytest.raises(ValueError, match="same shape"):
        moco_queue_stats(h1, h2[:, :8], 0.9, 256, steps=20)
    with pytest.raises(ValueError, match="h1"):
        moco_queue_stats(h1[:, 0], h2[:, 0], 0.9, 256, steps=20)


def test_plot_and_explorer():
    pytest.importorskip("ipywidgets")
    h1, h2 = _features()
    st = moco_queue_stats(h1, h2, 0.9, 256, steps=20)
    fig = plot_moco_queue_stats(st)
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title() and ax.get_legend() is not None
    assert fig.axes[1].get_xlabel() == "negatives per query"
    box = moco_queue_explorer(h1, h2, momentum=0.9, queue_size=256, steps=20)
    readout = box.children[1].value
    assert readout == moco_widget.describe_moco_queue(st) and "in-batch: 31" in readout
    with pytest.raises(ValueError, match="momentum"):
        moco_queue_explorer(h1, h2, momentum=0.95)
    with pytest.raises(ValueError, match="queue_size"):
        moco_queue_explorer(h1, h2, queue_size=300)
