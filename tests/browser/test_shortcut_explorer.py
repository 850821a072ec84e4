"""Notebook 06's shortcut explorer, driven in Chromium through Voila.

The notebook's setup cell, its data cell (the Fashion-MNIST subsets and their veils) and its
widget cell are used verbatim. The same cells run in this process, so each readout and picture is
compared with the package's numbers for the controls' values.
"""
from harness import course_cell, course_cells, png_src, run_here, same_pixels

from cl_teach.widgets import plot_shortcut_stats, shortcut_stats

DEFAULT = ("from cl_teach.widgets import shortcut_explorer\n"
           "shortcut_explorer(marked_train[:256], train.x[:256], seed=SEED + 20)")
READOUT = r"positive found by: veil level "


def readout(st):
    shares = " | ".join(f"{k.split(',')[0]} {v:.3f}" for k, v in st["found"].items())
    return f"positive found by: {shares} (chance {st['chance']:.4f})"


def test_shortcut_explorer(open_widget):
    cells = course_cells("06", "shortcut_explorer", DEFAULT,
                         prep=[course_cell("06", "train, test = fashion_mnist_subsets")])
    ns = run_here(cells)
    veiled, clean, seed = ns["marked_train"][:256], ns["train"].x[:256], ns["SEED"] + 20

    def check(text, *args):
        st = shortcut_stats(veiled, clean, *args, seed=seed)
        assert text == readout(st)
        assert same_pixels(page.images()[0], png_src(plot_shortcut_stats(st)))
        return st

    page = open_widget(cells, wait_for=READOUT)
    page.settle()
    first = page.text_matching(READOUT)
    crops = check(first, True, 0.0, 0.0)                             # the default: crops alone
    page.type_into_slider("veil jitter", 0.5)
    veil_text = page.wait_for_change(READOUT, first, page.images())
    veil = check(veil_text, True, 0.0, 0.5)
    level = "veil level, veiled images"
    assert veil["found"][level] < 0.1 < 0.8 < crops["found"][level]
    page.page.locator(".widget-checkbox input[type=checkbox]").click()   # crop off
    no_crop_text = page.wait_for_change(READOUT, veil_text, page.images())
    no_crop = check(no_crop_text, False, 0.0, 0.5)
    assert no_crop["found"]["pixel layout, clean images"] > 0.5 > veil["found"]["pixel layout, clean images"]
    page.screenshot("06_shortcut_explorer")
