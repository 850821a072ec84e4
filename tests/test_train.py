"""The one training loop: History, schedule, callbacks, errors, and determinism with ViewLoader."""
import math

import pytest
import torch
from torch import nn

from cl_teach.augment import Augment
from cl_teach.data import TensorLoader, ViewLoader
from cl_teach.methods import SimCLR
from cl_teach.models import SmallCNN
from cl_teach.train import Callback, CollapseMonitor, EvalCallback, History, fit, warmup_cosine


class Tiny(nn.Module):
    """A two-view method small enough to train in milliseconds."""

    def __init__(self):
        super().__init__()
        self.f = nn.Linear(4, 3)
        self.after = []

    def forward(self, x):
        return self.f(x)

    def training_step(self, batch):
        x1, x2 = batch[:2]
        z1, z2 = self.f(x1), self.f(x2)
        loss = (z1 - z2).pow(2).mean() + 0.1 * (z1.pow(2).mean() - 1).abs()
        return {"loss": loss, "extra": 2.0, "z1": z1.detach(), "z2": z2.detach()}

    @torch.no_grad()
    def after_step(self, step, total_steps):
        self.after.append((step, total_steps))


def noisy(x, g):
    return x + 0.1 * torch.randn(x.shape, generator=g)


def loader(n=40, bs=8, seed=0):
    return ViewLoader(torch.randn(n, 4, generator=torch.Generator().manual_seed(1)), [noisy, noisy],
                      batch_size=bs, seed=seed)


def test_warmup_cosine_schedule():
    assert warmup_cosine(0, 100, 10) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(10, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(55, 100, 10) == pytest.approx(0.5)
    assert warmup_cosine(100, 100, 10) == pytest.approx(0.0, abs=1e-12)


def test_fit_logs_every_step_and_calls_after_step():
    m = Tiny()
    h = fit(m, loader(), steps=12, lr=1e-2, progress=False, device=torch.device("cpu"))
    assert isinstance(h, History) and len(h["loss"]) == 12 and list(h.steps("loss")) == list(range(12))
    assert h["extra"].tolist() == [2.0] * 12 and "z1" not in h      # tensors are not logged
    assert m.after == [(s, 12) for s in range(12)]
    lrs = h["lr"]
    assert lrs.max() == pytest.approx(1e-2) and lrs[-1] < 1e-3      # warm-up then cosine decay
    assert h.wall_time > 0 and "loss=" in repr(h)
    with pytest.raises(KeyError, match="was not logged"):
        h["nope"]


class Reinit(Tiny):
    """A method that re-initialises its bias at step 2 and says so (as DeepCluster its classifier)."""

    @torch.no_grad()
    def after_step(self, step, total_steps):
        super().after_step(step, total_steps)
        if step == 2:
            self.f.bias.zero_()
            return [self.f.bias]
        return None


@pytest.mark.parametrize("method", [Tiny, Reinit])
def test_fit_clears_the_optimiser_state_of_what_after_step_reinitialised(method):
    m = method()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    fit(m, loader(), steps=3, optimizer=opt, progress=False, device=torch.device("cpu"))
    assert int(opt.state[m.f.weight]["step"]) == 3                  # untouched: 3 steps of moments
    if method is Reinit:
        assert m.f.bias not in opt.state and torch.count_nonzero(m.f.bias) == 0   # starts afresh
    else:
        assert int(opt.state[m.f.bias]["step"]) == 3


def test_fit_epochs_cross_loader_boundaries_and_reduce_the_loss():
    m = Tiny()
    h = fit(m, loader(), epochs=3, lr=5e-2, progress=False, device=torch.device("cpu"))
    assert len(h["loss"]) == 3 * 5
    h2 = fit(Tiny(), loader(), steps=13, progress=False, device=torch.device("cpu"))
    assert len(h2["loss"]) == 13                                   # steps beyond one epoch


def test_fit_is_deterministic():
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        runs.append(fit(Tiny(), loader(), steps=10, progress=False, device=torch.device("cpu"))["loss"])
    assert (runs[0] == runs[1]).all()


def test_callbacks_are_called_in_order():
    events = []

    class Spy(Callback):
        def on_fit_start(self, method, history, total_steps):
            events.append(("start", total_steps))

        def on_step_end(self, step, logs, method, history):
            events.append(("step", step, "loss" in logs))

        def on_fit_end(self, method, history):
            events.append(("end",))

    fit(Tiny(), loader(), steps=3, callbacks=[Spy()], progress=False, device=torch.device("cpu"))
    assert events == [("start", 3), ("step", 0, True), ("step", 1, True), ("step", 2, True), ("end",)]


def test_collapse_monitor_and_eval_callback():
    calls = []

    def evaluate(method):
        calls.append(1)
        return 0.5

    h = fit(Tiny(), loader(), steps=9, progress=False, device=torch.device("cpu"),
            callbacks=[CollapseMonitor(every=4), EvalCallback(evaluate, every=4, name="score")])
    for key in ("feature_std", "effective_rank", "uniformity", "alignment"):
        assert list(h.steps(key)) == [0, 4, 8]
    assert list(h.steps("score")) == [4, 8] and len(calls) == 2      # no duplicate at the end
    h = fit(Tiny(), loader(), steps=6, progress=False, device=torch.device("cpu"),
            callbacks=[EvalCallback(evaluate, every=4, name="score")])
    assert list(h.steps("score")) == [4, 5]                         # final value always logged


def test_fit_errors():
    with pytest.raises(TypeError, match="training_step"):
        fit(nn.Linear(2, 2), loader(), steps=1, progress=False)
    with pytest.raises(ValueError, match="steps must be"):
        fit(Tiny(), loader(), steps=0, progress=False)
    with pytest.raises(ValueError, match="pass steps"):
        fit(Tiny(), iter(loader()), progress=False)

    class Exploding(Tiny):
        def training_step(self, batch):
            out = super().training_step(batch)
            out["loss"] = out["loss"] * float("nan")
            return out

    with pytest.raises(FloatingPointError, match="lower lr"):
        fit(Exploding(), loader(), steps=2, progress=False, device=torch.device("cpu"))


def test_view_loader_is_deterministic_per_seed_and_epoch():
    x = torch.rand(30, 1, 8, 8)
    aug = Augment()
    a, b = ViewLoader(x, [aug, aug], batch_size=10, seed=5), ViewLoader(x, [aug, aug], batch_size=10, seed=5)
    first_a, first_b = list(a), list(b)
    for (a1, a2), (b1, b2) in zip(first_a, first_b):
        assert torch.equal(a1, b1) and torch.equal(a2, b2)
    second_a = list(a)                                             # a new epoch: new order and views
    assert not torch.equal(first_a[0][0], second_a[0][0])
    c = list(ViewLoader(x, [aug, aug], batch_size=10, seed=6))
    assert not torch.equal(first_a[0][0], c[0][0])


def test_tensor_loader_batches_aligned_tensors_and_errors():
    x, y = torch.rand(25, 3), torch.arange(25)
    ld = TensorLoader(x, y, batch_size=10, shuffle=False)
    batches = list(ld)
    assert len(ld) == 2 and len(batches) == 2
    xb, yb = batches[1]
    assert torch.equal(xb, x[10:20]) and torch.equal(yb, y[10:20])
    assert len(TensorLoader(x, batch_size=10, drop_last=False)) == 3
    xs, ys = next(iter(TensorLoader(x, y, batch_size=5, seed=3)))  # shuffled, still aligned
    assert torch.equal(xs, x[ys])
    with pytest.raises(ValueError, match="batch_size must be <="):
        TensorLoader(x, batch_size=26)
    with pytest.raises(ValueError, match="same first dimension"):
        TensorLoader(x, torch.arange(3), batch_size=5)
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorLoader(batch_size=5)
    with pytest.raises(TypeError, match="views must be a list of callables"):
        ViewLoader(x, None, batch_size=5)


def test_view_loader_with_labels():
    x, y = torch.rand(25, 3), torch.arange(25)
    v, yb = next(iter(ViewLoader(x, [lambda b, g: b + 1], batch_size=5, seed=2, y=y)))
    assert torch.equal(v, x[yb] + 1)                                # the labels of the same rows
    with pytest.raises(ValueError, match="same first dimension"):
        ViewLoader(x, [lambda b, g: b], batch_size=5, y=torch.arange(3))


def test_view_loader_shuffles_like_tensor_loader():
    """Same seed, same order: a ViewLoader with identity views yields the TensorLoader's batches."""
    x = torch.rand(25, 3)
    views = list(ViewLoader(x, [lambda b, g: b], batch_size=5, seed=4))
    plain = list(TensorLoader(x, batch_size=5, seed=4))
    assert all(torch.equal(v[0], p[0]) for v, p in zip(views, plain))


def test_simclr_trains_on_images_one_step():
    torch.manual_seed(0)
    m = SimCLR(SmallCNN(), temperature=0.5)
    x = torch.rand(16, 1, 28, 28)
    before = [p.detach().clone() for p in m.parameters()]
    h = fit(m, ViewLoader(x, [Augment()] * 2, batch_size=8), steps=2, progress=False,
            device=torch.device("cpu"))
    assert all(math.isfinite(v) for v in h["loss"])
    assert any(not torch.equal(b, p) for b, p in zip(before, m.parameters()))
    assert m(x).shape == (16, 256)
