"""Notebook 07's MoCo queue explorer, driven in Chromium through Voila.

The notebook's setup cell, data cell, batch size, feature cell and widget cell are used verbatim;
only the CNN whose frozen features the widget trains on is a stand-in (an untrained SmallCNN
instead of the one the notebook trains for half a minute). The same cells run in this process,
so each readout and picture is compared with the package's numbers for the sliders' values; the
sliders are moved with the keyboard (a selection slider has no editable readout).
"""
from harness import course_cell, course_cells, png_src, run_here, same_pixels

from cl_teach.widgets import moco_queue_stats, plot_moco_queue_stats

PREP = [course_cell("07", "fashion_mnist_subsets(12_000"),
        course_cell("07", "STEPS, BATCH = ", through="STEPS, BATCH = "),
        "from types import SimpleNamespace\n"
        "runs = {'queue K=4096': SimpleNamespace(encoder=SmallCNN())}   # stands in for the trained CNN",
        course_cell("07", "TOWER_STEPS = ")]
DEFAULT = ("from cl_teach.widgets import moco_queue_explorer\n"
           "moco_queue_explorer(h1[:n_tower], h2[:n_tower], momentum=0.9, queue_size=TOWER_K,\n"
           "                    steps=TOWER_STEPS, seed=SEED)")
READOUT = r"^m = [\d.]+ \("


def readout(st):
    lag = "never forgets" if st["lag"] == float("inf") else f"memory 1 / (1 - m) = {st['lag']:,.0f} steps"
    return (f"m = {st['momentum']:g} ({lag}) | K = {st['queue_size']} negatives per query (in-batch: "
            f"{st['batch_size'] - 1}), spanning {st['extent']} steps | cos(queued key, today's key): "
            f"youngest {st['youngest']:.3f}, oldest {st['oldest']:.3f}, mean {st['mean']:.3f} | "
            f"{st['consistent']:,} of {st['queue_size']} keys at cos >= 0.9")


def test_moco_queue_explorer(open_widget):
    cells = course_cells("07", "moco_queue_explorer", DEFAULT, prep=PREP)
    ns = run_here(cells)
    n = ns["n_tower"]
    h1, h2, steps, seed = ns["h1"][:n], ns["h2"][:n], ns["TOWER_STEPS"], ns["SEED"]

    def stats(m, k):
        return moco_queue_stats(h1, h2, m, k, steps=steps, seed=seed)

    page = open_widget(cells, wait_for=READOUT)
    page.settle()
    first = page.text_matching(READOUT)
    fast = stats(0.9, ns["TOWER_K"])                                 # the notebook's call
    assert first == readout(fast)
    assert same_pixels(page.images()[0], png_src(plot_moco_queue_stats(fast)))

    page.press_on_slider("momentum m", "End")                        # m = 0.9999
    slow_text = page.wait_for_change(READOUT, first, page.images())
    slow = stats(0.9999, ns["TOWER_K"])
    assert slow_text == readout(slow)
    assert same_pixels(page.images()[0], png_src(plot_moco_queue_stats(slow)))
    assert slow["oldest"] > fast["oldest"] + 0.1 and slow["mean"] > fast["mean"]   # the claim moves

    page.press_on_slider("queue K", "Home")                          # K = 256: 8 steps of keys
    short_text = page.wait_for_change(READOUT, slow_text, page.images())
    short = stats(0.9999, 256)
    assert short_text == readout(short) and short["extent"] == 8 and "in-batch: 31" in short_text
    assert same_pixels(page.images()[0], png_src(plot_moco_queue_stats(short)))
    assert page.stderr() == []
    page.screenshot("07_moco_queue_explorer")
