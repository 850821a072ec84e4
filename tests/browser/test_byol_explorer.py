"""Notebook 09's BYOL/SimSiam explorer, driven in Chromium through Voila.

The notebook's setup cell, data cell, the cell that trains the explorer's settings and the widget
cell are used verbatim. The one prep cell of ours stands in for the BYOL run the notebook trains
for a minute: an *untrained* BYOL encoder, whose frozen features the settings' heads then train
on. The same cells run in this process, so each readout and picture is compared with the
package's numbers for the same setting.
"""
from harness import course_cell, course_cells, png_src, run_here, same_pixels

from cl_teach.widgets import plot_byol_stats

PREP = """\
cl_teach.setup(SEED, verbose=False)
runs = {"BYOL": BYOL(SmallCNN(), projection_dim=64)}        # untrained: the notebook trains it
"""
DEFAULT = "from cl_teach.widgets import byol_explorer\nbyol_explorer(views, held_out, runs=explore_runs)"
READOUT = r"predictor \| after \d+ steps: effective rank "


def readout(st):
    return (f"{st['label']} | after {st['steps'][-1]} steps: effective rank {st['rank'][-1]:.1f} of "
            f"{st['dim']} | std of z {st['std'][-1]:.3f} (1/sqrt(D) = {1 / st['dim'] ** 0.5:.3f}) | "
            f"held-out loss {st['loss'][-1]:.3f}")


def test_byol_explorer(open_widget):
    cells = course_cells("09", "byol_explorer", DEFAULT,
                         prep=[course_cell("09", "train, test = "), PREP,
                               course_cell("09", "explore_runs = byol_runs")])
    runs = run_here(cells)["explore_runs"]                          # the same settings, in this process

    page = open_widget(cells, wait_for=READOUT)
    page.settle()
    first = page.text_matching(READOUT)
    simsiam = runs[(None, True, True)]                              # the notebook's start: SimSiam
    assert first == readout(simsiam)
    assert same_pixels(page.images()[0], png_src(plot_byol_stats(simsiam)))

    page.press_on_slider("target", "Home")                          # no stop-gradient
    plain_text = page.wait_for_change(READOUT, first, page.images())
    plain = runs[(None, False, True)]
    assert plain_text == readout(plain)
    assert same_pixels(page.images()[0], png_src(plot_byol_stats(plain)))
    assert plain["rank"][-1] < 0.5 * simsiam["rank"][-1]             # it collapses, SimSiam does not
    page.screenshot("09_byol_explorer_no_stop_grad")

    page.page.locator(".widget-checkbox input[type=checkbox]").click()   # predictor off
    bare_text = page.wait_for_change(READOUT, plain_text, page.images())
    bare = runs[(None, False, False)]
    assert bare_text == readout(bare)

    page.press_on_slider("target", "End")                           # BYOL's slowest target
    slow_text = page.wait_for_change(READOUT, bare_text, page.images())
    slow = runs[(0.996, True, False)]
    assert slow_text == readout(slow)
    assert same_pixels(page.images()[0], png_src(plot_byol_stats(slow)))
    assert slow["rank"][-1] > bare["rank"][-1]                       # a slow target holds off collapse
    assert not page.stderr()
    page.screenshot("09_byol_explorer")
