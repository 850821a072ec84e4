"""The checks that notebooks 09 (BYOL, SimSiam) and 11 (Barlow Twins) assert can fail.

Each test builds a broken variant (a collapsed embedding, a frozen target, an untrained
predictor, an untrained encoder) and shows that the notebook's check rejects it, and where the
old check could not fail, that the old one accepts it. The checks are copied from the notebook
cells (tests never import notebooks/src).
"""
import math

import pytest
import torch

from cl_teach.augment import Augment
from cl_teach.data import ViewLoader
from cl_teach.evaluation import baselines, best_baseline, knn_and_probe
from cl_teach.methods import BYOL, BarlowTwins, SimSiam
from cl_teach.metrics import effective_rank, feature_std, recalibrate_batchnorm
from cl_teach.models import SmallCNN, embed
from cl_teach.train import fit

D = 64
RANK_MIN = 4.0          # notebook 09: eval-mode effective rank of z on held-out images


pytestmark = pytest.mark.usefixtures("one_thread")       # conftest.py; seed 0 comes from _seed


def _images(n, seed=0):
    """Image-like inputs: smooth random blobs, so an encoder sees varied, structured images."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 7, 7, generator=g)
    return torch.nn.functional.interpolate(x, size=28, mode="bilinear", align_corners=False)


def _z_eval(method, x):
    """Notebook 09's ``z_of``: z = g(f(x)) in eval mode."""
    return embed(torch.nn.Sequential(method.encoder, method.projector), x)


def _train_mode_std(method, x):
    """What the live monitor read in the old 07 check: std of normalised train-mode z."""
    method.train()
    with torch.no_grad():
        return feature_std(method.projector(method.encoder(x))).item()


def _collapse_to_copies(simsiam):
    """Dimensional collapse: every output dimension of the projector is the same feature (up to
    sign), the fixed point SimSiam without predictor and stop-gradient falls into."""
    last = simsiam.projector[-2]                  # the Linear before the affine-free BN
    assert isinstance(last, torch.nn.Linear) and isinstance(simsiam.projector[-1], torch.nn.BatchNorm1d)
    with torch.no_grad():
        sign = torch.where(torch.arange(last.out_features) % 2 == 0, 1.0, -1.0)[:, None]
        last.weight.copy_(sign * last.weight[:1])
    return simsiam


def test_simsiam_old_std_check_passes_a_collapsed_run_the_rank_check_fails_it():
    x = _images(512)
    collapsed = _collapse_to_copies(SimSiam(SmallCNN(), projection_dim=D))
    recalibrate_batchnorm(collapsed, x)
    # The old check (train-mode std > 0.05) cannot fail: the BN pins it at ~1/sqrt(D).
    assert _train_mode_std(collapsed, x) > 0.05
    assert _train_mode_std(collapsed, x) == pytest.approx(1 / math.sqrt(D), rel=0.05)
    # The notebook's check reads the eval-mode rank of z: a collapsed run fails it.
    assert effective_rank(_z_eval(collapsed, x)).item() < RANK_MIN
    # ... and a healthy (here: untrained) one passes it, so it does not always fail.
    healthy = recalibrate_batchnorm(SimSiam(SmallCNN(), projection_dim=D), x)
    assert effective_rank(_z_eval(healthy, x)).item() > RANK_MIN


def test_trained_collapse_without_tricks_fails_the_checks():
    """No predictor, no stop-gradient, no output BN: 07's collapsed control really collapses."""
    x = _images(1024)
    torch.manual_seed(0)
    m = SimSiam(SmallCNN(), projection_dim=D, predictor=False, stop_gradient=False, output_bn=False)
    h = fit(m, ViewLoader(x, [Augment()] * 2, batch_size=128, seed=0), steps=40, lr=5e-3, progress=False)
    assert h["loss"][-1] < -0.99
    assert feature_std(_z_eval(m, x)).item() < 0.1 / math.sqrt(D)
    assert effective_rank(_z_eval(m, x)).item() < RANK_MIN


def _lag(byol, theta_init):
    online = list(byol.encoder.parameters())
    dist = lambda a, b: sum((p - q).pow(2).sum() for p, q in zip(a, b)).sqrt().item()  # noqa: E731
    return dist(byol.target_encoder.parameters(), online) / dist(theta_init, online)


@pytest.mark.parametrize("broken", [False, True])
def test_byol_target_lag_check_fails_a_frozen_target(broken):
    """07's lag ratio ||xi - theta|| / ||theta_0 - theta|| (printed there): 1 for a target the EMA
    never moves, well below 1 for a working EMA (here a constant tau = 0.9 over 30 steps)."""
    x = _images(512)
    torch.manual_seed(0)
    byol = BYOL(SmallCNN(), projection_dim=D, momentum=0.9, schedule="constant")
    if broken:
        byol.after_step = lambda step, total_steps: None          # the EMA update is skipped
    theta_init = [p.detach().clone() for p in byol.encoder.parameters()]
    fit(byol, ViewLoader(x, [Augment()] * 2, batch_size=64, seed=0), steps=30, lr=5e-3, progress=False)
    lag = _lag(byol, theta_init)
    if broken:
        assert lag == pytest.approx(1.0) and not lag < 0.5
    else:
        assert lag < 0.5


def test_byol_constant_schedule_and_momentum_zero_copies():
    byol = BYOL(SmallCNN(), momentum=0.0, schedule="constant")
    with torch.no_grad():
        for p in byol.encoder.parameters():
            p.add_(1.0)
    byol.after_step(5, 10)
    assert all(torch.equal(a, b) for a, b in zip(byol.target_encoder.parameters(), byol.encoder.parameters()))
    cosine = BYOL(SmallCNN(), momentum=0.0)              # the default schedule rises to 1
    with torch.no_grad():
        for p in cosine.encoder.parameters():
            p.add_(1.0)
    cosine.after_step(9, 10)                              # tau close to 1 near the end
    assert not all(torch.equal(a, b) for a, b in zip(cosine.target_encoder.parameters(),
                                                       cosine.encoder.parameters()))
    with pytest.raises(ValueError, match="schedule"):
        BYOL(SmallCNN(), schedule="linear")


def _diagonal_share(W, U):
    A = W - W.diagonal().mean() * torch.eye(W.shape[0])
    M = U.T @ A @ U
    return (M.diagonal().pow(2).sum() / (M.pow(2).sum() + 1e-12)).item()


def _aligned(W, W_init, U, seed=0):
    """07's DirectPred criterion (printed there): diagonal share in F's eigenbasis > 5x that in a
    random basis and > 5x that of the initial W_p."""
    R, _ = torch.linalg.qr(torch.randn(D, D, generator=torch.Generator().manual_seed(seed)))
    share = _diagonal_share(W, U)
    return share > 5 * _diagonal_share(W, R) and share > 5 * _diagonal_share(W_init, U)


def test_directpred_alignment_check_rejects_unaligned_and_trivial_predictors():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2000, D, generator=g) * torch.linspace(0.1, 2.0, D)
    _, U = torch.linalg.eigh(z.T @ z / z.shape[0])
    W_init = torch.nn.Linear(D, D, bias=False).weight.detach()
    assert _aligned(U @ torch.diag(torch.linspace(0.2, 1.0, D)) @ U.T, W_init, U)   # aligned with F
    assert not _aligned(torch.nn.Linear(D, D, bias=False).weight.detach(), W_init, U)  # untrained
    assert not _aligned(0.7 * torch.eye(D), W_init, U)    # c I is diagonal in every basis


def test_beats_baseline_check_fails_for_the_untrained_encoder():
    """07/08: 'the linear probe beats the better baseline' rejects an encoder that learned nothing."""
    class Split:
        def __init__(self, x, y):
            self.x, self.y = x, y
    g = torch.Generator().manual_seed(0)
    x = _images(1500, seed=2)
    y = (x.flatten(1)[:, :392].mean(1) > x.flatten(1)[:, 392:].mean(1)).long() \
        + 2 * (torch.rand(1500, generator=g) > 0.5).long()
    train, test = Split(x[:1000], y[:1000]), Split(x[1000:], y[1000:])
    torch.manual_seed(0)
    base = baselines(SmallCNN, train, test)
    name, best = best_baseline(base, on="probe")
    torch.manual_seed(0)                                    # the same untrained encoder
    untrained = knn_and_probe(recalibrate_batchnorm(SmallCNN(), train.x), train, test)
    assert not untrained.compare(best, on="probe").low > 0


def test_barlow_diagonal_check_fails_for_an_untrained_network():
    """08: the mean diagonal of C must end > max(0.7, start + 0.3); an untrained net is far below."""
    x = _images(256)
    views = next(iter(ViewLoader(x, [Augment()] * 2, batch_size=256, seed=0)))
    bt = BarlowTwins(SmallCNN())
    with torch.no_grad():
        c = bt.training_step(views)["c"]
    assert c.diagonal().mean().item() < 0.7
