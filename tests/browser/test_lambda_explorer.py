"""Notebook 11's lambda explorer, driven in Chromium through Voila.

The setup cell, the data cell, the lines of the check cell that make the features and the sweep,
and the widget cell are the notebook's own; only the encoder is left untrained (BN statistics
re-estimated; training it takes a minute, and the widget needs only its features of two views).
The same cells run in this process, so each readout and picture is compared with the package's
numbers for the slider's value.
"""
from harness import course_cell, course_cells, png_src, run_here, same_pixels

from cl_teach.widgets import plot_barlow_stats

ENCODER = """\
from cl_teach.metrics import recalibrate_batchnorm

D = 128
cl_teach.setup(SEED, verbose=False)
bt = BarlowTwins(SmallCNN(), projection_dim=D, lambd=5e-3)
bt.encoder = recalibrate_batchnorm(bt.encoder, train.x[:2000])        # returns the module
"""
DEFAULT = "from cl_teach.widgets import lambda_explorer\nlambda_explorer(sweep, lambd=5e-3)"
READOUT = r"lambda = [\de-]+ \| mean diagonal of C = "


def readout(st):
    label = "0" if st["lambd"] == 0 else f"{st['lambd']:.0e}".replace("e-0", "e-")
    return (f"lambda = {label} | mean diagonal of C = {st['diag_mean']:.3f} | mean |off-diagonal| = "
            f"{st['offdiag_abs_mean']:.3f} | effective rank of z = {st['rank']:.1f} of D = {st['d']}")


def test_lambda_explorer(open_widget):
    prep = [course_cell("11", "fashion_mnist_subsets("), ENCODER,
            course_cell("11", "barlow_sweep(", through="sweep = barlow_sweep(")]
    cells = course_cells("11", "lambda_explorer", DEFAULT, prep=prep)
    sweep = run_here(cells)["sweep"]
    assert sorted(sweep) == [0.0, 1e-3, 5e-3, 2e-2, 0.1]

    page = open_widget(cells, wait_for=READOUT)
    page.settle()
    first = page.text_matching(READOUT)
    assert first == readout(sweep[5e-3])                             # the notebook's lambda
    assert same_pixels(page.images()[0], png_src(plot_barlow_stats(sweep[5e-3], sweep)))
    assert not page.stderr()

    page.press_on_slider("lambda", "Home")                           # lambda = 0: no redundancy term
    zero_text = page.wait_for_change(READOUT, first, page.images())
    assert zero_text == readout(sweep[0.0])
    assert same_pixels(page.images()[0], png_src(plot_barlow_stats(sweep[0.0], sweep)))
    assert sweep[0.0]["offdiag_abs_mean"] > sweep[5e-3]["offdiag_abs_mean"]   # copies correlate
    assert sweep[0.0]["rank"] < sweep[5e-3]["rank"]
    page.screenshot("11_lambda_explorer_zero")

    page.press_on_slider("lambda", "End")                            # lambda = 0.1
    top_text = page.wait_for_change(READOUT, zero_text, page.images())
    assert top_text == readout(sweep[0.1])
    assert same_pixels(page.images()[0], png_src(plot_barlow_stats(sweep[0.1], sweep)))
    assert not page.stderr()
    page.screenshot("11_lambda_explorer")
