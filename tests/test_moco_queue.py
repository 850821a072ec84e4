"""MoCo's queue: filled with real keys before training (issue 18, notebook 07)."""
import pytest
import torch

from cl_teach.methods import MoCo
from cl_teach.models import SmallCNN


def _x(n, seed=0):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def test_fill_queue_holds_real_keys_of_the_key_encoder():
    torch.manual_seed(0)
    m = MoCo(SmallCNN(), queue_size=16, bn_splits=1)
    random_queue = m.queue.clone()
    m.queue_ptr.fill_(5)
    x = _x(20)
    assert m.fill_queue(x, batch_size=8) is m
    assert int(m.queue_ptr) == 0
    assert not torch.allclose(m.queue, random_queue)
    assert torch.allclose(m.queue.norm(dim=1), torch.ones(16), atol=1e-5)
    with torch.no_grad():                        # the key encoder's keys, chunk by chunk (train-mode BN)
        k = torch.cat([m.projector_k(m.encoder_k(c)) for c in x[:16].split(8)])
    assert torch.allclose(m.queue, torch.nn.functional.normalize(k, dim=1), atol=1e-5)


def test_fill_queue_refuses_v3_and_warns_with_too_few_images():
    with pytest.raises(ValueError, match="needs a queue"):
        MoCo(SmallCNN(), queue_size=0).fill_queue(_x(4))
    m = MoCo(SmallCNN(), queue_size=16).eval()                     # eval: the same key for the same image
    with pytest.warns(UserWarning, match="8 images for a queue of 16"):
        m.fill_queue(_x(8))
    assert torch.allclose(m.queue[:8], m.queue[8:], atol=1e-6)      # each image's key twice, in order


def test_filled_queue_is_then_overwritten_oldest_first():
    torch.manual_seed(0)
    m = MoCo(SmallCNN(), queue_size=16, bn_splits=2)
    m.fill_queue(_x(16), batch_size=8)
    before = m.queue.clone()
    m.training_step((_x(4, 1), _x(4, 2)))
    m.after_step(0, 1)
    assert not torch.allclose(m.queue[:4], before[:4]) and torch.equal(m.queue[4:], before[4:])
    assert int(m.queue_ptr) == 4
