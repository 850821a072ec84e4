"""Notebook 11's lambda explorer: its numbers against NumPy, a plain fit run and broken variants."""
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from cl_teach.data import TensorLoader
from cl_teach.methods import BarlowTwins
from cl_teach.models import FeatureTower
from cl_teach.train import fit
from cl_teach.widgets import barlow_stats, barlow_sweep, lambda_explorer, plot_barlow_stats

KW = {"projection_dim": 16, "hidden_dim": 32, "steps": 40, "batch_size": 128}


def views(n=512, f=12, noise=0.3, seed=0):
    """Features of two noisy views of the same n items: (n, f) each."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, f, generator=g)
    return h + noise * torch.randn(n, f, generator=g), h + noise * torch.randn(n, f, generator=g)


def numpy_c(z1, z2):
    """C from the paper's formula in float64 NumPy: standardise each dimension, then z1n.T z2n / N."""
    a, b = z1.double().numpy(), z2.double().numpy()
    a = (a - a.mean(0)) / np.sqrt(a.var(0) + 1e-5)
    b = (b - b.mean(0)) / np.sqrt(b.var(0) + 1e-5)
    return a.T @ b / a.shape[0]


def numpy_rank(z):
    z = z.double().numpy()
    s = np.linalg.svd(z / np.linalg.norm(z, axis=1, keepdims=True), compute_uv=False)
    p = s / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def test_barlow_stats_against_numpy_and_a_broken_variant():
    h1, h2 = views()
    for lambd in (0.0, 5e-3, 0.1):
        st = barlow_stats(h1, h2, lambd, **KW)
        c, d = numpy_c(st["z1"], st["z2"]), st["d"]
        assert st["c"].shape == (d, d) == (16, 16) and st["n"] == 512
        assert np.allclose(st["c"].numpy(), c, atol=1e-5)
        off = c - np.diag(np.diag(c))
        assert np.isclose(st["offdiag_abs_mean"], np.abs(off).sum() / (d * d - d), rtol=1e-5)
        assert np.isclose(st["diag_mean"], np.diag(c).mean(), rtol=1e-5)
        loss = ((1 - np.diag(c)) ** 2).sum() + lambd * (off ** 2).sum()
        assert np.isclose(st["loss"], loss, rtol=1e-4)
        assert np.isclose(st["rank"], numpy_rank(st["z1"]), rtol=1e-4)
        # Broken variants the checks must reject: C of the raw (unstandardised) projections, the
        # off-diagonal mean over all D^2 entries, the loss without the weight on the redundancy term.
        raw = (st["z1"].double().T @ st["z2"].double() / st["n"]).numpy()
        assert not np.allclose(st["c"].numpy(), raw, atol=1e-3)
        assert not np.isclose(st["offdiag_abs_mean"], np.abs(off).sum() / (d * d), rtol=1e-5)
        if lambd not in (0.0, 1.0):
            assert not np.isclose(st["loss"], ((1 - np.diag(c)) ** 2).sum() + (off ** 2).sum(), rtol=1e-4)


def test_barlow_stats_trains_with_fit_and_leaves_the_random_state():
    """The projector is the one fit trains on a TensorLoader of the pairs (the same seed)."""
    h1, h2 = views(seed=1)
    before = torch.random.get_rng_state()
    st = barlow_stats(h1, h2, 5e-3, seed=3, **KW)
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.manual_seed(3)
    bt = BarlowTwins(FeatureTower(12, hidden_dim=None), projection_dim=16, hidden_dim=32, lambd=5e-3)
    hist = fit(bt, TensorLoader(h1, h2, batch_size=128, seed=3), steps=40, lr=5e-3, progress=False)
    bt.eval()
    with torch.no_grad():
        z1 = bt.projector(h1)
    assert torch.allclose(st["z1"], z1, atol=1e-6)
    assert np.allclose(st["train_loss"], hist["loss"])
    again, other = barlow_stats(h1, h2, 5e-3, seed=3, **KW), barlow_stats(h1, h2, 5e-3, seed=4, **KW)
    assert torch.equal(again["z1"], st["z1"]) and not torch.allclose(other["z1"], st["z1"])


def test_the_redundancy_term_decorrelates():
    """lambda = 0 leaves copies (large off-diagonal, low rank); the redundancy term spreads z."""
    sweep = barlow_sweep(*views(f=24), (0.0, 0.1), **(KW | {"steps": 80}))
    copies, spread = sweep[0.0], sweep[0.1]
    assert copies["offdiag_abs_mean"] > 2 * spread["offdiag_abs_mean"]
    assert copies["rank"] < 0.8 * spread["rank"]
    assert copies["diag_mean"] > spread["diag_mean"]                    # the diagonal pays for it


def test_plot_and_explorer():
    sweep = barlow_sweep(*views(), (0.0, 5e-3), **(KW | {"steps": 5}))
    fig = plot_barlow_stats(sweep[5e-3], sweep)
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_xlabel() and ax.get_title()]
    assert len(axes) == 3 and all(ax.get_ylabel() for ax in axes)
    assert isinstance(plot_barlow_stats(sweep[0.0]), Figure)            # without a sweep
    box = lambda_explorer(sweep, lambd=5e-3)
    slider, readout = box.children[0], box.children[1]
    assert readout.value.startswith("lambda = 5e-3 | mean diagonal of C = ")
    slider.value = 0.0
    assert readout.value.startswith("lambda = 0 |")
    assert f"effective rank of z = {sweep[0.0]['rank']:.1f} of D = 16" in readout.value


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"h2": torch.zeros(512, 5)}, ValueError, "h1"),
    ({"h1": torch.full((512, 12), float("nan"))}, ValueError, "h1"),
    ({"lambd": -1e-3}, ValueError, "lambd"),
    ({"steps": 0}, ValueError, "steps"),
    ({"projection_dim": 8.0}, TypeError, "projection_dim"),
    ({"batch_size": 1000}, ValueError, "batch_size"),
    ({"lr": 0.0}, ValueError, "lr"),
])
def test_barlow_stats_bad_input(kwargs, error, match):
    h1, h2 = views()
    args = {"h1": h1, "h2": h2, "lambd": 5e-3, **KW} | kwargs
    with pytest.raises(error, match=match):
        barlow_stats(**args)


def test_sweep_and_explorer_bad_input():
    with pytest.raises(ValueError, match="lambdas"):
        barlow_sweep(*views(), ())
    with pytest.raises(ValueError, match="sweep"):
        lambda_explorer({})
    sweep = barlow_sweep(*views(), (0.0,), **(KW | {"steps": 2}))
    with pytest.raises(ValueError, match="lambd"):
        lambda_explorer(sweep, lambd=5e-3)
