"""The checks that notebook 15 (CLIP) asserts can fail.

Each test rebuilds one kind of check on small data and shows a broken variant fails it: the
expected loss of unrelated embeddings (log N only as tau grows; the old "random ~ log N" print at
tau = 0.07 fails), the caption templates of the prompt ensemble (one open slot each, every
combination of the other attributes, the class word gone; a builder that never opens the slot,
or keeps one combination, is caught), the emoji keyword labels (exactly one class word, matched
as a word), the linear-probe claim (fails on embeddings without the attribute), and the
ensemble-beats-one-prompt claim (fails when the two prompt sets are the same). The functions are
copied from the notebook's cells (tests never import notebooks/src).
"""
import math
import re

import torch
import torch.nn.functional as F

from cl_teach import losses
from cl_teach.data.shapes import SHAPE_ATTRIBUTES, shape_caption
from cl_teach.metrics import LinearProbe, paired_difference

ATTRS = ("colour", "shape", "position", "size")


def caption_templates(attr):
    open_name = SHAPE_ATTRIBUTES[attr]["en"][0]
    others = [k for k in ATTRS if k != attr]
    combos = torch.cartesian_prod(*[torch.arange(len(SHAPE_ATTRIBUTES[k]["en"])) for k in others])
    caps = {shape_caption(**{attr: 0, **dict(zip(others, c.tolist(), strict=True))}) for c in combos}
    return tuple(sorted(re.sub(rf"\b{open_name}\b", "{}", c) for c in caps))


CLASSES = ["face", "button", "person", "heart", "arrow", "hand", "moon", "cat"]


def keyword_labels(names, as_word=True):
    found = (lambda w, n: w in n.lower().split()) if as_word else (lambda w, n: w in n.lower())
    hits = [[c for c, w in enumerate(CLASSES) if found(w, name)] for name in names]
    return torch.tensor([h[0] if len(h) == 1 else -1 for h in hits])


def random_loss(t, n=16, d=8, draws=500, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(draws, 2, n, d, generator=g)
    return torch.stack([losses.clip_loss(a, b, t) for a, b in x])


def test_random_loss_is_log_n_only_at_a_large_temperature():
    at_007, at_100 = random_loss(0.07), random_loss(100.0)
    assert abs(at_100.mean() - math.log(16)) < 1e-3 < at_007.mean() - math.log(16)   # the notebook's
    # broken variant: the old print's claim "random embeddings ~ log N" at tau = 0.07 is far off
    assert not abs(at_007.mean() - math.log(16)) < 0.5


def templates_ok(t, attr):
    """One open slot each, every combination of the other attributes, the class word gone."""
    sizes = {k: len(v["en"]) for k, v in SHAPE_ATTRIBUTES.items()}
    name = SHAPE_ATTRIBUTES[attr]["en"][0]
    return (len(set(t)) == math.prod(n for k, n in sizes.items() if k != attr)
            and all(x.count("{}") == 1 for x in t) and not any(re.search(rf"\b{name}\b", x) for x in t))


def test_caption_templates_cover_every_combination_and_open_one_slot():
    for attr in ATTRS:
        assert templates_ok(caption_templates(attr), attr)
    assert "a small red {} at the top left" in caption_templates("shape")
    assert "a small {} circle in the center" in caption_templates("colour")
    # broken variants: the slot never opened; one combination of the others only
    kept = tuple(t.replace("{}", "circle") for t in caption_templates("shape"))
    assert not templates_ok(kept, "shape")
    assert not templates_ok(caption_templates("shape")[:1], "shape")


def test_keyword_labels_take_exactly_one_class_word():
    names = ["grinning face", "cat face", "red heart", "raised hand", "handbag", "crescent moon", "hands"]
    assert keyword_labels(names).tolist() == [0, -1, 3, 5, -1, 6, -1]
    # broken variant: substring matching labels "handbag" and "hands" as hands
    assert keyword_labels(names, as_word=False).tolist() != keyword_labels(names).tolist()


def test_linear_probe_claim_fails_without_the_attribute():
    g = torch.Generator().manual_seed(0)
    y_tr, y_te = torch.randint(0, 4, (600,), generator=g), torch.randint(0, 4, (300,), generator=g)
    centres = torch.randn(4, 16, generator=g)
    encode = lambda y: F.normalize(centres[y] + 0.5 * torch.randn(len(y), 16, generator=g), dim=1)   # noqa: E731
    probe = LinearProbe().fit(encode(y_tr), y_tr)
    correct = (probe.predict(encode(y_te)) == y_te).float()
    d = paired_difference(correct, torch.full_like(correct, 0.25), seed=0)
    assert d.low > 0.3, d                            # the notebook's claim on an embedding with shape
    blind = F.normalize(torch.randn(600, 16, generator=g), dim=1)   # broken: shape not encoded
    probe = LinearProbe().fit(blind, y_tr)
    correct = (probe.predict(F.normalize(torch.randn(300, 16, generator=g), dim=1)) == y_te).float()
    assert not paired_difference(correct, torch.full_like(correct, 0.25), seed=0).low > 0.3


def test_ensemble_claim_fails_when_the_prompts_are_the_same():
    g = torch.Generator().manual_seed(1)
    one_word = (torch.rand(500, generator=g) < 0.3).float()
    ensemble = torch.where(torch.rand(500, generator=g) < 0.8, torch.ones(500), one_word)
    assert paired_difference(ensemble, one_word, seed=0).low > 0.2
    assert not paired_difference(one_word, one_word, seed=0).low > 0.2   # broken: the same prompts


def test_emoji_zero_shot_claim_fails_for_untrained_towers():
    g = torch.Generator().manual_seed(2)
    y = torch.tensor([0] * 31 + [1] * 16 + [2] * 7 + [3] * 8 + [4] * 12)   # unbalanced, like the emoji
    majority = (y == 0).float()
    good = torch.where(torch.rand(len(y), generator=g) < 0.7, y, torch.randint(0, 8, (len(y),), generator=g))
    uniform = torch.randint(0, 8, (len(y),), generator=g)                         # untrained: guessing
    # the notebook's assert: trained zero-shot beats the untrained towers
    assert paired_difference((good == y).float(), (uniform == y).float(), seed=0).low > 0
    # broken variant: the untrained towers against themselves
    assert not paired_difference((uniform == y).float(), (uniform == y).float(), seed=0).low > 0
    # the printed comparison: guessing does not beat the majority class (chance 1/8 sits below it)
    assert not paired_difference((uniform == y).float(), majority, seed=0).low > 0
    assert majority.mean() > 1 / 8
