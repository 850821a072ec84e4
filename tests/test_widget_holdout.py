"""Notebook 13's held-out-size explorer: its intervals against Evaluation.compare and the sqrt law."""
import pytest
import torch

from cl_teach.evaluation import Evaluation
from cl_teach.widgets import holdout_explorer, holdout_stats


def outcomes(p, n=4000, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, generator=g) < p).float()


def arena():
    base = Evaluation(outcomes(0.80, seed=1), outcomes(0.78, seed=2))
    methods = {"ahead": Evaluation(outcomes(0.85, seed=3), outcomes(0.85, seed=4)),
               "tied": Evaluation(base.knn_correct.clone(), base.probe_correct.clone()),
               "behind": Evaluation(outcomes(0.74, seed=5), outcomes(0.74, seed=6))}
    return methods, base


def test_all_items_give_compares_intervals_and_fewer_give_wider_ones():
    methods, base = arena()
    for on in ("knn", "probe"):
        full = holdout_stats(methods, base, 4000, on)
        assert all(full["diffs"][n] == ev.compare(base, on=on) for n, ev in methods.items())
        assert full["ahead"] == ["ahead"] and full["behind"] == ["behind"]
        small = holdout_stats(methods, base, 250, on)
        for n in ("ahead", "behind"):                       # sqrt(4000 / 250) = 4 times wider, about
            wide, narrow = small["diffs"][n], full["diffs"][n]
            assert 3 < (wide.high - wide.low) / (narrow.high - narrow.low) < 5.5, n
    # The subset is drawn by its seed: another seed, other items.
    a, b = holdout_stats(methods, base, 100, seed=3), holdout_stats(methods, base, 100, seed=4)
    assert a["diffs"]["ahead"] != b["diffs"]["ahead"]


def test_bad_input_names_the_argument():
    methods, base = arena()
    short = {"short": Evaluation(torch.ones(10), torch.ones(10))}
    for args, match in (((methods, base, 5), "n_items"), ((methods, base, 5000), "n_items"),
                        (({}, base, 100), "evaluations"), ((short, base, 100), "same items")):
        with pytest.raises(ValueError, match=match):
            holdout_stats(*args)
    with pytest.raises(ValueError, match="on must be"):
        holdout_stats(methods, base, 100, on="accuracy")


def test_explorer_builds_and_redraws():
    methods, base = arena()
    box = holdout_explorer(methods, {"knn": ("raw", base), "probe": ("raw", base)})
    slider, measure = box.children[0].children
    first = box.children[1].value
    assert first.startswith("kNN, n = 4000 of 4000 | ahead of raw: ahead | behind: behind")
    slider.value = slider.options[0]
    assert box.children[1].value != first
    assert "image/png" in box._repr_mimebundle_()
