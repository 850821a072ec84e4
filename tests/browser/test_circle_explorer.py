"""Notebook 04's alignment-and-uniformity explorer, driven in Chromium through Voila.

The notebook's setup cell and widget cell are used verbatim (the widget draws its own points).
Each readout and picture is compared with the package's numbers for the sliders' values.
"""
from harness import course_cells, png_src, same_pixels

from cl_teach.widgets import circle_stats, plot_circle_stats

DEFAULT = "from cl_teach.widgets import circle_explorer\ncircle_explorer()"
READOUT = r"kappa = [\d.]+ \| noise = "


def readout(st):
    return (f"kappa = {st['concentration']:.1f} | noise = {st['noise']:.2f} rad | alignment = "
            f"{st['alignment']:.3f} | uniformity = {st['uniformity']:.3f} (uniform circle "
            f"{st['uniform_limit']:.3f}, one point 0)")


def test_circle_explorer(open_widget):
    cells = course_cells("04", "circle_explorer", DEFAULT)
    page = open_widget(cells, wait_for=READOUT)
    page.settle()
    first = page.text_matching(READOUT)
    start = circle_stats(0.0, 0.3)                                   # the notebook's defaults
    assert first == readout(start)
    assert same_pixels(page.images()[0], png_src(plot_circle_stats(start)))

    def move(description, value, before):
        page.type_into_slider(description, value)
        return page.wait_for_change(READOUT, before, page.images())

    clump_text = move("kappa", 8, first)
    clump = circle_stats(8.0, 0.3)
    assert clump_text == readout(clump)
    assert same_pixels(page.images()[0], png_src(plot_circle_stats(clump)))
    assert clump["uniformity"] > start["uniformity"] + 0.5           # clumped: far less uniform
    exact_text = move("noise", 0, clump_text)
    exact = circle_stats(8.0, 0.0)
    assert exact_text == readout(exact) and exact["alignment"] < 1e-12
    assert same_pixels(page.images()[0], png_src(plot_circle_stats(exact)))
    page.screenshot("04_circle_explorer")
