"""Notebook 16's stale-key explorer: its replay of the loader against a real WenLan run's log."""
import numpy as np
import pytest
import torch

from cl_teach.data import TensorLoader
from cl_teach.methods import WenLan
from cl_teach.models import FeatureTower
from cl_teach.train import fit
from cl_teach.widgets import stale_key_explorer, stale_key_share_expected, stale_key_stats


def wenlan_log(n, batch, queue, steps, seed):
    """own_key_share logged by a real WenLan trained on random features with pair ids."""
    torch.manual_seed(0)
    images, texts = torch.randn(n, 6), torch.randn(n, 5)
    model = WenLan(FeatureTower(6, None, 6), FeatureTower(5, None, 5), embed_dim=4, queue_size=queue)
    hist = fit(model, TensorLoader(images, texts, torch.arange(n), batch_size=batch, seed=seed),
               steps=steps, lr=1e-3, progress=False)
    return np.asarray(hist["own_key_share"])


@pytest.mark.parametrize(("n", "batch", "queue", "seed"), [(42, 4, 24, 0), (42, 4, 60, 3), (30, 5, 45, 1)])
def test_replay_equals_wenlans_own_key_share(n, batch, queue, seed):
    steps = 40
    logged = wenlan_log(n, batch, queue, steps, seed)
    st = stale_key_stats(n, batch, queue, steps, seed)
    assert np.allclose(st["share"], logged, atol=1e-6)
    assert logged[st["steps_per_epoch"]:].max() > 0                      # the check has something to see
    # A queue one batch shorter, another seed, or the keys enqueued before the loss: all differ.
    assert not np.allclose(stale_key_stats(n, batch, queue - batch, steps, seed)["share"], logged)
    assert not np.allclose(stale_key_stats(n, batch, queue, steps, seed + 1)["share"], logged)
    assert not np.allclose(np.ones(steps), logged)


def test_closed_form_against_a_long_replay_and_a_broken_form():
    for k in (200, 500, 1000, 1500):
        st = stale_key_stats(1000, 10, k, steps=100 * 30, seed=2)           # 29 whole epochs after the first
        assert abs(st["after_epoch_1"] - stale_key_share_expected(k, 1000)) < 0.01
        assert abs(st["after_epoch_1"] - k / 1000) > 0.05 or k > 1000    # the naive K / N is far
    assert stale_key_share_expected(2500, 1000) == 1.0
    assert stale_key_share_expected(1000, 1000, position=np.array([0, 500, 1000])).tolist() == [1.0, 0.5, 0.0]


def test_bad_input_names_the_argument():
    for kwargs, match in (({"n_pairs": 0}, "n_pairs"), ({"batch_size": 0}, "batch_size"),
                          ({"queue_size": 4}, "queue_size"), ({"steps": 0}, "steps"),
                          ({"n_pairs": 5}, "n_pairs")):
        args = {"n_pairs": 100, "batch_size": 8, "queue_size": 64, "steps": 10} | kwargs
        with pytest.raises(ValueError, match=match):
            stale_key_stats(**args)


def test_explorer_builds_and_redraws():
    box = stale_key_explorer(100, 5, 60, queue_size=50, marks={"fifty": 50})
    slider, readout = box.children[0], box.children[1]
    first = readout.value
    assert "K = 50 (50% of an epoch)" in first
    slider.value = 100
    assert readout.value != first and "K = 100 (100% of an epoch)" in readout.value
    assert "image/png" in box._repr_mimebundle_()
