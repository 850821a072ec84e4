"""Notebook 13's held-out-size explorer, driven in Chromium through Voila.

The notebook's setup cell and widget cell are used verbatim. Training the arena's eight methods
takes minutes, so the prep cell stands in their per-image outcomes on 5,000 test images: three
methods ahead of the better baseline by 4-6 points, one tied, one behind. The same cells run in
this process, so each readout and picture is compared with the package's numbers.
"""
from harness import course_cells, png_src, run_here, same_pixels

from cl_teach.widgets import holdout_stats, plot_holdout_stats

PREP = """\
import torch
from cl_teach.evaluation import Evaluation


def outcomes(p, seed):
    return (torch.rand(5000, generator=torch.Generator().manual_seed(seed)) < p).float()


raw = Evaluation(outcomes(0.80, 1), outcomes(0.78, 2))
evaluations = {name: Evaluation(outcomes(p, 10 + i), outcomes(p + 0.01, 20 + i))
               for i, (name, p) in enumerate([("A", 0.86), ("B", 0.85), ("C", 0.84), ("D", 0.80),
                                              ("E", 0.75)])}
best = {"knn": ("raw pixels", raw), "probe": ("raw pixels", raw)}
"""
DEFAULT = "from cl_teach.widgets import holdout_explorer\nholdout_explorer(evaluations, best)"
READOUT = r", n = \d+ of 5000 \| ahead of "


def readout(st):
    label = {"knn": "kNN", "probe": "linear probe"}[st["on"]]
    return (f"{label}, n = {st['n_items']} of {st['n_total']} | ahead of raw pixels: "
            f"{', '.join(st['ahead']) or 'none'} | behind: {', '.join(st['behind']) or 'none'}")


def test_holdout_explorer(open_widget):
    cells = course_cells("13", "holdout_explorer", DEFAULT, prep=[PREP])
    ns = run_here(cells)
    evaluations, raw = ns["evaluations"], ns["raw"]

    def check(text, n, on):
        st = holdout_stats(evaluations, raw, n, on)
        assert text == readout(st)
        assert same_pixels(page.images()[0], png_src(plot_holdout_stats(st, "raw pixels")))
        return st

    page = open_widget(cells, wait_for=READOUT)
    page.settle()
    first = page.text_matching(READOUT)
    full = check(first, 5000, "knn")
    assert full["ahead"] == ["A", "B", "C"] and full["behind"] == ["E"]
    page.press_on_slider("test items", "Home")                      # n = 50
    few_text = page.wait_for_change(READOUT, first, page.images())
    few = check(few_text, 50, "knn")
    assert len(few["ahead"]) < len(full["ahead"])                   # wider intervals, fewer claims
    page.page.get_by_role("button", name="linear probe").click()
    probe_text = page.wait_for_change(READOUT, few_text, page.images())
    check(probe_text, 50, "probe")
    page.screenshot("13_holdout_explorer")
