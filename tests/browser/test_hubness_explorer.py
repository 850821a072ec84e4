"""Notebook 19's hubness explorer, driven in Chromium through Voila.

The notebook's setup cell and widget cell are used verbatim; the prep cell makes the widget's
three inputs as Gaussian vectors in 64 dimensions instead of the trained towers' emoji, test and
valid posts (training the towers takes a minute): the posts share a mean direction, and each
candidate holds a random amount of it, so those with the most sit near every post: hubs. The
same cells run in this process, so each readout and picture is compared with the package's
numbers for the sliders' values.
"""
from harness import course_cells, png_src, run_here, same_pixels

from cl_teach.widgets import hubness_stats, plot_hubness_stats

PREP = """\
import numpy as np
rng = np.random.default_rng(0)
mean = rng.standard_normal(64)
z_emoji = rng.standard_normal((300, 64)) + rng.uniform(0, 1.5, (300, 1)) * mean
z_test, z_valid = (rng.standard_normal((1000, 64)) + mean for _ in range(2))
"""
DEFAULT = "from cl_teach.widgets import hubness_explorer\nhubness_explorer(z_emoji, z_test, z_valid)"
READOUT = r"penalty = [\d.]+ \| K = \d+ \| N_10 skewness = "


def readout(st):
    return (f"penalty = {st['penalty']:.2f} | K = {st['neighbours']} | N_10 skewness = "
            f"{st['skewness']:.2f} | largest N_10 = {st['max']} | never retrieved = {st['never']:.1%} | "
            f"queries holding a cosine hub = {st['hub_share']:.1%}")


def test_hubness_explorer(open_widget):
    cells = course_cells("19", "hubness_explorer", DEFAULT, prep=[PREP])
    ns = run_here(cells)
    args = ns["z_emoji"], ns["z_test"], ns["z_valid"]

    page = open_widget(cells, wait_for=READOUT)
    page.settle()
    first = page.text_matching(READOUT)
    csls = hubness_stats(*args, 0.5, 10)                             # the notebook's defaults: CSLS
    assert first == readout(csls)
    assert same_pixels(page.images()[0], png_src(plot_hubness_stats(csls)))

    def move(description, value, before):
        page.type_into_slider(description, value)
        return page.wait_for_change(READOUT, before, page.images())

    cos_text = move("penalty", 0, first)                             # plain cosine
    cos = hubness_stats(*args, 0.0, 10)
    assert cos_text == readout(cos)
    assert same_pixels(page.images()[0], png_src(plot_hubness_stats(cos)))
    assert cos["skewness"] > csls["skewness"] + 0.5 and cos["hub_share"] > csls["hub_share"], (cos, csls)
    page.screenshot("19_hubness_explorer_cosine")

    k1_text = move("K", 1, move("penalty", 0.5, cos_text))           # CSLS with one neighbour
    k1 = hubness_stats(*args, 0.5, 1)
    assert k1_text == readout(k1)
    assert same_pixels(page.images()[0], png_src(plot_hubness_stats(k1)))
    page.screenshot("19_hubness_explorer")
