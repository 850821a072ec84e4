"""Notebook 20's gather explorer, driven in Chromium through Voila.

The notebook's setup cell and widget cell are used verbatim. The notebook's embeddings come from a
model it trains for a minute; the prep cell stands in two views of 64 "images" as random twins
(the notebook's Derive cell does the same). The same cells run in this process, so each readout
and picture is compared with the package's numbers for the slider's value.
"""
from harness import course_cells, png_src, run_here, same_pixels

from cl_teach.widgets import gather_stats, plot_gather_stats

PREP = """\
import torch
TAU = 0.1
g = torch.Generator().manual_seed(0)
z = torch.randn(64, 32, generator=g)
z64 = [z, z + 0.8 * torch.randn(64, 32, generator=g)]
"""
DEFAULT = "from cl_teach.widgets import gather_explorer\ngather_explorer(*z64, tau=TAU, world_size=2)"
READOUT = r"W = \d+ of N = \d+ \| gather, global / local loss: "
VARIANTS = (("gather", "global"), ("gather", "local"), ("gather_no_grad", "global"),
            ("gather_no_grad", "local"))


def readout(st):
    r, c = st["ratio"], st["cosine"]
    return (f"W = {st['world_size']} of N = {st['per_process']} | gather, global / local loss: "
            f"x{r['gather', 'global']:.3f} / x{r['gather', 'local']:.3f} | gather_no_grad + global: "
            f"x{r['gather_no_grad', 'global']:.3f} | gather_no_grad + local: "
            f"x{r['gather_no_grad', 'local']:.3f}, 1 - cos {1 - c['gather_no_grad', 'local']:.1e}")


def test_gather_explorer(open_widget):
    cells = course_cells("20", "gather_explorer", DEFAULT, prep=[PREP])
    ns = run_here(cells)
    z1, z2, tau = ns["z64"][0], ns["z64"][1], ns["TAU"]
    sweep = {w: gather_stats(z1, z2, w, tau) for w in (1, 2, 4, 8, 16, 32)}

    def check(text, w):
        assert text == readout(sweep[w])
        assert same_pixels(page.images()[0], png_src(plot_gather_stats(sweep[w], sweep)))

    page = open_widget(cells, wait_for=READOUT)
    page.settle()
    first = page.text_matching(READOUT)
    check(first, 2)
    page.press_on_slider("W", "End")                       # W = 32, N = 2
    last = page.wait_for_change(READOUT, first, page.images())
    check(last, 32)
    assert "gather_no_grad + global: x0.031" in last
    assert sweep[32]["cosine"]["gather_no_grad", "local"] < 1 - 1e-6
    page.press_on_slider("W", "Home")                      # W = 1: all four the same
    one = page.wait_for_change(READOUT, last, page.images())
    check(one, 1)
    assert all(abs(sweep[1]["ratio"][k] - 1) < 1e-9 for k in VARIANTS)
    page.screenshot("20_gather_explorer")
