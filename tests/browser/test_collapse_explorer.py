"""Notebook 03's collapse explorer, driven in Chromium through Voila.

The notebook's setup cell (which loads the data) and widget cell are used verbatim; the prep cell
makes ``z_simclr`` with the notebook's SimCLR but *untrained* (BN statistics re-estimated; training
takes half a minute and the widget needs only an embedding). The same cells run in this process,
so each readout and picture is compared with the package's numbers for the sliders' values.
"""
from harness import course_cells, png_src, run_here, same_pixels

from cl_teach.widgets import collapse_stats, plot_collapse_stats

PREP = """\
cl_teach.setup(seed=0, verbose=False)
fresh = SimCLR(models.SmallCNN(), projection_dim=64, temperature=0.2)
net = torch.nn.Sequential(fresh.encoder, fresh.projector)
metrics.recalibrate_batchnorm(net, train_set.x[:2000])
z_simclr = models.embed(net, test_set.x[:1000])
"""
DEFAULT = "from cl_teach.widgets import collapse_explorer\ncollapse_explorer(z_simclr)"
READOUT = r"directions = \d+ \| noise = "


def readout(st):
    return (f"directions = {st['keep']} | noise = {st['noise']:.2f} | effective rank = {st['rank']:.2f} | "
            f"std(z/|z|) = {st['std']:.4f} | after BN = {st['std_after_bn']:.4f}")


def test_collapse_explorer(open_widget):
    cells = course_cells("03", "collapse_explorer", DEFAULT, prep=[PREP])
    z = run_here(cells)["z_simclr"]
    assert tuple(z.shape) == (1000, 64)

    page = open_widget(cells, wait_for=READOUT)
    page.settle()
    first = page.text_matching(READOUT)
    full = collapse_stats(z, 64, 0.0)                                # the notebook's defaults
    assert first == readout(full)
    assert same_pixels(page.images()[0], png_src(plot_collapse_stats(full)))

    def move(description, value, before):
        page.type_into_slider(description, value)
        return page.wait_for_change(READOUT, before, page.images())

    three_text = move("directions", 3, first)
    three = collapse_stats(z, 3, 0.0)
    assert three_text == readout(three)
    assert same_pixels(page.images()[0], png_src(plot_collapse_stats(three)))
    # the rank follows the directions; the std behind a BatchNorm does not move
    assert three["rank"] < 3.05 < 0.2 * full["rank"], (three["rank"], full["rank"])
    assert abs(three["std_after_bn"] - full["std_after_bn"]) < 0.1 * full["std_after_bn"]
    page.screenshot("03_collapse_explorer_3_directions")

    one_text = move("directions", 1, three_text)
    noisy_text = move("noise", 0.05, one_text)
    one, noisy = collapse_stats(z, 1, 0.0), collapse_stats(z, 1, 0.05)
    assert one_text == readout(one) and noisy_text == readout(noisy)
    assert same_pixels(page.images()[0], png_src(plot_collapse_stats(noisy)))
    assert one["rank"] < 1.01 < 1.5 < noisy["rank"], (one["rank"], noisy["rank"])  # noise lifts it
    page.screenshot("03_collapse_explorer")
