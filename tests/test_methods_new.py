"""MoCo v3 and DeepCluster (issue 13, items 3 and 5).

MoCoV3: the loss and gradients are those of a transcription of the authors' ``moco/builder.py``
forward (float64), each term scaled by 2T, no gradient through the keys (even when the momentum
encoder's parameters would take one), the momentum encoder moves only in ``after_step``, by the
EMA with the cosine schedule, and ``fit`` lowers the loss with SmallCNN and TinyViT (also with the
frozen patch projection). DeepCluster: the k-means is the authors' (PCA-whitening, L2, Faiss, same
labels), a seeded partition with no empty cluster (also a forced one), the classifier is
re-initialised in place at a reassignment, the pseudo-label accuracy rises on Fashion-MNIST.
With 2 gloo processes both give the single-process loss, gradients and state.
"""
from __future__ import annotations

import math
import os
import socket
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from cl_teach import distributed
from cl_teach.augment import Augment
from cl_teach.data import ViewLoader, load_fashion_mnist
from cl_teach.losses import info_nce
from cl_teach.methods import DeepCluster, MoCoV3
from cl_teach.methods.deepcluster import cluster, split_empty
from cl_teach.models import SmallCNN, TinyViT

SMALL = dict(projection_dim=8, hidden_dim=16, predictor_dim=16)


def fit(*args, **kw):
    """``cl_teach.train.fit``, imported on first use: the 2 spawned processes, which import this
    module, then skip SciPy (cl_teach.train -> metrics -> intervals), ~2 s each."""
    from cl_teach.train import fit
    return fit(*args, **kw)


def _images(n, size=28, seed=1, k=2):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(n, 1, size, size, generator=g) for _ in range(k))


@pytest.fixture(scope="module")
def fashion():
    return load_fashion_mnist("test").subset(1024, seed=0).x


def _moco(vit=False, **kw):
    enc = TinyViT(dim=16, depth=1) if vit else SmallCNN(widths=(4, 8))
    m = MoCoV3(enc, **{**SMALL, **kw}).double().train()
    with torch.no_grad():                                           # keys from a different network
        for p in [*m.momentum_encoder.parameters(), *m.momentum_projector.parameters()]:
            p.add_(0.05 * torch.randn_like(p))
    return m


def _builder_forward(m, x1, x2):
    """facebookresearch/moco-v3 ``moco/builder.py`` ``MoCo.forward`` on one process (rank 0)."""
    def contrastive_loss(q, k):
        q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
        logits = torch.einsum("nc,mc->nm", [q, k]) / m.temperature
        labels = torch.arange(logits.shape[0], dtype=torch.long) + logits.shape[0] * 0
        return torch.nn.CrossEntropyLoss()(logits, labels) * (2 * m.temperature)
    q1 = m.predictor(m.projector(m.encoder(x1)))                    # base_encoder = f + its head
    q2 = m.predictor(m.projector(m.encoder(x2)))
    with torch.no_grad():
        k1 = m.momentum_projector(m.momentum_encoder(x1))
        k2 = m.momentum_projector(m.momentum_encoder(x2))
    return contrastive_loss(q1, k2) + contrastive_loss(q2, k1)


def _grads(m, loss):
    m.zero_grad()
    loss.backward()
    return {k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("vit", [False, True])
def test_moco_v3_loss_and_gradients_are_the_authors_builder(vit):
    m = _moco(vit)
    assert m.vit == vit
    x1, x2 = (x.double() for x in _images(8))
    ours, ref = m.training_step((x1, x2))["loss"], _builder_forward(m, x1, x2)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    g_ours, g_ref = _grads(m, ours), _grads(m, ref)
    assert g_ours.keys() == g_ref.keys() and not any("momentum" in k for k in g_ours)
    for k in g_ref:
        torch.testing.assert_close(g_ours[k], g_ref[k], rtol=1e-10, atol=1e-12, msg=k)


def test_moco_v3_heads_are_the_authors():
    vit, cnn = MoCoV3(TinyViT(), **SMALL), MoCoV3(SmallCNN(), **SMALL)
    assert len([m for m in vit.projector if isinstance(m, torch.nn.Linear)]) == 3
    assert len([m for m in cnn.projector if isinstance(m, torch.nn.Linear)]) == 2
    for head in (vit.projector, vit.predictor, cnn.projector):      # ... -> BN without affine
        assert isinstance(head[-1], torch.nn.BatchNorm1d) and not head[-1].affine
    assert isinstance(cnn.predictor[-1], torch.nn.Linear) and cnn.predictor[-1].bias is None
    assert all(lin.bias is None for h in (vit.projector, cnn.projector, cnn.predictor)
               for lin in h if isinstance(lin, torch.nn.Linear))


@pytest.mark.parametrize("t", [0.1, 0.2, 1.0])
def test_each_term_is_info_nce_times_2t(t):
    m = _moco(temperature=t)
    x1, x2 = (x.double() for x in _images(8))
    with torch.no_grad():
        q1, q2 = (m.predictor(m.projector(m.encoder(x))) for x in (x1, x2))
        k1, k2 = (m.momentum_projector(m.momentum_encoder(x)) for x in (x1, x2))
        loss = m.training_step((x1, x2))["loss"]
    torch.testing.assert_close(loss, 2 * t * (info_nce(q1, k2, t) + info_nce(q2, k1, t)), rtol=1e-12, atol=0)


def test_keys_carry_no_gradient_even_when_their_network_could_take_one():
    m = _moco()
    m.momentum_encoder.requires_grad_(True), m.momentum_projector.requires_grad_(True)
    out = m.training_step(tuple(x.double() for x in _images(8)))
    assert out["z2"].grad_fn is None and not out["z1"].requires_grad
    out["loss"].backward()
    assert all(p.grad is None for p in [*m.momentum_encoder.parameters(), *m.momentum_projector.parameters()])
    assert m.encoder.features[0].weight.grad is not None           # the queries keep theirs


def test_momentum_encoder_moves_only_in_after_step_by_the_cosine_ema():
    m = MoCoV3(SmallCNN(widths=(4, 8)), momentum=0.9, **SMALL)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    targets = [*m.momentum_encoder.parameters(), *m.momentum_projector.parameters()]
    online = [*m.encoder.parameters(), *m.projector.parameters()]
    for step in (0, 5, 10):
        tau = 1 - 0.1 * (math.cos(math.pi * step / 10) + 1) / 2      # 0.9, 0.95, 1: the paper's schedule
        before = [p.detach().clone() for p in targets]
        opt.zero_grad(), m.training_step(_images(8))["loss"].backward(), opt.step()
        assert all(torch.equal(b, p) for b, p in zip(before, targets)), "moved before after_step"
        m.after_step(step, 10)
        for b, p, o in zip(before, targets, online):
            torch.testing.assert_close(p, tau * b + (1 - tau) * o.detach(), rtol=0, atol=1e-6)
    assert not torch.equal(targets[0], online[0])


@pytest.mark.parametrize("make, first", [
    (lambda: SmallCNN(), lambda f: f.features[0].weight),
    (lambda: TinyViT(), lambda f: f.patch_embed.weight),
    (lambda: TinyViT(frozen_patch_embed=True), lambda f: f.blocks[0].self_attn.in_proj_weight),
], ids=["SmallCNN", "TinyViT", "TinyViT_frozen_patch_embed"])
def test_fit_lowers_the_loss_on_fashion_mnist_and_the_monitor_reads_the_first_layer(make, first, fashion):
    torch.manual_seed(0)
    m = MoCoV3(make())
    assert m.first_layer_grad_norm() == 0.0                         # before any backward
    patch = m.encoder.patch_embed.weight.detach().clone() if isinstance(m.encoder, TinyViT) else None
    h = fit(m, ViewLoader(fashion[:512], [Augment()] * 2, batch_size=128, seed=0), steps=16, progress=False)
    assert h["loss"][-4:].mean() < h["loss"][:4].mean() - 0.15, h["loss"]
    norm = m.first_layer_grad_norm()
    assert norm > 0 and norm == pytest.approx(float(first(m.encoder).grad.norm()))
    if patch is not None and m.encoder.frozen_patch_embed:         # the random patch projection
        assert torch.equal(m.encoder.patch_embed.weight, patch)
        torch.testing.assert_close(m.momentum_encoder.patch_embed.weight, patch, rtol=0, atol=1e-6)


def test_moco_v3_clear_errors():
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        MoCoV3(SmallCNN(), temperature=0.0)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\]"):
        MoCoV3(SmallCNN(), momentum=1.5)
    with pytest.raises(TypeError, match="predictor_dim must be an int"):
        MoCoV3(SmallCNN(), predictor_dim=8.0)
    with pytest.raises(ValueError, match="batch must be a tuple of at least 2 views"):
        MoCoV3(SmallCNN()).training_step(torch.rand(4, 1, 28, 28))


# --- DeepCluster ---------------------------------------------------------------------------------

def _blobs(n=300, d=16, k=6, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(k, d)) * 3)[rng.integers(0, k, n)] + rng.normal(size=(n, d))


def _authors_kmeans(features, k, dim, seed):
    """deepcluster ``clustering.py``: ``preprocess_features`` + ``run_kmeans`` (CPU index)."""
    import faiss
    npdata = features.astype("float32")
    mat = faiss.PCAMatrix(npdata.shape[1], dim, -0.5)              # eigen_power=-0.5
    mat.train(npdata)
    npdata = mat.apply_py(npdata)
    npdata = npdata / np.linalg.norm(npdata, axis=1)[:, np.newaxis]
    clus = faiss.Clustering(dim, k)
    clus.seed, clus.niter, clus.max_points_per_centroid = seed, 20, 10000000
    index = faiss.IndexFlatL2(dim)
    clus.train(npdata, index)
    return index.search(npdata, 1)[1][:, 0]


def test_kmeans_is_the_authors_and_a_seeded_partition():
    x = _blobs()
    labels = cluster(x, 10, dim=8, seed=3)
    assert labels.shape == (300,) and labels.dtype == np.int64 and labels.min() >= 0 and labels.max() < 10
    assert (np.bincount(labels, minlength=10) > 0).all()
    np.testing.assert_array_equal(labels, _authors_kmeans(x, 10, 8, seed=3))
    np.testing.assert_array_equal(labels, cluster(x, 10, dim=8, seed=3))      # same seed, same labels
    assert not np.array_equal(labels, cluster(x, 10, dim=8, seed=4))


def test_an_empty_cluster_takes_half_of_a_perturbed_donor():
    rng = np.random.default_rng(0)
    x, centroids = rng.normal(size=(60, 4)), rng.normal(size=(6, 4))
    labels = ((x[:, None] - centroids[None, :4]) ** 2).sum(-1).argmin(1)      # clusters 4, 5 empty
    fixed_c = centroids.copy()
    fixed = split_empty(x, fixed_c, labels, np.random.default_rng(0))
    assert (np.bincount(fixed, minlength=6) > 0).all() and set(np.unique(labels)) == {0, 1, 2, 3}
    moved = fixed != labels
    assert set(fixed[moved]) == {4, 5} and (fixed[~moved] == labels[~moved]).all()
    for c in (4, 5):                                                # nearer their new centroid
        rows = fixed == c
        donor = labels[rows][0]
        assert (labels[rows] == donor).all()
        d = ((x[rows][:, None] - fixed_c[[c, donor]][None]) ** 2).sum(-1)
        assert (d[:, 0] < d[:, 1]).all()
    same = split_empty(np.ones((6, 3)), np.ones((3, 3)), np.zeros(6, np.int64), np.random.default_rng(0))
    assert (np.bincount(same, minlength=3) > 0).all()               # identical points: halves


def test_duplicated_images_force_empty_clusters_that_get_fixed():
    x = _images(10, k=1)[0].repeat(2, 1, 1, 1)                      # 10 distinct images, twice each
    m = DeepCluster(SmallCNN(widths=(4, 8)), x, n_clusters=15, projection_dim=4)
    assert (torch.bincount(m.labels, minlength=15) > 0).all()
    assert m.class_weights.sum().item() > 15                        # balanced: M / (K |c|), not ones


def test_the_classifier_is_reinitialised_in_place_at_a_reassignment():
    x = _images(64, k=1)[0]
    m = DeepCluster(SmallCNN(widths=(4, 8)), x, n_clusters=5, projection_dim=8, reassign_every=3, seed=7)
    w, b = m.classifier.weight, m.classifier.bias
    fresh = torch.randn(w.shape, generator=torch.Generator().manual_seed(7 + 1)) / 100
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    batch = (Augment()(x[:16]), torch.arange(16))
    labels, init = m.labels.clone(), w.detach().clone()
    for step in range(3):
        opt.zero_grad(), m.training_step(batch)["loss"].backward(), opt.step()
        assert not torch.equal(w, init) and b.abs().sum() > 0       # trained
        reset = m.after_step(step, 10)
        if step < 2:                                                # not yet: nothing changes
            assert torch.equal(m.labels, labels) and int(m.reassignments) == 1 and reset is None
    assert [p is q for p, q in zip(reset, (w, b), strict=True)] == [True, True]   # fit clears their state
    assert m.classifier.weight is w and m.classifier.bias is b      # the optimiser's Parameters
    assert any(p is w for g in opt.param_groups for p in g["params"])
    torch.testing.assert_close(w.detach(), fresh, rtol=0, atol=0)  # N(0, 0.01^2), seeded seed + 1
    assert torch.count_nonzero(b) == 0 and int(m.reassignments) == 2
    m.after_step(5, 6)                                              # not after the last step
    assert int(m.reassignments) == 2
    m.balanced = False
    m.reassign()
    assert torch.equal(m.class_weights, torch.ones(5))


def test_pseudo_label_accuracy_rises_on_fashion_mnist(fashion):
    torch.manual_seed(0)
    m = DeepCluster(SmallCNN(), fashion, n_clusters=20, reassign_every=25)
    loader = ViewLoader(fashion, [Augment()], batch_size=128, seed=0, y=torch.arange(len(fashion)))
    h = fit(m, loader, steps=30, progress=False)
    acc = h["accuracy"]
    assert acc[20:25].mean() > acc[:5].mean() + 0.1, acc           # learns the clusters
    assert int(m.reassignments) == 2 and acc[25:].mean() < acc[20:25].mean()   # new clusters at 25


def test_deepcluster_clear_errors():
    x, f = _images(20, k=1)[0], SmallCNN(widths=(4, 8))
    with pytest.raises(ValueError, match=r"n_clusters must be in \[2, len\(features_from\) = 20\]"):
        DeepCluster(f, x, n_clusters=21, projection_dim=4)
    with pytest.raises(ValueError, match=r"projection_dim must be <= encoder.out_dim \(32\)"):
        DeepCluster(f, x, n_clusters=4, projection_dim=64)
    with pytest.raises(ValueError, match="features_from must be a 4-d tensor"):
        DeepCluster(f, x.flatten(1), n_clusters=4, projection_dim=4)
    with pytest.raises(ValueError, match="reassign_every must be a finite number > 0"):
        DeepCluster(f, x, n_clusters=4, projection_dim=4, reassign_every=0)
    m = DeepCluster(f, x, n_clusters=4, projection_dim=4)
    with pytest.raises(ValueError, match=r"batch must be a tuple \(x, idx\)"):
        m.training_step(x)
    with pytest.raises(TypeError, match="idx must hold integer class labels"):
        m.training_step((x[:4], torch.zeros(4)))
    with pytest.raises(ValueError, match=r"idx must hold rows of features_from, in \[0, 20\), got values in"):
        m.training_step((x[:4], torch.tensor([0, 1, 2, 20])))


# --- 2 gloo processes: the single-process numbers ---------------------------------------------

B, W = 8, 2


def _cases():
    x = _images(32, size=8, seed=5, k=1)[0]
    return {"MoCoV3": (lambda: MoCoV3(SmallCNN(widths=(4, 8)), **SMALL), lambda: _images(B, 8)),
            "DeepCluster": (lambda: DeepCluster(SmallCNN(widths=(4, 8)), x, n_clusters=4, projection_dim=4,
                                                reassign_every=1),
                            lambda: (_images(B, 8, seed=2, k=1)[0], torch.arange(B) * 3))}


def _one_step(method, step, batch):
    batch = tuple(t.double() if t.is_floating_point() else t for t in batch)
    out = step(batch)
    out["loss"].backward()
    method.after_step(0, 10)                                        # EMA; DeepCluster: reassign
    return {"loss": out["loss"].detach(), "buffers": {k: b.clone() for k, b in method.named_buffers()},
            "grads": {k: p.grad.clone() for k, p in method.named_parameters() if p.grad is not None},
            "params": {k: p.detach().clone() for k, p in method.named_parameters()}}


def _worker(rank, port, out_dir):
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=W, timeout=timedelta(seconds=60))
    results = {}
    for name, (make, batch) in _cases().items():
        torch.manual_seed(rank)                                     # DDP gives every rank rank 0's
        method = make().double().train()
        distributed.sync_batchnorm(method)
        n = B // W
        results[name] = _one_step(method, distributed.wrap(method, torch.device("cpu")),
                                  tuple(t[rank * n:(rank + 1) * n] for t in batch()))
    torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("ranks")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, (port, str(out)), nprocs=W)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(W)]


@pytest.mark.parametrize("name", ["MoCoV3", "DeepCluster"])
def test_two_processes_give_the_single_process_loss_gradients_and_state(name, two_processes):
    torch.manual_seed(0)
    make, batch = _cases()[name]
    method = make().double().train()
    ref = _one_step(method, method.training_step, batch())
    tol = dict(rtol=1e-9, atol=1e-9)
    losses = torch.stack([got[name]["loss"] for got in two_processes])
    if name == "MoCoV3":                                            # the global batch's loss on each
        for loss in losses:
            torch.testing.assert_close(loss, ref["loss"], **tol)
    else:                                                           # local rows: their mean is it
        torch.testing.assert_close(losses.mean(), ref["loss"], **tol)
    for got in (g[name] for g in two_processes):
        assert got["grads"].keys() == ref["grads"].keys()
        for kind in ("grads", "buffers", "params"):                 # BN statistics, labels, EMA, reset
            for k, v in ref[kind].items():
                torch.testing.assert_close(got[kind][k], v, **tol, msg=f"{kind} {k}")
