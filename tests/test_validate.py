"""The shared checks of cl_teach/_validate.py: cut-offs k, lists of views, token ids.

Each refusal is a ValueError (bad value) or TypeError (wrong type) naming the argument.
"""
import numpy as np
import pytest
import torch

from cl_teach._validate import check_k, check_ks, check_token_ids, check_view_list


@pytest.mark.parametrize("k", [1, 5, 10, np.int64(3), np.int32(10)])
def test_check_k_accepts_ints_and_numpy_integers(k):
    out = check_k("k", k, 10)
    assert out == int(k) and type(out) is int


@pytest.mark.parametrize("k", [2.0, True, False, "3", None, 2.5, np.float64(2.0)])
def test_check_k_type_error_names_the_argument_type_and_value(k):
    with pytest.raises(TypeError, match=r"top must be an int, got ") as info:
        check_k("top", k, 10)
    assert f"{type(k).__name__} {k!r}" in str(info.value)
    with pytest.raises(TypeError, match=r"k must be an int, got a tensor of shape \(\)"):
        check_k("k", torch.tensor(2), 10)


@pytest.mark.parametrize("k,match", [(0, r"k must be >= 1, got 0"), (-2, r"k must be >= 1, got -2"),
                                     (11, r"k must be <= the number of items \(10\), got 11"),
                                     (np.int64(11), r"got 11")])
def test_check_k_value_error(k, match):
    with pytest.raises(ValueError, match=match):
        check_k("k", k, 10)


def test_check_k_messages_of_its_callers():
    with pytest.raises(ValueError, match=r"k must be <= the number of training features \(4\), got 5"):
        check_k("k", 5, 4, "the number of training features")          # metrics.knn_accuracy
    assert check_k("k", 10**6) == 10**6                                  # no upper bound given
    assert check_k("k", 4, 4) == 4                                       # k = n is allowed


def test_check_ks():
    assert check_ks("ks", (1, 5, 10), 10) == (1, 5, 10)
    assert check_ks("ks", [np.int64(2)], 10) == (2,)
    for bad, exc, match in [((1, 11), ValueError, r"ks\[1\] must be <= the number of pairs \(10\), got 11"),
                            ((0,), ValueError, r"ks\[0\] must be >= 1"),
                            ((1, 2.0), TypeError, r"ks\[1\] must be an int, got float 2.0"),
                            ((True,), TypeError, r"ks\[0\] must be an int, got bool"),
                            ((), ValueError, "ks must be a non-empty tuple"),
                            (3, TypeError, "ks must be a non-empty tuple of ints, got int 3"),
                            ("3", TypeError, "ks must be a non-empty tuple")]:
        with pytest.raises(exc, match=match):
            check_ks("ks", bad, 10, "the number of pairs")


def test_check_view_list():
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    assert check_view_list("views", (a, b)) == [a, b]
    assert check_view_list("local", [], min_len=0) == []
    assert check_view_list("local", [a], min_len=0, like=("views[0]", b)) == [a]
    nan = b.index_fill(0, torch.tensor([1]), float("nan"))
    cases = [(a, TypeError, r"views must be a list of \(N, K\) tensors, one per view, got Tensor"),
             ("ab", TypeError, "views must be a list"),
             ([], ValueError, "views must hold at least one view, got an empty list"),
             ([a, b[:, :2]], ValueError, r"views\[1\] must have shape \(4, 3\) like views\[0\], got \(4, 2"),
             ([a, b[:3]], ValueError, r"views\[1\] must have shape \(4, 3\)"),
             ([a, b[0]], ValueError, r"views\[1\] must be a 2-d tensor"),
             ([a, b.long()], TypeError, r"views\[1\] must have a floating dtype"),
             ([a, nan], ValueError, r"views\[1\] must be finite")]
    for views, exc, match in cases:
        with pytest.raises(exc, match=match):
            check_view_list("views", views)
    with pytest.raises(ValueError, match="views must hold at least 3 views, got 2"):
        check_view_list("views", [a, b], min_len=3)
    with pytest.raises(ValueError, match=r"local\[0\] must have shape \(4, 3\) like global\[0\]"):
        check_view_list("local", [a[:, :2]], min_len=0, like=("global[0]", a))


def test_check_token_ids():
    ids = torch.tensor([[1, 2, 0], [3, 0, 0]])
    assert check_token_ids(ids, 4) is ids
    for bad, exc, match in [([[1, 2]], TypeError, "ids must be a LongTensor"),
                            (torch.tensor([1, 2]), ValueError, r"non-empty \(N, L\)"),
                            (ids.float(), TypeError, "integer token ids"),
                            (ids, ValueError, r"ids in \[0, 3\) \(the vocabulary size\), got values")]:
        with pytest.raises(exc, match=match):
            check_token_ids(bad, 3)
    with pytest.raises(TypeError, match="tokens must be"):
        check_token_ids(None, 3, name="tokens")


def test_finite_result_names_the_bad_input_only_when_the_result_is_not_finite():
    from cl_teach._validate import finite_result
    good, bad = torch.ones(3, 2), torch.tensor([[1.0, float("nan")]])
    assert finite_result(torch.tensor(2.0), a=good) == 2.0
    with pytest.raises(ValueError, match=r"views\[1\] must be finite"):
        finite_result(torch.tensor(float("nan")), a=good, views=[good, bad])
    # a non-finite result from finite inputs (an overflow) is returned, not blamed on an input
    assert torch.isinf(finite_result(torch.tensor(float("inf")), a=good))
    # the deferred check relies on NaN reaching the result: a loss that hid it would return a
    # finite value, which is why tests/test_fuzz.py breaks every argument of every loss with NaN
    assert finite_result(torch.tensor(0.0), a=bad) == 0.0
