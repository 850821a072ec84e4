"""Notebook 18's nprobe explorer, driven in Chromium through Voila.

The notebook's setup cell and widget cell are used verbatim. The prep cell builds the widget's
inputs with the notebook's index classes on clustered Gaussian vectors instead of the trained
tower's posts (training and embedding take half a minute; the widget only needs an IVF index, its
vectors, queries and their exact top-10). The same cells run in this process, so each readout
(but its time, which is this moment's) and picture is compared with the package's numbers.
"""
import re

from harness import course_cells, png_src, run_here, same_pixels

from cl_teach.widgets import plot_search_stats, search_stats

PREP = """\
import numpy as np
from cl_teach.retrieval import EmbeddingIndex
rng = np.random.default_rng(0)
centres = rng.standard_normal((40, 32))
X = (centres[rng.integers(0, 40, 8000)] + 0.6 * rng.standard_normal((8000, 32))).astype(np.float32)
X /= np.linalg.norm(X, axis=1, keepdims=True)
queries = np.arange(0, 8000, 20)
_, ids = EmbeddingIndex(kind="flat").fit(X).search(X[queries], 11)
exact = np.array([[j for j in row if j != q][:10] for row, q in zip(ids.tolist(), queries.tolist())])
ivf = EmbeddingIndex(kind="ivf", nlist=64).fit(X)
"""
DEFAULT = "from cl_teach.widgets import search_explorer\nsearch_explorer(ivf, X, queries, exact, knob=4)"
READOUT = r"nprobe = \d+ \| recall of the exact top-10 = "


def without_time(text):
    return re.sub(r" \| [\d.]+ ms per query \(this machine, now\)$", "", text)


def readout(st):
    return (f"nprobe = {st['knob']} | recall of the exact top-10 = {st['recall']:.3f} | scanned "
            f"{100 * st['scanned']:.1f}%")


def test_search_explorer(open_widget):
    cells = course_cells("18", "search_explorer", DEFAULT, prep=[PREP])
    ns = run_here(cells)
    args = ns["ivf"], ns["X"], ns["queries"], ns["exact"]

    page = open_widget(cells, wait_for=READOUT)
    page.settle()
    first = page.text_matching(READOUT)
    st4 = search_stats(*args, 4)
    assert without_time(first) == readout(st4) and first.endswith("ms per query (this machine, now)")
    assert same_pixels(page.images()[0], png_src(plot_search_stats(st4)))

    page.press_on_slider("nprobe", "Home")                           # nprobe = 1
    one_text = page.wait_for_change(READOUT, first, page.images())
    st1 = search_stats(*args, 1)
    assert without_time(one_text) == readout(st1)
    assert same_pixels(page.images()[0], png_src(plot_search_stats(st1)))
    page.press_on_slider("nprobe", "End")                            # nprobe = nlist: exact again
    all_text = page.wait_for_change(READOUT, one_text, page.images())
    st_all = search_stats(*args, 64)
    assert without_time(all_text) == readout(st_all)
    assert st_all["recall"] > 0.99 and st_all["scanned"] > 0.99
    assert st1["recall"] < st4["recall"] < st_all["recall"] and st1["scanned"] < st4["scanned"]
    page.screenshot("18_search_explorer")
