"""Notebook 10's false-negative explorer, driven in Chromium through Voila.

The notebook's setup cell, data cell and widget cell are used verbatim (the widget needs only the
size of the training set). The same cells run in this process, so each readout and picture is
compared with what the package computes for the sliders' values; the sliders are moved with the
keyboard, as a user can (a selection slider has no editable readout).
"""
from harness import course_cell, course_cells, png_src, run_here, same_pixels

from cl_teach.widgets import false_negative_stats, plot_false_negative_stats

DEFAULT = "from cl_teach.widgets import false_negative_explorer\nfalse_negative_explorer(len(train.y))"
READOUT = r"N = \d+ \| C = \d+ \| E\[rho\] = "


def stats(c, n, m):
    return false_negative_stats(c, n, m, seed=10_000 * c + n)      # the explorer's draws


def readout(st):
    return (f"N = {st['batch_size']} | C = {st['n_classes']} | E[rho] = {st['expected']:.3g} | measured "
            f"{st['measured']:.3g} [{st['ci95'][0]:.3g}, {st['ci95'][1]:.3g}] | false negatives per "
            f"anchor = {st['per_anchor']:.1f} | P(anchor meets its class) = {st['p_any']:.3f}")


def test_false_negative_explorer(open_widget):
    cells = course_cells("10", "false_negative_explorer", DEFAULT, prep=[course_cell("10", "train, test = ")])
    m = len(run_here(cells)["train"].y)                              # the same training set, here
    assert m == 12_000

    page = open_widget(cells, wait_for=READOUT)
    page.settle()
    first = page.text_matching(READOUT)
    st = stats(10, 256, m)                                           # the notebook's defaults
    assert first == readout(st)
    assert same_pixels(page.images()[0], png_src(plot_false_negative_stats(st)))

    def move(description, key, before, times=1):
        page.press_on_slider(description, key, times)
        return page.wait_for_change(READOUT, before, page.images())

    big_text = move("batch N", "End", first)                         # N = 4096
    big = stats(10, 4096, m)
    assert big_text == readout(big)
    assert same_pixels(page.images()[0], png_src(plot_false_negative_stats(big)))
    # the share does not fall with N (both measured shares within 0.005 of E[rho] = 0.0999) ...
    assert abs(big["measured"] - st["measured"]) < 0.005 and abs(big["expected"] - st["expected"]) < 1e-12
    assert big["per_anchor"] > 15 * st["per_anchor"]                  # ... so N brings more of them
    page.screenshot("10_false_negative_explorer_4096")

    many_text = move("classes C", "End", big_text)                   # C = 1000, still N = 4096
    many = stats(1000, 4096, m)
    assert many_text == readout(many) and many["p_any"] > 0.9
    small_text = move("batch N", "ArrowLeft", many_text, times=4)    # N = 256
    small = stats(1000, 256, m)
    assert small_text == readout(small)
    assert same_pixels(page.images()[0], png_src(plot_false_negative_stats(small)))
    assert small["p_any"] < 0.5                                      # most anchors meet no classmate
    page.screenshot("10_false_negative_explorer")
