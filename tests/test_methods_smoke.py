"""One CPU training step per method on a tiny batch: the loss is finite, the online weights
moved, target networks got no gradient but moved by EMA, MoCo's queue advanced by the batch
size, DINO's center moved, SwAV's prototypes stay normalised."""

import pytest
import torch
import torch.nn.functional as F

from cl_teach.losses import barlow_twins_loss
from cl_teach.methods import BYOL, DINO, BarlowTwins, MoCo, MoCoV3, SimCLR, SimSiam, SwAV
from cl_teach.models import SmallCNN

N = 8


def _views(n_views=2, n=N, size=28):
    g = torch.Generator().manual_seed(1)
    return tuple(torch.rand(n, 1, size, size, generator=g) for _ in range(n_views))


def _snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def _moved(before, module):
    return any(not torch.equal(b, p) for b, p in zip(before, module.parameters()))


def _step(method, batch):
    opt = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=1e-2)
    method.train()
    out = method.training_step(batch)
    assert torch.isfinite(out["loss"]) and out["loss"].dim() == 0
    opt.zero_grad()
    out["loss"].backward()
    opt.step()
    return out


# (factory, names of target modules moved only by EMA)
METHODS = {
    "SimCLR": (lambda: SimCLR(SmallCNN()), []),
    "SimSiam": (lambda: SimSiam(SmallCNN()), []),
    "MoCo": (lambda: MoCo(SmallCNN(), queue_size=32), ["encoder_k", "projector_k"]),
    "MoCoV3": (lambda: MoCo(SmallCNN(), queue_size=0), ["encoder_k", "projector_k"]),
    "MoCoV3_authors": (lambda: MoCoV3(SmallCNN()), ["momentum_encoder", "momentum_projector"]),
    "SwAV": (lambda: SwAV(SmallCNN(), n_prototypes=10), []),
    "BYOL": (lambda: BYOL(SmallCNN()), ["target_encoder", "target_projector"]),
    "BarlowTwins": (lambda: BarlowTwins(SmallCNN()), []),
    "DINO": (lambda: DINO(SmallCNN(), n_outputs=32), ["teacher_encoder", "teacher_head"]),
}


@pytest.mark.parametrize("name", list(METHODS))
def test_one_step(name):
    make, targets = METHODS[name]
    method = make()
    online = _snapshot(method.encoder)
    target_before = {t: _snapshot(getattr(method, t)) for t in targets}
    out = _step(method, _views())
    assert method(torch.rand(3, 1, 28, 28)).shape == (3, 256)          # forward gives h
    for key in ("z1", "z2"):
        assert out[key].shape[0] == N and not out[key].requires_grad
    assert _moved(online, method.encoder), "online encoder did not move"
    for t in targets:
        params = list(getattr(method, t).parameters())
        assert all(not p.requires_grad and p.grad is None for p in params), f"{t} got a gradient"
        assert not _moved(target_before[t], getattr(method, t)), f"{t} moved before after_step"
    method.after_step(0, 10)
    for t in targets:
        assert _moved(target_before[t], getattr(method, t)), f"{t} did not move by EMA"


def test_moco_queue_advances_by_batch_size_and_wraps():
    method = MoCo(SmallCNN(), queue_size=20)
    old = method.queue.clone()
    out = _step(method, _views())
    method.after_step(0, 10)
    assert int(method.queue_ptr) == N
    assert torch.allclose(method.queue[:N], F.normalize(out["z2"], dim=1))      # content: the keys
    assert torch.equal(method.queue[N:], old[N:])                             # the rest untouched
    for step in (1, 2):                                                       # 8 + 8 + 8 = 24 -> wraps to 4
        out = _step(method, _views())
        method.after_step(step, 10)
    assert int(method.queue_ptr) == 3 * N % 20
    assert torch.allclose(method.queue[:4], F.normalize(out["z2"], dim=1)[4:])
    with pytest.raises(ValueError, match="batch size"):
        MoCo(SmallCNN(), queue_size=4).training_step(_views())


def test_moco_v3_has_no_queue_and_key_encoder_matches_ema():
    method = MoCo(SmallCNN(), queue_size=0, momentum=0.9)
    assert method.queue.numel() == 0 and method.symmetric
    _step(method, _views())
    k_before = [p.detach().clone() for p in method.encoder_k.parameters()]
    method.after_step(0, 10)
    for kb, k, q in zip(k_before, method.encoder_k.parameters(), method.encoder.parameters()):
        assert torch.allclose(k, 0.9 * kb + 0.1 * q)


def test_dino_center_moves_and_switches():
    method = DINO(SmallCNN(), n_outputs=32)
    out = _step(method, _views(4))                      # 2 global + 2 local views
    assert torch.count_nonzero(method.center) == 0
    method.after_step(0, 10)
    assert torch.count_nonzero(method.center) > 0
    off = DINO(SmallCNN(), n_outputs=32, centering=False, sharpening=False)
    _step(off, _views())
    off.after_step(0, 10)
    assert torch.count_nonzero(off.center) == 0 and off.teacher_temperature == off.student_temperature
    assert 0 <= out["teacher_entropy"] <= method.log_k + 1e-5


def test_swav_multicrop_and_prototypes_normalised():
    method = SwAV(SmallCNN(), n_prototypes=10)
    views = _views(2) + _views(2, size=14)              # 2 global + 2 local (smaller) crops
    out = _step(method, views)
    method.after_step(0, 10)
    assert torch.allclose(method.prototypes.weight.norm(dim=1), torch.ones(10), atol=1e-6)
    assert 1 <= out["prototypes_used"] <= 10


def test_barlow_method_loss_equals_package_loss():
    method = BarlowTwins(SmallCNN())
    out = method.training_step(_views())
    assert torch.allclose(out["loss"], barlow_twins_loss(out["z1"], out["z2"], method.lambd), atol=1e-4)
    assert out["c"].shape == (128, 128)
    _, on_diag, off_diag, c = barlow_twins_loss(out["z1"], out["z2"], method.lambd, terms=True)
    for key, term in (("on_diag", on_diag), ("off_diag", off_diag), ("c", c)):
        assert torch.allclose(out[key], term, rtol=1e-5, atol=1e-6), key


@pytest.mark.parametrize("make", [lambda: MoCo(SmallCNN()), lambda: BYOL(SmallCNN()),
                                  lambda: DINO(SmallCNN()), lambda: MoCoV3(SmallCNN())])
def test_bad_batch_is_a_clear_error(make):
    with pytest.raises(ValueError, match="batch must be a tuple of at least 2 views"):
        make().training_step(torch.rand(4, 1, 28, 28))
