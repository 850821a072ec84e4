"""The pure numbers behind the explorers (the browser tests drive the widgets themselves)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cl_teach.losses import sinkhorn
from cl_teach.widgets import dino_teacher_stats, plot_dino_teacher_stats, plot_sinkhorn_stats, sinkhorn_stats


def cosine_scores(n=256, k=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = F.normalize(torch.randn(n, 16, generator=g), dim=1)
    c = F.normalize(torch.randn(k, 16, generator=g), dim=1)
    return z @ c.T


def test_sinkhorn_stats_equals_the_loss_function_and_balances():
    s = cosine_scores()
    for eps, n_iters in ((0.05, 0), (0.05, 3), (0.01, 10)):
        st = sinkhorn_stats(s, eps, n_iters)
        q = sinkhorn(s, n_iters=n_iters, epsilon=eps).double()
        assert torch.allclose(torch.from_numpy(st["mass"]), q.sum(0))
        assert math.isclose(st["mass"].sum(), 256, rel_tol=1e-5)     # each image's code sums to 1
        assert math.isclose(st["max_code"], q.max(1).values.mean().item(), rel_tol=1e-9)
        assert st["argmax_mass"].sum() == 256
    assert sinkhorn_stats(s, 0.05, 10)["imbalance"] < 1.05 < sinkhorn_stats(s, 0.05, 0)["imbalance"]
    assert sinkhorn_stats(s, 0.001, 10)["max_code"] > sinkhorn_stats(s, 0.5, 10)["max_code"]
    plot_sinkhorn_stats(sinkhorn_stats(s))                            # draws without error


@pytest.mark.parametrize("kwargs, match", [(dict(epsilon=0.0), "epsilon"),
                                           (dict(epsilon=float("nan")), "epsilon"),
                                           (dict(n_iters=-1), "n_iters")])
def test_sinkhorn_stats_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sinkhorn_stats(cosine_scores(), **kwargs)
    with pytest.raises(ValueError, match="scores"):
        sinkhorn_stats(torch.randn(5))


def test_dino_teacher_stats_matches_the_formula():
    g = torch.Generator().manual_seed(0)
    t, c = torch.randn(128, 32, generator=g), torch.randn(32, generator=g)
    st = dino_teacher_stats(t, c, 0.04, centering=True)
    p = torch.softmax((t.double() - c.double()) / 0.04, dim=1)
    assert math.isclose(st["entropy"], float(-(p * p.log()).sum(1).mean()), rel_tol=1e-9)
    pm = p.mean(0)
    assert math.isclose(st["batch_entropy"], float(-(pm * pm.log()).sum()), rel_tol=1e-9)
    assert 0 <= st["entropy"] <= st["batch_entropy"] <= st["log_k"] + 1e-12   # concavity of entropy
    off = dino_teacher_stats(t, c, 0.04, centering=False)
    zero = dino_teacher_stats(t, torch.zeros(32), 0.04, centering=True)
    assert off["entropy"] == zero["entropy"] and off["batch_entropy"] == zero["batch_entropy"]
    assert dino_teacher_stats(t, c, 100.0)["entropy"] > 0.999 * math.log(32)    # tau_t large: uniform
    assert dino_teacher_stats(t, c, 0.001)["entropy"] < 0.05                    # tau_t small: one-hot
    assert abs(st["profile"].sum() - 1) < 1e-9 and abs(st["usage"].sum() - 1) < 1e-9
    plot_dino_teacher_stats(st)


def test_dino_teacher_stats_bad_input():
    t = torch.randn(8, 4)
    with pytest.raises(ValueError, match=r"center must have K = 4"):
        dino_teacher_stats(t, torch.zeros(5))
    with pytest.raises(ValueError, match="teacher_temperature"):
        dino_teacher_stats(t, torch.zeros(4), 0.0)
    with pytest.raises(ValueError, match="teacher_out"):
        dino_teacher_stats(torch.full((8, 4), float("nan")), torch.zeros(4))
    with pytest.raises(ValueError, match="teacher_out"):
        dino_teacher_stats(torch.randn(8), torch.zeros(8))


def test_explorers_carry_a_static_fallback():
    """Displayed, an explorer adds a PNG of its figure and its readout as text for static viewers
    (GitHub, nbconvert, the course site), beside the widget view that JupyterLab and Voila draw."""
    import base64

    import ipywidgets as W

    from cl_teach.widgets import temperature_explorer
    from cl_teach.widgets._explorer import explorer

    data = temperature_explorer(temperature=0.2)._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG")
    assert "tau = 0.2" in data["text/plain"] and "VBox" not in data["text/plain"]
    # without a figure there is no picture, and the readout is still said in words
    bare = explorer([W.FloatSlider(value=1.0)], lambda v: v, describe=lambda v: f"<b>value</b> {v}",
                    html=True)._repr_mimebundle_()
    assert "image/png" not in bare and bare["text/plain"].endswith("value 1.0")


def test_false_negative_stats_match_a_real_loader():
    """E[rho] and P(>= 1) against an independent count: the label batches of the package's own
    shuffled loader over a balanced label set (the formula's law), and a broken share that counts
    the anchor as its own negative, which the interval must reject."""
    from cl_teach.data import TensorLoader
    from cl_teach.widgets import false_negative_stats
    c, n, m = 20, 64, 4000
    st = false_negative_stats(c, n, m)
    y = torch.arange(m) % c                                          # 200 images of each class
    batches = [b[0] for _ in range(4) for b in TensorLoader(y, batch_size=n, seed=1)][:240]
    n_c = [torch.bincount(b, minlength=c).double() for b in batches]           # (C,) per batch
    rho = np.array([float((k * (k - 1)).sum()) / (n * (n - 1)) for k in n_c])
    half = 1.96 * rho.std(ddof=1) / np.sqrt(len(rho))
    assert abs(rho.mean() - st["expected"]) < 4 * half                 # the loader's batches agree
    assert st["ci95"][0] - 3 * half < rho.mean() < st["ci95"][1] + 3 * half
    met = np.mean([(torch.bincount(b, minlength=c)[b] > 1).float().mean().item() for b in batches])
    assert abs(met - st["p_any"]) < 0.01, (met, st["p_any"])
    wrong = st["expected"] * (n - 1) / n + 1 / n                         # counts the anchor itself
    assert not st["ci95"][0] <= wrong <= st["ci95"][1]
    assert false_negative_stats(c, 4 * n, m)["expected"] == st["expected"]     # whatever N


@pytest.mark.parametrize("kwargs,match", [
    ({"n_classes": 0, "batch_size": 8}, "n_classes"), ({"n_classes": 10, "batch_size": 1}, "batch_size"),
    ({"n_classes": 10, "batch_size": 20_000}, "batch_size"),
    ({"n_classes": 7000, "batch_size": 8}, "n_classes"),
    ({"n_classes": 10, "batch_size": 8, "n_batches": 1}, "n_batches"),
    ({"n_classes": 2.5, "batch_size": 8}, "n_classes")])
def test_false_negative_stats_bad_input(kwargs, match):
    from cl_teach.widgets import false_negative_stats
    with pytest.raises((ValueError, TypeError), match=match):
        false_negative_stats(**kwargs)


def test_collapse_stats_against_the_metrics():
    """All directions kept is the embedding itself; k directions give a rank of at most about k; the
    std behind an affine-free BatchNorm stays healthy whatever k (the monitor's blind spot), while
    the plain std falls; noise lifts a rank-1 embedding's rank."""
    from cl_teach.metrics import effective_rank, feature_std
    from cl_teach.widgets import collapse_stats, plot_collapse_stats
    z = torch.randn(800, 32, generator=torch.Generator().manual_seed(3)) + 0.3
    full = collapse_stats(z, 32)
    assert math.isclose(full["rank"], effective_rank(z).item(), rel_tol=1e-4)
    assert math.isclose(full["std"], feature_std(z).item(), rel_tol=1e-4)
    for k in (1, 2, 8):
        st = collapse_stats(z, k)
        assert st["rank"] < k + 0.05 and st["std_after_bn"] > 0.9 / math.sqrt(32), (k, st["rank"])
        assert st["std"] < full["std"]
    assert collapse_stats(z, 1, 0.05)["rank"] > 1.5 > collapse_stats(z, 1)["rank"]
    plot_collapse_stats(collapse_stats(z, 3, 0.01))                   # draws without error


@pytest.mark.parametrize("args,match", [((0,), "keep"), ((33,), "keep"), ((2.0,), "keep"),
                                        ((2, -0.1), "noise")])
def test_collapse_stats_bad_input(args, match):
    from cl_teach.widgets import collapse_stats
    with pytest.raises((ValueError, TypeError), match=match):
        collapse_stats(torch.randn(50, 32), *args)
    with pytest.raises(ValueError, match="z"):
        collapse_stats(torch.randn(1, 32), 1)


def test_search_stats_against_brute_force():
    """Recall 1 with every cell probed and with a wide HNSW beam, below 1 with one cell; the
    scanned share is the visited lists' size; bad settings raise."""
    from cl_teach.retrieval import EmbeddingIndex, brute_force_search
    from cl_teach.widgets import plot_search_stats, search_stats
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    q = np.arange(0, 3000, 30)
    _, ids = brute_force_search(x, x[q], k=11)
    exact = np.array([[j for j in row if j != i][:10] for row, i in zip(ids.tolist(), q.tolist())])
    ivf = EmbeddingIndex(kind="ivf", nlist=20).fit(x)
    assert search_stats(ivf, x, q, exact, 20)["recall"] == 1.0
    one = search_stats(ivf, x, q, exact, 1)
    assert one["recall"] < 0.9 and 0 < one["scanned"] < 0.2
    hnsw = EmbeddingIndex(kind="hnsw", m=16).fit(x)
    assert search_stats(hnsw, x, q, exact, 256)["recall"] > 0.98
    plot_search_stats(one)                                            # draws without error
    with pytest.raises(ValueError, match="nprobe"):
        search_stats(ivf, x, q, exact, 21)
    with pytest.raises(ValueError, match="ef_search"):
        search_stats(hnsw, x, q, exact, 5)
    with pytest.raises(ValueError, match="kind"):
        search_stats(EmbeddingIndex().fit(x), x, q, exact, 4)
    with pytest.raises(ValueError, match="exact_ids"):
        search_stats(ivf, x, q, exact[:, :5], 4)


def test_hubness_stats_against_csls_and_bad_input():
    """Penalty 0 is cosine's k-occurrence, 0.5 is CSLS's (csls_search, an independent ranking),
    hubs built into the data lose queries as the penalty grows; bad input raises."""
    from cl_teach.retrieval import brute_force_search, csls_search
    from cl_teach.widgets import hubness_stats, plot_hubness_stats
    rng = np.random.default_rng(2)
    m = rng.standard_normal(32)
    c = rng.standard_normal((120, 32)) + rng.uniform(0, 1.5, (120, 1)) * m
    q, pool = (rng.standard_normal((400, 32)) + m for _ in range(2))
    cos, csls = hubness_stats(c, q, pool, 0.0), hubness_stats(c, q, pool, 0.5)
    def occurrence(ids):
        return np.bincount(ids.ravel(), minlength=120)
    assert (cos["n_k"] == occurrence(brute_force_search(c, q, 10, normalize=True)[1])).all()
    assert (csls["n_k"] == occurrence(csls_search(c, q, 10, query_pool=pool)[1])).all()
    strong = hubness_stats(c, q, pool, 1.0)
    assert cos["skewness"] > csls["skewness"] > strong["skewness"] and cos["hub_share"] > strong["hub_share"]
    assert cos["n_k"].sum() == csls["n_k"].sum() == 400 * 10
    plot_hubness_stats(csls)                                          # draws without error
    with pytest.raises(ValueError, match="penalty"):
        hubness_stats(c, q, pool, -0.1)
    with pytest.raises(ValueError, match="neighbours"):
        hubness_stats(c, q, pool, 0.5, neighbours=401)
    with pytest.raises(ValueError, match="queries"):
        hubness_stats(c, q[:, :5], pool)


def test_circle_stats_closed_form_and_bad_input():
    """The uniform circle's uniformity against its Bessel closed form, and against a broken form
    (log I0 without the -2t) that a large sample must reject; clumping raises uniformity."""
    from scipy.special import i0

    from cl_teach.widgets import circle_stats, uniform_circle_uniformity
    for t in (0.5, 2.0, 5.0):
        assert math.isclose(uniform_circle_uniformity(t), -2 * t + math.log(i0(2 * t)), rel_tol=1e-9)
    big = circle_stats(0.0, 0.0, n=5000, seed=3)
    assert abs(big["uniformity"] - big["uniform_limit"]) < 0.02
    assert abs(big["uniformity"] - math.log(i0(4.0))) > 1                # the broken form is far
    assert circle_stats(20.0, 0.1)["uniformity"] > circle_stats(2.0, 0.1)["uniformity"]
    assert circle_stats(0.0, 1.0)["alignment"] > circle_stats(0.0, 0.1)["alignment"]
    for kwargs, match in (({"concentration": -1, "noise": 0.1}, "concentration"),
                          ({"concentration": 1, "noise": -0.1}, "noise"),
                          ({"concentration": 1, "noise": 0.1, "n": 1}, "n"),
                          ({"concentration": 1, "noise": 0.1, "t": 0}, "t")):
        with pytest.raises(ValueError, match=match):
            circle_stats(**kwargs)
