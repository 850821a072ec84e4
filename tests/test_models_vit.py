"""TinyViT: shapes, MoCo v3's fixed sin-cos positions and random patch projection, checks, methods."""
import math

import pytest
import torch

from cl_teach.methods import SimCLR
from cl_teach.models import TinyViT, count_parameters
from cl_teach.models.vit import sincos_2d


def images(n=8, c=1, s=28, seed=0):
    return torch.rand(n, c, s, s, generator=torch.Generator().manual_seed(seed))


def test_output_shape_and_out_dim():
    f = TinyViT()
    assert f(images()).shape == (8, f.out_dim) and f.out_dim == 48
    g = TinyViT(dim=64, out_dim=32)
    assert g(images()).shape == (8, 32) and g.out_dim == 32
    h = TinyViT(in_channels=3, image_size=32, patch_size=8, dim=32, heads=2, depth=1, pool="mean")
    assert h(images(c=3, s=32)).shape == (8, 32) and h.num_patches == 16


def test_16_patch_tokens_and_cls_for_28x28_patch_7():
    f = TinyViT(dim=64)
    assert f.num_patches == 16
    assert f.tokens(images()).shape == (8, 1 + 16, 64)
    assert f.pos_embed.shape == (1, 1 + 16, 64)


def test_pooling_reads_cls_or_the_mean_of_the_patches():
    torch.manual_seed(0); cls = TinyViT()
    torch.manual_seed(0); mean = TinyViT(pool="mean")
    t = cls.tokens(images())
    torch.testing.assert_close(cls(images()), t[:, 0])
    torch.testing.assert_close(mean(images()), t[:, 1:].mean(1))


def test_sincos_table_is_fixed_and_matches_the_formula():
    f = TinyViT(dim=64)
    pos = f.pos_embed
    assert not isinstance(pos, torch.nn.Parameter) and not pos.requires_grad
    assert all(p is not pos for p in f.parameters())
    assert "pos_embed" in dict(f.named_buffers())
    torch.testing.assert_close(pos, sincos_2d(4, 64))
    assert bool((pos[0, 0] == 0).all())                             # the [CLS] slot
    q = 64 // 4
    omega = [1 / 10000 ** (k / q) for k in range(q)]
    for r, c in [(0, 0), (1, 3), (3, 2)]:                           # token of patch (row r, column c)
        row = pos[0, 1 + 4 * r + c]
        want = ([math.sin(r * w) for w in omega] + [math.cos(r * w) for w in omega]
                + [math.sin(c * w) for w in omega] + [math.cos(c * w) for w in omega])
        torch.testing.assert_close(row, torch.tensor(want))
    d = torch.cdist(pos[0], pos[0])                                 # every position distinct
    assert float(d[~torch.eye(17, dtype=torch.bool)].min()) > 0.1


def test_sincos_table_survives_a_training_step_and_positions_matter():
    torch.manual_seed(0); f = TinyViT()
    before = f.pos_embed.clone()
    opt = torch.optim.AdamW(f.parameters(), lr=1e-2)
    f(images()).square().sum().backward(); opt.step()
    assert torch.equal(f.pos_embed, before)
    x = images()                                                    # swap two patches: h changes
    y = x.clone(); y[:, :, :7, :7], y[:, :, :7, 7:14] = x[:, :, :7, 7:14], x[:, :, :7, :7]
    f.eval()
    assert not torch.allclose(f(x), f(y), atol=1e-4)


def test_sincos_needs_dim_divisible_by_4():
    with pytest.raises(ValueError, match="dim must be divisible by 4"):
        sincos_2d(4, 6)


def test_frozen_patch_embed_gets_no_gradient_and_keeps_its_init():
    torch.manual_seed(0); f = TinyViT(frozen_patch_embed=True)
    w0, b0 = f.patch_embed.weight.clone(), f.patch_embed.bias.clone()
    rest0 = {n: p.clone() for n, p in f.named_parameters() if not n.startswith("patch_embed")}
    opt = torch.optim.AdamW(f.parameters(), lr=1e-2, weight_decay=0.1)
    f(images()).square().sum().backward()
    assert f.patch_embed.weight.grad is None and f.patch_embed.bias.grad is None
    opt.step()
    assert torch.equal(f.patch_embed.weight, w0) and torch.equal(f.patch_embed.bias, b0)
    changed = [n for n, p in f.named_parameters() if n in rest0 and not torch.equal(p, rest0[n])]
    assert set(changed) == set(rest0)                               # everything else trained
    assert count_parameters(f) == count_parameters(TinyViT())       # frozen, still a parameter


def test_patch_embed_trains_when_not_frozen():
    torch.manual_seed(0); f = TinyViT()
    assert f.patch_embed.weight.requires_grad
    f(images()).square().sum().backward()
    assert f.patch_embed.weight.grad is not None and float(f.patch_embed.weight.grad.abs().sum()) > 0


def test_moco_v3_initialisation():
    torch.manual_seed(0); f = TinyViT(dim=64, depth=2).requires_grad_(False)
    bound = math.sqrt(6 / (7 * 7 + 64))
    assert float(f.patch_embed.weight.abs().max()) <= bound and bool((f.patch_embed.bias == 0).all())
    assert float(f.cls_token.abs().max()) < 1e-4
    b0, b1 = f.blocks
    assert float(b0.self_attn.in_proj_weight.abs().max()) <= math.sqrt(3 / 64)
    assert bool((b0.self_attn.in_proj_bias == 0).all()) and bool((b0.linear1.bias == 0).all())
    assert not torch.equal(b0.linear1.weight, b1.linear1.weight)    # blocks initialised apart


def test_seeded_construction_is_deterministic():
    torch.manual_seed(3); a = TinyViT()
    torch.manual_seed(3); b = TinyViT()
    torch.manual_seed(4); c = TinyViT()
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_forward_is_deterministic_with_no_dropout_by_default():
    torch.manual_seed(0); f = TinyViT()
    x = images()
    assert torch.equal(f(x), f(x))                                  # training mode: dropout 0
    train_out = f(x)
    f.eval()
    with torch.no_grad():                                           # PyTorch's fused eval path
        assert torch.equal(f(x), f(x))
        torch.testing.assert_close(f(x), train_out, atol=1e-5, rtol=1e-4)
    torch.manual_seed(0); g = TinyViT(dropout=0.5)
    assert not torch.equal(g(x), g(x))                              # the argument reaches the blocks


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"image_size": 30}, ValueError, "image_size must be divisible by patch_size"),
    ({"dim": 50, "heads": 4}, ValueError, "dim must be divisible by heads"),
    ({"dim": 42, "heads": 3}, ValueError, "and by 4"),
    ({"depth": 0}, ValueError, "depth must be a finite number > 0"),
    ({"heads": 0}, ValueError, "heads must be"),
    ({"patch_size": 0}, ValueError, "patch_size must be"),
    ({"dim": 48.0}, TypeError, "dim must be an int"),
    ({"in_channels": True}, TypeError, "in_channels must be an int"),
    ({"mlp_ratio": 0}, ValueError, "mlp_ratio must be"),
    ({"mlp_ratio": 0.001}, ValueError, "mlp_ratio must give an MLP width"),
    ({"out_dim": 0}, ValueError, "out_dim must be"),
    ({"dropout": 1.0}, ValueError, r"dropout must be in \[0, 1\)"),
    ({"pool": "max"}, ValueError, "pool must be 'cls' or 'mean'"),
])
def test_bad_config_names_the_argument(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        TinyViT(**kwargs)


@pytest.mark.parametrize("x, exc, match", [
    (torch.rand(8, 28, 28), ValueError, "x must be a 4-d tensor"),
    (torch.rand(8, 3, 28, 28), ValueError, r"x must have shape \(N, 1, 28, 28\)"),
    (torch.rand(8, 1, 32, 32), ValueError, r"x must have shape \(N, 1, 28, 28\)"),
    (torch.rand(0, 1, 28, 28), ValueError, "x must be non-empty"),
    (torch.zeros(8, 1, 28, 28, dtype=torch.long), TypeError, "x must have a floating dtype"),
    ([[0.0]], TypeError, "x must be a torch.Tensor"),
])
def test_bad_input_names_x(x, exc, match):
    with pytest.raises(exc, match=match):
        TinyViT()(x)


def test_simclr_trains_a_tinyvit_without_changes():
    torch.manual_seed(0)
    m = SimCLR(TinyViT(), projection_dim=32)
    out = m.training_step((images(seed=1), images(seed=2)))
    assert out["z1"].shape == (8, 32) and torch.isfinite(out["loss"])
    out["loss"].backward()
    grads = [p.grad for p in m.encoder.parameters()]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    assert m(images()).shape == (8, 48)
