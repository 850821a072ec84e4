"""Notebook 01's temperature explorer, driven in Chromium through Voila."""
import re

from harness import course_cells, png_src, same_pixels

from cl_teach.widgets import plot_temperature_stats, temperature_stats

READOUT = r"tau = .*loss = "


def parse(readout: str) -> dict:
    """'tau = 0.1 | loss = 1.2345 | hardest negative's share of gradient = 0.123 (uniform: 0.031)'"""
    m = re.search(r"tau = ([\d.e+-]+) \| loss = ([\d.]+) .*share of gradient = ([\d.]+) "
                  r"\(uniform: ([\d.]+)\)", readout)
    assert m, f"unexpected readout: {readout!r}"
    tau, loss, hardest, uniform = map(float, m.groups())
    return {"tau": tau, "loss": loss, "hardest": hardest, "uniform": uniform}


def test_temperature_explorer(open_widget):
    cells = course_cells("01", "temperature_explorer",
                         "from cl_teach import widgets\nwidgets.temperature_explorer()")
    page = open_widget(cells, wait_for=READOUT)
    start_text, start_imgs = page.text_matching(READOUT), page.images()
    start = parse(start_text)
    assert len(start_imgs) == 1

    # Lower tau with the keyboard on the log slider: 5 steps of 0.1 in log10 -> tau / 10^0.5.
    page.press_on_slider("tau", "ArrowLeft", times=5)
    page.page.wait_for_function(
        "(old) => [...document.querySelectorAll('.widget-label')].some(e => /tau = /.test(e.textContent)"
        " && parseFloat(e.textContent.match(/tau = ([\\d.e+-]+)/)[1]) < old / 3)",
        arg=start["tau"], timeout=60_000)
    cold_text = page.wait_for_change(READOUT, start_text, start_imgs)
    cold, cold_imgs = parse(cold_text), page.images()
    assert cold["tau"] < start["tau"] / 3
    assert cold["hardest"] > start["hardest"], (start, cold)   # colder: the hardest negative dominates
    assert cold["loss"] != start["loss"]
    # The readout is the package's number for what the slider shows.
    ref = temperature_stats(cold["tau"])
    assert abs(ref["loss"] - cold["loss"]) < 1e-3 and abs(ref["hardest_share"] - cold["hardest"]) < 2e-3
    page.screenshot("01_temperature_explorer_cold")

    # Raise tau by typing into the readout: at tau = 5 every negative weighs about 1/K.
    page.type_into_slider("tau", 5)
    hot_text = page.wait_for_change(READOUT, cold_text, cold_imgs)
    hot = parse(hot_text)
    assert abs(hot["tau"] - 5) < 0.3, hot
    assert hot["hardest"] < start["hardest"] < cold["hardest"]
    assert hot["hardest"] < 2 * hot["uniform"]
    hot_imgs = page.images()

    # More negatives: the uniform share 1/K moves with the slider.
    page.press_on_slider("negatives", "ArrowRight", times=8)      # 32 + 8 * 4 = 64
    page.page.wait_for_function(
        "() => [...document.querySelectorAll('.widget-label')]"
        ".some(e => e.textContent.includes('uniform: 0.016'))",
        timeout=60_000)
    more = parse(page.wait_for_change(READOUT, hot_text, hot_imgs))
    assert abs(more["uniform"] - 1 / 64) < 1e-3 and more["loss"] > hot["loss"]
    # The plot is exactly the package's figure for what the sliders now say.
    assert same_pixels(page.images()[0], png_src(plot_temperature_stats(temperature_stats(5.0, 64, 0.5))))
    page.screenshot("01_temperature_explorer")
