"""Notebook 02's similarity explorer, driven in Chromium through Voila.

The notebook's setup cell, its data cell and its widget cell are used verbatim; the prep cells
build the same bank and queries as the notebook (its lines, cut before the votes). The same cells
run in this process, so each readout and picture is compared with the package's numbers for the
sliders' values; the sliders are moved with the keyboard (a selection slider has no editable
readout).
"""
from harness import course_cell, course_cells, png_src, run_here, same_pixels

from cl_teach.widgets import LengthPowerKNN, plot_similarity_stats

PREP = [course_cell("02", "train, test = fashion_mnist_subsets"),
        "x_bank, x_query, y_query = train.x.flatten(1), test.x[:2000].flatten(1), test.y[:2000]",
        course_cell("02", "knn_p = LengthPowerKNN(", through="knn_p = LengthPowerKNN(")]
DEFAULT = "from cl_teach.widgets import similarity_explorer\nsimilarity_explorer(knn_p)"
READOUT = r"p = [\d.]+, k = \d+ \| kNN accuracy "
POWERS = [0.25 * i for i in range(9)]


def readout(st):
    return (f"p = {st['power']:g}, k = {st['k']} | kNN accuracy {100 * st['accuracy']:.2f}% | "
            f"minus the dot product: {st['vs_dot'].points()} points | neighbours' mean |b| "
            f"{st['neighbour_norm']:.2f} (bank {st['bank_norm']:.2f})")


def test_similarity_explorer(open_widget):
    cells = course_cells("02", "similarity_explorer", DEFAULT, prep=PREP)
    ns = run_here(cells)
    knn = LengthPowerKNN(ns["x_bank"], ns["train"].y, ns["x_query"], ns["y_query"])

    def check(text, power, k):
        curve = {p: knn.stats(p, k) for p in POWERS}
        assert text == readout(curve[power])
        assert same_pixels(page.images()[0], png_src(plot_similarity_stats(curve[power], curve)))
        return curve[power]

    page = open_widget(cells, wait_for=READOUT)
    page.settle()
    first = page.text_matching(READOUT)
    cosine = check(first, 1.0, 20)
    page.press_on_slider("power p", "Home")                          # p = 0: the dot product
    dot_text = page.wait_for_change(READOUT, first, page.images())
    dot = check(dot_text, 0.0, 20)
    assert cosine["vs_dot"].low > 0 and dot["neighbour_norm"] > cosine["neighbour_norm"]
    page.press_on_slider("k", "Home")                                # k = 1
    one_text = page.wait_for_change(READOUT, dot_text, page.images())
    check(one_text, 0.0, 1)
    page.screenshot("02_similarity_explorer")
