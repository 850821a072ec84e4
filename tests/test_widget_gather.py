"""Notebook 20's gather explorer: its emulation of W processes against independent constructions."""
import pytest
import torch
import torch.nn.functional as F

from cl_teach.losses import nt_xent
from cl_teach.widgets import emulated_gradient, gather_explorer, gather_stats


def batch(b=32, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(b, d, generator=g, dtype=torch.float64)
    return z1, z1 + 0.8 * torch.randn(b, d, generator=g, dtype=torch.float64)


def masked_reference(z1, z2, world_size, tau=0.1):
    """gather_no_grad + local loss in one graph: anchor i sees the views of other processes as constants.

    Each process's mean over its own 2n anchors, averaged over W (DDP), is the mean over all 2B
    anchors; a candidate j of anchor i is live only when both belong to the same process.
    """
    b = z1.shape[0]
    leaf = torch.cat([z1, z2]).detach().requires_grad_(True)                        # (2B, D)
    z = F.normalize(leaf, dim=1)
    proc = torch.arange(2 * b) % b // (b // world_size)                             # owner of each view
    same = proc[:, None] == proc[None, :]
    sim = torch.where(same, z @ z.T, z @ z.detach().T) / tau
    sim = sim.masked_fill(torch.eye(2 * b, dtype=torch.bool), float("-inf"))
    loss = F.cross_entropy(sim, torch.arange(2 * b).roll(b))
    (grad,) = torch.autograd.grad(loss, leaf)
    return grad.view(2, b, -1)


@pytest.mark.parametrize("world_size", [2, 4, 8])
def test_emulation_against_independent_constructions(world_size):
    z1, z2 = batch()
    leaf = torch.stack([z1, z2]).requires_grad_(True)
    (right,) = torch.autograd.grad(nt_xent(leaf[0], leaf[1], 0.1), leaf)
    for loss in ("global", "local"):
        assert torch.allclose(emulated_gradient(z1, z2, world_size, "gather", loss), right, atol=1e-12)
    no_grad = emulated_gradient(z1, z2, world_size, "gather_no_grad", "global")
    assert torch.allclose(no_grad, right / world_size, atol=1e-12)
    bug = emulated_gradient(z1, z2, world_size, "gather_no_grad", "local")
    assert torch.allclose(bug, masked_reference(z1, z2, world_size), atol=1e-12)
    assert not torch.allclose(bug, right, atol=1e-6)                           # the bug is visible
    st = gather_stats(z1, z2, world_size)
    assert st["cosine"]["gather_no_grad", "local"] < 1 - 1e-6
    assert abs(st["ratio"]["gather_no_grad", "global"] - 1 / world_size) < 1e-12


def test_one_process_is_the_same_whatever_the_gather():
    z1, z2 = batch(8)
    right = emulated_gradient(z1, z2, 1, "gather", "global")
    for gather in ("gather", "gather_no_grad"):
        for loss in ("global", "local"):
            assert torch.allclose(emulated_gradient(z1, z2, 1, gather, loss), right, atol=1e-12)


def test_bad_input_names_the_argument():
    z1, z2 = batch(12)
    for args, match in (((z1, z2, 5, "gather", "global"), "multiple of world_size"),
                        ((z1, z2, 0, "gather", "global"), "world_size"),
                        ((z1, z2, 2, "all_gather", "global"), "gather must be"),
                        ((z1, z2, 2, "gather", "mean"), "loss must be"),
                        ((z1, z2[:6], 2, "gather", "global"), "z2")):
        with pytest.raises(ValueError, match=match):
            emulated_gradient(*args)


def test_explorer_builds_and_redraws():
    z1, z2 = batch(16)
    box = gather_explorer(z1, z2)
    slider, readout = box.children[0], box.children[1]
    first = readout.value
    assert first.startswith("W = 2 of N = 8 | gather, global / local loss: x1.000 / x1.000")
    slider.value = 8
    assert readout.value.startswith("W = 8 of N = 2") and "gather_no_grad + global: x0.125 |" in readout.value
    assert "image/png" in box._repr_mimebundle_()
