"""cl_teach.config.threads: a temporary thread count, and the claim that kNN does not depend on it."""
import pytest
import torch

import cl_teach
from cl_teach import metrics


def test_threads_restores_the_previous_count_even_on_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"), cl_teach.threads(2):
        assert torch.get_num_threads() == 2
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("n", [0, -2, 1.5, "2", True, None])
def test_threads_rejects_bad_counts(n):
    before = torch.get_num_threads()
    with pytest.raises(ValueError, match=r"n must be an int >= 1.*got"), cl_teach.threads(n):
        pass
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("n_bank, n_query, dim", [(6000, 1500, 1024), (5000, 700, 784), (3000, 333, 64)])
def test_knn_is_bitwise_the_same_on_one_and_two_threads(n_bank, n_query, dim):
    """Notebook 05 runs its kNN evaluation on two threads and training on one; its recorded numbers
    rely on the similarity matrix (and so the votes) being identical on any thread count."""
    g = torch.Generator().manual_seed(dim)
    bank, queries = torch.rand(n_bank, dim, generator=g), torch.rand(n_query, dim, generator=g)
    bank_y, query_y = (torch.randint(0, 10, (n_bank,), generator=g),
                       torch.randint(0, 10, (n_query,), generator=g))
    with cl_teach.threads(1):
        sim1 = queries @ bank.T
        acc1 = metrics.knn_accuracy(bank, bank_y, queries, query_y, k=20)
    with cl_teach.threads(2):
        sim2 = queries @ bank.T
        acc2 = metrics.knn_accuracy(bank, bank_y, queries, query_y, k=20)
    assert torch.equal(sim1, sim2)
    assert acc1 == acc2
