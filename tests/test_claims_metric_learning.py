"""The checks that notebook 02 (contrastive learning as metric learning) asserts can fail.

Each test rebuilds one kind of claim of the notebook on small synthetic data and shows that a
broken variant fails it: the cosine-vs-dot-product kNN verdict when lengths carry no nuisance,
the "Euclidean on unit vectors = cosine" agreement without the normalisation, the identity
||a - b||^2 = 2 - 2 cos off the sphere, the paired kNN verdicts on a difference within the noise,
and the batch-hard collapse check on runs trained without the hardest negatives (80 steps on real
Fashion-MNIST images: batch-hard's z collapses there, not on synthetic blobs). The checks are
copied from the notebook's cells (tests never import notebooks/src).
"""
import pytest
import torch
import torch.nn.functional as F

from cl_teach.augment import Augment
from cl_teach.data import ViewLoader, load_fashion_mnist
from cl_teach.losses import batch_triplet_loss, triplet_loss
from cl_teach.methods import Method
from cl_teach.metrics import effective_rank, paired_difference
from cl_teach.models import SmallCNN, embed, projector
from cl_teach.train import fit

RANK_RATIO = 2.0        # notebook 02: batch-hard's rank at least this many times below the others'


def knn_vote(bank, bank_y, queries, similarity, k=20):
    """Notebook 02's kNN with a chosen similarity (a majority vote of the k most similar)."""
    idx = similarity(queries, bank).topk(k, dim=1).indices
    return torch.mode(bank_y[idx], dim=1).values


DOT = lambda q, b: q @ b.T                                                          # noqa: E731
COSINE = lambda q, b: F.normalize(q, dim=1) @ F.normalize(b, dim=1).T               # noqa: E731
EUCLID = lambda q, b: -torch.cdist(q, b)                                            # noqa: E731
EUCLID_UNIT = lambda q, b: -torch.cdist(F.normalize(q, dim=1), F.normalize(b, dim=1))   # noqa: E731


def _clusters(n, classes=5, dim=16, seed=0, lengths=True):
    """Labelled points around class directions that share a common part (as images share their
    positive pixels). With ``lengths`` each is scaled by a heavy-tailed random length (a nuisance,
    like the amount of ink of an image); without, they are unit vectors."""
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(2.0 + torch.randn(classes, dim, generator=torch.Generator().manual_seed(99)), dim=1)
    y = torch.randint(0, classes, (n,), generator=g)
    x = centres[y] + 0.7 * torch.randn(n, dim, generator=g) / dim ** 0.5
    return (x * torch.exp(1.5 * torch.randn(n, 1, generator=g)) if lengths else F.normalize(x, dim=1)), y


def _hits(similarity, lengths):
    xb, yb = _clusters(1000, seed=0, lengths=lengths)
    xq, yq = _clusters(1000, seed=1, lengths=lengths)
    return (knn_vote(xb, yb, xq, similarity) == yq).float()


def test_cosine_beats_dot_product_only_when_lengths_are_a_nuisance():
    d = paired_difference(_hits(COSINE, lengths=True), _hits(DOT, lengths=True))
    assert d.low > 0 and d.verdict("cosine", "the dot product") == "cosine beats the dot product"
    # unit vectors: the dot product IS the cosine, the verdict must not be "beats"
    same = paired_difference(_hits(COSINE, lengths=False), _hits(DOT, lengths=False))
    assert not same.low > 0 and same.verdict("cosine", "the dot product").startswith("no reliable")


def test_unit_euclidean_agrees_with_cosine_and_plain_euclidean_does_not():
    xb, yb = _clusters(1000, seed=0)
    xq, _ = _clusters(500, seed=1)
    cos = knn_vote(xb, yb, xq, COSINE)
    assert (cos == knn_vote(xb, yb, xq, EUCLID_UNIT)).float().mean() > 0.99
    # without the normalisation the check fails: lengths decide the Euclidean neighbours
    assert not (cos == knn_vote(xb, yb, xq, EUCLID)).float().mean() > 0.99


def test_identity_fails_off_the_sphere():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 100, 8, generator=g)
    cos = F.cosine_similarity(a, b, dim=1)
    ua, ub = F.normalize(a, dim=1), F.normalize(b, dim=1)
    assert torch.allclose((ua - ub).pow(2).sum(1), 2 - 2 * cos, atol=1e-5)
    assert not torch.allclose((a - b).pow(2).sum(1), 2 - 2 * cos, atol=1e-1)


def test_paired_knn_claim_is_not_asserted_within_the_noise():
    """The notebook's "A beats B" asserts: an equal model with other mistakes, or a gain of 0.1
    points, fails them; a 2-point gain on 5,000 test images passes."""
    g = torch.Generator().manual_seed(0)
    b = (torch.rand(5000, generator=g) < 0.81).float()
    right, wrong = b.nonzero().squeeze(1), (1 - b).nonzero().squeeze(1)
    swapped = b.clone()
    swapped[right[:60]], swapped[wrong[:60]] = 0.0, 1.0                      # same accuracy
    assert not paired_difference(swapped, b).low > 0
    tiny = swapped.clone()
    tiny[wrong[60:65]] = 1.0                                                 # +0.1 points, mixed changes
    assert not paired_difference(tiny, b).low > 0
    better = b.clone()
    better[wrong[:100]] = 1.0                                                # +2 points
    assert paired_difference(better, b).low > 0
    assert not paired_difference(b, better).low > 0                          # and not the other way


def test_a_collapsed_embedding_pays_exactly_the_margin():
    """The notebook reads batch-hard's loss stalling at the margin as collapse: with every
    distance equal, each triplet costs m, whatever the mining."""
    y = torch.arange(32) % 4
    z = torch.ones(32, 8) / 8 ** 0.5
    for mining in ("hard", "semi-hard", "all"):
        assert batch_triplet_loss(z, y, 0.2, mining).item() == pytest.approx(0.2, abs=1e-3)
    spread = F.normalize(torch.eye(4)[y] + 0.01 * torch.randn(32, 4), dim=1)     # classes apart
    assert batch_triplet_loss(spread, y, 0.2, "hard").item() == 0.0


class _MetricLearning(Method):
    """Notebook 02's MetricLearning: f, g, and a loss of the two views' unit z and the labels."""

    def __init__(self, loss):
        super().__init__(SmallCNN())
        self.projector = projector(self.encoder.out_dim, 256, 64)
        self.loss = loss

    def training_step(self, batch):
        x1, x2, y = batch
        z = torch.cat([self.projector(self.encoder(x1)), self.projector(self.encoder(x2))])
        return {"loss": self.loss(F.normalize(z, dim=1), torch.cat([y, y]))}


SAMPLER = torch.Generator().manual_seed(0)


def _random_triplets(z, y):
    same = y[:, None] == y[None]
    p = torch.multinomial((same & ~torch.eye(len(y), dtype=torch.bool)).float(), 1, generator=SAMPLER)[:, 0]
    n = torch.multinomial((~same).float(), 1, generator=SAMPLER)[:, 0]
    return triplet_loss(z, z[p], z[n], 0.2)


LOSSES = {"batch-hard": lambda z, y: batch_triplet_loss(z, y, 0.2, "hard"),
          "semi-hard": lambda z, y: batch_triplet_loss(z, y, 0.2, "semi-hard"),
          "random": _random_triplets}


@pytest.fixture(scope="module")
def ranks():
    """Effective rank of z after 80 steps of each triplet run, as in the notebook (real images, two
    augmented views of 64 images per batch, margin 0.2 on unit vectors)."""
    train = load_fashion_mnist("train").subset(2048, seed=0)
    out = {}
    for name, loss in LOSSES.items():
        torch.manual_seed(0)
        m = _MetricLearning(loss)
        fit(m, ViewLoader(train.x, [Augment()] * 2, batch_size=64, seed=2, y=train.y), steps=80, lr=5e-3,
            progress=False)
        out[name] = effective_rank(embed(torch.nn.Sequential(m.encoder, m.projector), train.x[:512])).item()
    return out


def collapsed(rank, name):
    """Notebook 02's check: this run's rank is RANK_RATIO times below every other run's."""
    return rank[name] * RANK_RATIO < min(r for other, r in rank.items() if other != name)


def test_collapse_check_flags_batch_hard(ranks):
    assert collapsed(ranks, "batch-hard"), ranks


@pytest.mark.parametrize("broken", ["semi-hard", "random"])
def test_collapse_check_fails_for_a_run_without_the_hardest_negatives(ranks, broken):
    """The broken variant: the batch-hard run trained without its hard mining is not flagged."""
    assert not collapsed(ranks, broken), ranks


def test_random_partners_are_valid_triplets():
    """The notebook's random triplets: the positive shares the label and is another item, the
    negative has another label."""
    y = torch.arange(64) % 7
    same = y[:, None] == y[None]
    g = torch.Generator().manual_seed(0)
    p = torch.multinomial((same & ~torch.eye(64, dtype=torch.bool)).float(), 1, generator=g)[:, 0]
    n = torch.multinomial((~same).float(), 1, generator=g)[:, 0]
    assert (y[p] == y).all() and (p != torch.arange(64)).all() and (y[n] != y).all()
