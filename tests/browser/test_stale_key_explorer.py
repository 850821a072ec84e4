"""Notebook 16's stale-key explorer, driven in Chromium through Voila.

The notebook's setup cell, its split of the emoji and its run settings (batch, steps, the short
queue) are used verbatim; the frozen towers' features are not needed (the widget replays the
loader's batches only), so zeros stand in for them. The same cells run in this process, so each
readout and picture is compared with the package's numbers for the slider's value; the slider is
moved with the keyboard (a selection slider has no editable readout).
"""
from harness import course_cell, course_cells, png_src, run_here, same_pixels

from cl_teach.widgets import plot_stale_key_stats, stale_key_stats, stale_key_sweep

PREP = [course_cell("16", "emoji = load_emoji", through="test_idx, train_idx = "),
        "image_feats = text_feats = torch.zeros(len(emoji), 1)         # not used by the widget",
        course_cell("16", "batch_size, steps, tau = ", through="small_queue = ")]
DEFAULT = ("from cl_teach.widgets import stale_key_explorer\nstale_key_explorer(len(train_idx), batch_size, "
           "steps, queue_size=1024, seed=SEED, marks={'K=1024': 1024})")
READOUT = r"K = \d+ \(\d+% of an epoch\) \| own key queued for "


def readout(st):
    return (f"K = {st['queue_size']} ({st['queue_size'] / st['per_epoch']:.0%} of an epoch) | own key "
            f"queued for {st['after_epoch_1']:.1%} of queries after epoch 1 | whole-epoch closed form "
            f"{st['full_epoch_mean']:.1%}")


def test_stale_key_explorer(open_widget):
    cells = course_cells("16", "stale_key_explorer", DEFAULT, prep=PREP)
    ns = run_here(cells)
    n, batch, steps, seed = len(ns["train_idx"]), ns["batch_size"], ns["steps"], ns["SEED"]
    marks = {"K=1024": 1024, f"K={ns['small_queue']}": ns["small_queue"]}     # the notebook's call
    sweep = stale_key_sweep(n, batch, steps, seed, extra=(1024, *marks.values()))

    def picture(st):
        return png_src(plot_stale_key_stats(st, sweep, marks))

    page = open_widget(cells, wait_for=READOUT)
    page.settle()
    first = page.text_matching(READOUT)
    st = stale_key_stats(n, batch, 1024, steps, seed)
    assert first == readout(st)
    assert same_pixels(page.images()[0], picture(st))

    page.press_on_slider("queue K", "Home")                          # K = one batch
    low_text = page.wait_for_change(READOUT, first, page.images())
    low = stale_key_stats(n, batch, batch, steps, seed)
    assert low_text == readout(low) and low["after_epoch_1"] < 0.01
    assert same_pixels(page.images()[0], picture(low))
    page.press_on_slider("queue K", "End")                           # K about two epochs
    high_text = page.wait_for_change(READOUT, low_text, page.images())
    k_max = int(high_text.split()[2])
    high = stale_key_stats(n, batch, k_max, steps, seed)
    assert high_text == readout(high) and k_max >= 2 * high["per_epoch"] and high["after_epoch_1"] > 0.99
    assert low["after_epoch_1"] < st["after_epoch_1"] < high["after_epoch_1"]
    assert same_pixels(page.images()[0], picture(high))
    page.screenshot("16_stale_key_explorer")
