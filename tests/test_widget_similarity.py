"""Notebook 02's similarity explorer: the length power's ends against the dot product and the cosine."""
import pytest
import torch
import torch.nn.functional as F

from cl_teach.widgets import LengthPowerKNN, similarity_explorer


def data(seed=0):
    """Two classes that differ in direction; half of each class drawn 4x longer (ink)."""
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(2, 16, generator=g), dim=1)
    y = torch.arange(400) % 2
    x = centres[y] + 0.6 * torch.randn(400, 16, generator=g) / 4
    x = x * torch.where(torch.arange(400) % 4 < 2, 1.0, 4.0)[:, None]
    return x[:300], y[:300], x[300:], y[300:]


def test_the_ends_are_the_dot_product_and_the_cosine():
    bank, bank_y, q, q_y = data()
    knn = LengthPowerKNN(bank, bank_y, q, q_y)
    for power, sim in ((0.0, q @ bank.T), (1.0, F.normalize(q, dim=1) @ F.normalize(bank, dim=1).T)):
        reference = sim.double().topk(5, dim=1).indices
        assert torch.equal(knn.stats(power, k=5)["nearest"], reference)
    # a broken power (the query's length divided instead of the bank's) leaves the dot product's ranking
    broken = ((q @ bank.T).double() / q.double().norm(dim=1, keepdim=True)).topk(5, dim=1).indices
    assert not torch.equal(knn.stats(1.0, k=5)["nearest"], broken)
    assert torch.equal(knn.stats(0.0, k=5)["nearest"], broken)


def test_long_vectors_win_at_p0_and_lose_past_1():
    bank, bank_y, q, q_y = data(1)
    knn = LengthPowerKNN(bank, bank_y, q, q_y)
    norms = [knn.stats(p, k=10)["neighbour_norm"] for p in (0.0, 1.0, 2.0)]
    assert norms[0] > norms[1] > norms[2]
    assert knn.stats(1.0, 10)["vs_dot"].estimate == pytest.approx(
        knn.stats(1.0, 10)["accuracy"] - knn.stats(0.0, 10)["accuracy"])


def test_bad_input_names_the_argument():
    bank, bank_y, q, q_y = data()
    with pytest.raises(ValueError, match="same dimension"):
        LengthPowerKNN(bank, bank_y, q[:, :8], q_y)
    with pytest.raises(ValueError, match="bank_y"):
        LengthPowerKNN(bank, bank_y[:10], q, q_y)
    with pytest.raises(ValueError, match="all-zero"):
        LengthPowerKNN(torch.cat([bank[:-1], torch.zeros(1, 16)]), bank_y, q, q_y)
    knn = LengthPowerKNN(bank, bank_y, q, q_y)
    for kwargs, match in (({"power": -1}, "power"), ({"power": 1, "k": 0}, "k"), ({"power": "1"}, "power")):
        with pytest.raises(ValueError, match=match):
            knn.stats(**kwargs)


def test_explorer_builds_and_redraws():
    bank, bank_y, q, q_y = data()
    box = similarity_explorer(LengthPowerKNN(bank, bank_y, q, q_y))
    power, k = box.children[0].children
    first = box.children[1].value
    assert first.startswith("p = 1, k = 20 | kNN accuracy")
    power.value = 0.0
    assert box.children[1].value.startswith("p = 0, k = 20") and "+0.0 [+0.0, +0.0]" in box.children[1].value
    assert "image/png" in box._repr_mimebundle_()
